import Foundation
import Tensors

/// Collapse diagnostics of projector outputs z [N, d] (PROTOCOLS.md), computed on Z = z/‖z‖:
/// - `zStd`: mean over channels of the unbiased std of Z over the rows, times √d
///   (≈ 1 healthy, 0 collapsed; SimSiam Fig 2);
/// - `mO` = ‖o‖ with o the mean row of Z, `mR` = mean ‖Z − o‖ (Zhang et al.'s center and residual);
/// - `covOffdiag` = Σ_{i≠j} C_ij² / d with C the (unbiased) covariance of Z.
public struct CollapseDiagnostics: Sendable, Codable, Equatable {
    public var zStd: Double
    public var mO: Double
    public var mR: Double
    /// nil when not computed (the per-epoch monitor skips it).
    public var covOffdiag: Double?

    public init(zStd: Double, mO: Double, mR: Double, covOffdiag: Double?) {
        self.zStd = zStd; self.mO = mO; self.mR = mR; self.covOffdiag = covOffdiag
    }

    public init(_ z: Tensor, covariance: Bool = true) throws {
        guard z.rank == 2, z.shape[0] >= 2 else {
            throw TensorError.badShape(op: "CollapseDiagnostics", shape: z.shape, expected: "[N ≥ 2, d]")
        }
        let n = z.shape[0], d = z.shape[1]
        let unit = try noGrad { try l2Normalize(z) }
        let p = unit.pointer
        var center = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { center[j] += Double(p[i * d + j]) } }
        for j in 0..<d { center[j] /= Double(n) }
        var variance = [Double](repeating: 0, count: d)
        var residual = 0.0
        for i in 0..<n {
            var r2 = 0.0
            for j in 0..<d {
                let v = Double(p[i * d + j]) - center[j]
                variance[j] += v * v
                r2 += v * v
            }
            residual += r2.squareRoot()
        }
        zStd = variance.reduce(0) { $0 + ($1 / Double(n - 1)).squareRoot() } / Double(d) * Double(d).squareRoot()
        mO = center.reduce(0) { $0 + $1 * $1 }.squareRoot()
        mR = residual / Double(n)
        covOffdiag = covariance ? CollapseDiagnostics.offDiagonal(unit, center: center) : nil
    }

    /// Σ_{i≠j} C_ij² / d using one GEMM: C = (Z − o)ᵀ(Z − o) / (N − 1).
    static func offDiagonal(_ unit: Tensor, center: [Double]) -> Double {
        let n = unit.shape[0], d = unit.shape[1]
        let centered = Storage(uninitializedCount: n * d)
        for i in 0..<n { for j in 0..<d { centered.pointer[i * d + j] = unit.pointer[i * d + j] - Float(center[j]) } }
        let c = Storage(uninitializedCount: d * d)
        sgemm(transA: true, transB: false, m: d, n: d, k: n, alpha: 1 / Float(n - 1), a: centered.pointer,
              b: centered.pointer, c: c.pointer)
        var total = 0.0
        for i in 0..<d { for j in 0..<d where i != j { let v = Double(c.pointer[i * d + j]); total += v * v } }
        return total / Double(d)
    }
}

/// Zhang et al. Fig 5a (PAPER-TABLES B.1, B.8): SimSiam's extra gradient G_e = Z_b − P_b has the
/// batch mean o_e = o_z − o_p (o_z, o_p the means of Z = z/‖z‖ and P = p/‖p‖ over the same
/// images). The paper plots cos(o_e − η_p·o_p, o_p) over η_p and reads its zero near −0.5 as
/// o_e ≈ −0.5·o_p (a de-centering component). The cosine falls monotonically in η_p and is zero at
/// η* = o_z·o_p / ‖o_p‖² − 1, computed here exactly rather than read off a grid.
public enum ExtraGradient {
    /// The batch means (o_z, o_p) of the normalised rows of z and p [N, d].
    static func centers(z: Tensor, p: Tensor) throws -> (oz: [Double], op: [Double]) {
        guard z.rank == 2, z.shape == p.shape, z.shape[0] >= 1 else {
            throw TensorError.shapeMismatch(op: "ExtraGradient", lhs: z.shape, rhs: p.shape, expected: "two [N, d] tensors of the same shape")
        }
        let n = z.shape[0], d = z.shape[1]
        let zn = try noGrad { try l2Normalize(z) }, pn = try noGrad { try l2Normalize(p) }
        var oz = [Double](repeating: 0, count: d), op = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for j in 0..<d { oz[j] += Double(zn.pointer[i * d + j]); op[j] += Double(pn.pointer[i * d + j]) }
        }
        return (oz.map { $0 / Double(n) }, op.map { $0 / Double(n) })
    }

    /// cos(o_e − η·o_p, o_p) with o_e = o_z − o_p, for each η.
    public static func cosines(z: Tensor, p: Tensor, etas: [Double]) throws -> [Double] {
        let (oz, op) = try centers(z: z, p: p)
        let opNorm = op.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return etas.map { eta in
            let v = zip(oz, op).map { $0 - (1 + eta) * $1 }
            let vNorm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return zip(v, op).reduce(0) { $0 + $1.0 * $1.1 } / max(vNorm * opNorm, 1e-30)
        }
    }

    /// η* where cos(o_e − η·o_p, o_p) = 0: o_z·o_p / ‖o_p‖² − 1. Throws when o_p = 0 (no direction).
    public static func zeroCrossing(z: Tensor, p: Tensor) throws -> Double {
        let (oz, op) = try centers(z: z, p: p)
        let op2 = op.reduce(0) { $0 + $1 * $1 }
        guard op2 > 1e-24 else { throw TensorError.invalidArgument(op: "ExtraGradient", message: "o_p is 0: the predictions have no common direction") }
        return zip(oz, op).reduce(0) { $0 + $1.0 * $1.1 } / op2 - 1
    }
}

/// The outcome of a run, computed from its end-of-training metrics (PROTOCOLS.md "Verdicts").
public enum Verdict: String, Sendable, Codable, CaseIterable {
    case trained
    case partialCollapse = "partial-collapse"
    case collapsed
    case diverged

    /// `diverged` if the run saw NaN/Inf; `collapsed` if z_std·√d < 0.1; `partial-collapse`
    /// if m_o > m_r; otherwise `trained`. A NaN diagnostic also means `diverged`.
    public static func of(diverged: Bool, zStd: Double, mO: Double, mR: Double) -> Verdict {
        if diverged || !zStd.isFinite || !mO.isFinite || !mR.isFinite { return .diverged }
        if zStd < 0.1 { return .collapsed }
        if mO > mR { return .partialCollapse }
        return .trained
    }
}
