import Data
import Foundation
import NN
import Tensors

/// End-of-training metrics of one run, and its verdict.
public struct FinalMetrics: Sendable, Codable {
    public var knn: Double
    public var linear: Double?
    public var test: CollapseDiagnostics
    public var verdict: Verdict
    /// The worker process's peak resident memory (MiB) over training and evaluation; nil where
    /// not measured.
    public var peakRSSMiB: Double?
    /// Mean training time of an epoch (s); nil where not measured.
    public var meanEpochSeconds: Double?
    /// Zhang et al. Fig 5a on the test set: where cos(o_e − η_p·o_p, o_p) crosses 0
    /// (`ExtraGradient.zeroCrossing`); nil for a method without a predictor.
    public var etaZero: Double?
    /// z_std·√d of the predictor's output p on the test set (eval mode), for a method with a
    /// predictor: a model whose p collapses while z does not (Zhang et al.'s symmetric predictor,
    /// −P_a·sg(P_b)) shows it here, not in z's verdict.
    public var predictionStd: Double?
    /// The last epoch's spread of the per-step loss (`EpochRecord.lossStd`); nil where not measured.
    public var lastEpochLossStd: Double?
}

/// Baselines printed beside every table: kNN and the linear probe on raw pixels and on an
/// untrained backbone ("is SSL better than nothing?" on both metrics).
public struct Baselines: Sendable, Codable {
    public var rawPixelKNN: Double
    public var randomBackboneKNN: Double
    /// The runs' linear probe (`Evaluation.linearProbe`, same recipe and seed); nil in events of
    /// workers that predate it.
    public var rawPixelLinear: Double?
    public var randomBackboneLinear: Double?
}

/// Computes the monitor metrics of PROTOCOLS.md for a model on a protocol's data.
public struct Monitor {
    /// The per-epoch kNN uses the first `memorySize` training and `querySize` test images.
    public static let memorySize = 10_000, querySize = 2_000
    public let train: ImageSet, test: ImageSet
    public let augmentation: Augmentation

    public init(train: ImageSet, test: ImageSet, augmentation: Augmentation) {
        self.train = train; self.test = test; self.augmentation = augmentation
    }

    /// Per-epoch: kNN on the fixed subset, diagnostics of z on the whole test set (eval mode),
    /// with cov_offdiag when `covariance` (Zhang et al. Fig 6 plots it over training).
    public func epochMetrics(_ model: SSLMethod, covariance: Bool = false) throws -> (knn: Double, test: CollapseDiagnostics) {
        model.setTraining(false)
        defer { model.setTraining(true) }
        let memory = try Evaluation.embed(train, range: 0..<min(Monitor.memorySize, train.count), augmentation: augmentation) { try model.backbone($0) }
        let testFeatures = try Evaluation.embed(test, augmentation: augmentation) { try model.backbone($0) }
        let q = min(Monitor.querySize, test.count)
        let knn = try Evaluation.knnAccuracy(memory: memory, memoryLabels: Array(train.labels[0..<memory.shape[0]]),
                                             queries: try noGrad { try slice(testFeatures, 0..<q) },
                                             queryLabels: Array(test.labels[0..<q]))
        let z = try noGrad { try model.project(testFeatures) }
        return (knn, try CollapseDiagnostics(z, covariance: covariance))
    }

    /// After the last epoch: full kNN (all training images as memory), linear probe (unless
    /// `linearProbe` is false), diagnostics with covariance, the verdict, and with `extraGradient`
    /// Zhang et al.'s η_p zero crossing (Fig 5a) on the final weights (for a method with a predictor).
    public func finalMetrics(_ model: SSLMethod, seed: UInt64, diverged: Bool, linearProbe: Bool = true,
                             extraGradient: Bool = false) throws -> FinalMetrics {
        Storage.releaseCachedBlocks()   // the training step's buffers: not needed again
        model.setTraining(false)
        defer { model.setTraining(true) }
        let trainFeatures = try Evaluation.embed(train, augmentation: augmentation) { try model.backbone($0) }
        let testFeatures = try Evaluation.embed(test, augmentation: augmentation) { try model.backbone($0) }
        let knn: Double, linear: Double?
        if linearProbe {
            (knn, linear) = try knnAndLinear(train: trainFeatures, test: testFeatures, seed: seed)
        } else {
            knn = try Evaluation.knnAccuracy(memory: trainFeatures, memoryLabels: train.labels,
                                             queries: testFeatures, queryLabels: test.labels)
            linear = nil
        }
        let z = try noGrad { try model.project(testFeatures) }
        let diag = try CollapseDiagnostics(z)
        let p = try noGrad { try model.prediction(of: z) }
        let eta = extraGradient ? p.flatMap { try? ExtraGradient.zeroCrossing(z: z, p: $0) } : nil
        return FinalMetrics(knn: knn, linear: linear, test: diag,
                            verdict: Verdict.of(diverged: diverged, zStd: diag.zStd, mO: diag.mO, mR: diag.mR), etaZero: eta,
                            predictionStd: try p.map { try CollapseDiagnostics($0, covariance: false).zStd })
    }

    /// kNN and the linear probe (the runs' recipe, this seed) on normalised raw pixels, and on
    /// the backbone of an untrained model with this seed (every method draws its backbone first,
    /// so it is the same backbone whatever the method).
    public func baselines(config: TrainingConfig, seed: UInt64) throws -> Baselines {
        let flat: (ImageSet) -> Tensor = { set in
            let t = augmentation.plain(set, range: 0..<set.count)
            return Tensor(shape: [set.count, set.imageSize], storage: t.storage)
        }
        let rawTrain = flat(train), rawTest = flat(test)
        let untrained = try Methods.make(config, inChannels: train.channels, seed: seed)
        untrained.setTraining(false)
        let mem = try Evaluation.embed(train, augmentation: augmentation) { try untrained.backbone($0) }
        let q = try Evaluation.embed(test, augmentation: augmentation) { try untrained.backbone($0) }
        let (rawKNN, rawLinear) = try knnAndLinear(train: rawTrain, test: rawTest, seed: seed)
        let (randomKNN, randomLinear) = try knnAndLinear(train: mem, test: q, seed: seed)
        return Baselines(rawPixelKNN: rawKNN, randomBackboneKNN: randomKNN, rawPixelLinear: rawLinear, randomBackboneLinear: randomLinear)
    }

    /// Full kNN and the linear probe of features of the whole training and test sets, as `finalMetrics` measures them.
    func knnAndLinear(train features: Tensor, test queries: Tensor, seed: UInt64) throws -> (knn: Double, linear: Double) {
        let knn = try Evaluation.knnAccuracy(memory: features, memoryLabels: train.labels, queries: queries, queryLabels: test.labels)
        let linear = try Evaluation.linearProbe(train: features, trainLabels: train.labels, test: queries,
                                                testLabels: test.labels, seed: seed)
        return (knn, linear)
    }
}
