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

    func testWithin() {
        let base = row("baseline", knn: MeanStd(mean: 70, std: 0.5, n: 3))
        let near = row("near", knn: MeanStd(mean: 70.9, std: 2, n: 3))
        let edge = row("edge", knn: MeanStd(mean: 71, std: 0, n: 1))
        let far = row("far", knn: MeanStd(mean: 68.5, std: 0.1, n: 3))
        let all = [base, near, edge, far]
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "baseline"), near, all), .holds)
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "baseline"), edge, all), .holds, "the bound is inclusive")
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "baseline"), far, all), .fails)
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "baseline"), row("none"), all), .inconclusive("no finished seeds"))
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "missing"), near, all), .inconclusive("no row `missing`"))
        XCTAssertEqual(evaluateClaim(.within(points: 1, of: "none"), near, all + [row("none")]),
                       .inconclusive("no finished seeds of `none`"))
    }

    func testBelowAndAbove() {
        let base = row("baseline", knn: MeanStd(mean: 70, std: 0.5, n: 3))
        let low = row("low", knn: MeanStd(mean: 60, std: 1, n: 3))
        let close = row("close", knn: MeanStd(mean: 69.2, std: 1, n: 3))   // |d| = 0.8 ≤ max std 1
        let single = row("single", knn: MeanStd(mean: 69.4, std: 0, n: 1)) // |d| = 0.6 > max std 0.5
        let all = [base, low, close, single]
        XCTAssertEqual(evaluateClaim(.below("baseline"), low, all), .holds)
        XCTAssertEqual(evaluateClaim(.above("baseline"), low, all), .fails)
        XCTAssertEqual(evaluateClaim(.above("low"), base, all), .holds)
        XCTAssertEqual(evaluateClaim(.below("low"), base, all), .fails)
        XCTAssertEqual(evaluateClaim(.below("baseline"), close, all),
                       .inconclusive("difference 0.8 is within one std (1.0)"))
        XCTAssertEqual(evaluateClaim(.above("baseline"), close, all),
                       .inconclusive("difference 0.8 is within one std (1.0)"))
        XCTAssertEqual(evaluateClaim(.below("baseline"), single, all), .holds)
        XCTAssertEqual(evaluateClaim(.below("baseline"), row("empty"), all), .inconclusive("no finished seeds"))
        XCTAssertEqual(evaluateClaim(.above("nope"), low, all), .inconclusive("no row `nope`"))
    }

    func testClaimsAreReadFromTextAndRenderedInWords() throws {
        XCTAssertEqual(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: "collapses").claim, .collapses)
        XCTAssertEqual(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: " within 1 pt of baseline ").claim,
                       .within(points: 1, of: "baseline"))
        let rendered: [(Claim, String)] = [
            (.collapses, "collapses"), (.doesNotCollapse, "does not collapse"), (.diverges, "diverges"),
            (.within(points: 1, of: "baseline"), "within 1 pt of baseline"), (.within(points: 1.5, of: "b"), "within 1.5 pts of b"),
            (.within(points: 2, of: "no stop-grad"), "within 2 pts of no stop-grad"), (.below("x"), "below x"), (.above("y"), "above y"),
        ]
        for (claim, text) in rendered {
            XCTAssertEqual(claim.text, text)
            XCTAssertEqual(Claim(parsing: claim.description), claim, "an experiment file's form reads back")
        }
        XCTAssertThrowsError(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: "shrinks")) { error in
            XCTAssertEqual("\(error)", "row `r`: cannot read the claim `shrinks`; write one of: collapses, does-not-collapse, "
                           + "diverges, within <pts> of <row>, below <row>, above <row>, <metric> rises, <metric> falls, "
                           + "<metric> falls after epoch <k>")
        }
        XCTAssertNil(try RowDescription(name: "r", paperValue: "1", paperSource: "", claimText: " ").claim)
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
