import Foundation
import NN
import SSL
import Tensors
import XCTest

/// Zhang et al.'s analyses: Fig 5a's η_p zero crossing, Fig 5b's phases and regularisers, Fig 6's
/// per-epoch covariance switch.
final class AnalysisTests: XCTestCase {
    /// By hand: every Z = (1, 0), every P = (0.6, 0.8): o_z·o_p = 0.6, ‖o_p‖² = 1, so
    /// o_e − η·o_p = (1, 0) − (1 + η)(0.6, 0.8) is orthogonal to o_p at η = −0.4.
    func testTheZeroCrossingOfAHandMadeBatch() throws {
        let z = try Tensor(shape: [3, 2], [2, 0, 1, 0, 5, 0]), p = try Tensor(shape: [3, 2], [3, 4, 0.6, 0.8, 6, 8])
        XCTAssertEqual(try ExtraGradient.zeroCrossing(z: z, p: p), -0.4, accuracy: 1e-6)
        let cos = try ExtraGradient.cosines(z: z, p: p, etas: [-0.4, -2, 2])
        XCTAssertEqual(cos[0], 0, accuracy: 1e-6)
        // η = −2: (1, 0) + (0.6, 0.8) = (1.6, 0.8); cos with (0.6, 0.8) = 1.6 / (√3.2 · 1).
        XCTAssertEqual(cos[1], 1.6 / 3.2.squareRoot(), accuracy: 1e-6)
        XCTAssertLessThan(cos[2], 0)
        let cancelling = try Tensor(shape: [2, 2], [1, 0, -1, 0])   // o_p = 0: no direction to measure along
        XCTAssertThrowsError(try ExtraGradient.zeroCrossing(z: try Tensor(shape: [2, 2], [1, 0, 0, 1]), p: cancelling))
    }

    /// On random batches the cosine falls monotonically over η ∈ [−2, 2] and changes sign at η*.
    func testTheCosineFallsThroughZeroAtTheCrossing() throws {
        var rng = RNG(seed: 5)
        let z = Tensor.randn([64, 8], rng: &rng)
        let p = try noGrad { try z + Tensor.randn([64, 8], rng: &rng) + Tensor.full([64, 8], 0.5) }
        let eta = try ExtraGradient.zeroCrossing(z: z, p: p)
        let grid = stride(from: -2.0, through: 2.0, by: 0.1).map { $0 }
        let cos = try ExtraGradient.cosines(z: z, p: p, etas: grid)
        for (a, b) in zip(cos, cos.dropFirst()) { XCTAssertGreaterThanOrEqual(a, b - 1e-12) }
        XCTAssertEqual(try ExtraGradient.cosines(z: z, p: p, etas: [eta])[0], 0, accuracy: 1e-9)
        XCTAssertGreaterThan(try ExtraGradient.cosines(z: z, p: p, etas: [eta - 0.01])[0], 0)
        XCTAssertLessThan(try ExtraGradient.cosines(z: z, p: p, etas: [eta + 0.01])[0], 0)
    }

    /// The differentiable regulariser equals the diagnostic cov_offdiag, its gradient matches
    /// central differences, and the correlation form equals Σ_{i≠j} R_ij²/d computed by hand.
    func testOffDiagonalCovarianceValueGradientAndCorrelationForm() throws {
        var rng = RNG(seed: 9)
        let raw = Tensor.randn([6, 3], rng: &rng)
        let unit = try noGrad { try l2Normalize(raw) }
        let value = try noGrad { try SimSiam.offDiagonalCovariance(unit) }.item
        XCTAssertEqual(Double(value), try XCTUnwrap(try CollapseDiagnostics(raw).covOffdiag), accuracy: 1e-6)

        let x = Tensor.randn([6, 3], rng: &rng, requiresGrad: true)
        try SimSiam.offDiagonalCovariance(x).backward()
        let grad = try XCTUnwrap(x.grad).array
        let h: Float = 1e-2
        for k in [0, 4, 11, 17] {
            func f(_ delta: Float) throws -> Double {
                let y = x.detachedCopy(); y.pointer[k] += delta
                return Double(try noGrad { try SimSiam.offDiagonalCovariance(y) }.item)
            }
            XCTAssertEqual(Double(grad[k]), (try f(h) - f(-h)) / Double(2 * h), accuracy: 2e-3, "entry \(k)")
        }

        // Correlation by hand in Double.
        let n = 6, d = 3, v = x.array.map(Double.init)
        let m = (0..<d).map { j in (0..<n).map { v[$0 * d + j] }.reduce(0, +) / Double(n) }
        func c(_ i: Int, _ j: Int) -> Double { (0..<n).map { (v[$0 * d + i] - m[i]) * (v[$0 * d + j] - m[j]) }.reduce(0, +) / Double(n - 1) }
        var expected = 0.0
        for i in 0..<d { for j in 0..<d where i != j { let r = c(i, j) / (c(i, i) * c(j, j)).squareRoot(); expected += r * r } }
        let correlation = try noGrad { try SimSiam.offDiagonalCovariance(x, standardized: true) }.item
        XCTAssertEqual(Double(correlation), expected / Double(d), accuracy: 1e-4)
    }

    func testPhasesAreReadCheckedAndFollowed() throws {
        let smoke = try TrainingConfig.named("smoke")
        let c = try smoke.applying([("optim.epochs", .int(5)),
                                    ("loss.phases", .list([.string("simsiam 2"), .string("naive 1"), .string("correlation 2")]))])
        XCTAssertEqual(c.model.phases.map(\.description), ["simsiam 2", "naive 1", "correlation 2"])
        XCTAssertEqual((0..<6).map { c.model.phase(atEpoch: $0) }, [.simsiam, .simsiam, .naive, .correlation, .correlation, .correlation])
        XCTAssertNil(smoke.model.phase(atEpoch: 0), "no phases: the row's loss")
        XCTAssertEqual(c.params().first { $0.key == "loss.phases" }?.value, "[simsiam 2, naive 1, correlation 2]")

        XCTAssertThrowsError(try smoke.applying([("loss.phases", .list([.string("simsiam 2"), .string("naive 2")]))])) { error in
            XCTAssertEqual("\(error)", "loss.phases: add up to 4 epochs but the run trains 3; make them add up to optim.epochs (e.g. `optim.epochs: 4`)")
        }
        for bad: ConfigValue in [.list([.string("naive")]), .list([.string("vicreg 3")]), .list([.string("naive 0")]), .list([]), .string("naive 3")] {
            XCTAssertThrowsError(try smoke.applying([("loss.phases", bad)]), "\(bad)") { error in
                XCTAssertTrue("\(error)".hasPrefix("loss.phases: expected a list of `<loss> <epochs>`"), "\(error)")
            }
        }
        XCTAssertThrowsError(try smoke.applying([("loss.phases", .list([.string("naive 3")])), ("loss.target", .string("p"))])) { error in
            XCTAssertTrue("\(error)".contains("remove `loss.target`"), "\(error)")
        }
    }

    /// A SimSiam with phases computes the phase's loss: the naive loss is −cos of the two views'
    /// z (minus 1 at most), the regularisers are ≥ 0, and without phases the row's loss is used.
    func testTheLossFollowsThePhaseOfTheEpoch() throws {
        var config = try TrainingConfig.named("smoke")
        config.epochs = 3
        config.model.phases = [.init(loss: .simsiam, epochs: 1), .init(loss: .naive, epochs: 1), .init(loss: .decorrelation, epochs: 1)]
        let model = SimSiam(config.model, seed: 0)
        var rng = RNG(seed: 1)
        let views = [Tensor.randn([16, 1, 16, 16], rng: &rng), Tensor.randn([16, 1, 16, 16], rng: &rng)]
        func context(_ epoch: Int) -> BatchContext {
            BatchContext(indices: Array(0..<16), epoch: epoch, step: 0, stepsPerEpoch: 1, upcoming: { _ in nil }, draw: { _, _, _ in [] })
        }
        let losses = try (0..<3).map { try model.loss(views, context: context($0)).loss.item }
        XCTAssertEqual(losses[0], try model.loss(views).loss.item, "phase 1 is SimSiam's own loss")
        let z1 = try noGrad { try l2Normalize(model.project(model.backbone(views[0]))) }
        let z2 = try noGrad { try l2Normalize(model.project(model.backbone(views[1]))) }
        let cos = try noGrad { mean(try sum(z1 * z2, axis: 1)) }.item
        XCTAssertEqual(losses[1], -cos, accuracy: 1e-5, "the naive loss: −mean cos(Z_1, Z_2)")
        let expected = try noGrad { scale(try SimSiam.offDiagonalCovariance(z1) + SimSiam.offDiagonalCovariance(z2), 0.5) }.item
        XCTAssertEqual(losses[2], expected, accuracy: 1e-6)
    }

    /// The analysis keys are left out of a run's identity while off, and the extra-gradient
    /// analysis refuses a row without a predictor.
    func testAnalysisKeysKeepOldIdsAndNeedWhatTheyRead() throws {
        let smoke = try TrainingConfig.named("smoke")
        let off = try smoke.applying([("analysis.cov_every_epoch", .bool(false)), ("analysis.extra_gradient", .bool(false))])
        func identity(_ c: TrainingConfig) throws -> NSDictionary {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: c.identityJSON()) as? NSDictionary)
        }
        XCTAssertEqual(try identity(off), try identity(smoke))
        let on = try smoke.applying([("analysis.cov_every_epoch", .bool(true))])
        XCTAssertTrue(on.recordsCovarianceEveryEpoch)
        XCTAssertNotEqual(try identity(on), try identity(smoke))
        XCTAssertThrowsError(try smoke.applying([("analysis.extra_gradient", .bool(true)), ("model.predictor", .string("none"))])) { error in
            XCTAssertTrue("\(error)".hasPrefix("analysis.extra_gradient: reads the predictor's output P"), "\(error)")
        }
    }
}
