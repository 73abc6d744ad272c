import NN
import Tensors

// Zhang et al., "How Does SimSiam Avoid Collapse Without Negative Samples?" (ICLR 2022): which part
// of the gradient prevents collapse. Each experiment is a target for the stop-gradient branch:
// with Z = z/‖z‖, P = p/‖p‖ (rows of a batch), the loss for view a is −mean_rows(X_a · sg(T)), with
// X_a = P_a (or Z_a for the losses without a predictor) and T the variant's target; every loss is
// symmetrised over the two views. −∂L/∂X_a = T/N: the gradient reaching X_a is exactly the target
// (tested in ZhangTargetTests). Notation: o_z = batch mean of Z, r = Z − o_z,
// G_e = Z_b − P_b = o_e + r_e with o_e = mean(Z_b) − mean(P_b) (PAPER-TABLES B.1).

extension SimSiamConfig {
    /// The stop-gradient branch's target for view a (PAPER-TABLES B.3–B.7).
    public enum Target: String, Codable, Sendable, CaseIterable {
        /// SimSiam: sg(Z_b) for P_a (G_e = o_e + r_e kept).
        case z
        /// Symmetric predictor, Table 2 (b) / Table 4 "none": sg(P_b) for P_a.
        case p
        /// Table 4 "o_e only": sg(P_b + o_e).
        case pPlusOe = "p-plus-oe"
        /// Table 4 "r_e only": sg(Z_b − o_e).
        case zMinusOe = "z-minus-oe"
        /// Fig 3: sg(h⁻¹(P_b)) normalised, with h⁻¹ trained at the same time to map sg(P) to sg(Z).
        case inversePredictor = "inverse-predictor"
        /// Fig 4 dummy gradient: −Z_a·sg(o_z), o_z the batch mean of Z_a.
        case center
        /// Fig 4 dummy gradient: −Z_a·sg(r_a), r_a = Z_a − o_z.
        case residual
        /// Table 3 triplet, G_e = −Z_n: −Z_a·sg(Z_b − Z_n), Z_n the other view of another image.
        case triplet
        /// Table 3, o_e = −mean(Z_n): −Z_a·sg(Z_b − mean(Z_n)).
        case tripletOe = "triplet-oe"
        /// Table 3, r_e = −(Z_n − mean(Z_n)): −Z_a·sg(Z_b − (Z_n − mean(Z_n))).
        case tripletRe = "triplet-re"
        /// SimSiam §5.2 multi-step alternation: targets of the next k steps cached (TargetState.swift).
        case alternation
        /// SimSiam §5.2: a per-image moving average η_x as the target, no predictor.
        case movingAverage = "moving-average"
        /// Zhang et al. Table 1: the mean Z of K more augmentations of the image as the target, no predictor.
        case eoa

        /// The variants that keep targets between steps or draw more views (TargetState.swift).
        public var keepsState: Bool { [.alternation, .movingAverage, .eoa].contains(self) }

        /// Whether the online side is Z_a (no predictor) rather than P_a.
        public var onlineIsZ: Bool { [.center, .residual, .triplet, .tripletOe, .tripletRe, .movingAverage, .eoa].contains(self) }
    }

    /// Zhang et al.'s simplified predictors (P2-code `new_predictor.py`): on Z = z/‖z‖.
    public enum PredictorKind: String, Codable, Sendable, CaseIterable {
        case mlp
        /// p = Z + b, b learnable, 0 at init.
        case bias
        /// p = W·Z, W a d×d matrix (PyTorch's default init, no bias).
        case linear
    }
}

/// A head with named tensors (checkpoints, fixtures).
public protocol HeadLayer: Layer {
    var namedParameters: [(String, Tensor)] { get }
    var namedBuffers: [(String, Tensor)] { get }
}

/// p = z/‖z‖ + b, b = 0 at init.
public final class NormalizedBias: HeadLayer {
    public let bias: Tensor
    public init(_ d: Int) { bias = Tensor.zeros([1, d], requiresGrad: true) }
    public func forward(_ x: Tensor) throws -> Tensor { try l2Normalize(x) + bias }
    public var parameters: [Tensor] { [bias] }
    public var namedParameters: [(String, Tensor)] { [("bias", bias)] }
    public var namedBuffers: [(String, Tensor)] { [] }
}

/// p = (z/‖z‖)·Wᵀ, W [d, d].
public final class NormalizedLinear: HeadLayer {
    public let layer: Linear
    public init(_ d: Int, rng: inout RNG) { layer = Linear(d, d, bias: false, rng: &rng) }
    public func forward(_ x: Tensor) throws -> Tensor { try layer(l2Normalize(x)) }
    public var parameters: [Tensor] { layer.parameters }
    public var namedParameters: [(String, Tensor)] { [("weight", layer.weight)] }
    public var namedBuffers: [(String, Tensor)] { [] }
}

extension SimSiam {
    /// The symmetrised loss of a Zhang et al. target (`config.target` ≠ `.z`), plus h⁻¹'s own loss
    /// for the inverse predictor.
    func targetLoss(_ x1: Tensor, _ x2: Tensor) throws -> MethodLoss {
        let t = config.target
        // Each view through the encoder and predictor on a lane of its own (as `forward`).
        let o = try Lanes.run(2) { i in
            let raw = try projector(backbone(i == 0 ? x1 : x2)), z = try l2Normalize(raw)
            return (raw: raw, z: z, p: t.onlineIsZ ? z : try l2Normalize(predict(raw)))
        }
        let (z1, z2) = (o[0].raw, o[1].raw), z = o.map(\.z), p = o.map(\.p)
        var terms: [Tensor] = []
        for (a, b) in [(0, 1), (1, 0)] {
            let target = try noGrad {
                try SimSiam.target(t, za: z[a], zb: z[b], pa: p[a], pb: p[b], inverse: inversePredictor)
            }
            terms.append(try SimSiam.directionalLoss(online: p[a], target: target))
        }
        var loss = scale(try terms[0] + terms[1], 0.5)
        if let inverse = inversePredictor {
            // h⁻¹ learns to map sg(P) back to sg(Z); only this term trains it.
            let back = try negativeCosine(inverse(stopGradient(p[1])), stopGradient(z2))
                + negativeCosine(inverse(stopGradient(p[0])), stopGradient(z1))
            loss = try loss + scale(back, 0.5)
        }
        return MethodLoss(loss: loss, projections: [stopGradient(z1), stopGradient(z2)])
    }

    /// −mean_rows(online · sg(target)): its gradient with respect to `online` is −target/N.
    public static func directionalLoss(online: Tensor, target: Tensor) throws -> Tensor {
        scale(mean(try sum(online * stopGradient(target), axis: 1)), -1)
    }

    /// The target for view a from the normalised batches (values only).
    public static func target(_ t: SimSiamConfig.Target, za: Tensor, zb: Tensor, pa: Tensor, pb: Tensor,
                              inverse: MLPHead? = nil) throws -> Tensor {
        func center(_ x: Tensor) throws -> Tensor { try mean(x, axis: 0, keepDims: true) }
        /// Z_n: for row i the other view of image i + 1 (a different image of the same batch).
        func negatives() throws -> Tensor {
            let n = zb.shape[0]
            return try concat([slice(zb, 1..<n), slice(zb, 0..<1)])
        }
        switch t {
        case .z: return zb
        case .p: return pb
        case .pPlusOe: return try pb + (center(zb) - center(pb))
        case .zMinusOe: return try zb - (center(zb) - center(pb))
        case .inversePredictor:
            guard let inverse else { throw TrainingError.badConfig("the inverse-predictor target needs h⁻¹") }
            return try l2Normalize(inverse(pb))
        case .center: return try center(za) + Tensor.zeros(za.shape)
        case .residual: return try za - center(za)
        case .triplet: return try zb - negatives()
        case .tripletOe: return try zb - center(negatives())
        case .tripletRe:
            let zn = try negatives()
            return try zb - (zn - center(zn))
        case .alternation, .movingAverage, .eoa:
            throw TrainingError.badConfig("`\(t.rawValue)` computes its targets from state (TargetState.swift)")
        }
    }
}
