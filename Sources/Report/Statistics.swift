import Foundation

/// Student's t distribution: the quantiles the claims' confidence intervals need.
public enum StudentT {
    /// The quantile t(p, ν): P(T ≤ t) = p for T with ν > 0 degrees of freedom (ν need not be an
    /// integer: Welch's ν is not). Computed by bisection on the CDF; ν = ∞ gives the normal's.
    /// t(0.975, 2) = 4.303, t(0.975, 4) = 2.776, t(0.975, ∞) = 1.960 (tested).
    public static func quantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(p > 0 && p < 1 && nu > 0, "StudentT.quantile needs 0 < p < 1 and ν > 0")
        if p == 0.5 { return 0 }
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: nu) }
        var low = 0.0, high = 1.0
        while cdf(high, degreesOfFreedom: nu) < p { low = high; high *= 2 }
        for _ in 0..<200 where high - low > 1e-12 * max(1, high) {
            let mid = (low + high) / 2
            if cdf(mid, degreesOfFreedom: nu) < p { low = mid } else { high = mid }
        }
        return (low + high) / 2
    }

    /// P(T ≤ t) = 1 − ½·I_{ν/(ν+t²)}(ν/2, ½) for t ≥ 0 (I the regularised incomplete beta);
    /// the normal CDF for ν = ∞.
    public static func cdf(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        if nu.isInfinite { return 0.5 * erfc(-t / 2.0.squareRoot()) }
        let tail = 0.5 * incompleteBeta(nu / (nu + t * t), nu / 2, 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The regularised incomplete beta I_x(a, b), by its continued fraction (modified Lentz),
    /// using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
    static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let front = exp(logBeta + logPowers)
        if x > (a + 1) / (a + b + 2) { return 1 - front * betaFraction(1 - x, b, a) / b }
        return front * betaFraction(x, a, b) / a
    }

    private static func betaFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        d = 1 / (abs(d) < tiny ? tiny : d)
        var h = d
        for m in 1...300 {
            let m = Double(m)
            let even: Double = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            let odd: Double = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            for numerator in [even, odd] {
                d = 1 + numerator * d
                d = 1 / (abs(d) < tiny ? tiny : d)
                c = 1 + numerator / c
                if abs(c) < tiny { c = tiny }
                h *= d * c
            }
            if abs(d * c - 1) < 1e-15 { break }
        }
        return h
    }
}

/// A confidence interval for the difference of two rows' means, mean_a − mean_b.
public struct DifferenceInterval: Sendable, Equatable {
    /// The level, e.g. 0.95 (two-sided).
    public static let level = 0.95

    /// mean_a − mean_b.
    public var difference: Double
    public var low: Double
    public var high: Double
    /// Degrees of freedom of the t quantile (Welch–Satterthwaite, or n − 1 with an assumed std).
    public var degreesOfFreedom: Double
    /// Set when one row has a single seed: its std was taken to be the other row's (the only
    /// estimate of the seed noise there is); names that row.
    public var assumedStdFrom: String?
    /// Set for the paired interval: how many seeds both rows finished (`paired`).
    public var pairedSeeds: Int?

    /// The paired t interval over the seeds both rows finished (n ≥ 2 of them): with
    /// d_s = a_s − b_s, d̄ ± t(1 − (1 − level)/2, n − 1)·s_d/√n. Rows trained with the same seed
    /// share its draws (initial weights, augmentations), which move every row alike; the per-seed
    /// differences cancel that, so the interval is often much narrower than Welch's. nil with
    /// fewer than 2 common seeds.
    public static func paired(_ a: [UInt64: Double], _ b: [UInt64: Double]) -> DifferenceInterval? {
        let d = a.sorted { $0.key < $1.key }.compactMap { seed, x in b[seed].map { x - $0 } }
        guard d.count >= 2, let s = MeanStd.of(d) else { return nil }
        var ci = make(s.mean, se: s.std / Double(s.n).squareRoot(), nu: Double(s.n - 1), assumedStdFrom: nil)
        ci.pairedSeeds = s.n
        return ci
    }

    /// Welch's t interval at `level` from two summaries with n ≥ 2 each:
    /// se² = s_a²/n_a + s_b²/n_b, ν = se⁴ / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1)),
    /// d ± t(1 − (1 − level)/2, ν)·se. Two stds of 0 give the point [d, d]. nil if a side has n < 2.
    public static func welch(_ a: MeanStd, _ b: MeanStd) -> DifferenceInterval? {
        guard a.n >= 2, b.n >= 2 else { return nil }
        let va = a.std * a.std / Double(a.n), vb = b.std * b.std / Double(b.n)
        let se2 = va + vb
        let nu = se2 > 0 ? se2 * se2 / (va * va / Double(a.n - 1) + vb * vb / Double(b.n - 1)) : .infinity
        return make(a.mean - b.mean, se: se2.squareRoot(), nu: nu, assumedStdFrom: nil)
    }

    /// The t interval when row a has one seed and row b has n ≥ 2: both rows' seed noise taken
    /// to be b's std s_b, se = s_b·√(1/n_a + 1/n_b), ν = n_b − 1 (the pooled-variance interval with
    /// only b's seeds estimating the variance). nil unless exactly that shape.
    public static func assumingStd(single a: MeanStd, of b: MeanStd, named name: String) -> DifferenceInterval? {
        guard a.n == 1, b.n >= 2 else { return nil }
        let se = b.std * (1 / Double(a.n) + 1 / Double(b.n)).squareRoot()
        return make(a.mean - b.mean, se: se, nu: Double(b.n - 1), assumedStdFrom: name)
    }

    private static func make(_ d: Double, se: Double, nu: Double, assumedStdFrom: String?) -> DifferenceInterval {
        let half = se > 0 ? StudentT.quantile(1 - (1 - level) / 2, degreesOfFreedom: nu) * se : 0
        return DifferenceInterval(difference: d, low: d - half, high: d + half, degreesOfFreedom: nu, assumedStdFrom: assumedStdFrom)
    }

    /// "Δ -4.2, 95 % CI [-5.1, -3.3]" with `format` for the numbers, then `phrase` (" includes 0"),
    /// then the assumption if any ("; 1 seed, std of `baseline` assumed") or the pairing
    /// ("; paired over 3 seeds").
    public func text(_ format: (Double) -> String, _ phrase: String = "") -> String {
        "Δ \(format(difference)), \(Int((DifferenceInterval.level * 100).rounded())) % CI [\(format(low)), \(format(high))]"
            + phrase + (assumedStdFrom.map { "; 1 seed, std of `\($0)` assumed" } ?? "")
            + (pairedSeeds.map { "; paired over \($0) seeds" } ?? "")
    }
}
