import NN
import Tensors

/// MoCo v2 (Chen, Fan, Girshick & He 2020, on MoCo: He et al., CVPR 2020, Algorithm 1): a query
/// encoder (backbone + MLP projector) embeds view 1; a key encoder, the query encoder's
/// exponential moving average (ξ ← m·ξ + (1 − m)·θ after every update), embeds view 2 without
/// gradient. InfoNCE with temperature τ scores each query against its own key and the K keys of a
/// FIFO queue of earlier batches; after each update the batch's keys replace the oldest ones.
/// q, k and the queue are l2-normalised.
///
/// The queue and its write position are buffers, so a checkpoint holds them and a resumed run
/// is bit-identical. The keys of a step are enqueued in `afterUpdate` (after the SGD update, as
/// MoCo's `_dequeue_and_enqueue` after the loss); the EMA runs there too, which equals MoCo's
/// update at the start of the next forward.
///
/// Adapted to `mini` (and why):
/// - Head: the protocol's projector (3 layers, d = 512, BN on the hidden layers) as MoCo v2's MLP
///   head, so that the methods of a table differ by their loss; keys are d-dimensional.
/// - Queue K = 4096 (`moco.queue`): MoCo's 65,536 keys are 5% of ImageNet's 1.28 M images; 4096
///   are 7% of Fashion-MNIST's 60,000 (16 batches of 256). With 10 classes about 400 of them share
///   the query's class whatever K is; a longer queue would also hold keys from an encoder too
///   many of `mini`'s few steps old.
/// - Momentum m = 0.99 (`moco.momentum`), constant: MoCo's 0.999 averages over ~1000 updates,
///   a fifth of an ImageNet epoch at batch 256; `mini` has 234 steps per epoch and 2340 in all, so
///   0.999 would leave the key encoder near its random init for half the run. 0.99 (~100 steps)
///   keeps the queue's 16 batches of keys from nearly the same encoder.
/// - τ = 0.2 (`moco.temperature`), MoCo v2's own value.
/// - No shuffling BN: it exists for multi-GPU per-device BN; here the query and key batches are
///   each one BN batch on one device (MoCo §3.3's leak through BN statistics is not prevented).
/// - The protocol's SGD schedule (lr 0.05·B/256 cosine, wd 5e-4) rather than MoCo v2's 0.03, 1e-4.
public final class MoCo: SSLMethod {
    public let backbone: Convnet
    public let projector: MLPHead
    /// The key encoder.
    public let keyEncoder: MomentumEncoder
    /// [K, d] l2-normalised keys; row `queuePointer` is the oldest.
    public let queue: Tensor
    /// [1]: the row the next key is written to (a float, exact below 2^24).
    public let queuePointer: Tensor
    public let momentum: Float
    public let temperature: Float
    /// This step's keys, enqueued by `afterUpdate`.
    var pendingKeys: Tensor?

    public init(_ config: SimSiamConfig, inChannels: Int = 1, seed: UInt64, queueLength: Int = 4096,
                momentum: Float = 0.99, temperature: Float = 0.2) {
        var rng = RNG(seed: seed)
        backbone = Convnet(inChannels: inChannels, widths: config.widths, rng: &rng)
        projector = config.makeProjector(featureDim: backbone.featureDim, rng: &rng)
        var unused = RNG(seed: 0)
        let copy = Convnet(inChannels: inChannels, widths: config.widths, rng: &unused)
        keyEncoder = MomentumEncoder(backbone: copy, projector: config.makeProjector(featureDim: copy.featureDim, rng: &unused),
                                     following: backbone, projector)
        // MoCo: randn(dim, K) normalised, i.e. random unit keys.
        let initial = Tensor.randn([queueLength, config.projectorDim], rng: &rng)
        queue = (try? noGrad { try l2Normalize(initial) }) ?? initial
        queuePointer = Tensor.zeros([1])
        self.momentum = momentum
        self.temperature = temperature
    }

    public var viewCount: Int { 2 }

    public func loss(_ views: [Tensor]) throws -> MethodLoss {
        // The query's encoder and the key encoder on lanes of their own.
        let o = try Lanes.run(2) { i in
            i == 0 ? try projector(backbone(views[0]))                       // z [N, d]
                : try noGrad { try l2Normalize(keyEncoder(views[1])) }       // k [N, d], no gradient
        }
        let z = o[0], k = o[1]
        let q = try l2Normalize(z)
        pendingKeys = k
        let loss = try infoNCE(query: q, key: k, negatives: queue, temperature: temperature)
        return MethodLoss(loss: loss, projections: [stopGradient(z)])
    }

    public func project(_ features: Tensor) throws -> Tensor { try projector(features) }

    public func parameterGroups(schedule: LRSchedule, weightDecay: Float) -> [ParamGroup] {
        [ParamGroup(name: "encoder", parameters: backbone.parameters + projector.parameters, schedule: schedule, weightDecay: weightDecay)]
    }

    /// The key encoder's EMA, then this step's keys into the queue (FIFO, wrapping around).
    public func afterUpdate(step: Int, totalSteps: Int) {
        keyEncoder.update(momentum: momentum)
        guard let k = pendingKeys else { return }
        pendingKeys = nil
        let length = queue.shape[0], d = queue.shape[1]
        var row = Int(queuePointer.item)
        for i in 0..<k.shape[0] {
            (queue.pointer + row * d).update(from: k.pointer + i * d, count: d)
            row = (row + 1) % length
        }
        queuePointer.pointer[0] = Float(row)
    }

    public var namedParameters: [(String, Tensor)] {
        prefixed("backbone", backbone.namedParameters) + prefixed("projector", projector.namedParameters)
    }

    /// Query-encoder BN statistics, the key encoder's weights and statistics, the queue and its pointer.
    public var namedBuffers: [(String, Tensor)] {
        prefixed("backbone", backbone.namedBuffers) + prefixed("projector", projector.namedBuffers)
            + keyEncoder.namedBuffers(prefix: "key") + [("queue", queue), ("queue_pointer", queuePointer)]
    }

    public func setTraining(_ on: Bool) { backbone.setTraining(on); projector.setTraining(on); keyEncoder.setTraining(on) }

    // MARK: Experiment-file keys

    static let keys: [ConfigKey] = [
        .option("moco.queue", method: "moco", expected: "a positive integer",
                help: "MoCo's queue length K (negatives per query)", default: .int(4096)) { v in v.positiveInt != nil },
        .option("moco.momentum", method: "moco", expected: "a number in [0, 1)",
                help: "key-encoder EMA momentum m (constant)", default: .double(0.99)) { v in
            guard let x = v.number else { return false }
            return x >= 0 && x < 1
        },
        .option("moco.temperature", method: "moco", expected: "a positive number",
                help: "InfoNCE temperature τ (MoCo v2: 0.2)", default: .double(0.2)) { v in (v.number ?? 0) > 0 },
    ]

    public static let descriptor = MethodDescriptor(
        name: "moco", summary: "MoCo v2 (Chen et al. 2020): momentum key encoder, queue of negatives, InfoNCE", keys: keys) { config, channels, seed in
        MoCo(config.model, inChannels: channels, seed: seed,
             queueLength: config.options["moco.queue"]?.positiveInt ?? 4096,
             momentum: Float(config.options["moco.momentum"]?.number ?? 0.99),
             temperature: Float(config.options["moco.temperature"]?.number ?? 0.2))
    }
}
