import NN
import Tensors

/// SimCLR (Chen et al., ICML 2020, §2.1 and Algorithm 1): an encoder (backbone + projector)
/// embeds both views of every image; NT-Xent over the 2N embeddings of a batch makes each view
/// find its partner among the 2N − 1 others, cosine similarity over a temperature τ.
///
/// SimSiam §6.2 / Fig 3 variants (options of this method): "SimCLR w/ predictor" appends the
/// predictor h to one branch and symmetrises by swapping (SimSiam footnote 7):
/// L = ½·NT-Xent(h(z1), z2) + ½·NT-Xent(h(z2), z1); "w/ predictor and stop-grad" also stops the
/// gradient of the branch without h: L = ½·NT-Xent(h(z1), sg(z2)) + ½·NT-Xent(h(z2), sg(z1)).
///
/// Adapted to `mini` (and why):
/// - The projector is the protocol's (3 layers of width d = 512, BN on the hidden layers), not
///   SimCLR's 2-layer 2048 → 128 head, so that a table comparing methods changes only the loss.
/// - τ = 0.5 (`simclr.temperature`): SimCLR's own CIFAR-10 setting (Appendix B.9), the data set
///   closest to Fashion-MNIST in size and number of classes; its ImageNet τ = 0.1 goes with
///   batch 4096 and LARS, neither of which `mini` has.
/// - The protocol's SGD (momentum 0.9, wd 5e-4, lr 0.05·B/256 cosine) instead of LARS; one
///   parameter group (the predictor, when there is one, on the encoder's schedule).
/// - Negatives are the other images of the batch (2N − 2 of them): the batch size a table sets
///   is the number of negatives (Table 4 at `mini` uses 1024; see table4-methods.yaml).
public final class SimCLR: SSLMethod {
    public let backbone: Convnet
    public let projector: MLPHead
    /// SimSiam Fig 3's predictor on one branch; nil for SimCLR itself.
    public let predictor: MLPHead?
    public let temperature: Float
    /// With a predictor: the gradient of the branch without h is stopped.
    public let stopGradientOnTarget: Bool

    public init(_ config: SimSiamConfig, inChannels: Int = 1, seed: UInt64, temperature: Float = 0.5,
                predictor: Bool = false, stopGradient: Bool = false) {
        var rng = RNG(seed: seed)
        backbone = Convnet(inChannels: inChannels, widths: config.widths, rng: &rng)
        projector = config.makeProjector(featureDim: backbone.featureDim, rng: &rng)
        self.predictor = predictor ? config.makePredictor(rng: &rng) : nil
        self.temperature = temperature
        stopGradientOnTarget = stopGradient
    }

    public var viewCount: Int { 2 }

    public func loss(_ views: [Tensor]) throws -> MethodLoss {
        // Each view on a lane of its own: z and, with a predictor, p = h(z).
        let o = try Lanes.run(2) { i in
            let z = try projector(backbone(views[i]))   // [N, d]
            return (z: z, p: try predictor?(z))
        }
        let z1 = o[0].z, z2 = o[1].z
        let projections = [stopGradient(z1), stopGradient(z2)]
        guard let p1 = o[0].p, let p2 = o[1].p else {
            return MethodLoss(loss: try ntXent(z1, z2, temperature: temperature), projections: projections)
        }
        let t1 = stopGradientOnTarget ? projections[0] : z1, t2 = stopGradientOnTarget ? projections[1] : z2
        let loss = scale(try ntXent(p1, t2, temperature: temperature) + ntXent(p2, t1, temperature: temperature), 0.5)
        return MethodLoss(loss: loss, projections: projections)
    }

    public func project(_ features: Tensor) throws -> Tensor { try projector(features) }

    public func parameterGroups(schedule: LRSchedule, weightDecay: Float) -> [ParamGroup] {
        [ParamGroup(name: "encoder", parameters: namedParameters.map(\.1), schedule: schedule, weightDecay: weightDecay)]
    }

    public var namedParameters: [(String, Tensor)] {
        prefixed("backbone", backbone.namedParameters) + prefixed("projector", projector.namedParameters)
            + prefixed("predictor", predictor?.namedParameters ?? [])
    }

    public var namedBuffers: [(String, Tensor)] {
        prefixed("backbone", backbone.namedBuffers) + prefixed("projector", projector.namedBuffers)
            + prefixed("predictor", predictor?.namedBuffers ?? [])
    }

    public func setTraining(_ on: Bool) { backbone.setTraining(on); projector.setTraining(on); predictor?.setTraining(on) }

    // MARK: Experiment-file keys

    static let keys: [ConfigKey] = [
        .option("simclr.temperature", method: "simclr", expected: "a positive number",
                help: "NT-Xent temperature τ (SimCLR's CIFAR-10 value 0.5)", default: .double(0.5)) { v in
            (v.number ?? 0) > 0
        },
        .option("simclr.predictor", method: "simclr", expected: "a boolean",
                help: "append the predictor h to one branch, symmetrised by swapping (SimSiam Fig 3, footnote 7)",
                default: .bool(false)) { v in
            if case .bool = v { return true } else { return false }
        },
        .option("simclr.stop_gradient", method: "simclr", expected: "a boolean",
                help: "with simclr.predictor: stop-gradient on the branch without h (SimSiam Fig 3)", default: .bool(false)) { v in
            if case .bool = v { return true } else { return false }
        },
    ]

    public static let descriptor = MethodDescriptor(
        name: "simclr", summary: "SimCLR (Chen et al. 2020): NT-Xent over the 2N views of a batch", keys: keys) { config, channels, seed in
        SimCLR(config.model, inChannels: channels, seed: seed,
               temperature: Float(config.options["simclr.temperature"]?.number ?? 0.5),
               predictor: config.options["simclr.predictor"] == .bool(true),
               stopGradient: config.options["simclr.stop_gradient"] == .bool(true))
    }
}
