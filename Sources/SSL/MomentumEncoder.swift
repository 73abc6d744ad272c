import Foundation
import NN
import Tensors

/// A copy of an online encoder (backbone + projector) that is never trained but follows the
/// online weights by an exponential moving average after every update, ξ ← m·ξ + (1 − m)·θ:
/// BYOL's target network and MoCo's key encoder (solo-learn's `BaseMomentumMethod` holds it once).
///
/// It starts as an exact copy. Its BN layers run in the mode the method sets (training: batch
/// statistics, as in both reference implementations); only the weights are averaged, the running
/// statistics are its own. Everything it holds is a buffer of the method (checkpoints keep it).
public final class MomentumEncoder {
    public let backbone: Convnet
    public let projector: MLPHead
    let online: [Tensor]

    /// `backbone` and `projector` are fresh layers shaped like the online ones; they are
    /// overwritten with the online weights and take no gradient.
    public init(backbone: Convnet, projector: MLPHead, following onlineBackbone: Convnet, _ onlineProjector: MLPHead) {
        self.backbone = backbone
        self.projector = projector
        online = onlineBackbone.parameters + onlineProjector.parameters
        for (t, o) in zip(parameters, online) {
            t.setRequiresGrad(false)
            t.pointer.update(from: o.pointer, count: o.count)
        }
    }

    public var parameters: [Tensor] { backbone.parameters + projector.parameters }

    /// The projection of `x`, without a graph (nothing flows back into the copy).
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try noGrad { try projector(backbone(x)) } }

    /// ξ ← m·ξ + (1 − m)·θ.
    public func update(momentum m: Float) {
        let rest = 1 - m
        for (t, o) in zip(parameters, online) {
            let tp = t.pointer, op = o.pointer
            for i in 0..<t.count { tp[i] = tp[i] * m + rest * op[i] }
        }
    }

    /// BYOL's schedule: m rises from `base` to 1 as m_k = 1 − (1 − base)·(cos(πk/K) + 1)/2.
    public static func cosineMomentum(base: Double, step: Int, totalSteps: Int) -> Float {
        Float(1 - (1 - base) * (Foundation.cos(Double.pi * Double(step) / Double(max(totalSteps, 1))) + 1) / 2)
    }

    /// Weights and BN statistics under `prefix` (`target.backbone.conv1.weight`, …).
    public func namedBuffers(prefix: String) -> [(String, Tensor)] {
        prefixed("\(prefix).backbone", backbone.namedParameters + backbone.namedBuffers)
            + prefixed("\(prefix).projector", projector.namedParameters + projector.namedBuffers)
    }

    public func setTraining(_ on: Bool) { backbone.setTraining(on); projector.setTraining(on) }
}

/// `list` with every name under `prefix.`.
func prefixed(_ prefix: String, _ list: [(String, Tensor)]) -> [(String, Tensor)] {
    list.map { ("\(prefix).\($0.0)", $0.1) }
}

extension SimSiamConfig {
    /// The protocol's projector on `featureDim` backbone features: featureDim → d → d → d, BN on
    /// the hidden layers (and on the output with `projectorOutputBN`). Every method but SimSiam
    /// (whose Table 3 variants change its BN) builds its projector here.
    func makeProjector(featureDim: Int, rng: inout RNG) -> MLPHead {
        MLPHead(dims: [featureDim, projectorDim, projectorDim, projectorDim], outputBN: projectorOutputBN, rng: &rng)
    }

    /// The protocol's predictor d → hidden → d (hidden: `predictorHidden`, else d/4).
    func makePredictor(rng: inout RNG) -> MLPHead {
        MLPHead(dims: [projectorDim, predictorHidden ?? projectorDim / 4, projectorDim], rng: &rng)
    }
}
