import Registry
import Report
import SSL
import Store
import XCTest

final class ClaimTests: XCTestCase {
    func row(_ name: String, _ verdicts: [Verdict] = [], knn: MeanStd? = nil) -> RowStats {
        RowStats(name: name, plannedSeeds: 3, knn: knn, verdicts: verdicts)
    }

    func testCollapses() {
        let claim = Claim.collapses
        XCTAssertEqual(evaluateClaim(claim, row("a", [.collapsed, .collapsed]), []), .holds)
        XCTAssertEqual(evaluateClaim(claim, row("a", [.collapsed, .partialCollapse]), []), .fails)
        XCTAssertEqual(evaluateClaim(claim, row("a", [.collapsed, .trained]), []), .fails)
        XCTAssertEqual(evaluateClaim(claim, row("a", [.collapsed, .diverged]), []), .inconclusive("some seeds diverged"))
        XCTAssertEqual(evaluateClaim(claim, row("a"), []), .inconclusive("no runs"))
    }

    func testDoesNotCollapse() {
        let claim = Claim.doesNotCollapse
        XCTAssertEqual(evaluateClaim(claim, row("a", [.trained, .partialCollapse]), []), .holds)
        XCTAssertEqual(evaluateClaim(claim, row("a", [.trained, .collapsed]), []), .fails)
        XCTAssertEqual(evaluateClaim(claim, row("a", [.trained, .diverged]), []), .inconclusive("some seeds diverged"))
        XCTAssertEqual(evaluateClaim(claim, row("a"), []), .inconclusive("no runs"))
    }

    func testDiverges() {
        XCTAssertEqual(evaluateClaim(.diverges, row("a", [.diverged, .diverged]), []), .holds)
        XCTAssertEqual(evaluateClaim(.diverges, row("a", [.diverged, .trained]), []), .fails)
        XCTAssertEqual(evaluateClaim(.diverges, row("a"), []), .inconclusive("no runs"))
    }

    // Expected intervals computed with scipy.stats.t (Welch: ν = se⁴ / Σ (s²/n)²/(n − 1)).
    func testWithinDecidesOnTheIntervalOfTheDifference() {
        let base = row("baseline", knn: MeanStd(mean: 70, std: 0.3, n: 3))
        let near = row("near", knn: MeanStd(mean: 70.2, std: 0.3, n: 3))          // CI [-0.48, 0.88] ⊂ [-1, 1]
        let far = row("far", knn: MeanStd(mean: 75, std: 0.3, n: 3))              // CI [4.32, 5.68] > 1
        let low = row("low", knn: MeanStd(mean: 65, std: 0.3, n: 3))              // CI [-5.68, -4.32] < -1
        let straddle = row("straddle", knn: MeanStd(mean: 70.5, std: 0.5, n: 3))  // CI [-0.52, 1.52] crosses 1
        let all = [base, near, far, low, straddle]
        let claim = Claim.within(points: 1, of: "baseline")
        XCTAssertEqual(evaluateClaim(claim, near, all), .holds)
        XCTAssertEqual(evaluateClaim(claim, far, all), .fails)
        XCTAssertEqual(evaluateClaim(claim, low, all), .fails)
        XCTAssertEqual(evaluateClaim(claim, straddle, all), .inconclusive("Δ 0.5, 95 % CI [-0.5, 1.5] straddles ±1"))
        XCTAssertEqual(evaluateClaim(.within(points: 2, of: "baseline"), straddle, all), .holds, "a wider bound contains it")
        XCTAssertEqual(evaluateClaim(claim, row("none"), all), .inconclusive("no finished seeds"))
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "missing"), near, all), .inconclusive("no row `missing`"))
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "none"), near, all + [row("none")]),
                       .inconclusive("no finished seeds of `none`"))
        let same = row("same", knn: MeanStd(mean: 71, std: 0, n: 2)), ref = row("ref", knn: MeanStd(mean: 70, std: 0, n: 2))
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "ref"), same, [same, ref]), .holds,
                       "no spread: the interval is the point 1, and the bound is inclusive")
    }

    func testWithinOnOneSeed() {
        let base = row("baseline", knn: MeanStd(mean: 70, std: 0.3, n: 3))
        let single = row("single", knn: MeanStd(mean: 70.1, std: 0, n: 1))   // std 0.3 assumed: CI [-1.39, 1.59]
        let singleFar = row("single far", knn: MeanStd(mean: 80, std: 0, n: 1)) // CI [8.51, 11.49]
        let lone = row("lone", knn: MeanStd(mean: 70.2, std: 0, n: 1))
        let all = [base, single, singleFar, lone]
        let claim = Claim.within(points: 1, of: "baseline")
        XCTAssertEqual(evaluateClaim(claim, single, all),
                       .inconclusive("Δ 0.1, 95 % CI [-1.4, 1.6] straddles ±1; 1 seed, std of `baseline` assumed"))
        XCTAssertEqual(evaluateClaim(claim, singleFar, all), .fails)
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "single"), base, all),
                       .inconclusive("Δ -0.1, 95 % CI [-1.6, 1.4] straddles ±1; 1 seed, std of `baseline` assumed"),
                       "the row with seeds lends its std whichever side it is on")
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "single"), lone, all),
                       .inconclusive("1 seed each: Δ 0.1 is within ±1 on the point estimate; an interval needs 2 seeds of a row"))
        XCTAssertEqual(evaluateClaim(.within(points: 1.5, of: "single far"), lone, all),
                       .inconclusive("1 seed each: Δ -9.8 is outside ±1.5 on the point estimate; an interval needs 2 seeds of a row"))
    }

    /// `not more than p below R`: non-inferiority, decided on the same interval as `within`.
    func testNotBelowDecidesOnTheIntervalsLowerEnd() {
        let base = row("baseline", knn: MeanStd(mean: 70, std: 0.3, n: 3))
        let near = row("near", knn: MeanStd(mean: 70.2, std: 0.3, n: 3))          // CI [-0.48, 0.88] above -1
        let far = row("far", knn: MeanStd(mean: 75, std: 0.3, n: 3))              // CI [4.32, 5.68]: above is not below
        let low = row("low", knn: MeanStd(mean: 65, std: 0.3, n: 3))              // CI [-5.68, -4.32] < -1
        let close = row("close", knn: MeanStd(mean: 69.5, std: 0.5, n: 3))        // CI [-1.52, 0.52] crosses -1
        let lone = row("lone", knn: MeanStd(mean: 68.5, std: 0, n: 1)), other = row("other", knn: MeanStd(mean: 70, std: 0, n: 1))
        let all = [base, near, far, low, close, lone, other]
        let claim = Claim.notBelow(points: 1, of: "baseline")
        XCTAssertEqual(evaluateClaim(claim, near, all), .holds)
        XCTAssertEqual(evaluateClaim(claim, far, all), .holds)
        XCTAssertEqual(evaluateClaim(claim, low, all), .fails)
        XCTAssertEqual(evaluateClaim(claim, close, all), .inconclusive("Δ -0.5, 95 % CI [-1.5, 0.5] straddles -1"))
        XCTAssertEqual(evaluateClaim(.notBelow(points: 2, of: "baseline"), close, all), .holds, "a wider margin holds it")
        XCTAssertEqual(evaluateClaim(.notBelow(points: 1, of: "other"), lone, all),
                       .inconclusive("1 seed each: Δ -1.5 is more than 1 below on the point estimate; an interval needs 2 seeds of a row"))
        XCTAssertEqual(evaluateClaim(.notBelow(points: 2, of: "other"), lone, all),
                       .inconclusive("1 seed each: Δ -1.5 is not more than 2 below on the point estimate; an interval needs 2 seeds of a row"))
        XCTAssertEqual(evaluateClaim(claim, row("none"), all), .inconclusive("no finished seeds"))
        XCTAssertNotNil(comparisonInterval(claim, close, all), "the report prints the interval it was decided on")
    }

    /// Rows with 2 or more seeds in common are compared seed by seed: the seed's shared draws cancel.
    /// Computed by hand: differences 0.42, 0.05, 0.14 (SimSiam `mini` 10-step − 1-step, seeds 0–2):
    /// mean 0.2033, s_d 0.1930, se 0.1114, t(0.975, 2) 4.3027: [-0.276, 0.683].
    func testRowsThatShareSeedsArePaired() throws {
        let base = RowStats(name: "1-step", plannedSeeds: 3, knn: MeanStd.of([77.54, 79.16, 78.90]),
                            mainBySeed: [0: 77.54, 1: 79.16, 2: 78.90])
        let ten = RowStats(name: "10-step", plannedSeeds: 3, knn: MeanStd.of([77.96, 79.21, 79.04]),
                           mainBySeed: [0: 77.96, 1: 79.21, 2: 79.04])
        let ci = try XCTUnwrap(comparisonInterval(.notBelow(points: 1, of: "1-step"), ten, [base, ten]))
        XCTAssertEqual(ci.pairedSeeds, 3)
        XCTAssertEqual(ci.low, -0.2762, accuracy: 1e-3)
        XCTAssertEqual(ci.high, 0.6829, accuracy: 1e-3)
        XCTAssertEqual(evaluateClaim(.notBelow(points: 1, of: "1-step"), ten, [base, ten]), .holds)
        XCTAssertEqual(evaluateClaim(.above("1-step"), ten, [base, ten]),
                       .inconclusive("Δ 0.2, 95 % CI [-0.3, 0.7] includes 0; paired over 3 seeds"))
        // Welch on the same numbers, the pairing ignored: [-1.8, 2.2], which decides nothing.
        let welch = try XCTUnwrap(DifferenceInterval.welch(try XCTUnwrap(ten.knn), try XCTUnwrap(base.knn)))
        XCTAssertLessThan(welch.low, -1)
        // One seed in common: no pairing, Welch.
        var apart = ten
        apart.mainBySeed = [2: 79.04, 3: 79.21, 4: 77.96]
        let unpaired = try XCTUnwrap(comparisonInterval(.above("1-step"), apart, [base, apart]))
        XCTAssertNil(unpaired.pairedSeeds)
        XCTAssertEqual(unpaired, welch)
    }

    func testBelowAndAboveDecideOnTheIntervalOfTheDifference() {
        let base = row("baseline", knn: MeanStd(mean: 70, std: 0.3, n: 3))
        let low = row("low", knn: MeanStd(mean: 60, std: 1, n: 3))            // CI [-12.25, -7.75]
        let close = row("close", knn: MeanStd(mean: 69.5, std: 0.5, n: 3))    // CI [-1.52, 0.52]
        let single = row("single", knn: MeanStd(mean: 80, std: 0, n: 1))      // std 0.3 assumed: CI [8.51, 11.49]
        let lone = row("lone", knn: MeanStd(mean: 79, std: 0, n: 1))
        let all = [base, low, close, single, lone]
        XCTAssertEqual(evaluateClaim(.below("baseline"), low, all), .holds)
        XCTAssertEqual(evaluateClaim(.above("baseline"), low, all), .fails)
        XCTAssertEqual(evaluateClaim(.above("low"), base, all), .holds)
        XCTAssertEqual(evaluateClaim(.below("low"), base, all), .fails)
        XCTAssertEqual(evaluateClaim(.below("baseline"), close, all), .inconclusive("Δ -0.5, 95 % CI [-1.5, 0.5] includes 0"))
        XCTAssertEqual(evaluateClaim(.above("baseline"), close, all), .inconclusive("Δ -0.5, 95 % CI [-1.5, 0.5] includes 0"))
        XCTAssertEqual(evaluateClaim(.above("baseline"), single, all), .holds)
        XCTAssertEqual(evaluateClaim(.below("baseline"), single, all), .fails)
        XCTAssertEqual(evaluateClaim(.below("single"), lone, all),
                       .inconclusive("1 seed each: Δ -1.0, below `single` on the point estimate; an interval needs 2 seeds of a row"))
        XCTAssertEqual(evaluateClaim(.above("lone"), single, all),
                       .inconclusive("1 seed each: Δ 1.0, above `lone` on the point estimate; an interval needs 2 seeds of a row"))
        XCTAssertEqual(evaluateClaim(.below("baseline"), row("empty"), all), .inconclusive("no finished seeds"))
        XCTAssertEqual(evaluateClaim(.above("nope"), low, all), .inconclusive("no row `nope`"))
        let ci = comparisonInterval(.below("baseline"), low, all)
        XCTAssertEqual(ci?.difference ?? .nan, -10, accuracy: 1e-12)
        XCTAssertEqual(ci?.low ?? .nan, -12.251090706460833, accuracy: 1e-6)
        XCTAssertEqual(ci?.high ?? .nan, -7.7489092935391675, accuracy: 1e-6)
        XCTAssertEqual(ci?.degreesOfFreedom ?? .nan, 2.3571074298184698, accuracy: 1e-9)
        XCTAssertNil(comparisonInterval(.collapses, low, all))
        XCTAssertNil(comparisonInterval(.below("single"), lone, all))
    }

    func testStudentTQuantilesMatchTheTables() {
        let known: [(p: Double, nu: Double, t: Double)] = [
            (0.975, 1, 12.706204736174694), (0.975, 2, 4.302652729749462), (0.975, 4, 2.7764451051977934),
            (0.975, 10, 2.228138851986274), (0.975, 30, 2.0422724563012378), (0.95, 5, 2.0150483733330233),
            (0.975, 2.5, 3.5746548420036817), (0.995, 3.3, 5.344306069721078),
        ]
        for (p, nu, t) in known {
            XCTAssertEqual(StudentT.quantile(p, degreesOfFreedom: nu), t, accuracy: 1e-7, "t(\(p), \(nu))")
            XCTAssertEqual(StudentT.quantile(1 - p, degreesOfFreedom: nu), -t, accuracy: 1e-7)
            XCTAssertEqual(StudentT.cdf(t, degreesOfFreedom: nu), p, accuracy: 1e-10)
        }
        XCTAssertEqual(StudentT.quantile(0.975, degreesOfFreedom: .infinity), 1.959963984540054, accuracy: 1e-7)
        XCTAssertEqual(StudentT.quantile(0.5, degreesOfFreedom: 3), 0)
    }

    func testWelchIntervalOfTwoSummaries() throws {
        let ci = try XCTUnwrap(DifferenceInterval.welch(MeanStd(mean: 70, std: 0.5, n: 3), MeanStd(mean: 60, std: 1, n: 3)))
        XCTAssertEqual(ci.difference, 10)
        XCTAssertEqual(ci.degreesOfFreedom, 2.9411764705882346, accuracy: 1e-9)
        XCTAssertEqual(ci.low, 7.922300248408748, accuracy: 1e-6)
        XCTAssertEqual(ci.high, 12.077699751591252, accuracy: 1e-6)
        XCTAssertNil(DifferenceInterval.welch(MeanStd(mean: 70, std: 0, n: 1), MeanStd(mean: 60, std: 1, n: 3)))
        let single = try XCTUnwrap(DifferenceInterval.assumingStd(single: MeanStd(mean: 70.1, std: 0, n: 1),
                                                                  of: MeanStd(mean: 70, std: 0.3, n: 3), named: "b"))
        XCTAssertEqual(single.degreesOfFreedom, 2)
        XCTAssertEqual(single.low, -1.3904826270502033, accuracy: 1e-6)
        XCTAssertEqual(single.high, 1.590482627050192, accuracy: 1e-6)
        XCTAssertEqual(single.text { formatFixed($0, 2) }, "Δ 0.10, 95 % CI [-1.39, 1.59]; 1 seed, std of `b` assumed")
    }

    func testClaimsAreReadFromTextAndRenderedInWords() throws {
        XCTAssertEqual(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: "collapses").claims, [.collapses])
        XCTAssertEqual(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: " within 1 pt of baseline ").claims,
                       [.within(points: 1, of: "baseline")])
        let rendered: [(Claim, String)] = [
            (.collapses, "collapses"), (.doesNotCollapse, "does not collapse"), (.diverges, "diverges"),
            (.within(points: 1, of: "baseline"), "within 1 pt of baseline"), (.within(points: 1.5, of: "b"), "within 1.5 pts of b"),
            (.within(points: 2, of: "no stop-grad"), "within 2 pts of no stop-grad"), (.below("x"), "below x"), (.above("y"), "above y"),
            (.notBelow(points: 1, of: "1-step"), "not more than 1 pt below 1-step"), (.notBelow(points: 0.5, of: "b c"), "not more than 0.5 pts below b c"),
        ]
        for (claim, text) in rendered {
            XCTAssertEqual(claim.text, text)
            XCTAssertEqual(Claim(parsing: claim.description), claim, "an experiment file's form reads back")
        }
        XCTAssertThrowsError(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: "shrinks")) { error in
            XCTAssertEqual("\(error)", "row `r`: cannot read the claim `shrinks`; write one of: collapses, does-not-collapse, "
                           + "diverges, within <pts> of <row>, below <row>, above <row>, not more than <pts> below <row>, "
                           + "<metric> rises, <metric> falls, "
                           + "<metric> rises after epoch <k>, <metric> falls after epoch <k>, <metric> within <x> of <value>")
        }
        XCTAssertEqual(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: " ").claims, [])
        XCTAssertEqual(Claim(parsing: "not more than 1 pts below 1-step"), .notBelow(points: 1, of: "1-step"))
        for bad in ["not more than below 1-step", "not more than 0 below a", "not more than 1 of a", "not more than 1 below", "not more than -1 below a"] {
            XCTAssertNil(Claim(parsing: bad), bad)
        }
    }

    func testMeanStdUsesTheSampleStd() throws {
        let s = try XCTUnwrap(MeanStd.of([1, 2, 3, .nan]))
        XCTAssertEqual(s.mean, 2)
        XCTAssertEqual(s.std, 1)
        XCTAssertEqual(s.n, 3)
        XCTAssertEqual(MeanStd.of([5]), MeanStd(mean: 5, std: 0, n: 1))
        XCTAssertNil(MeanStd.of([]))
    }
}
