import Foundation
import Registry
import Report
import Store
import XCTest

/// Curve claims (`m_o rises`, `m_r falls`, `cov_offdiag falls after epoch 2`) on hand-made curves.
final class CurveClaimTests: XCTestCase {
    func perStep(_ key: String, _ values: [Double]) -> [MetricPoint] {
        values.enumerated().map { MetricPoint.perStep(key, step: 10 * ($0.offset + 1), $0.element) }
    }
    func perEpoch(_ key: String, _ values: [Double]) -> [MetricPoint] {
        values.enumerated().map { MetricPoint(key: key, step: $0.offset + 1, value: $0.element) }
    }

    func testParsing() {
        XCTAssertEqual(Claim(parsing: "m_o rises"), .rises(metric: "m_o"))
        XCTAssertEqual(Claim(parsing: "m_r falls"), .falls(metric: "m_r", afterEpoch: nil))
        XCTAssertEqual(Claim(parsing: "z_std falls after epoch 2"), .falls(metric: "z_std", afterEpoch: 2))
        XCTAssertNil(Claim(parsing: "knn rises"), "knn is measured at the end only: no curve")
        XCTAssertNil(Claim(parsing: "m_o falls after epoch 0"))
        XCTAssertNil(Claim(parsing: "m_o wobbles"))
        XCTAssertEqual(Claim(parsing: "m_o falls after epoch 3")?.description, "m_o falls after epoch 3")
    }

    func testRisesAndFallsFromPerStepCurvesWithTheNumbersDecidedOn() {
        let up = perStep("m_o", (0..<20).map { 0.4 + 0.03 * Double($0) }) + perEpoch("m_o", [0.9, 0.1])
        let (holds, evidence) = evaluateCurveClaim(.rises(metric: "m_o"), runs: [up, up])
        XCTAssertEqual(holds, .holds, "per-step points win over per-epoch ones")
        XCTAssertEqual(evidence?.text, "m_o 0.400 → 0.955 per step, training batch")
        XCTAssertEqual(evaluateCurveClaim(.falls(metric: "m_o", afterEpoch: nil), runs: [up]).0, .fails)
        let flat = perStep("m_o", Array(repeating: 0.5, count: 20))
        XCTAssertEqual(evaluateCurveClaim(.rises(metric: "m_o"), runs: [flat]).0, .fails, "flat is not rising")
        XCTAssertEqual(evaluateCurveClaim(.rises(metric: "m_o"), runs: [up, flat]).0, .inconclusive("1 of 2 seeds"))
        XCTAssertEqual(evaluateCurveClaim(.rises(metric: "m_r"), runs: [up]).0, .inconclusive("no curve of m_r"))
    }

    /// A dummy gradient drives m_o to 1 within ten steps (Zhang et al. Fig 4 at `mini` scale): the
    /// rise is read from the untrained model's point, not averaged away with the plateau.
    func testARiseWithinTheFirstStepsCounts() {
        let fast = [MetricPoint.perStep("m_o", step: 0, 0.55)]
            + perStep("m_o", [0.86, 0.96] + Array(repeating: 0.999, count: 40))
        let (outcome, evidence) = evaluateCurveClaim(.rises(metric: "m_o"), runs: [fast])
        XCTAssertEqual(outcome, .holds)
        XCTAssertEqual(evidence?.text, "m_o 0.550 → 0.999 per step, training batch")
    }

    func testFallsAfterEpochReadsThePerEpochCurveFromThatEpoch() {
        // Rises over the first two epochs, then falls: "falls" over the whole curve fails, from epoch 2 on it holds.
        let cov = perEpoch("cov_offdiag", [0.001, 0.02, 0.018, 0.012, 0.008, 0.006])
        XCTAssertEqual(evaluateCurveClaim(.falls(metric: "cov_offdiag", afterEpoch: nil), runs: [cov]).0, .fails)
        let (outcome, evidence) = evaluateCurveClaim(.falls(metric: "cov_offdiag", afterEpoch: 2), runs: [cov])
        XCTAssertEqual(outcome, .holds)
        XCTAssertEqual(evidence?.start, 0.02)
        XCTAssertEqual(evidence?.end, 0.006)
        XCTAssertEqual(evidence?.text, "cov_offdiag 0.0200 → 0.0060 per epoch")
    }
}

extension CurveClaimTests {
    func testRisesAfterEpochAndAFinalMetricNearAValue() throws {
        XCTAssertEqual(Claim(parsing: "m_r rises after epoch 4"), .rises(metric: "m_r", afterEpoch: 4))
        XCTAssertEqual(Claim(parsing: "eta_zero within 0.25 of -0.5"), .near(metric: "eta_zero", value: -0.5, tolerance: 0.25))
        XCTAssertEqual(Claim(parsing: "cov_offdiag falls after epoch 2"), .falls(metric: "cov_offdiag", afterEpoch: 2))
        for bad in ["eta_zero within 0 of -0.5", "eta_zero within 0.25 of x", "loss within 1 of 2", "m_r rises after epoch 0",
                    "eta_zero rises", "m_r rises after 4"] {
            XCTAssertNil(Claim(parsing: bad), bad)
        }
        for claim in [Claim.rises(metric: "m_r", afterEpoch: 4), .near(metric: "eta_zero", value: -0.5, tolerance: 0.25)] {
            XCTAssertEqual(Claim(parsing: claim.description), claim)
        }
        XCTAssertEqual(Claim.near(metric: "eta_zero", value: -0.5, tolerance: 0.25).text, "eta_zero within 0.25 of -0.5")

        // m_r collapses over epochs 1–4, then rises: only the curve from epoch 4 on is read.
        let run = [0.6, 0.3, 0.1, 0.05, 0.2, 0.4].enumerated().map { MetricPoint(key: "m_r", step: $0.offset + 1, value: $0.element) }
        let (outcome, evidence) = evaluateCurveClaim(.rises(metric: "m_r", afterEpoch: 4), runs: [run])
        XCTAssertEqual(outcome, .holds)
        XCTAssertEqual(evidence?.start, 0.05)
        XCTAssertEqual(evidence?.end, 0.4)
        XCTAssertEqual(evaluateCurveClaim(.rises(metric: "m_r"), runs: [run]).0, .fails, "the whole curve falls")

        // Near: 95 % t interval of the mean over seeds (n = 3: t(0.975, 2) = 4.303).
        func row(_ values: [Double]) -> RowStats { RowStats(name: "r", stats: ["eta_zero": MeanStd.of(values)].compactMapValues { $0 }) }
        let claim = Claim.near(metric: "eta_zero", value: -0.5, tolerance: 0.25)
        XCTAssertEqual(evaluateClaim(claim, row([-0.5, -0.45, -0.55]), []), .holds)          // CI [-0.62, -0.38]
        XCTAssertEqual(evaluateClaim(claim, row([0.1, 0.15, 0.05]), []), .fails)              // CI [-0.02, 0.22]
        XCTAssertEqual(evaluateClaim(claim, row([-0.3, -0.2, -0.4]), []),
                       .inconclusive("eta_zero -0.30, 95 % CI [-0.55, -0.05] straddles -0.50 ± 0.25"))
        XCTAssertEqual(evaluateClaim(claim, row([-0.43]), []),
                       .inconclusive("1 seed: eta_zero -0.43 is inside -0.50 ± 0.25 on the point estimate; an interval needs 2 seeds"))
        XCTAssertEqual(evaluateClaim(claim, row([]), []), .inconclusive("no finished seeds with eta_zero"))
    }
}
