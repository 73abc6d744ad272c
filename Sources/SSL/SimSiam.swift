import NN
import Tensors

/// The architecture knobs an experiment row can change (defaults: the `mini` protocol). SimSiam
/// and BYOL share it: backbone widths, projector and predictor.
public struct SimSiamConfig: Codable, Sendable, Equatable {
    public var widths: [Int] = [16, 32, 64, 128]
    public var projectorDim = 512
    /// BN on the projector's output layer (SimSiam's default, Table 3 row c); off in `mini`.
    public var projectorOutputBN = false
    /// Predictor bottleneck width; nil removes the predictor (SimSiam Table 1, "no pred").
    public var predictorHidden: Int? = 128
    /// SimSiam Table 1b: the predictor keeps its random initialisation (not trained; gradients
    /// still flow through it to the encoder).
    public var predictorFixedRandom = false
    /// SimSiam Fig 2: false lets gradients flow through both branches.
    public var stopGradient = true

    public init() {}

    public static let mini = SimSiamConfig()
    public static var smoke: SimSiamConfig {
        var c = SimSiamConfig()
        c.widths = [8, 16, 16, 32]; c.projectorDim = 64; c.predictorHidden = 16
        return c
    }
}

/// SimSiam (Chen & He, CVPR 2021, Fig 1 / Algorithm 1), as facebookresearch/simsiam builder.py:
/// encoder f = backbone + projector, predictor h; the loss compares each view's prediction with
/// the other view's (stop-gradient) projection.
public final class SimSiam: SSLMethod {
    public let config: SimSiamConfig
    public let backbone: Convnet
    public let projector: MLPHead          // backbone dim → d → d → d
    public let predictor: MLPHead?         // d → hidden → d, or nil
    /// SimSiam Table 1 baseline: the predictor's lr decays like the encoder's (§4.2 keeps it fixed).
    public let predictorLRDecayed: Bool

    public init(_ config: SimSiamConfig, inChannels: Int = 1, seed: UInt64, predictorLRDecayed: Bool = false) {
        var rng = RNG(seed: seed)
        self.config = config
        self.predictorLRDecayed = predictorLRDecayed
        backbone = Convnet(inChannels: inChannels, widths: config.widths, rng: &rng)
        let d = config.projectorDim
        projector = MLPHead(dims: [backbone.featureDim, d, d, d], outputBN: config.projectorOutputBN, rng: &rng)
        predictor = config.predictorHidden.map { MLPHead(dims: [d, $0, d], rng: &rng) }
        if config.predictorFixedRandom { predictor?.parameters.forEach { $0.setRequiresGrad(false) } }
    }

    public var viewCount: Int { 2 }

    /// Returns (p1, p2, z1, z2) with z already passed through `stopGradient` unless the
    /// configuration removes it (Fig 2).
    public func forward(_ x1: Tensor, _ x2: Tensor) throws -> (p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) {
        let z1 = try projector(backbone(x1))       // [N, d]
        let z2 = try projector(backbone(x2))       // [N, d]
        let p1 = try predictor?(z1) ?? z1          // [N, d]; "no predictor": h is the identity
        let p2 = try predictor?(z2) ?? z2
        let sg: (Tensor) -> Tensor = config.stopGradient ? stopGradient : { $0 }
        return (p1, p2, sg(z1), sg(z2))
    }

    /// L = ½·D(p1, z2) + ½·D(p2, z1), D = negative cosine (Algorithm 1).
    public func loss(_ views: [Tensor]) throws -> MethodLoss {
        let o = try forward(views[0], views[1])
        return MethodLoss(loss: scale(try negativeCosine(o.p1, o.z2) + negativeCosine(o.p2, o.z1), 0.5),
                          projections: [o.z1, o.z2])
    }

    public func project(_ features: Tensor) throws -> Tensor { try projector(features) }

    /// Encoder: the protocol's schedule; predictor: a constant lr (§4.2) unless decayed, and no
    /// group when it is removed or fixed at its random init.
    public func parameterGroups(schedule: LRSchedule, weightDecay: Float) -> [ParamGroup] {
        var fixed = schedule
        fixed.fixed = !predictorLRDecayed
        let groups = [ParamGroup(name: "encoder", parameters: encoderParameters, schedule: schedule, weightDecay: weightDecay),
                      ParamGroup(name: "predictor", parameters: predictorParameters, schedule: fixed, weightDecay: weightDecay)]
        return groups.filter { !$0.parameters.isEmpty }
    }

    /// Parameters named as in the reference PyTorch model (fixtures, checkpoints).
    public var namedParameters: [(String, Tensor)] {
        backbone.namedParameters.map { ("backbone.\($0.0)", $0.1) }
            + projector.namedParameters.map { ("projector.\($0.0)", $0.1) }
            + (predictor?.namedParameters.map { ("predictor.\($0.0)", $0.1) } ?? [])
    }
    public var namedBuffers: [(String, Tensor)] {
        backbone.namedBuffers.map { ("backbone.\($0.0)", $0.1) }
            + projector.namedBuffers.map { ("projector.\($0.0)", $0.1) }
            + (predictor?.namedBuffers.map { ("predictor.\($0.0)", $0.1) } ?? [])
    }
    public var encoderParameters: [Tensor] { backbone.parameters + projector.parameters }
    /// The predictor's trainable parameters (none when it is removed or fixed at random init).
    public var predictorParameters: [Tensor] { config.predictorFixedRandom ? [] : predictor?.parameters ?? [] }

    public func setTraining(_ on: Bool) {
        backbone.setTraining(on); projector.setTraining(on); predictor?.setTraining(on)
    }

    // MARK: Experiment-file keys

    /// SimSiam's own keys (the heads' shapes are shared with BYOL, in `ConfigKey.shared`).
    static let keys: [ConfigKey] = [
        ConfigKey(name: "model.predictor", expected: "one of mlp, none, fixed-random",
                  help: "the predictor h: trained MLP, removed (SimSiam Table 1a), or kept at its random init (Table 1b)",
                  methods: ["simsiam"],
                  read: { .string($0.model.predictorHidden == nil ? "none" : $0.model.predictorFixedRandom ? "fixed-random" : "mlp") }) { c, v in
            switch v {
            case .string("mlp"): c.model.predictorHidden = c.model.predictorHidden ?? c.model.projectorDim / 4; c.model.predictorFixedRandom = false
            case .string("none"): c.model.predictorHidden = nil; c.model.predictorFixedRandom = false
            case .string("fixed-random"): c.model.predictorHidden = c.model.predictorHidden ?? c.model.projectorDim / 4; c.model.predictorFixedRandom = true
            default: return false
            }
            return true
        },
        ConfigKey(name: "loss.stop_gradient", expected: "a boolean", help: "stop-gradient on the target branch (SimSiam Fig 2)",
                  methods: ["simsiam"], read: { .bool($0.model.stopGradient) }) { c, v in
            guard case let .bool(b) = v else { return false }; c.model.stopGradient = b; return true
        },
        ConfigKey(name: "optim.predictor_lr", expected: "one of fixed, decayed",
                  help: "predictor lr constant (SimSiam §4.2 default, Table 1 row c) or cosine-decayed like the encoder (Table 1 baseline)",
                  methods: ["simsiam"], read: { .string($0.predictorLRDecayed ? "decayed" : "fixed") }) { c, v in
            switch v {
            case .string("fixed"): c.predictorLRDecayed = false
            case .string("decayed"): c.predictorLRDecayed = true
            default: return false
            }
            return true
        },
    ]

    public static let descriptor = MethodDescriptor(
        name: "simsiam", summary: "SimSiam (Chen & He 2021): predictor + stop-gradient, negative cosine", keys: keys) { config, channels, seed in
        SimSiam(config.model, inChannels: channels, seed: seed, predictorLRDecayed: config.predictorLRDecayed)
    }
}
