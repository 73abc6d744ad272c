import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Registry
import Report
import SSL
import Store
import XCTest

/// Figures from stored curves: what they draw (mean over seeds, a ± std band, per step when
/// stored per step), that the SVG is well-formed XML, and its exact text (golden file).
final class FigureTests: XCTestCase {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    func report() throws -> TableReport {
        let table = TableDescription(id: "fig", title: "Curves", paper: "Zhang et al., ICLR 2022", source: "Fig 4",
                                     protocolName: "smoke", epochs: 3, seeds: [0, 1],
                                     rows: [RowDescription(name: "center <o_z>", paperValue: "not found", paperSource: "", claims: [.rises(metric: "m_o")]),
                                            RowDescription(name: "residual", paperValue: "not found", paperSource: "", claims: [])])
        let store = try Store.inMemory()
        store.now = TickingClock().next
        func add(_ row: String, _ seed: UInt64, _ shift: Double, steps: Bool) throws {
            let s = try spec(table: "fig", row: row, seed: seed) { $0.epochs = 3 + (row == "residual" ? 1 : 0) }
            let l = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
            var points = (1...3).map { MetricPoint(key: "loss", step: $0, value: -0.2 * Double($0) + shift) }
            if steps { points += (1...4).map { MetricPoint.perStep("m_o", step: 10 * $0, 0.4 + 0.1 * Double($0) + shift / 5) } }
            try store.recordMetrics(l, points)
            try store.finishRun(l, status: .finished, final: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9))
        }
        try add("center <o_z>", 0, 0, steps: true)
        try add("center <o_z>", 1, 0.1, steps: true)
        try add("residual", 0, 0.3, steps: false)
        return try TableReport(table: table, store: store)
    }

    func testCurvesAreMeansOverSeedsWithAStdBandPerStepWhereStored() throws {
        let r = try report()
        XCTAssertEqual(r.figureMetrics.map(\.key), ["loss", "train_z_std", "knn_subset", "m_o", "m_r"])
        let loss = try XCTUnwrap(r.figure(.loss))
        XCTAssertEqual(loss.xLabel, "epoch")
        XCTAssertEqual(loss.series.map(\.name), ["center <o_z>", "residual"])
        let first = try XCTUnwrap(loss.series[0].points.first)
        XCTAssertEqual(first.mean, -0.15, accuracy: 1e-12)
        XCTAssertEqual(first.high - first.mean, (0.005).squareRoot(), accuracy: 1e-12, "sample std of −0.2 and −0.1")
        XCTAssertEqual(loss.series[1].points.map { $0.high - $0.low }, [0, 0, 0], "one seed: no band")
        let mo = try XCTUnwrap(r.figure(.mO))
        XCTAssertEqual(mo.xLabel, "training step")
        XCTAssertEqual(mo.series.map(\.name), ["center <o_z>"], "rows without the curve are left out")
        XCTAssertEqual(mo.series[0].points.map(\.x), [10, 20, 30, 40])
        XCTAssertNil(r.figure(.knnSubset))
        XCTAssertEqual(r.figures.map(\.name), ["fig-loss", "fig-m_o"])
    }

    func testSVGIsWellFormedXMLAndMatchesTheGoldenFile() throws {
        for figure in try report().figures {
            let svg = figure.svg()
            let parser = XMLParser(data: Data(svg.utf8))
            XCTAssertTrue(parser.parse(), "\(figure.name): \(String(describing: parser.parserError))")
            XCTAssertTrue(svg.contains("center &lt;o_z&gt;"), "names are escaped")
            let url = Self.golden.appendingPathComponent("\(figure.name).svg")
            if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
                try svg.write(to: url, atomically: true, encoding: .utf8)
                continue
            }
            XCTAssertEqual(svg, try String(contentsOf: url, encoding: .utf8), "\(url.path) differs; UPDATE_GOLDEN=1 rewrites it")
        }
    }
}

/// The scorecard counts each table's claims by outcome and lists the ones that failed.
final class ScorecardTests: XCTestCase {
    func testCountsClaimsByOutcomeAndListsFailures() throws {
        let table = TableDescription(id: "t", title: "Stop-gradient", paper: "Chen & He, CVPR 2021", source: "Fig 2",
                                     protocolName: "smoke", epochs: 3, seeds: [0],
                                     rows: [RowDescription(name: "baseline", paperValue: "67.7", paperSource: "", claims: [.doesNotCollapse]),
                                            RowDescription(name: "no stop-grad", paperValue: "0.1", paperSource: "", claims: [.collapses, .below("baseline")]),
                                            RowDescription(name: "later", paperValue: "1", paperSource: "", claims: [.collapses]),
                                            RowDescription(name: "no claim", paperValue: "1", paperSource: "", claims: [])])
        let store = try Store.inMemory()
        store.now = TickingClock().next
        for (row, zStd) in [("baseline", 0.9), ("no stop-grad", 0.8)] {
            let s = try spec(table: "t", row: row, seed: 0) { $0.model.projectorDim = row == "baseline" ? 64 : 32 }
            let l = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
            try store.finishRun(l, status: .finished, final: try finalMetrics(knn: 50, zStd: zStd, mO: 0.2, mR: 0.9))
        }
        let text = Scorecard.markdown([try TableReport(table: table, store: store)])
        XCTAssertTrue(text.contains("## Chen & He, CVPR 2021"), text)
        // Every claim counts, a row's second one too: no stop-grad's `below baseline` (1 seed each) is inconclusive.
        XCTAssertTrue(text.contains("| [Stop-gradient](t.md) | Fig 2 | 1 | 1 | 1 | 1 |"), text)
        XCTAssertTrue(text.contains("- `t` no stop-grad: collapses — not reproduced"), text)
    }
}
