import Foundation
import NN
import Tensors

/// BYOL (Grill et al., NeurIPS 2020, §3.1 and Algorithm 1): an online network (backbone,
/// projector, predictor) predicts the projection of the other view made by a target network
/// (backbone, projector) that is not trained but follows the online weights as an exponential
/// moving average, ξ ← τ·ξ + (1 − τ)·θ after every step, with τ rising from τ_base to 1 on a
/// cosine schedule: τ_k = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2.
/// Loss, symmetrised over the views: Σ_views mean_batch(2 − 2·cos(p, z′)), z′ from the target.
///
/// Adapted to the protocols: the heads have SimSiam's shapes (3-layer projector of width d,
/// predictor d → hidden → d), so that a table comparing the two changes the target only; SGD
/// with the protocol's lr and weight decay stands in for LARS. The target's BN layers run in
/// training mode (batch statistics), as in the reference implementation; only the weights are
/// averaged, the target's running statistics are its own.
public final class BYOL: SSLMethod {
    public let backbone: Convnet
    public let projector: MLPHead
    public let predictor: MLPHead
    /// The target network: backbone and projector, following the online ones by EMA.
    public let target: MomentumEncoder
    public let tauBase: Double

    /// BYOL's τ_base (`byol.tau_base`).
    public static let defaultTauBase = 0.99

    public init(_ config: SimSiamConfig, inChannels: Int = 1, seed: UInt64, tauBase: Double = BYOL.defaultTauBase) {
        var rng = RNG(seed: seed)
        backbone = Convnet(inChannels: inChannels, widths: config.widths, rng: &rng)
        projector = config.makeProjector(featureDim: backbone.featureDim, rng: &rng)
        predictor = config.makePredictor(rng: &rng)
        var unused = RNG(seed: 0)
        let copy = Convnet(inChannels: inChannels, widths: config.widths, rng: &unused)
        target = MomentumEncoder(backbone: copy, projector: config.makeProjector(featureDim: copy.featureDim, rng: &unused),
                                 following: backbone, projector)
        self.tauBase = tauBase
    }

    public var viewCount: Int { 2 }
    public var targetBackbone: Convnet { target.backbone }
    public var targetProjector: MLPHead { target.projector }

    public func loss(_ views: [Tensor]) throws -> MethodLoss {
        // Each view on a lane of its own: z, p = h(z) and the target network's z′ (no graph).
        let o = try Lanes.run(2) { i in
            let z = try projector(backbone(views[i]))   // [N, d]
            return (z: z, p: try predictor(z), t: try target(views[i]))
        }
        let (z1, z2, p1, p2, t1, t2) = (o[0].z, o[1].z, o[0].p, o[1].p, o[0].t, o[1].t)
        // Σ mean(2 − 2·cos) = 4 + 2·(D(p1, z′2) + D(p2, z′1)), D = negative mean cosine.
        let loss = shift(scale(try negativeCosine(p1, t2) + negativeCosine(p2, t1), 2), 4)
        return MethodLoss(loss: loss, projections: [stopGradient(z1), stopGradient(z2)])
    }

    public func project(_ features: Tensor) throws -> Tensor { try projector(features) }

    /// One group: the whole online network on the protocol's schedule.
    public func parameterGroups(schedule: LRSchedule, weightDecay: Float) -> [ParamGroup] {
        [ParamGroup(name: "online", parameters: backbone.parameters + projector.parameters + predictor.parameters, schedule: schedule, weightDecay: weightDecay)]
    }

    /// τ for the update with 0-based index `step` of `totalSteps`.
    public func tau(step: Int, totalSteps: Int) -> Float {
        MomentumEncoder.cosineMomentum(base: tauBase, step: step, totalSteps: totalSteps)
    }

    /// ξ ← τ·ξ + (1 − τ)·θ.
    public func afterUpdate(step: Int, totalSteps: Int) {
        target.update(momentum: tau(step: step, totalSteps: totalSteps))
    }

    public var namedParameters: [(String, Tensor)] {
        prefixed("backbone", backbone.namedParameters) + prefixed("projector", projector.namedParameters)
            + prefixed("predictor", predictor.namedParameters)
    }

    /// Online BN statistics, then the target network's weights and statistics.
    public var namedBuffers: [(String, Tensor)] {
        prefixed("backbone", backbone.namedBuffers) + prefixed("projector", projector.namedBuffers)
            + prefixed("predictor", predictor.namedBuffers) + target.namedBuffers(prefix: "target")
    }

    public func setTraining(_ on: Bool) {
        backbone.setTraining(on); projector.setTraining(on); predictor.setTraining(on); target.setTraining(on)
    }

    // MARK: Experiment-file keys

    static let keys: [ConfigKey] = [
        .option("byol.tau_base", method: "byol", expected: "a number in [0, 1)",
                help: "BYOL's target momentum at step 0; rises to 1 on a cosine schedule", default: .double(defaultTauBase)) { v in
            guard let x = v.number else { return false }
            return x >= 0 && x < 1
        },
    ]

    public static let descriptor = MethodDescriptor(
        name: "byol", summary: "BYOL (Grill et al. 2020): predictor + EMA target network, 2 − 2·cos", keys: keys) { config, channels, seed in
        BYOL(config.model, inChannels: channels, seed: seed, tauBase: config.options["byol.tau_base"]?.number ?? defaultTauBase)
    }
}
