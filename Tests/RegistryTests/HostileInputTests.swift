import Foundation
import Registry
import SSL
import XCTest

/// Experiment files written to hang, crash or slip through the checker (issue 17 item 1, 4).
final class HostileInputTests: XCTestCase {
    func errors(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [Diagnostic] {
        do {
            let table = try ExperimentTable.parse(yaml: yaml, file: "h.yaml")
            XCTFail("expected errors, parsed table \(table.id)", file: file, line: line)
            return []
        } catch let RegistryError.invalid(found) {
            return found
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return []
        }
    }

    func seconds(_ body: () -> Void) -> Double {
        let start = Date()
        body()
        return Date().timeIntervalSince(start)
    }

    var valid: String { validLines.joined(separator: "\n") + "\n" }

    func testBillionLaughsIsRefusedAtItsAnchorsWithoutExpanding() {
        var lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        for i in 1...9 { lines.append("l\(i): &l\(i) [" + Array(repeating: "*\(i == 1 ? "a" : "l\(i - 1)")", count: 10).joined(separator: ", ") + "]") }
        lines.append("? *l9\n: boom")   // an alias as a mapping key: Yams would hash 10^10 nodes
        var found: [Diagnostic] = []
        let t = seconds { found = errors(valid + lines.joined(separator: "\n") + "\n") }
        XCTAssertLessThan(t, 1)
        XCTAssertEqual(found.first?.description,
                       "h.yaml:19:4: error: YAML anchor `&a` in an experiment file; expected every value written out where it is used "
                           + "(anchors and aliases are refused: they can expand a small file without bound); remove `&a`")
        XCTAssertTrue(found.contains { $0.problem == "YAML alias `*a` in an experiment file" && $0.location.line == 20 }, "\(found)")
    }

    func testUnknownTagsAreRefusedAndCoreTagsAllowed() throws {
        let found = errors(valid.replacingOccurrences(of: "name: baseline", with: "name: !secret baseline"))
        XCTAssertEqual(found.map(\.description), [
            "h.yaml:8:11: error: YAML tag `!secret` in an experiment file; expected plain values (the only tags allowed are "
                + "!!bool, !!float, !!int, !!map, !!null, !!seq, !!str); remove `!secret`; write the value as it should be read",
        ])
        let table = try ExperimentTable.parse(yaml: valid.replacingOccurrences(of: "name: baseline", with: "name: !!str baseline"),
                                              file: "h.yaml")
        XCTAssertEqual(table.rows[0].name, "baseline")
    }

    func testDeepNestingIsRefusedNotACrash() {
        let deep = valid + "note: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"
        let found = errors(deep)
        XCTAssertEqual(found.count, 1)
        XCTAssertEqual(found.first?.location.description, "h.yaml:19:38")   // the 33rd level: `note:` is in the root mapping
        XCTAssertEqual(found.first?.problem, "lists and mappings nested more than 32 deep")
    }

    func testFilesOverOneMegabyteAreRefused() {
        let big = valid + "# " + String(repeating: "x", count: ExperimentFileLimits.maxBytes) + "\n"
        XCTAssertEqual(errors(big).first?.expected, "an experiment file of at most 1048576 bytes")
    }

    func testLongNamesAndIdsAreRefused() {
        let name = String(repeating: "n", count: 201)
        let found = errors(valid.replacingOccurrences(of: "name: baseline", with: "name: \(name)"))
        XCTAssertEqual(found.first?.description,
                       "h.yaml:8:11: error: the row name has 201 characters; expected a name of at most 200 characters; "
                           + "shorten it and move the details into `note`")
        let id = String(repeating: "a", count: 65)
        XCTAssertEqual(errors(valid.replacingOccurrences(of: "id: bad", with: "id: \(id)")).first?.problem,
                       "the id has 65 characters")
    }

    /// As many rows as a file may hold, each with a 32-character name (the longest that gets suggestions) and a claim naming a row
    /// that is not there: suggestions are bounded, the file checks fast and the list of problems
    /// stops at the cap. Longer files are refused by their size or value count first.
    func testTheLargestHostileTableChecksInWellUnderASecond() {
        var text = validLines.prefix(7).joined(separator: "\n") + "\n"
        for i in 0..<((ExperimentFileLimits.maxValues - 100) / 11) {   // 11 values a row
            let name = String(String(repeating: "row\(i)-", count: 12).prefix(32))
            text += "  - name: \"\(name)\"\n    overrides: {loss.stop_gradient: \(i % 2 == 0)}\n    paper: 1\n"
                + "    paper_source: x\n    claim: below \(name)x\n"
        }
        var found: [Diagnostic] = []
        let t = seconds { found = errors(text) }
        XCTAssertLessThan(t, 1, "checking took \(t) s")
        XCTAssertEqual(found.count, ExperimentFileLimits.maxDiagnostics + 1)
        XCTAssertEqual(found.last?.problem, "more than 50 problems; the rest of the file was not checked")
        XCTAssertLessThan(found.map(\.description.count).max() ?? 0, 2_000)   // 20 names of 32 characters at most
        XCTAssertEqual(errors(text + text.dropFirst(100)).first?.problem, "more than 2000 values in one file")
    }

    func testRowNamesWithSurroundingSpacesAreRefused() {
        let found = errors(valid.replacingOccurrences(of: "name: no stop-grad", with: "name: \" baseline \""))
        XCTAssertEqual(found.map(\.description), [
            "h.yaml:13:11: error: row name ` baseline ` has spaces before or after it; expected a name without surrounding "
                + "spaces; write `name: baseline`",
        ])
        XCTAssertEqual(errors(valid.replacingOccurrences(of: "name: no stop-grad", with: "name: \"a\\tb\"")).first?.problem,
                       "the row name contains a line break, tab or other control character")
    }

    func testRowNamesAreLookedUpTrimmed() throws {
        let table = try ExperimentTable.parse(yaml: valid, file: "h.yaml")
        XCTAssertEqual(try table.row(named: "baseline ").name, "baseline")
        XCTAssertEqual(try table.row(named: "  no stop-grad").name, "no stop-grad")
    }

    func testListsInMessagesAreCapped() throws {
        var text = validLines.prefix(7).joined(separator: "\n") + "\n"
        for i in 0..<30 { text += "  - {name: r\(i), overrides: {}, paper: 1, paper_source: x}\n" }
        let table = try ExperimentTable.parse(yaml: text, file: "h.yaml")
        XCTAssertThrowsError(try table.row(named: "zzz")) { error in
            XCTAssertTrue("\(error)".hasSuffix("r18, r19, … and 10 more"), "\(error)")
        }
        XCTAssertEqual(listed(["a", "b", "c"], limit: 2), "a, b, … and 1 more")
    }
}
