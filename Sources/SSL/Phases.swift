import NN
import Tensors

// Zhang et al. (ICLR 2022) Fig 5b: train SimSiam, then the naive Siamese loss until m_r is near
// 0 (collapse), then only a correlation regulariser, and watch m_r. A run is a list of phases;
// each names its loss and its epochs. One optimiser and one lr schedule (cosine over the whole
// run) serve every phase: only the loss changes.

extension SimSiamConfig {
    /// One phase of a run: a loss for a number of epochs.
    public struct Phase: Codable, Sendable, Equatable, CustomStringConvertible {
        public enum Loss: String, Codable, Sendable, CaseIterable {
            /// The row's own loss (SimSiam with its settings).
            case simsiam
            /// Naive Siamese (Zhang et al. Fig 2a): −½(Z_a·sg(Z_b) + Z_b·sg(Z_a)), no predictor.
            case naive
            /// Only Σ_{i≠j} C_ij² / d, C the covariance of Z = z/‖z‖ over the batch, mean over the two views.
            case decorrelation
            /// The same on the correlation matrix R_ij = C_ij / (σ_i σ_j): Σ_{i≠j} R_ij² / d (scale-free).
            case correlation
        }

        public var loss: Loss
        public var epochs: Int

        public init(loss: Loss, epochs: Int) { self.loss = loss; self.epochs = epochs }

        /// Reads `naive 3`; nil for anything else (epochs from 1 to `Limits.epochs`).
        public init?(_ text: String) {
            let words = text.split(separator: " ")
            guard words.count == 2, let loss = Loss(rawValue: String(words[0])), let epochs = Int(words[1]),
                  (1...Limits.epochs).contains(epochs) else { return nil }
            self.init(loss: loss, epochs: epochs)
        }

        /// `naive 3`, as an experiment file writes it.
        public var description: String { "\(loss.rawValue) \(epochs)" }
    }

    /// The loss of 0-based `epoch`, or nil without phases (the row's loss); past the last phase, the last.
    public func phase(atEpoch epoch: Int) -> Phase.Loss? {
        var end = 0
        for phase in phases {
            end += phase.epochs
            if epoch < end { return phase.loss }
        }
        return phases.last?.loss
    }
}

extension SimSiam {
    /// Naive Siamese: each view's Z against the other's, behind the stop-gradient; the predictor is not used.
    func naiveLoss(_ x1: Tensor, _ x2: Tensor) throws -> MethodLoss {
        let (z1, z2) = try encodePair(x1, x2)
        let n1 = try l2Normalize(z1), n2 = try l2Normalize(z2)
        let loss = try SimSiam.directionalLoss(online: n1, target: n2) + SimSiam.directionalLoss(online: n2, target: n1)
        return MethodLoss(loss: scale(loss, 0.5), projections: [stopGradient(z1), stopGradient(z2)])
    }

    /// Only the correlation regulariser, mean over the two views. NOTE: the paper's form (its App.
    /// A.6) is not recoverable; this is VICReg's off-diagonal covariance term on Z = z/‖z‖ (the
    /// `norm_cov_loss` Zhang et al.'s code logs), or with `standardized` the same on the
    /// correlation matrix: assumptions stated in the experiment file. The covariance form is 0 at
    /// collapse (every variance 0), the correlation form is not.
    func decorrelationLoss(_ x1: Tensor, _ x2: Tensor, standardized: Bool) throws -> MethodLoss {
        let (z1, z2) = try encodePair(x1, x2)
        let loss = try SimSiam.offDiagonalCovariance(l2Normalize(z1), standardized: standardized)
            + SimSiam.offDiagonalCovariance(l2Normalize(z2), standardized: standardized)
        return MethodLoss(loss: scale(loss, 0.5), projections: [stopGradient(z1), stopGradient(z2)])
    }

    /// Σ_{i≠j} C_ij² / d with C = (X − mean)ᵀ(X − mean) / (N − 1) of X [N, d], differentiable: the
    /// sum of all C_ij² minus the diagonal's (the diagonal is the per-channel variance). With
    /// `standardized`, each channel is first divided by its std (√(var + 1e-8)): C is then the
    /// correlation matrix.
    public static func offDiagonalCovariance(_ x: Tensor, standardized: Bool = false) throws -> Tensor {
        let n = x.shape[0], d = x.shape[1]
        var centered = try x - mean(x, axis: 0, keepDims: true)
        if standardized {
            let variance = scale(try sum(centered * centered, axis: 0, keepDims: true), 1 / Float(max(n - 1, 1)))
            centered = try centered * exp(scale(log(shift(variance, 1e-8)), -0.5))
        }
        let c = scale(try matmul(centered, centered, transposeA: true), 1 / Float(max(n - 1, 1)))
        let variance = scale(try sum(centered * centered, axis: 0), 1 / Float(max(n - 1, 1)))
        return scale(try sum(c * c) - sum(variance * variance), 1 / Float(d))
    }
}
