import Foundation

/// Which way a metric is better.
public enum Better: String, Sendable, Codable {
    case higher, lower
    /// A diagnostic: read beside the others, not ranked.
    case neither
}

/// One quantity a run reports (PROTOCOLS.md, "Evaluation"), declared once: its key (in the
/// store's `metric` table and in an experiment file's `metrics:` list), the label and unit a
/// report prints, which way is better and how many decimals a report shows.
public struct Metric: Sendable, Hashable, CustomStringConvertible {
    /// The key in the store and in experiment files (`knn`, `z_std`).
    public let key: String
    /// The column header of a report (`kNN top-1 %`).
    public let label: String
    /// `%`, `s` or "" for a plain number.
    public let unit: String
    public let better: Better
    /// Decimals a report prints.
    public let decimals: Int
    /// When the metric is measured: every epoch, at the end of training, both, or neither (a
    /// baseline, measured once per protocol and seed).
    public let perEpoch: Bool
    public let atEnd: Bool

    public var description: String { key }

    /// `value` with the metric's decimals ("nan"/"inf" for non-finite values).
    public func format(_ value: Double) -> String { formatFixed(value, decimals) }
}

extension Metric {
    // End of training (and, for the diagnostics, every epoch too).
    public static let knn = Metric(key: "knn", label: "kNN top-1 %", unit: "%", better: .higher, decimals: 1, perEpoch: false, atEnd: true)
    public static let linear = Metric(key: "linear", label: "linear %", unit: "%", better: .higher, decimals: 1, perEpoch: false, atEnd: true)
    public static let zStd = Metric(key: "z_std", label: "z_std·√d", unit: "", better: .higher, decimals: 3, perEpoch: true, atEnd: true)
    public static let mO = Metric(key: "m_o", label: "m_o", unit: "", better: .lower, decimals: 3, perEpoch: true, atEnd: true)
    public static let mR = Metric(key: "m_r", label: "m_r", unit: "", better: .higher, decimals: 3, perEpoch: true, atEnd: true)
    /// Every epoch only in runs with `analysis.cov_every_epoch` (Zhang et al. Fig 6).
    public static let covOffdiag = Metric(key: "cov_offdiag", label: "cov off-diag", unit: "", better: .lower, decimals: 4, perEpoch: true, atEnd: true)
    /// Zhang et al. Fig 5a: the η_p where cos(o_e − η_p·o_p, o_p) = 0 (`ExtraGradient`), at the end only.
    public static let etaZero = Metric(key: "eta_zero", label: "η_p at cos 0", unit: "", better: .neither, decimals: 2, perEpoch: false, atEnd: true)
    /// z_std·√d of the predictor output p (test set, eval mode), at the end only; methods with a predictor.
    public static let pStd = Metric(key: "p_std", label: "p std·√d", unit: "", better: .higher, decimals: 3, perEpoch: false, atEnd: true)
    /// Spread of the per-step loss within an epoch (`EpochRecord.lossStd`); at the end, the last epoch's.
    public static let lossStd = Metric(key: "loss_std", label: "loss std in epoch", unit: "", better: .neither, decimals: 4, perEpoch: true, atEnd: true)
    // Every epoch only.
    public static let loss = Metric(key: "loss", label: "loss", unit: "", better: .lower, decimals: 4, perEpoch: true, atEnd: false)
    public static let knnSubset = Metric(key: "knn_subset", label: "kNN top-1 % (subset)", unit: "%", better: .higher, decimals: 1, perEpoch: true, atEnd: false)
    public static let trainZStd = Metric(key: "train_z_std", label: "z_std·√d (train)", unit: "", better: .higher, decimals: 3, perEpoch: true, atEnd: false)
    /// Training time of an epoch (augmentation overlapped, monitor excluded); at the end, the mean over epochs.
    public static let epochSeconds = Metric(key: "epoch_seconds", label: "s / epoch", unit: "s", better: .lower, decimals: 1, perEpoch: true, atEnd: true)
    /// Time of the forward passes made only for targets (targets as state), within the epoch's time.
    public static let targetSeconds = Metric(key: "target_seconds", label: "target s / epoch", unit: "s", better: .lower, decimals: 1, perEpoch: true, atEnd: false)
    /// Those forward passes as a share of training time: Σ target_seconds ÷ Σ epoch_seconds over the
    /// run's epochs, in %. Never stored: a report derives it from the two curves (`derivedFinals`).
    public static let targetShare = Metric(key: "target_share", label: "targets % of time", unit: "%", better: .lower, decimals: 0, perEpoch: false, atEnd: true)
    // End of training only.
    public static let peakRSSMiB = Metric(key: "peak_rss_mib", label: "peak RSS MiB", unit: "MiB", better: .lower, decimals: 0, perEpoch: false, atEnd: true)
    // Baselines, per protocol and seed.
    public static let rawPixelKNN = Metric(key: "raw_pixel_knn", label: "raw pixels", unit: "%", better: .higher, decimals: 1, perEpoch: false, atEnd: false)
    public static let randomInitKNN = Metric(key: "random_init_knn", label: "random-init backbone", unit: "%", better: .higher, decimals: 1, perEpoch: false, atEnd: false)
    public static let rawPixelLinear = Metric(key: "raw_pixel_linear", label: "raw pixels", unit: "%", better: .higher, decimals: 1, perEpoch: false, atEnd: false)
    public static let randomInitLinear = Metric(key: "random_init_linear", label: "random-init backbone", unit: "%", better: .higher, decimals: 1, perEpoch: false, atEnd: false)
    /// The baselines a report prints, by the metric they stand beside (kNN top-1, linear).
    public static let baselines: [(of: Metric, baselines: [Metric])] = [(.knn, [.rawPixelKNN, .randomInitKNN]),
                                                                       (.linear, [.rawPixelLinear, .randomInitLinear])]

    /// Every metric, final ones first in the order reports show them by default.
    public static let all: [Metric] = [.knn, .linear, .zStd, .mO, .mR, .covOffdiag, .etaZero, .pStd, .lossStd, .loss, .knnSubset, .trainZStd, .epochSeconds,
                                       .targetSeconds, .targetShare, .peakRSSMiB, .rawPixelKNN, .randomInitKNN, .rawPixelLinear, .randomInitLinear]
    /// What an experiment file's `metrics:` may list: the end-of-training metrics.
    public static let reportable: [Metric] = all.filter(\.atEnd)
    /// The report columns when a table does not choose (the columns of the first reports).
    public static let defaultColumns: [Metric] = [.knn, .linear, .zStd, .mO, .mR]
    /// The metric claims are judged on (`within`/`below`/`above`) and whose seed count a report
    /// prints: always the first column.
    public static let main: Metric = .knn

    /// The metric with this key, if any.
    public static func named(_ key: String) -> Metric? { all.first { $0.key == key } }
}

extension Metric {
    /// The end-of-training values a report derives from a run's per-epoch curves (`points`, one
    /// per key and epoch): `target_share` when the run measured its target passes. Epochs without
    /// a target time count with their whole time, so the share is of all training time.
    public static func derivedFinals(_ points: [(key: String, value: Double)]) -> [String: Double] {
        let targets = points.filter { $0.key == targetSeconds.key }.map(\.value)
        let total = points.filter { $0.key == epochSeconds.key }.map(\.value).reduce(0, +)
        guard !targets.isEmpty, total > 0 else { return [:] }
        return [targetShare.key: 100 * targets.reduce(0, +) / total]
    }
}

/// `x` with exactly `places` decimals ("-0.0" is printed as "0.0"); "nan"/"inf" for non-finite.
public func formatFixed(_ x: Double, _ places: Int) -> String {
    guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
    let text = String(format: "%.\(max(0, places))f", x)
    if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(text.dropFirst()) }
    return text
}

extension EpochRecord {
    /// The epoch's metrics by key (absent values left out; NaN/Inf kept), stored at step = `epoch`.
    public var metricValues: [(key: String, value: Double)] {
        let optional: [(Metric, Double?)] = [(.knnSubset, knnSubset), (.zStd, test?.zStd), (.mO, test?.mO), (.mR, test?.mR),
                                             (.covOffdiag, test?.covOffdiag), (.trainZStd, trainZStd), (.lossStd, lossStd), (.targetSeconds, targetSeconds)]
        return [(Metric.loss.key, Double(meanLoss)), (Metric.epochSeconds.key, seconds)]
            + optional.compactMap { m, v in v.map { (m.key, $0) } }
    }
}

extension EpochRecord {
    /// The per-step diagnostics as (key, step, value): m_o and m_r at the global step.
    public var stepMetricValues: [(key: String, step: Int, value: Double)] {
        (steps ?? []).flatMap { [(Metric.mO.key, $0.step, $0.mO), (Metric.mR.key, $0.step, $0.mR)] }
    }
}

extension FinalMetrics {
    /// The final metrics by key (stored as `final.<key>`): knn, z_std, m_o, m_r, and cov_offdiag,
    /// linear, eta_zero, p_std, the last epoch's loss std, the mean epoch time and the peak memory when measured.
    public var metricValues: [(key: String, value: Double)] {
        var values: [(key: String, value: Double)] = [(Metric.knn.key, knn), (Metric.zStd.key, test.zStd),
                                                      (Metric.mO.key, test.mO), (Metric.mR.key, test.mR)]
        if let cov = test.covOffdiag { values.append((Metric.covOffdiag.key, cov)) }
        if let linear { values.append((Metric.linear.key, linear)) }
        if let etaZero { values.append((Metric.etaZero.key, etaZero)) }
        if let predictionStd { values.append((Metric.pStd.key, predictionStd)) }
        if let lastEpochLossStd { values.append((Metric.lossStd.key, lastEpochLossStd)) }
        if let meanEpochSeconds { values.append((Metric.epochSeconds.key, meanEpochSeconds)) }
        if let peakRSSMiB { values.append((Metric.peakRSSMiB.key, peakRSSMiB)) }
        return values
    }
}

extension Baselines {
    /// The baselines by key, as the store's `baseline` table keeps them (the linear probes when measured).
    public var metricValues: [(key: String, value: Double)] {
        let linear: [(Metric, Double?)] = [(.rawPixelLinear, rawPixelLinear), (.randomInitLinear, randomBackboneLinear)]
        return [(Metric.rawPixelKNN.key, rawPixelKNN), (Metric.randomInitKNN.key, randomBackboneKNN)]
            + linear.compactMap { m, v in v.map { (m.key, $0) } }
    }
}
