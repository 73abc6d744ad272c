import NN
import Tensors

/// SwAV (Caron et al., NeurIPS 2020, §3.1): each view's embedding z (projector output,
/// l2-normalised) is scored against K prototypes c_k (unit vectors, the rows of a bias-free
/// linear layer), s = z·Cᵀ. The Sinkhorn–Knopp algorithm turns a batch of scores into codes q that
/// spread the batch equally over the prototypes; each view predicts the other view's code:
/// L = ½·ℓ(q2, s1) + ½·ℓ(q1, s2), ℓ(q, s) = −mean_rows Σ_k q_k·log softmax(s/τ)_k.
/// The codes carry no gradient (the paper's stop-gradient on the Sinkhorn target), and the
/// prototypes are renormalised to unit length before every forward (facebookresearch/swav
/// `main_swav.py`), so checkpoints hold them as the last update left them.
///
/// SimSiam §6.2 / Fig 3 variants (options): "SwAV w/ predictor" scores h(z) instead of z on the
/// predicting side (the codes still come from z); "SwAV remove stop-grad" lets the gradient flow
/// through Sinkhorn–Knopp into the codes (the paper: "leads to divergence").
///
/// Adapted to `mini` (and why):
/// - Two 28×28 views, no multi-crop: SimSiam's Table 4 and Fig 3 compare every method on two
///   views (its SwAV reproduction has no multi-crop), and 28×28 images leave no room for the
///   paper's small crops (96/224 of 28 pixels is 12 pixels).
/// - K = 100 prototypes (`swav.prototypes`): SwAV uses 3000 for ImageNet's 1000 classes, 3× the
///   classes and more; 100 is 10× Fashion-MNIST's 10 classes and below the batch of 256, so one
///   batch can be spread over all prototypes and no queue is needed (SwAV adds a queue only when
///   the batch is small next to K).
/// - Sinkhorn–Knopp: 3 iterations and ε = 0.05 (`swav.sinkhorn_iterations`, `swav.epsilon`),
///   the paper's values; the scores are cosines in [−1, 1], so exp(s/ε) ≤ e^20 stays finite.
/// - τ = 0.1 (`swav.temperature`), the paper's value.
/// - The prototypes are not frozen during the first epoch (the paper freezes them for its
///   first ~5000 iterations); `mini` has 234 steps per epoch, and the protocol's optimiser with no
///   warm-up trains everything from step 0.
/// - Projector: the protocol's (3 layers, d = 512), not SwAV's 2048 → 128; SGD, not LARS.
public final class SwAV: SSLMethod {
    public let backbone: Convnet
    public let projector: MLPHead
    /// Weight [K, d]: the prototypes, one per row.
    public let prototypes: Linear
    /// SimSiam Fig 3's "SwAV w/ predictor"; nil for SwAV itself.
    public let predictor: MLPHead?
    public let temperature: Float
    public let epsilon: Float
    public let sinkhornIterations: Int
    /// false: SimSiam Fig 3's "SwAV remove stop-grad".
    public let stopGradientOnCodes: Bool

    public init(_ config: SimSiamConfig, inChannels: Int = 1, seed: UInt64, prototypes: Int = 100, temperature: Float = 0.1,
                epsilon: Float = 0.05, sinkhornIterations: Int = 3, stopGradient: Bool = true, predictor: Bool = false) {
        var rng = RNG(seed: seed)
        backbone = Convnet(inChannels: inChannels, widths: config.widths, rng: &rng)
        projector = config.makeProjector(featureDim: backbone.featureDim, rng: &rng)
        self.prototypes = Linear(config.projectorDim, prototypes, bias: false, rng: &rng)
        self.predictor = predictor ? config.makePredictor(rng: &rng) : nil
        self.temperature = temperature
        self.epsilon = epsilon
        self.sinkhornIterations = sinkhornIterations
        stopGradientOnCodes = stopGradient
    }

    public var viewCount: Int { 2 }

    public func loss(_ views: [Tensor]) throws -> MethodLoss {
        try normalizePrototypes()
        // Each view on a lane of its own: z, its prototype scores s, codes q, and the scores r that
        // predict the other view's codes (through the predictor, if any).
        let o = try Lanes.run(2) { i in
            let z = try projector(backbone(views[i]))          // [N, d]
            let s = try prototypes(l2Normalize(z))             // [N, K]
            let r = try predictor.map { h in try prototypes(l2Normalize(h(z))) } ?? s
            return (z: z, q: try codes(s), r: r)               // q: [N, K]
        }
        let (z1, z2, q1, q2, r1, r2) = (o[0].z, o[1].z, o[0].q, o[1].q, o[0].r, o[1].r)
        let loss = scale(try swappedPrediction(q2, r1) + swappedPrediction(q1, r2), 0.5)
        return MethodLoss(loss: loss, projections: [stopGradient(z1), stopGradient(z2)])
    }

    /// Sinkhorn–Knopp codes of `scores`, behind the stop-gradient unless the option removes it.
    func codes(_ scores: Tensor) throws -> Tensor {
        guard stopGradientOnCodes else { return try sinkhornKnopp(scores, epsilon: epsilon, iterations: sinkhornIterations) }
        return try noGrad { try sinkhornKnopp(stopGradient(scores), epsilon: epsilon, iterations: sinkhornIterations) }
    }

    /// ℓ(q, s) = −mean_rows Σ_k q_k·log softmax(s/τ)_k.
    func swappedPrediction(_ q: Tensor, _ scores: Tensor) throws -> Tensor {
        scale(sum(try q * logSoftmax(scale(scores, 1 / temperature))), -1 / Float(scores.shape[0]))
    }

    /// Every prototype (row of the weight) to unit length, in place.
    func normalizePrototypes() throws {
        let w = prototypes.weight
        let unit = try noGrad { try l2Normalize(w) }
        w.pointer.update(from: unit.pointer, count: w.count)
    }

    public func project(_ features: Tensor) throws -> Tensor { try projector(features) }

    public func parameterGroups(schedule: LRSchedule, weightDecay: Float) -> [ParamGroup] {
        [ParamGroup(name: "encoder", parameters: namedParameters.map(\.1), schedule: schedule, weightDecay: weightDecay)]
    }

    public var namedParameters: [(String, Tensor)] {
        prefixed("backbone", backbone.namedParameters) + prefixed("projector", projector.namedParameters)
            + [("prototypes.weight", prototypes.weight)] + prefixed("predictor", predictor?.namedParameters ?? [])
    }

    public var namedBuffers: [(String, Tensor)] {
        prefixed("backbone", backbone.namedBuffers) + prefixed("projector", projector.namedBuffers)
            + prefixed("predictor", predictor?.namedBuffers ?? [])
    }

    public func setTraining(_ on: Bool) { backbone.setTraining(on); projector.setTraining(on); predictor?.setTraining(on) }

    // MARK: Experiment-file keys

    static let keys: [ConfigKey] = [
        .option("swav.prototypes", method: "swav", expected: "a positive integer",
                help: "number of prototypes K", default: .int(100)) { v in v.positiveInt != nil },
        .option("swav.temperature", method: "swav", expected: "a positive number",
                help: "softmax temperature τ of the swapped prediction", default: .double(0.1)) { v in (v.number ?? 0) > 0 },
        .option("swav.epsilon", method: "swav", expected: "a positive number",
                help: "Sinkhorn–Knopp entropy regularisation ε", default: .double(0.05)) { v in (v.number ?? 0) > 0 },
        .option("swav.sinkhorn_iterations", method: "swav", expected: "a positive integer",
                help: "Sinkhorn–Knopp iterations", default: .int(3)) { v in v.positiveInt != nil },
        .option("swav.stop_gradient", method: "swav", expected: "a boolean",
                help: "stop-gradient on the Sinkhorn–Knopp codes (false: SimSiam Fig 3 'SwAV remove stop-grad')",
                default: .bool(true)) { v in
            if case .bool = v { return true } else { return false }
        },
        .option("swav.predictor", method: "swav", expected: "a boolean",
                help: "score the predictor's output h(z) on the predicting side (SimSiam Fig 3 'SwAV w/ predictor')",
                default: .bool(false)) { v in
            if case .bool = v { return true } else { return false }
        },
    ]

    public static let descriptor = MethodDescriptor(
        name: "swav", summary: "SwAV (Caron et al. 2020): prototypes, Sinkhorn–Knopp codes, swapped prediction", keys: keys) { config, channels, seed in
        SwAV(config.model, inChannels: channels, seed: seed,
             prototypes: config.options["swav.prototypes"]?.positiveInt ?? 100,
             temperature: Float(config.options["swav.temperature"]?.number ?? 0.1),
             epsilon: Float(config.options["swav.epsilon"]?.number ?? 0.05),
             sinkhornIterations: config.options["swav.sinkhorn_iterations"]?.positiveInt ?? 3,
             stopGradient: config.options["swav.stop_gradient"] != .bool(false),
             predictor: config.options["swav.predictor"] == .bool(true))
    }
}

/// Sinkhorn–Knopp codes (SwAV §3.1, `distributed_sinkhorn` of facebookresearch/swav) of scores
/// [N, K]: Q = exp(S/ε) normalised to sum 1, then `iterations` times every prototype's column to
/// sum 1/K and every sample's row to sum 1/N; returned ×N, so each row of the codes sums to 1.
/// Built from differentiable primitives: without a stop-gradient the codes carry a gradient.
public func sinkhornKnopp(_ scores: Tensor, epsilon: Float, iterations: Int) throws -> Tensor {
    let n = Float(scores.shape[0]), k = Float(scores.shape[1])
    var q = exp(scale(scores, 1 / epsilon))
    q = try q / sum(q)
    for _ in 0..<iterations {
        q = scale(try q / sum(q, axis: 0, keepDims: true), 1 / k)    // prototypes: equal mass
        q = scale(try q / sum(q, axis: 1, keepDims: true), 1 / n)    // samples: equal mass
    }
    return scale(q, n)
}
