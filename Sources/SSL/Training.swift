import Data
import Foundation
import NN
import Tensors

/// What the trainer reports while it runs.
public struct TrainingProgress: Sendable {
    public var epoch: Int, epochs: Int
    public var step: Int, stepsPerEpoch: Int
    public var loss: Float
    public var imagesPerSecond: Double
    public var secondsRemaining: Double
}

/// The end of one epoch: its loss and the monitor metrics (PROTOCOLS.md).
public struct EpochRecord: Sendable, Codable {
    public var epoch: Int
    public var meanLoss: Float
    /// Wall time of the epoch's training steps (augmentation overlaps them on another queue).
    public var seconds: Double
    /// Time spent drawing the augmented views (on the background queue, overlapped with training).
    public var augmentSeconds: Double?
    /// Time the training loop waited for views that were not ready: augmentation's real cost.
    public var augmentWaitSeconds: Double?
    /// Time of the forward passes made only to compute targets (targets kept as state), part of `seconds`.
    public var targetSeconds: Double?
    /// Time of the per-epoch monitor (kNN on the subset, test-set diagnostics).
    public var monitorSeconds: Double?
    /// kNN top-1 % on a fixed subset (memory: the first `Monitor.memorySize` training images,
    /// queries: the first `Monitor.querySize` test images); nil when the monitor is off.
    public var knnSubset: Double?
    /// Diagnostics of the projector output on the whole test set (eval mode).
    public var test: CollapseDiagnostics?
    /// z_std·√d of the last training batch's z1, in training mode (what SimSiam's Fig 2 plots).
    public var trainZStd: Double?
    /// Sample std of the per-step training loss within the epoch: how much the loss oscillates
    /// from batch to batch (SimSiam Table 3 (d), "the loss oscillates"); nil in records of older runs.
    public var lossStd: Double?
    /// m_o and m_r of the training batch's z1 every `Trainer.stepDiagnosticsEvery` steps (Zhang et
    /// al.'s curves are per step); nil in records of older runs.
    public var steps: [StepDiagnostics]?
}

/// The collapse indicators of one training batch, from the weights after `step` updates (counted
/// over the run; 0 is the untrained model). Runs stored before 2026-12-02 counted 1-based (the
/// batch of update `step`, seen after `step` − 1 updates) and have no point before step 10.
public struct StepDiagnostics: Sendable, Codable, Equatable {
    public var step: Int
    public var mO: Double
    public var mR: Double
}

public enum RunStatus: String, Sendable, Codable {
    case finished
    /// NaN or Inf appeared in the loss or the parameters: the run stopped (PROTOCOLS.md `diverged`).
    case diverged
}

public struct TrainingResult: Sendable {
    public var status: RunStatus
    public var epochs: [EpochRecord]
    public var seconds: Double
}

/// Self-supervised pre-training of any `SSLMethod`: the method's number of augmented views per
/// image, its loss and parameter groups, SGD with the protocol's schedule (cosine decay per step).
public final class Trainer {
    public let config: TrainingConfig
    public let seed: UInt64
    public let model: SSLMethod
    public let optimizer: SGD
    let train: ImageSet
    let augmentation: Augmentation
    var lastTrainZStd: Double?, lastLossStd: Double?
    var lastSteps: [StepDiagnostics] = []
    var lastAugmentSeconds: Double?, lastAugmentWait: Double?
    /// How often the training batch's m_o and m_r are recorded.
    public static let stepDiagnosticsEvery = 10

    public init(config: TrainingConfig, seed: UInt64, train: ImageSet, augmentation: Augmentation) throws {
        guard config.batch >= 2, config.batch <= train.count else {
            throw TrainingError.badConfig("batch \(config.batch) must be between 2 and the \(train.count) training images")
        }
        guard config.epochs >= 1 else { throw TrainingError.badConfig("epochs must be at least 1, got \(config.epochs)") }
        self.config = config
        self.seed = seed
        self.train = train
        self.augmentation = augmentation
        model = try Methods.make(config, inChannels: train.channels, seed: seed)
        let perEpoch = train.count / config.batch
        optimizer = makeOptimizer(for: model, config: config, totalSteps: config.epochs * perEpoch,
                                  warmupSteps: config.warmupEpochs * perEpoch)
    }

    /// Steps per epoch: the last incomplete batch is dropped (as `drop_last=True`).
    public var stepsPerEpoch: Int { train.count / config.batch }
    var totalSteps: Int { config.epochs * stepsPerEpoch }

    /// One epoch; returns the mean loss, or nil if the run diverged.
    public func runEpoch(_ epoch: Int, progress: (TrainingProgress) -> Void) throws -> Float? {
        lastTrainZStd = nil
        lastLossStd = nil
        lastSteps = []
        model.setTraining(true)
        var order = RNG(seed: seed ^ 0x5EED_0000 &+ UInt64(epoch))
        let perm = order.permutation(train.count)
        let steps = stepsPerEpoch
        let viewCount = model.viewCount
        var total: Double = 0, totalSquares: Double = 0
        let start = Date()
        // The next batch's views are drawn on a background queue while this step trains.
        let batch = config.batch
        let indices = { (step: Int) in Array(perm[(step * batch)..<((step + 1) * batch)]) }
        let prefetch = Prefetcher { step in
            self.augmentation.views(of: self.train, indices: indices(step), epoch: epoch, seed: self.seed, count: viewCount)
        }
        prefetch.request(0)
        defer { prefetch.drain() }
        for step in 0..<steps {
            let views = prefetch.take()
            if step + 1 < steps { prefetch.request(step + 1) }
            let context = BatchContext(
                indices: indices(step), epoch: epoch, step: step, stepsPerEpoch: steps,
                upcoming: { ahead in step + ahead < steps ? indices(step + ahead) : nil },
                draw: { images, first, count in
                    self.augmentation.views(of: self.train, indices: images, epoch: epoch, seed: self.seed, first: first, count: count)
                })
            let out = try trainingStep(model, optimizer, views: views, totalSteps: totalSteps, context: context)
            // z came from the weights after `updates` updates (0: the untrained model, where the curves start).
            let updates = epoch * steps + step
            if step == steps - 1 || updates % Trainer.stepDiagnosticsEvery == 0, let z = out.projections.first {
                let d = try CollapseDiagnostics(z, covariance: false)
                if step == steps - 1 { lastTrainZStd = d.zStd }
                if updates % Trainer.stepDiagnosticsEvery == 0 { lastSteps.append(StepDiagnostics(step: updates, mO: d.mO, mR: d.mR)) }
            }
            guard out.loss.isFinite else { return nil }
            total += Double(out.loss)
            totalSquares += Double(out.loss) * Double(out.loss)
            let elapsed = Date().timeIntervalSince(start)
            let perStep = elapsed / Double(step + 1)
            let remaining = perStep * Double(steps - step - 1 + (config.epochs - epoch - 1) * steps)
            progress(TrainingProgress(epoch: epoch, epochs: config.epochs, step: step + 1, stepsPerEpoch: steps,
                                      loss: out.loss, imagesPerSecond: Double((step + 1) * config.batch) / max(elapsed, 1e-9),
                                      secondsRemaining: remaining))
        }
        guard parametersAreFinite() else { return nil }
        if steps > 1 {
            let mean = total / Double(steps)
            lastLossStd = (max(0, totalSquares - Double(steps) * mean * mean) / Double(steps - 1)).squareRoot()
        }
        lastAugmentSeconds = prefetch.makeSeconds
        lastAugmentWait = prefetch.waitSeconds
        return Float(total / Double(steps))
    }

    /// Trains all epochs, stopping early (status `diverged`) at the first NaN/Inf.
    /// `monitor`, when given, adds the per-epoch kNN and diagnostics to each record.
    /// `resume` continues after the epochs already in `previous` (restored from a checkpoint);
    /// `epochEnd` runs after each epoch (the place to checkpoint).
    public func run(monitor: Monitor? = nil, previous: [EpochRecord] = [],
                    progress: (TrainingProgress) -> Void = { _ in },
                    epochEnd: ([EpochRecord]) throws -> Void = { _ in }) throws -> TrainingResult {
        var records = previous
        let start = Date()
        for epoch in previous.count..<config.epochs {
            let t0 = Date(), targetsBefore = model.targetSeconds
            guard let loss = try runEpoch(epoch, progress: progress) else {
                return TrainingResult(status: .diverged, epochs: records, seconds: Date().timeIntervalSince(start))
            }
            var record = EpochRecord(epoch: epoch + 1, meanLoss: loss, seconds: Date().timeIntervalSince(t0))
            record.trainZStd = lastTrainZStd
            record.lossStd = lastLossStd
            record.steps = lastSteps
            if model.targetSeconds > targetsBefore { record.targetSeconds = model.targetSeconds - targetsBefore }
            record.augmentSeconds = lastAugmentSeconds
            record.augmentWaitSeconds = lastAugmentWait
            if let monitor {
                let t1 = Date()
                let m = try monitor.epochMetrics(model, covariance: config.recordsCovarianceEveryEpoch)
                record.knnSubset = m.knn
                record.test = m.test
                record.monitorSeconds = Date().timeIntervalSince(t1)
            }
            records.append(record)
            try epochEnd(records)
        }
        return TrainingResult(status: .finished, epochs: records, seconds: Date().timeIntervalSince(start))
    }

    func parametersAreFinite() -> Bool {
        model.namedParameters.allSatisfy { _, p in
            (0..<p.count).allSatisfy { p.pointer[$0].isFinite }
        }
    }
}

/// Computes one batch ahead on a serial background queue.
final class Prefetcher: @unchecked Sendable {
    private let queue = DispatchQueue(label: "ablate.augment", qos: .userInitiated)
    private let make: (Int) -> [Tensor]
    private var ready: [Tensor]?
    private let done = DispatchSemaphore(value: 0)
    private var pending = 0
    /// Total time spent making batches (background queue) and waiting for them (caller).
    private(set) var makeSeconds = 0.0, waitSeconds = 0.0

    init(_ make: @escaping (Int) -> [Tensor]) { self.make = make }

    func request(_ step: Int) {
        pending += 1
        queue.async {
            let t0 = Date()
            self.ready = self.make(step)
            self.makeSeconds += Date().timeIntervalSince(t0)
            self.done.signal()
        }
    }

    /// The batch requested last; waits for it.
    func take() -> [Tensor] {
        let t0 = Date()
        done.wait()
        waitSeconds += Date().timeIntervalSince(t0)
        pending -= 1
        defer { ready = nil }
        return ready!   // NOTE: set by the block that signalled `done`
    }

    /// Waits for any batch still being made (e.g. when the epoch stops early).
    func drain() { while pending > 0 { done.wait(); pending -= 1 } }
}
