import Foundation
import Registry
import SSL
import Store

/// Mean and sample standard deviation (n − 1 in the denominator; 0 when n = 1) of n ≥ 1 values.
public struct MeanStd: Sendable, Equatable {
    public var mean: Double
    public var std: Double
    public var n: Int

    public init(mean: Double, std: Double, n: Int) {
        self.mean = mean; self.std = std; self.n = n
    }

    /// nil for no values; non-finite values are skipped (they are reported by the verdict).
    public static func of(_ values: [Double]) -> MeanStd? {
        let xs = values.filter(\.isFinite)
        guard !xs.isEmpty else { return nil }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.count > 1 ? xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count - 1) : 0
        return MeanStd(mean: mean, std: variance.squareRoot(), n: xs.count)
    }
}

/// What a row's runs measured, over the seeds that have a result. Numbers average the
/// `finished` seeds; `verdicts` has one entry per finished or diverged seed, in seed order.
public struct RowStats: Sendable, Equatable {
    public var name: String
    public var plannedSeeds: Int
    /// Mean ± std of each final metric over the finished seeds that have it, by metric key.
    public var stats: [String: MeanStd]
    public var verdicts: [Verdict]
    /// The main metric of each finished seed, by seed: what paired comparisons pair.
    public var mainBySeed: [UInt64: Double]

    /// The main metric (`Metric.main`, final kNN top-1 %): what comparative claims compare.
    public var knn: MeanStd? { stats[Metric.main.key] }

    public subscript(metric: Metric) -> MeanStd? { stats[metric.key] }

    public init(name: String, plannedSeeds: Int = 0, knn: MeanStd? = nil, stats: [String: MeanStd] = [:], verdicts: [Verdict] = [],
                mainBySeed: [UInt64: Double] = [:]) {
        self.name = name; self.plannedSeeds = plannedSeeds; self.stats = stats; self.verdicts = verdicts; self.mainBySeed = mainBySeed
        if let knn { self.stats[Metric.main.key] = knn }
    }

    /// The statistics of the runs chosen for a row (at most one per seed), for every final metric.
    public init(name: String, plannedSeeds: Int, runs: [(run: RunRecord, final: StoredFinalMetrics?)]) {
        let ordered = runs.sorted { $0.run.seed < $1.run.seed }
        let finished = ordered.filter { $0.run.status == .finished }.compactMap(\.final)
        var stats: [String: MeanStd] = [:]
        for metric in Metric.reportable {
            stats[metric.key] = MeanStd.of(finished.compactMap { $0[metric.key] })
        }
        let bySeed = ordered.filter { $0.run.status == .finished }.compactMap { run, final in
            final?[Metric.main.key].flatMap { $0.isFinite ? (run.seed, $0) : nil }
        }
        self.init(name: name, plannedSeeds: plannedSeeds, stats: stats,
                  verdicts: ordered.filter { $0.run.status.isDone }.compactMap { run, final in
                      run.status == .diverged ? .diverged : (run.verdictValue ?? final?.verdictValue)
                  },
                  mainBySeed: Dictionary(bySeed, uniquingKeysWith: { a, _ in a }))
    }
}

extension RunRecord {
    /// The stored verdict as SSL's type (nil when none is stored or the text is not a verdict).
    public var verdictValue: Verdict? { verdict.flatMap(Verdict.init(rawValue:)) }
}

extension StoredFinalMetrics {
    /// The stored verdict as SSL's type.
    public var verdictValue: Verdict? { verdict.flatMap(Verdict.init(rawValue:)) }

    /// The stored value of a metric.
    public subscript(metric: Metric) -> Double? { values[metric.key] }
}

/// Whether a row's claim held.
public enum ClaimOutcome: Sendable, Equatable {
    case holds
    case fails
    /// Not decidable from these runs; the reason says why.
    case inconclusive(String)

    /// ✓, ✗ or "inconclusive (reason)".
    public var text: String {
        switch self {
        case .holds: return "✓"
        case .fails: return "✗"
        case let .inconclusive(reason): return "inconclusive (\(reason))"
        }
    }
}

/// Evaluates a claim from stored results, never from typed-in judgements.
///
/// - `collapses` holds only if every seed's verdict is `collapsed`; fails if any seed is
///   `trained` or `partial-collapse`; otherwise (no results, or a mix with `diverged`) inconclusive.
/// - `does not collapse` holds if every verdict is `trained` or `partial-collapse` (a partial
///   collapse is not a collapse, PROTOCOLS.md); fails if any is `collapsed`; else inconclusive.
/// - `diverges` holds if every verdict is `diverged`, fails if any is not; inconclusive without results.
/// - `within p of R`, `below R`, `above R`, `not more than p below R` compare kNN top-1 by the
///   difference of means Δ = mean − mean_R and its 95 % confidence interval (two-sided;
///   `DifferenceInterval`): the paired t interval over the seeds both rows finished when there
///   are ≥ 2 of them (a seed's draws move every row alike; the per-seed differences cancel
///   that), else Welch's t interval when both rows have ≥ 2 finished seeds (Welch–Satterthwaite
///   degrees of freedom). `below` holds if the whole interval is below 0, fails if it is entirely above 0,
///   else is inconclusive; `above` the mirror image. `within p` holds if the interval lies inside
///   [−p, p] (+1e-9 for rounding), fails if it lies entirely outside, and is inconclusive if it
///   straddles −p or p. `not more than p below R` (non-inferiority) holds if the interval lies
///   above −p, fails if it lies entirely below −p, and is inconclusive if it straddles −p.
///   The inconclusive reason prints the interval.
/// - One seed: with 1 seed in one row and n ≥ 2 in the other, that row's std stands for both
///   (t interval with n − 1 degrees of freedom; the reason and the report say "1 seed, std of R
///   assumed"). With 1 seed in each row there is no estimate of the seed noise at all: the claim
///   is inconclusive, and the reason gives Δ and which way it points.
/// Comparisons are inconclusive when either row has no finished seed (n < 1) or R is not a row.
public func evaluateClaim(_ claim: Claim, _ row: RowStats, _ allRows: [RowStats]) -> ClaimOutcome {
    let v = row.verdicts
    switch claim {
    case .collapses:
        guard !v.isEmpty else { return .inconclusive("no runs") }
        if v.allSatisfy({ $0 == .collapsed }) { return .holds }
        if v.contains(where: { $0 == .trained || $0 == .partialCollapse }) { return .fails }
        return .inconclusive("some seeds diverged")
    case .doesNotCollapse:
        guard !v.isEmpty else { return .inconclusive("no runs") }
        if v.contains(.collapsed) { return .fails }
        if v.allSatisfy({ $0 == .trained || $0 == .partialCollapse }) { return .holds }
        return .inconclusive("some seeds diverged")
    case .diverges:
        guard !v.isEmpty else { return .inconclusive("no runs") }
        return v.allSatisfy { $0 == .diverged } ? .holds : .fails
    case let .within(points, other):
        return decideComparison(row, other, allRows, onePoint: { d in
            "Δ \(Metric.main.format(d)) is \(abs(d) <= points + 1e-9 ? "within" : "outside") ±\(formatPoints(points))"
        }) { ci in
            if ci.low >= -points - 1e-9 && ci.high <= points + 1e-9 { return .holds }
            if ci.high < -points || ci.low > points { return .fails }
            return .inconclusive(ci.text(Metric.main.format, " straddles ±\(formatPoints(points))"))
        }
    case let .below(other), let .above(other):
        var below = false
        if case .below = claim { below = true }
        return decideComparison(row, other, allRows, onePoint: { d in
            "Δ \(Metric.main.format(d)), \(d < 0 ? "below" : d > 0 ? "above" : "equal to") `\(other)`"
        }) { ci in
            if below ? ci.high < 0 : ci.low > 0 { return .holds }
            if below ? ci.low > 0 : ci.high < 0 { return .fails }
            return .inconclusive(ci.text(Metric.main.format, " includes 0"))
        }
    case let .notBelow(points, other):
        return decideComparison(row, other, allRows, onePoint: { d in
            "Δ \(Metric.main.format(d)) is \(d >= -points - 1e-9 ? "not " : "")more than \(formatPoints(points)) below"
        }) { ci in
            if ci.low >= -points - 1e-9 { return .holds }
            if ci.high < -points { return .fails }
            return .inconclusive(ci.text(Metric.main.format, " straddles -\(formatPoints(points))"))
        }
    case let .near(key, value, tolerance):
        return evaluateNear(key, value: value, tolerance: tolerance, row.stats[key])
    case .rises, .falls:
        return .inconclusive("a curve claim needs the runs' curves (`evaluateCurveClaim`)")
    }
}

/// What a curve claim was decided on: the curve's start and end (means over seeds), and whether
/// they are per-step points (the training batch, BN in training mode) or per-epoch ones (the
/// test set, BN in eval mode, as the table's columns): a per-step curve can end far from the column.
public struct CurveEvidence: Sendable, Equatable {
    public var metric: String
    public var start: Double
    public var end: Double
    public var perStep = false
    /// "m_o 0.41 → 0.97 per epoch", "m_o 0.41 → 0.97 per step, training batch".
    public var text: String {
        let m = Metric.named(metric)
        return "\(metric) \(m?.format(start) ?? formatFixed(start, 3)) → \(m?.format(end) ?? formatFixed(end, 3))"
            + (perStep ? " per step, training batch" : " per epoch")
    }
}

/// Decides `rises` / `falls` / `rises after epoch k` / `falls after epoch k` from each seed's
/// stored curve: the per-step points (`step.<metric>`) where a run has them, else the per-epoch
/// points (`… after epoch k` always reads the per-epoch curve from epoch k on). The start is the
/// curve's first point (per step: the untrained model, so a change within the first steps — the
/// dummy gradients of Zhang et al. Fig 4 act within ten — is not averaged away); the end is the
/// mean of its last tenth (at least one point). A seed's curve rises if end − start exceeds
/// 5 % of max(|start|, |end|) (and falls if it is below minus that), else it is flat. The claim
/// holds if every seed goes the claimed way, fails if none does, and is inconclusive for a mix
/// ("2 of 3 seeds") or without curves.
public func evaluateCurveClaim(_ claim: Claim, runs: [[MetricPoint]]) -> (ClaimOutcome, CurveEvidence?) {
    let metric: String, after: Int?, up: Bool
    switch claim {
    case let .rises(m, k): (metric, after, up) = (m, k, true)
    case let .falls(m, k): (metric, after, up) = (m, k, false)
    default: return (.inconclusive("not a curve claim"), nil)
    }
    var starts: [Double] = [], ends: [Double] = [], agree = 0, stepCurves = 0
    for points in runs {
        let perStep = after == nil ? points.filter { $0.key == MetricPoint.stepPrefix + metric } : []
        let curve = (perStep.isEmpty ? points.filter { $0.key == metric && $0.step >= (after ?? 0) } : perStep)
            .sorted { $0.step < $1.step }.map(\.value).filter(\.isFinite)
        guard curve.count >= 2 else { continue }
        if !perStep.isEmpty { stepCurves += 1 }
        let k = max(1, curve.count / 10)
        let start = curve[0], end = curve.suffix(k).reduce(0, +) / Double(k)
        let tolerance = 0.05 * max(abs(start), abs(end))
        starts.append(start); ends.append(end)
        if up ? end - start > tolerance : start - end > tolerance { agree += 1 }
    }
    guard !starts.isEmpty else { return (.inconclusive("no curve of \(metric)"), nil) }
    let evidence = CurveEvidence(metric: metric, start: starts.reduce(0, +) / Double(starts.count),
                                 end: ends.reduce(0, +) / Double(ends.count), perStep: stepCurves == starts.count)
    if agree == starts.count { return (.holds, evidence) }
    if agree == 0 { return (.fails, evidence) }
    return (.inconclusive("\(agree) of \(starts.count) seeds"), evidence)
}

private enum Comparison {
    /// Both rows' summaries and the interval of the difference, nil for 1 seed each.
    case ready(MeanStd, MeanStd, DifferenceInterval?)
    case undecidable(ClaimOutcome)
}

/// `<metric> within x of v` on a final metric: the 95 % t interval of the mean over the finished
/// seeds (mean ± t(0.975, n − 1)·s/√n) holds if it lies inside [v − x, v + x], fails if it lies
/// entirely outside, else is inconclusive; one seed is inconclusive (no interval), its value in the reason.
func evaluateNear(_ key: String, value: Double, tolerance: Double, _ s: MeanStd?) -> ClaimOutcome {
    let format = Metric.named(key)?.format ?? { formatFixed($0, 3) }
    let bound = "\(formatFixed(value, 2)) ± \(formatFixed(tolerance, 2))"
    guard let s else { return .inconclusive("no finished seeds with \(key)") }
    guard s.n >= 2 else {
        let inside = abs(s.mean - value) <= tolerance + 1e-9
        return .inconclusive("1 seed: \(key) \(format(s.mean)) is \(inside ? "inside" : "outside") \(bound) on the point estimate; an interval needs 2 seeds")
    }
    let half = StudentT.quantile(1 - (1 - DifferenceInterval.level) / 2, degreesOfFreedom: Double(s.n - 1)) * s.std / Double(s.n).squareRoot()
    let (low, high) = (s.mean - half, s.mean + half)
    if low >= value - tolerance - 1e-9 && high <= value + tolerance + 1e-9 { return .holds }
    if high < value - tolerance || low > value + tolerance { return .fails }
    return .inconclusive("\(key) \(format(s.mean)), 95 % CI [\(format(low)), \(format(high))] straddles \(bound)")
}

/// The interval a comparative claim (`within`, `below`, `above`) of `row` is decided on; nil for
/// other claims or when there is none (a row without finished seeds, 1 seed in each row).
public func comparisonInterval(_ claim: Claim, _ row: RowStats, _ allRows: [RowStats]) -> DifferenceInterval? {
    switch claim {
    case let .within(_, other), let .below(other), let .above(other), let .notBelow(_, other):
        guard case let .ready(_, _, interval) = compare(row, other, allRows) else { return nil }
        return interval
    default:
        return nil
    }
}

extension DifferenceInterval {
    /// The interval for mean_a − mean_b that the claims use: Welch's when both rows have ≥ 2
    /// seeds, the other row's std assumed when one row has a single seed, nil for 1 seed each.
    static func between(_ a: MeanStd, _ b: MeanStd, names: (String, String)) -> DifferenceInterval? {
        if let welch = welch(a, b) { return welch }
        if let ci = assumingStd(single: a, of: b, named: names.1) { return ci }
        // b is the single seed: the interval for b − a with a's std, turned around.
        guard var ci = assumingStd(single: b, of: a, named: names.0) else { return nil }
        (ci.difference, ci.low, ci.high) = (-ci.difference, -ci.high, -ci.low)
        return ci
    }
}

/// "1" or "1.5": a claim's points as written.
private func formatPoints(_ p: Double) -> String {
    p == p.rounded() ? String(Int(p)) : String(p)
}

/// A comparative claim of `row` against row `other`: `decide` on the interval of the difference,
/// or, with 1 seed in each row, inconclusive with `onePoint(Δ)` saying which way Δ points.
private func decideComparison(_ row: RowStats, _ other: String, _ all: [RowStats], onePoint: (Double) -> String,
                              decide: (DifferenceInterval) -> ClaimOutcome) -> ClaimOutcome {
    switch compare(row, other, all) {
    case let .undecidable(outcome): return outcome
    case let .ready(a, b, interval):
        guard let ci = interval else {
            return .inconclusive("1 seed each: " + onePoint(a.mean - b.mean) + " on the point estimate; an interval needs 2 seeds of a row")
        }
        return decide(ci)
    }
}

/// The kNN summaries of a row and of the row it is compared with and the interval of their
/// difference (paired over common seeds when there are 2 or more, else `between`), or why there
/// are none.
private func compare(_ row: RowStats, _ other: String, _ all: [RowStats]) -> Comparison {
    guard let reference = all.first(where: { $0.name == other }) else { return .undecidable(.inconclusive("no row `\(other)`")) }
    guard let a = row.knn else { return .undecidable(.inconclusive("no finished seeds")) }
    guard let b = reference.knn else { return .undecidable(.inconclusive("no finished seeds of `\(other)`")) }
    return .ready(a, b, DifferenceInterval.paired(row.mainBySeed, reference.mainBySeed)
                        ?? DifferenceInterval.between(a, b, names: (row.name, other)))
}
