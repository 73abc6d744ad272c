import Foundation
import NN
import Tensors

// Targets as state (SimSiam §5.2, Zhang et al. Table 1): targets computed by the model at one
// moment, kept per image, and used later as the stop-gradient branch. The trainer tells a method
// which images a batch holds and lets it draw more views of any image (`BatchContext`); the
// per-image `TargetStore` keeps what the method computed.

/// What a method may know about a batch beyond its views.
public struct BatchContext {
    /// Dataset indices of the batch's images, in row order.
    public let indices: [Int]
    public let epoch: Int
    /// Step within the epoch (0-based) and the epoch's number of steps.
    public let step: Int, stepsPerEpoch: Int
    /// The indices of the batch `ahead` steps later in the same epoch (nil past its end).
    public let upcoming: (_ ahead: Int) -> [Int]?
    /// Augmented views `first ..< first + count` of images (the generator of (seed, epoch, image,
    /// view): views 0 and 1 are the batch's own; higher numbers are fresh draws).
    public let draw: (_ indices: [Int], _ first: Int, _ count: Int) -> [Tensor]

    public init(indices: [Int], epoch: Int, step: Int, stepsPerEpoch: Int, upcoming: @escaping (_ ahead: Int) -> [Int]?,
                draw: @escaping (_ indices: [Int], _ first: Int, _ count: Int) -> [Tensor]) {
        self.indices = indices; self.epoch = epoch; self.step = step; self.stepsPerEpoch = stepsPerEpoch
        self.upcoming = upcoming; self.draw = draw
    }
}

/// One vector per (image, slot), keyed by dataset index; `filled` says which were written.
/// Memory: images × slots × d floats (and as many flags): 60,000 × 2 × 512 × 4 B = 246 MB for
/// `mini`'s alternation cache, half that for the moving average's one slot.
public final class TargetStore {
    public let images: Int, slots: Int, dim: Int
    /// [images·slots, d] and [images·slots] (1 where written); tensors so checkpoints hold them.
    public let values: Tensor, filled: Tensor

    public init(images: Int, slots: Int, dim: Int) {
        self.images = images; self.slots = slots; self.dim = dim
        values = Tensor.zeros([images * slots, dim])
        filled = Tensor.zeros([images * slots])
    }

    func row(_ image: Int, _ slot: Int) -> Int { image * slots + slot }

    /// Rows of `t` [n, d] written for images `indices` in `slot`.
    public func write(_ t: Tensor, indices: [Int], slot: Int) {
        for (r, i) in indices.enumerated() {
            let k = row(i, slot)
            (values.pointer + k * dim).update(from: t.pointer + r * dim, count: dim)
            filled.pointer[k] = 1
        }
    }

    /// The stored rows of `indices` in `slot` as [n, d] (nil if any was never written).
    public func read(indices: [Int], slot: Int) -> Tensor? {
        let out = Tensor.zeros([indices.count, dim])
        for (r, i) in indices.enumerated() {
            let k = row(i, slot)
            guard filled.pointer[k] == 1 else { return nil }
            (out.pointer + r * dim).update(from: values.pointer + k * dim, count: dim)
        }
        return out
    }

    public func clear() { filled.pointer.update(repeating: 0, count: filled.count) }

    /// Every row a random unit vector (normal draws, normalised) from a generator of its own, so
    /// the model's weights are those of the same seed without it; every row counts as written.
    public func fillWithRandomUnitVectors(seed: UInt64) {
        var rng = RNG(seed: seed ^ 0x6D65_6D6F_7279_6261)   // "memoryba"
        for r in 0..<images * slots {
            let v = values.pointer + r * dim
            var norm: Float = 0
            for j in 0..<dim { v[j] = rng.normal(); norm += v[j] * v[j] }
            let inv = 1 / max(norm.squareRoot(), 1e-12)
            for j in 0..<dim { v[j] *= inv }
        }
        filled.pointer.update(repeating: 1, count: filled.count)
    }
}

extension SSLMethod {
    /// Runs `body` with the BN running statistics restored afterwards: extra forward passes that
    /// only compute targets do not count as the model seeing more batches.
    func keepingRunningStatistics<T>(_ body: () throws -> T) rethrows -> T {
        let saved = namedBuffers.map { ($0.1, $0.1.array) }
        defer { for (t, values) in saved { t.pointer.update(from: values, count: values.count) } }
        return try body()
    }
}

extension SimSiam {
    /// z of `x` through the current encoder (Z = z/‖z‖ when `normalized`), values only, BN in
    /// training mode on the batch (the batch statistics a target would have had in the ordinary
    /// forward) without moving the running statistics.
    func encodeForTarget(_ x: Tensor, normalized: Bool = true) throws -> Tensor {
        let t0 = Date()
        defer { targetSeconds += Date().timeIntervalSince(t0); targetEvaluations += 1 }
        return try keepingRunningStatistics {
            try noGrad { let z = try projector(backbone(x)); return normalized ? try l2Normalize(z) : z }
        }
    }

    /// The loss of the state-keeping variants (`alternation`, `moving-average`, `eoa`).
    func statefulLoss(_ views: [Tensor], _ context: BatchContext) throws -> MethodLoss {
        let (z1, z2) = try encodePair(views[0], views[1])
        let loss: Tensor
        switch config.target {
        case .alternation:
            // SimSiam §5.2: every k steps, η for both views of the next k batches with the current
            // model; the k SGD steps that follow use the cache as their targets.
            guard let store = targets else { throw TrainingError.badConfig("alternation without a target store (a bug in ablate)") }
            let k = config.alternationSteps == 0 ? context.stepsPerEpoch : config.alternationSteps
            if context.step % k == 0 {
                store.clear()
                for ahead in 0..<k {
                    guard let indices = context.upcoming(ahead) else { break }
                    let v = context.draw(indices, 0, 2)
                    // z as SimSiam's own target is (the cosine normalises it), so k = 1 is SimSiam exactly.
                    for slot in 0..<2 { store.write(try encodeForTarget(v[slot], normalized: false), indices: indices, slot: slot) }
                }
            }
            guard let eta1 = store.read(indices: context.indices, slot: 0), let eta2 = store.read(indices: context.indices, slot: 1) else {
                throw TrainingError.badConfig("alternation: no cached target for this batch (a bug in ablate)")
            }
            loss = scale(try negativeCosine(predict(z1), stopGradient(eta2)) + negativeCosine(predict(z2), stopGradient(eta1)), 0.5)
        case .movingAverage:
            // §5.2: η_x ← m·η_x + (1 − m)·F(T′(x)), no predictor; T = view 1, T′ = view 2 (one
            // sampled T′ per visit, as the formula); the loss uses η_x as it was before this visit
            // (`loss.moving_average_start` says what it is before the first).
            guard let store = targets else { throw TrainingError.badConfig("moving average without a target store (a bug in ablate)") }
            let zt = try noGrad { try l2Normalize(z2) }
            let eta = store.read(indices: context.indices, slot: 0) ?? zt
            loss = try negativeCosine(z1, stopGradient(eta))
            let m = Float(config.movingAverage)
            store.write(try noGrad { try scale(eta, m) + scale(zt, 1 - m) }, indices: context.indices, slot: 0)
        case .eoa:
            // Zhang et al. Table 1: the target of both views is the mean Z of K fresh augmentations
            // of the same image through the current model; no predictor.
            let extra = context.draw(context.indices, 2, config.eoaViews)
            var sum = Tensor.zeros(z1.shape)
            for v in extra { sum = try noGrad { try sum + encodeForTarget(v) } }
            let target = scale(sum, 1 / Float(extra.count))
            loss = scale(try negativeCosine(z1, stopGradient(target)) + negativeCosine(z2, stopGradient(target)), 0.5)
        default:
            throw TrainingError.badConfig("`\(config.target.rawValue)` keeps no target state")
        }
        return MethodLoss(loss: loss, projections: [stopGradient(z1), stopGradient(z2)])
    }
}
