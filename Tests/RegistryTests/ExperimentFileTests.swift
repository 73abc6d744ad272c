import Foundation
import Registry
import SSL
import XCTest

/// A valid file; each bad-file test changes one line of it, so line numbers stay easy to read.
let validLines = [
    "id: bad",                              // 1
    "title: Bad",                           // 2
    "paper: Chen & He, CVPR 2021",          // 3
    "source: Fig 2",                        // 4
    "protocol: mini",                       // 5
    "metrics: [linear, knn]",               // 6
    "rows:",                                // 7
    "  - name: baseline",                   // 8
    "    overrides: {}",                    // 9
    "    paper: 67.7",                      // 10
    "    paper_source: Fig 2",              // 11
    "    claim: does-not-collapse",         // 12
    "  - name: no stop-grad",               // 13
    "    overrides:",                       // 14
    "      loss.stop_gradient: false",      // 15
    "    paper: 0.1",                       // 16
    "    paper_source: Fig 2",              // 17
    "    claim: collapses",                 // 18
]

/// Writes files to a fresh temporary directory.
func temporaryDirectory(_ files: [String: String]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("registry-tests-\(UUID().uuidString)").path
    for (name, text) in files {
        let path = dir + "/" + name
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
    return dir
}

final class ExperimentFileTests: XCTestCase {
    /// The diagnostics of a file made from `validLines` with some lines replaced (1-based; an
    /// empty replacement removes the line).
    func diagnostics(replacing edits: [Int: String], file: StaticString = #filePath, line: UInt = #line) throws -> [Diagnostic] {
        var lines = validLines
        for (number, text) in edits.sorted(by: { $0.key > $1.key }) {
            if text.isEmpty { lines.remove(at: number - 1) } else { lines[number - 1] = text }
        }
        return try diagnostics(of: lines.joined(separator: "\n") + "\n", file: file, line: line)
    }

    func diagnostics(of yaml: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Diagnostic] {
        let dir = try temporaryDirectory(["bad.yaml": yaml])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let table = try ExperimentTable.load(path: dir + "/bad.yaml")
            XCTFail("expected errors, parsed table \(table.id)", file: file, line: line)
            return []
        } catch let RegistryError.invalid(found) {
            // Paths in messages are the caller's; compare them relative to the directory.
            return found.map { d in
                var d = d
                d.location.file = (d.location.file as NSString).lastPathComponent
                return d
            }
        }
    }

    func testTheValidTemplateParses() throws {
        let table = try ExperimentTable.parse(yaml: validLines.joined(separator: "\n"), file: "t.yaml")
        XCTAssertEqual(table.rows.map(\.name), ["baseline", "no stop-grad"])
        XCTAssertEqual(table.seeds, 1)
        XCTAssertEqual(table.metrics, [.linear, .knn])
        XCTAssertEqual(table.rows[1].overrides.map(\.key), ["loss.stop_gradient"])
        XCTAssertEqual(table.rows[1].overrides.map(\.value), [.bool(false)])
    }

    func testSyntaxErrorPointsAtYamlsLineAndColumn() throws {
        let found = try diagnostics(replacing: [15: "      loss.stop_gradient: [false"])
        XCTAssertEqual(found.count, 1)
        // libyaml notices the unclosed `[` at the next key and names where the sequence began.
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:16:10: error: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence "
                + "at line 15, column 27); expected valid YAML; check the indentation, `key: value` pairs and quotes at this position",
        ])
    }

    func testUnknownOverrideKeyNamesTheClosestKey() throws {
        let found = try diagnostics(replacing: [15: "      loss.stop_grad: false"])
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:15:7: error: unknown override key `loss.stop_grad`; expected a key of ConfigKey.all "
                + "(listed in experiments/README.md); did you mean `loss.stop_gradient`?",
        ])
    }

    func testWrongValueTypeSaysTheExpectedType() throws {
        let found = try diagnostics(replacing: [15: "      loss.stop_gradient: maybe"])
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:15:27: error: `loss.stop_gradient: maybe` has the wrong type; expected a boolean; "
                + "replace `maybe` with a boolean",
        ])
        let choice = try diagnostics(replacing: [15: "      model.predictor: quadratic"])
        XCTAssertEqual(choice.first?.location.description, "bad.yaml:15:24")
        XCTAssertEqual(choice.first?.expected, ConfigKey.byName["model.predictor"]?.expected)
        let quoted = try diagnostics(replacing: [15: "      optim.epochs: \"20\""])
        XCTAssertEqual(quoted.first?.location.description, "bad.yaml:15:21")
        XCTAssertEqual(quoted.first?.expected, "an integer in 1...10000")
    }

    /// A key of another method is refused at its file:line:column, naming the row's method.
    func testAKeyOfAnotherMethodNamesTheRowsMethod() throws {
        let found = try diagnostics(replacing: [15: "      byol.tau_base: 0.9"])
        XCTAssertEqual(found.map(\.location.description), ["bad.yaml:15:7"])
        XCTAssertTrue(found.first?.problem.contains("not a key of method `simsiam`") == true, "\(found)")
        let byol = try diagnostics(replacing: [15: "      loss.stop_gradient: false\n      method: byol"])
        XCTAssertEqual(byol.map(\.location.description), ["bad.yaml:15:7"])
        XCTAssertTrue(byol.first?.problem.contains("not a key of method `byol`") == true, "\(byol)")
        let unknown = try diagnostics(replacing: [15: "      method: dino"])
        XCTAssertEqual(unknown.map(\.location.description), ["bad.yaml:15:15"])
        XCTAssertEqual(unknown.first?.expected, "one of simsiam, byol, simclr, moco, swav")
        // With the method set, its keys are fine, in any order.
        var lines = validLines
        lines[14] = "      byol.tau_base: 0.9\n      method: byol"
        let table = try ExperimentTable.parse(yaml: lines.joined(separator: "\n"), file: "t.yaml")
        XCTAssertEqual(try table.resolvedConfig(for: table.rows[1]).method, "byol")
    }

    func testMissingFieldsPointAtTheirMapping() throws {
        let found = try diagnostics(replacing: [17: ""])
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:13:5: error: row `no stop-grad` has no `paper_source`; expected `paper_source`: "
                + "where the paper prints it (table, row, page); add `paper_source: Table 1, row (a)`",
        ])
        let top = try diagnostics(replacing: [5: ""])
        XCTAssertEqual(top.first?.location.description, "bad.yaml:1:1")
        XCTAssertEqual(top.first?.problem, "the table has no `protocol`")
        XCTAssertEqual(top.first?.fix, "add `protocol: mini`")
    }

    func testDuplicateRowNamePointsAtTheSecondAndNamesTheFirstLine() throws {
        let found = try diagnostics(replacing: [13: "  - name: baseline"])
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:13:11: error: duplicate row name `baseline` (first on line 8); expected row names unique "
                + "within a table; rename or remove one of the two rows",
        ])
    }

    func testUnknownClaimTargetNamesTheClosestRow() throws {
        let found = try diagnostics(replacing: [18: "    claim: below basline"])
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:18:12: error: claim `below basline` names no row of this table; expected one of the rows "
                + "`baseline`, `no stop-grad`; did you mean `baseline`?",
        ])
        let spaced = try diagnostics(replacing: [12: "    claim: within 1.5 of no stop grad"])
        XCTAssertEqual(spaced.first?.location.description, "bad.yaml:12:12")
        XCTAssertEqual(spaced.first?.fix, "did you mean `no stop-grad`?")
        let itself = try diagnostics(replacing: [12: "    claim: above baseline"])
        XCTAssertEqual(itself.first?.problem, "claim `above baseline` compares row `baseline` with itself")
    }

    /// `claim:` takes a list: each claim is read and checked on its own (at its own line), a
    /// repeated one and an empty list are errors.
    func testARowCanListSeveralClaims() throws {
        var lines = validLines
        lines[17] = "    claim: [collapses, below baseline]"
        let table = try ExperimentTable.parse(yaml: lines.joined(separator: "\n") + "\n", file: "t.yaml")
        XCTAssertEqual(table.rows.map(\.claims), [[.doesNotCollapse], [.collapses, .below("baseline")]])

        let block = try diagnostics(replacing: [18: "    claim:\n      - collapses\n      - below basline"])
        XCTAssertEqual(block.map(\.location.description), ["bad.yaml:20:9"], "the element's own line")
        XCTAssertEqual(block.first?.fix, "did you mean `baseline`?")
        let unknown = try diagnostics(replacing: [18: "    claim: [collapses, shrinks]"])
        XCTAssertEqual(unknown.map(\.problem), ["unknown claim `shrinks`"])
        let twice = try diagnostics(replacing: [18: "    claim: [collapses, collapses]"])
        XCTAssertEqual(twice.map(\.problem), ["claim `collapses` is listed twice"])
        let empty = try diagnostics(replacing: [18: "    claim: []"])
        XCTAssertEqual(empty.map(\.problem), ["`claim` is an empty list"])
    }

    func testUnknownClaimFormListsTheFormsAndSuggestsOne() throws {
        let found = try diagnostics(replacing: [18: "    claim: collapse"])
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:18:12: error: unknown claim `collapse`; expected one of `collapses`, `does-not-collapse`, "
                + "`diverges`, `within <pts> of <row>`, `below <row>`, `above <row>`, `not more than <pts> below <row>`, "
                + "`<metric> rises`, `<metric> falls`, "
                + "`<metric> rises after epoch <k>`, `<metric> falls after epoch <k>`, `<metric> within <x> of <value>`; "
                + "did you mean `collapses`?",
        ])
        let curve = try diagnostics(replacing: [18: "    claim: knn rises"])
        XCTAssertEqual(curve.first?.location.description, "bad.yaml:18:12", "kNN has no per-epoch curve")
        let within = try diagnostics(replacing: [18: "    claim: within 1 baseline"])
        XCTAssertEqual(within.first?.location.description, "bad.yaml:18:12")
        XCTAssertEqual(within.first?.fix, "write it as `within <pts> of <row>` with a positive number, e.g. `within 1 of baseline`")
    }

    func testUnknownFieldsProtocolAndMetricNameTheClosestValidOne() throws {
        let found = try diagnostics(replacing: [
            2: "titel: Bad", 5: "protocol: minni", 6: "metrics: [linear, kNN]", 11: "    paper_src: Fig 2",
            17: "    paper_source: Fig 2\n    loss.stop_gradient: true",
        ])
        XCTAssertEqual(found.map(\.location.description), [
            "bad.yaml:1:1", "bad.yaml:2:1", "bad.yaml:5:11", "bad.yaml:6:19", "bad.yaml:8:5", "bad.yaml:11:5", "bad.yaml:18:5",
        ])
        XCTAssertEqual(found.map(\.fix), [
            "add `title: Stop-gradient`", "did you mean `title`?", "did you mean `mini`?", "did you mean `knn`?",
            "add `paper_source: Table 1, row (a)`", "did you mean `paper_source`?", "move it under `overrides:`",
        ])
    }

    func testSuggestionsForPrefixesAndBareKeyNames() throws {
        let metric = try diagnostics(replacing: [6: "metrics: [linear, cov]"])
        XCTAssertEqual(metric.first?.fix, "did you mean `cov_offdiag`?")
        let bare = try diagnostics(replacing: [15: "      stop_gradient: false"])
        XCTAssertEqual(bare.first?.fix, "did you mean `loss.stop_gradient`?")
        let far = try diagnostics(replacing: [15: "      learning_rate: 0.1"])
        XCTAssertTrue(far.first?.fix.hasPrefix("valid keys: method, model.widths, ") ?? false, "\(far)")
    }

    func testFilesThatAreNotATable() throws {
        XCTAssertEqual(try diagnostics(of: "# only a comment\n").map(\.description), [
            "bad.yaml:1:1: error: the file has no content; expected a mapping with the fields id, title, paper, source, "
                + "protocol, metrics, seeds, rows; start from the example in experiments/README.md",
        ])
        XCTAssertEqual(try diagnostics(of: "\n- id: x\n").first?.problem, "the table is a list")
        XCTAssertEqual(try diagnostics(of: validLines.joined(separator: "\n") + "\n---\nid: two\n").first?.location.line, 19)
    }

    func testEveryProblemIsReportedNotOnlyTheFirst() throws {
        let found = try diagnostics(replacing: [
            10: "    paper: sixty", 12: "    claim: below nowhere", 15: "      loss.stop_grad: false", 16: "    paper: nan",
        ])
        XCTAssertEqual(found.map(\.location.line), [10, 12, 15, 16])
        XCTAssertEqual(found[3].fix, "did you mean `NaN`?")
    }

    func testRepeatedYamlKeyPointsAtTheRepetition() throws {
        let found = try diagnostics(replacing: [18: "    claim: collapses\n    paper: 0.2"])
        XCTAssertEqual(found.map(\.description), [
            "bad.yaml:19:5: error: `paper` is written twice in one mapping (first on line 16); "
                + "expected each field or key once; remove or merge one of them",
        ])
    }

    func testPaperValuesClaimsAndNumbersParse() throws {
        let yaml = validLines.prefix(12).joined(separator: "\n") + """

          - name: a
            overrides: {model.widths: [8, 16, 16, 32], optim.base_lr: 1e-1, optim.predictor_lr: decayed}
            paper: not found
            paper_source: p
            claim: within 1.5 pts of baseline
          - name: b row
            overrides:
            paper: NaN
            paper_source: p
            claim: below a
          - name: 256
            overrides: {}
            paper: collapse
            paper_source: p
            claim: above b row
        """
        let table = try ExperimentTable.parse(yaml: yaml, file: "t.yaml")
        XCTAssertEqual(table.rows.map(\.paper), [.number(67.7), .notFound, .nan, .collapse])
        XCTAssertEqual(table.rows.map(\.claims), [[.doesNotCollapse], [.within(points: 1.5, of: "baseline")], [.below("a")], [.above("b row")]])
        XCTAssertEqual(table.rows[1].overrides.map(\.value),
                       [.list([.int(8), .int(16), .int(16), .int(32)]), .double(0.1), .string("decayed")])
        XCTAssertEqual(table.rows[2].overrides.count, 0)
        XCTAssertEqual(table.rows[3].name, "256")
        let config = try table.resolvedConfig(for: table.row(named: "a"))
        XCTAssertEqual(config.model.widths, [8, 16, 16, 32])
        XCTAssertEqual(config.baseLR, 0.1)
        XCTAssertTrue(config.predictorLRDecayed)
    }

    func testClaimParsing() {
        XCTAssertEqual(Claim(parsing: "within 1.5 of baseline"), .within(points: 1.5, of: "baseline"))
        XCTAssertEqual(Claim(parsing: "within 2 pt of no stop-grad"), .within(points: 2, of: "no stop-grad"))
        XCTAssertEqual(Claim(parsing: "below no predictor"), .below("no predictor"))
        XCTAssertEqual(Claim(parsing: "above of"), .above("of"))
        XCTAssertEqual(Claim(parsing: " does-not-collapse "), .doesNotCollapse)
        for bad in ["within 0 of baseline", "within -1 of a", "within x of a", "within 1 a", "below", "below ", "collapse", ""] {
            XCTAssertNil(Claim(parsing: bad), bad)
        }
        XCTAssertEqual(Claim.within(points: 1, of: "baseline").description, "within 1 of baseline")
    }
}
