import NN
import Tensors

/// The architecture and loss knobs an experiment row can change (defaults: the `mini`
/// protocol). SimSiam and BYOL share the architecture: backbone widths, projector and predictor.
public struct SimSiamConfig: Sendable, Equatable {
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
    /// SimSiam Table 3 (a): false removes the BN of both heads' hidden layers.
    public var hiddenBN = true
    /// SimSiam Table 3 (c′): false turns off γ, β of the projector's output BN.
    public var projectorOutputAffine = true
    /// SimSiam Table 3 (d): BN on the predictor's output too.
    public var predictorOutputBN = false
    /// SimSiam §4.5: the similarity D.
    public var similarity = Similarity.cosine
    /// SimSiam §4.6: how the loss uses the views.
    public var symmetry = Symmetry.symmetric
    /// Zhang et al. (ICLR 2022): what the stop-gradient branch gives the other view (ZhangTargets.swift).
    public var target = Target.z
    /// Zhang et al.'s simplified predictors: the MLP, a single bias, or a single d×d linear layer.
    public var predictorKind = PredictorKind.mlp
    /// SimSiam §5.2 `alternation`: SGD steps per cached target (0: one epoch).
    public var alternationSteps = 1
    /// SimSiam §5.2 `moving-average`: m in η ← m·η + (1 − m)·F(T′(x)).
    public var movingAverage = 0.8
    /// SimSiam §5.2 `moving-average`: what η_x holds before the first visit of image x.
    public var movingAverageStart = MovingAverageStart.firstOutput
    /// Zhang et al. Table 1 `eoa`: augmentations averaged into the target.
    public var eoaViews = 2
    /// Zhang et al. Fig 5b: the loss changes during the run, phase after phase (empty: the row's
    /// loss throughout). The epochs of the phases add up to the run's.
    public var phases: [Phase] = []

    public init() {}

    public static let mini = SimSiamConfig()
    public static var smoke: SimSiamConfig {
        var c = SimSiamConfig()
        c.widths = [8, 16, 16, 32]; c.projectorDim = 64; c.predictorHidden = 16
        return c
    }

    /// SimSiam §4.5: D(p, z) = −cos(p, z), or the cross-entropy −softmax(z)·log softmax(p) over
    /// channels; both averaged over the batch.
    public enum Similarity: String, Codable, Sendable, CaseIterable {
        case cosine
        case crossEntropy = "cross-entropy"
    }

    /// `first-output`: η_x is the Z of the first visit (that visit's target is the current
    /// model's output, as without the moving average). `random`: a seeded random unit vector per
    /// image, as a memory bank starts (Wu et al. 2018, whom §5.2 likens the variant to; Zhang et
    /// al.'s `simsiam_mova.py` has the same as its `--random_z` flag).
    public enum MovingAverageStart: String, Codable, Sendable, CaseIterable {
        case firstOutput = "first-output"
        case random
    }

    /// SimSiam §4.6: ½D(p1, z2) + ½D(p2, z1) (Eq. 4); D(p1, z2) only (Eq. 3); or Eq. 3 on two
    /// independent pairs of views per image, averaged (four views, two loss terms).
    public enum Symmetry: String, Codable, Sendable, CaseIterable {
        case symmetric
        case asymmetric
        case asymmetric2x = "asymmetric-2x"

        public var viewCount: Int { self == .asymmetric2x ? 4 : 2 }
    }
}

/// The fields of the first stored runs are always written; every field added since is left out
/// while it has its default, so the run ids of existing runs do not change (see TrainingConfig).
extension SimSiamConfig: Codable {
    enum CodingKeys: String, CodingKey {
        case widths, projectorDim, projectorOutputBN, predictorHidden, predictorFixedRandom, stopGradient
        case hiddenBN, projectorOutputAffine, predictorOutputBN, similarity, symmetry, target, predictorKind
        case alternationSteps, movingAverage, eoaViews, phases, movingAverageStart
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SimSiamConfig()
        widths = try c.decode([Int].self, forKey: .widths)
        projectorDim = try c.decode(Int.self, forKey: .projectorDim)
        projectorOutputBN = try c.decode(Bool.self, forKey: .projectorOutputBN)
        predictorHidden = try c.decodeIfPresent(Int.self, forKey: .predictorHidden)
        predictorFixedRandom = try c.decode(Bool.self, forKey: .predictorFixedRandom)
        stopGradient = try c.decode(Bool.self, forKey: .stopGradient)
        hiddenBN = try c.decodeIfPresent(Bool.self, forKey: .hiddenBN) ?? d.hiddenBN
        projectorOutputAffine = try c.decodeIfPresent(Bool.self, forKey: .projectorOutputAffine) ?? d.projectorOutputAffine
        predictorOutputBN = try c.decodeIfPresent(Bool.self, forKey: .predictorOutputBN) ?? d.predictorOutputBN
        similarity = try c.decodeIfPresent(Similarity.self, forKey: .similarity) ?? d.similarity
        symmetry = try c.decodeIfPresent(Symmetry.self, forKey: .symmetry) ?? d.symmetry
        target = try c.decodeIfPresent(Target.self, forKey: .target) ?? d.target
        predictorKind = try c.decodeIfPresent(PredictorKind.self, forKey: .predictorKind) ?? d.predictorKind
        alternationSteps = try c.decodeIfPresent(Int.self, forKey: .alternationSteps) ?? d.alternationSteps
        movingAverage = try c.decodeIfPresent(Double.self, forKey: .movingAverage) ?? d.movingAverage
        eoaViews = try c.decodeIfPresent(Int.self, forKey: .eoaViews) ?? d.eoaViews
        phases = try c.decodeIfPresent([Phase].self, forKey: .phases) ?? d.phases
        movingAverageStart = try c.decodeIfPresent(MovingAverageStart.self, forKey: .movingAverageStart) ?? d.movingAverageStart
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let d = SimSiamConfig()
        try c.encode(widths, forKey: .widths)
        try c.encode(projectorDim, forKey: .projectorDim)
        try c.encode(projectorOutputBN, forKey: .projectorOutputBN)
        try c.encodeIfPresent(predictorHidden, forKey: .predictorHidden)
        try c.encode(predictorFixedRandom, forKey: .predictorFixedRandom)
        try c.encode(stopGradient, forKey: .stopGradient)
        if hiddenBN != d.hiddenBN { try c.encode(hiddenBN, forKey: .hiddenBN) }
        if projectorOutputAffine != d.projectorOutputAffine { try c.encode(projectorOutputAffine, forKey: .projectorOutputAffine) }
        if predictorOutputBN != d.predictorOutputBN { try c.encode(predictorOutputBN, forKey: .predictorOutputBN) }
        if similarity != d.similarity { try c.encode(similarity, forKey: .similarity) }
        if symmetry != d.symmetry { try c.encode(symmetry, forKey: .symmetry) }
        if target != d.target { try c.encode(target, forKey: .target) }
        if predictorKind != d.predictorKind { try c.encode(predictorKind, forKey: .predictorKind) }
        if alternationSteps != d.alternationSteps { try c.encode(alternationSteps, forKey: .alternationSteps) }
        if movingAverage != d.movingAverage { try c.encode(movingAverage, forKey: .movingAverage) }
        if eoaViews != d.eoaViews { try c.encode(eoaViews, forKey: .eoaViews) }
        if phases != d.phases { try c.encode(phases, forKey: .phases) }
        if movingAverageStart != d.movingAverageStart { try c.encode(movingAverageStart, forKey: .movingAverageStart) }
    }
}

/// SimSiam (Chen & He, CVPR 2021, Fig 1 / Algorithm 1), as facebookresearch/simsiam builder.py:
/// encoder f = backbone + projector, predictor h; the loss compares each view's prediction with
/// the other view's (stop-gradient) projection.
public final class SimSiam: SSLMethod {
    public let config: SimSiamConfig
    public let backbone: Convnet
    public let projector: MLPHead          // backbone dim → d → d → d
    public let predictor: HeadLayer?       // d → hidden → d MLP, a bias, a d×d linear layer, or nil
    /// Zhang et al. Fig 3: h⁻¹, the predictor's shape, on the stop-gradient branch (inverse-predictor target only).
    public let inversePredictor: MLPHead?
    /// Per-image targets of `alternation` (two slots: one per view) and `moving-average` (η_x).
    public let targets: TargetStore?
    /// Extra forward passes made for targets, and their time (the share of an epoch they cost).
    public internal(set) var targetEvaluations = 0
    public internal(set) var targetSeconds = 0.0
    /// SimSiam Table 1 baseline: the predictor's lr decays like the encoder's (§4.2 keeps it fixed).
    public let predictorLRDecayed: Bool

    public init(_ config: SimSiamConfig, inChannels: Int = 1, seed: UInt64, predictorLRDecayed: Bool = false, images: Int = 0) {
        var rng = RNG(seed: seed)
        self.config = config
        self.predictorLRDecayed = predictorLRDecayed
        backbone = Convnet(inChannels: inChannels, widths: config.widths, rng: &rng)
        let d = config.projectorDim
        projector = MLPHead(dims: [backbone.featureDim, d, d, d], hiddenBN: config.hiddenBN, outputBN: config.projectorOutputBN,
                            outputAffine: config.projectorOutputAffine, rng: &rng)
        predictor = config.predictorHidden.map { hidden -> HeadLayer in
            switch config.predictorKind {
            case .mlp: return MLPHead(dims: [d, hidden, d], hiddenBN: config.hiddenBN, outputBN: config.predictorOutputBN, rng: &rng)
            case .bias: return NormalizedBias(d)
            case .linear: return NormalizedLinear(d, rng: &rng)
            }
        }
        if config.predictorFixedRandom { predictor?.parameters.forEach { $0.setRequiresGrad(false) } }
        inversePredictor = config.target == .inversePredictor
            ? config.predictorHidden.map { MLPHead(dims: [d, $0, d], hiddenBN: config.hiddenBN, rng: &rng) } : nil
        switch config.target {
        case .alternation: targets = TargetStore(images: images, slots: 2, dim: d)
        case .movingAverage:
            let store = TargetStore(images: images, slots: 1, dim: d)
            if config.movingAverageStart == .random { store.fillWithRandomUnitVectors(seed: seed) }
            targets = store
        default: targets = nil
        }
    }

    public var viewCount: Int { config.symmetry.viewCount }

    /// Returns (p1, p2, z1, z2) with z already passed through `stopGradient` unless the
    /// configuration removes it (Fig 2).
    public func forward(_ x1: Tensor, _ x2: Tensor) throws -> (p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) {
        // Each view through the encoder and predictor on a lane of its own.
        let o = try Lanes.run(2) { i in
            let z = try projector(backbone(i == 0 ? x1 : x2))   // [N, d]
            return (z: z, p: try predict(z))                  // [N, d]
        }
        return (o[0].p, o[1].p, target(o[0].z), target(o[1].z))
    }

    /// z of two views, each on a lane of its own.
    func encodePair(_ x1: Tensor, _ x2: Tensor) throws -> (Tensor, Tensor) {
        let z = try Lanes.run(2) { try projector(backbone($0 == 0 ? x1 : x2)) }
        return (z[0], z[1])
    }

    /// h(z); "no predictor": h is the identity.
    func predict(_ z: Tensor) throws -> Tensor { try predictor?(z) ?? z }
    /// z as the other view's target: behind the stop-gradient unless the configuration removes it (Fig 2).
    func target(_ z: Tensor) -> Tensor { config.stopGradient ? stopGradient(z) : z }

    /// L = ½·D(p1, z2) + ½·D(p2, z1) (Algorithm 1; §4.6 variants below), D as `similarity`;
    /// Zhang et al.'s targets in `targetLoss`.
    public func loss(_ views: [Tensor], context: BatchContext) throws -> MethodLoss {
        switch config.phase(atEpoch: context.epoch) {
        case .naive: return try naiveLoss(views[0], views[1])
        case .decorrelation: return try decorrelationLoss(views[0], views[1], standardized: false)
        case .correlation: return try decorrelationLoss(views[0], views[1], standardized: true)
        case .simsiam, nil: return config.target.keepsState ? try statefulLoss(views, context) : try loss(views)
        }
    }

    public func loss(_ views: [Tensor]) throws -> MethodLoss {
        if config.target.keepsState {
            throw TrainingError.badConfig("`loss.target: \(config.target.rawValue)` needs the trainer's batch context (it cannot run in `ablate bench`)")
        }
        if config.target != .z { return try targetLoss(views[0], views[1]) }
        switch config.symmetry {
        case .symmetric:
            let o = try forward(views[0], views[1])
            return MethodLoss(loss: scale(try distance(o.p1, o.z2) + distance(o.p2, o.z1), 0.5), projections: [o.z1, o.z2])
        case .asymmetric:
            // Eq. 3: D(p1, z2) only; the predictor never sees view 2.
            let (z1, z2) = try encodePair(views[0], views[1])
            return MethodLoss(loss: try distance(predict(z1), target(z2)), projections: [target(z1), target(z2)])
        case .asymmetric2x:
            // Eq. 3 on two independent pairs of views, averaged: the symmetric loss's two terms.
            let z = try Lanes.run(4) { try projector(backbone(views[$0])) }
            var terms: [Tensor] = [], zs: [Tensor] = []
            for (a, b) in [(0, 1), (2, 3)] {
                terms.append(try distance(predict(z[a]), target(z[b])))
                zs += [target(z[a]), target(z[b])]
            }
            return MethodLoss(loss: scale(try terms[0] + terms[1], 0.5), projections: zs)
        }
    }

    /// D(p, z) of §4.5: negative cosine, or −softmax(z)·log softmax(p) over channels; batch mean.
    func distance(_ p: Tensor, _ z: Tensor) throws -> Tensor {
        switch config.similarity {
        case .cosine: return try negativeCosine(p, z)
        case .crossEntropy: return try softCrossEntropy(p, z)
        }
    }

    public func project(_ features: Tensor) throws -> Tensor { try projector(features) }
    public func prediction(of z: Tensor) throws -> Tensor? { try predictor?(z) }

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
            + (inversePredictor?.namedParameters.map { ("inverse_predictor.\($0.0)", $0.1) } ?? [])
    }
    public var namedBuffers: [(String, Tensor)] {
        backbone.namedBuffers.map { ("backbone.\($0.0)", $0.1) }
            + projector.namedBuffers.map { ("projector.\($0.0)", $0.1) }
            + (predictor?.namedBuffers.map { ("predictor.\($0.0)", $0.1) } ?? [])
            + (inversePredictor?.namedBuffers.map { ("inverse_predictor.\($0.0)", $0.1) } ?? [])
            + (config.target == .movingAverage ? targets.map { [("targets.values", $0.values), ("targets.filled", $0.filled)] } ?? [] : [])
    }
    public var encoderParameters: [Tensor] { backbone.parameters + projector.parameters }
    /// The predictor's trainable parameters (none when it is removed or fixed at random init),
    /// and h⁻¹'s, which shares its constant lr.
    public var predictorParameters: [Tensor] {
        (config.predictorFixedRandom ? [] : predictor?.parameters ?? []) + (inversePredictor?.parameters ?? [])
    }

    public func setTraining(_ on: Bool) {
        backbone.setTraining(on); projector.setTraining(on); predictor?.setTraining(on); inversePredictor?.setTraining(on)
    }

    // MARK: Experiment-file keys

    /// SimSiam's own keys (the heads' shapes are shared with BYOL, in `ConfigKey.shared`).
    static let keys: [ConfigKey] = [
        ConfigKey(name: "model.hidden_bn", expected: "a boolean",
                  help: "BN on the hidden layers of projector and predictor (SimSiam Table 3; false = row a)",
                  methods: ["simsiam"], read: { .bool($0.model.hiddenBN) }) { c, v in
            guard case let .bool(b) = v else { return false }; c.model.hiddenBN = b; return true
        },
        ConfigKey(name: "model.projector_output_affine", expected: "a boolean",
                  help: "γ, β in the projector's output BN (SimSiam Table 3 row c′: false; needs model.projector_output_bn)",
                  methods: ["simsiam"], read: { .bool($0.model.projectorOutputAffine) }) { c, v in
            guard case let .bool(b) = v else { return false }; c.model.projectorOutputAffine = b; return true
        },
        ConfigKey(name: "model.predictor_output_bn", expected: "a boolean", help: "BN on the predictor's output (SimSiam Table 3 row d)",
                  methods: ["simsiam"], read: { .bool($0.model.predictorOutputBN) }) { c, v in
            guard case let .bool(b) = v else { return false }; c.model.predictorOutputBN = b; return true
        },
        ConfigKey(name: "loss.similarity", expected: "one of cosine, cross-entropy",
                  help: "D: negative cosine or softmax cross-entropy over channels (SimSiam §4.5)",
                  methods: ["simsiam"], read: { .string($0.model.similarity.rawValue) }) { c, v in
            guard case let .string(s) = v, let x = SimSiamConfig.Similarity(rawValue: s) else { return false }
            c.model.similarity = x; return true
        },
        ConfigKey(name: "loss.symmetry", expected: "one of symmetric, asymmetric, asymmetric-2x",
                  help: "both directions, D(p1, z2) only, or D(p1, z2) on two pairs of views per image (SimSiam §4.6)",
                  methods: ["simsiam"], read: { .string($0.model.symmetry.rawValue) }) { c, v in
            guard case let .string(s) = v, let x = SimSiamConfig.Symmetry(rawValue: s) else { return false }
            c.model.symmetry = x; return true
        },
        ConfigKey(name: "loss.alternation_steps", expected: "an integer ≥ 0",
                  help: "loss.target alternation: SGD steps per cached target (SimSiam §5.2 k; 0 = one epoch)",
                  methods: ["simsiam"], read: { .int($0.model.alternationSteps) }) { c, v in
            guard case let .int(i) = v, i >= 0 else { return false }; c.model.alternationSteps = i; return true
        },
        ConfigKey(name: "loss.moving_average", expected: "a number in [0, 1)",
                  help: "loss.target moving-average: m in η ← m·η + (1 − m)·F(T′(x)) (SimSiam §5.2: 0.8)",
                  methods: ["simsiam"], read: { .double($0.model.movingAverage) }) { c, v in
            guard let x = v.number, x >= 0, x < 1 else { return false }; c.model.movingAverage = x; return true
        },
        ConfigKey(name: "loss.moving_average_start", expected: "one of first-output, random",
                  help: "loss.target moving-average: η_x before the first visit: that visit's Z, or a seeded random unit vector (a memory bank's start)",
                  methods: ["simsiam"], read: { .string($0.model.movingAverageStart.rawValue) }) { c, v in
            guard case let .string(s) = v, let x = SimSiamConfig.MovingAverageStart(rawValue: s) else { return false }
            c.model.movingAverageStart = x; return true
        },
        ConfigKey(name: "loss.eoa_views", expected: "an integer from 1 to 64",
                  help: "loss.target eoa: augmentations averaged into the target (Zhang et al. Table 1)",
                  methods: ["simsiam"], read: { .int($0.model.eoaViews) }) { c, v in
            guard case let .int(i) = v, i >= 1, i <= 64 else { return false }; c.model.eoaViews = i; return true
        },
        ConfigKey(name: "model.predictor", expected: "one of mlp, none, fixed-random, bias, linear",
                  help: "the predictor h: trained MLP, removed (SimSiam Table 1a), kept at its random init (Table 1b), or Zhang et al.'s single bias (Z + b) or single d×d linear layer on Z",
                  methods: ["simsiam"], read: { .string(SimSiam.predictorName($0.model)) }) { c, v in
            guard case let .string(name) = v else { return false }
            let hidden = c.model.predictorHidden ?? c.model.projectorDim / 4
            switch name {
            case "mlp": c.model.predictorHidden = hidden; c.model.predictorFixedRandom = false; c.model.predictorKind = .mlp
            case "none": c.model.predictorHidden = nil; c.model.predictorFixedRandom = false; c.model.predictorKind = .mlp
            case "fixed-random": c.model.predictorHidden = hidden; c.model.predictorFixedRandom = true; c.model.predictorKind = .mlp
            case "bias": c.model.predictorHidden = hidden; c.model.predictorFixedRandom = false; c.model.predictorKind = .bias
            case "linear": c.model.predictorHidden = hidden; c.model.predictorFixedRandom = false; c.model.predictorKind = .linear
            default: return false
            }
            return true
        },
        ConfigKey(name: "loss.target", expected: "one of \(SimSiamConfig.Target.allCases.map(\.rawValue).joined(separator: ", "))",
                  help: "what the stop-gradient branch gives the other view (Zhang et al. 2022; `z` is SimSiam)",
                  methods: ["simsiam"], read: { .string($0.model.target.rawValue) }) { c, v in
            guard case let .string(s) = v, let t = SimSiamConfig.Target(rawValue: s) else { return false }
            c.model.target = t; return true
        },
        ConfigKey(name: "loss.phases", expected: "a list of `<loss> <epochs>`, loss one of \(SimSiamConfig.Phase.Loss.allCases.map(\.rawValue).joined(separator: ", ")), e.g. [simsiam 4, naive 3, decorrelation 3]",
                  help: "train in phases, in order: the row's loss, the naive Siamese loss −Z_a·sg(Z_b), or only the regulariser Σ_{i≠j} C_ij²/d of Z's covariance (decorrelation) or correlation matrix (Zhang et al. Fig 5b); the epochs add up to optim.epochs",
                  methods: ["simsiam"], read: { .list($0.model.phases.map { .string($0.description) }) }) { c, v in
            guard case let .list(items) = v, !items.isEmpty else { return false }
            var phases: [SimSiamConfig.Phase] = []
            for item in items {
                guard case let .string(text) = item, let phase = SimSiamConfig.Phase(text) else { return false }
                phases.append(phase)
            }
            c.model.phases = phases; return true
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

    /// The `model.predictor` value of a configuration.
    static func predictorName(_ m: SimSiamConfig) -> String {
        if m.predictorHidden == nil { return "none" }
        if m.predictorFixedRandom { return "fixed-random" }
        return m.predictorKind.rawValue
    }

    public static let descriptor = MethodDescriptor(
        name: "simsiam", summary: "SimSiam (Chen & He 2021): predictor + stop-gradient, negative cosine", keys: keys) { config, channels, seed in
        SimSiam(config.model, inChannels: channels, seed: seed, predictorLRDecayed: config.predictorLRDecayed,
                images: config.trainingImages)
    }
}
