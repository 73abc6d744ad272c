import NN
import Tensors

/// The architecture knobs an experiment row can change (defaults: the `mini` protocol).
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
public final class SimSiam {
    public let config: SimSiamConfig
    public let backbone: Convnet
    public let projector: MLPHead          // backbone dim → d → d → d
    public let predictor: MLPHead?         // d → hidden → d, or nil

    public init(_ config: SimSiamConfig, inChannels: Int = 1, seed: UInt64) {
        var rng = RNG(seed: seed)
        self.config = config
        backbone = Convnet(inChannels: inChannels, widths: config.widths, rng: &rng)
        let d = config.projectorDim
        projector = MLPHead(dims: [backbone.featureDim, d, d, d], outputBN: config.projectorOutputBN, rng: &rng)
        predictor = config.predictorHidden.map { MLPHead(dims: [d, $0, d], rng: &rng) }
        if config.predictorFixedRandom { predictor?.parameters.forEach { $0.setRequiresGrad(false) } }
    }

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
    public func loss(_ x1: Tensor, _ x2: Tensor) throws -> Tensor { try SimSiam.symmetricLoss(forward(x1, x2)) }

    public static func symmetricLoss(_ o: (p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor)) throws -> Tensor {
        scale(try negativeCosine(o.p1, o.z2) + negativeCosine(o.p2, o.z1), 0.5)
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
}
