import Foundation
import XCTest

/// Command lines that used to slip through or run with nonsense (issue 17 items 3 and 6): each
/// is refused with a message and a non-zero status before anything is read or run.
extension CLITests {
    var scratchDB: String { tmp.appendingPathComponent("db.sqlite").path }

    func assertRefused(_ args: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (status, text) = try output(args)
        XCTAssertNotEqual(status, 0, text, file: file, line: line)
        XCTAssertTrue(text.contains(message), "expected «\(message)» in:\n\(text)", file: file, line: line)
        XCTAssertFalse(text.contains("Error: error:"), text, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratchDB), "a run started: \(text)", file: file, line: line)
    }

    func testBadCountsAreRefusedBeforeAnythingRuns() throws {
        let run = ["run", "simsiam-fig2", "--protocol", "smoke", "--db", scratchDB, "--output", tmp.path,
                   "--checkpoints", tmp.appendingPathComponent("ck").path]
        let seedsMessage = "expected a number of seeds in 1...1000 (seeds 0..<N are run); pass e.g. --seeds 3"
        try assertRefused(run + ["--seeds", "0"], "--seeds 0: " + seedsMessage)
        try assertRefused(run + ["--seeds", "-3"], "--seeds -3: " + seedsMessage)
        try assertRefused(run + ["--seeds", "1001"], "--seeds 1001: " + seedsMessage)
        try assertRefused(run + ["--workers", "0"], "--workers 0: expected 1...64 parallel worker processes; pass e.g. --workers 2")
        try assertRefused(run + ["--workers", "-1"], "--workers -1: expected 1...64")
        try assertRefused(run + ["--epochs", "0"], "--epochs 0: expected an integer in 1...10000; pass e.g. --epochs 10")
        try assertRefused(run + ["--rows", ""], "--rows \"\" has an empty row name; expected comma-separated row names")
        try assertRefused(run + ["--rows", "baseline,,no stop-grad"], "has an empty row name")
        try assertRefused(run + ["--protocol", "tiny"], "--protocol tiny: expected one of smoke, mini")
        try assertRefused(["report", "simsiam-fig2", "--seeds", "0", "--db", scratchDB], "--seeds 0: " + seedsMessage)
    }

    func testOutputAndCheckpointsMustNotBeFiles() throws {
        let file = tmp.appendingPathComponent("a-file").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let run = ["run", "simsiam-fig2", "--protocol", "smoke", "--db", scratchDB]
        try assertRefused(run + ["--output", file, "--checkpoints", tmp.path],
                          "--output \(file) is an existing file; expected a directory (it is created if missing); pass another path")
        try assertRefused(run + ["--checkpoints", file, "--output", tmp.path], "--checkpoints \(file) is an existing file")
        try assertRefused(["report", "simsiam-fig2", "--db", scratchDB, "--output", file], "--output \(file) is an existing file")
    }

    func testLibraryErrorsAreNotPrefixedTwice() throws {
        let (status, text) = try output(["run", "simsiam-fig22", "--db", scratchDB])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(text.hasPrefix("error: unknown table `simsiam-fig22`; known tables: "), text)
    }

    /// `report` on a scratch database writes next to it; a table file that counts more finished
    /// runs is kept, and the command says so.
    func testReportWritesNextToAScratchDatabaseAndKeepsATableWithMoreRuns() throws {
        let (s1, first) = try output(["report", "simsiam-fig2", "--db", scratchDB])
        XCTAssertEqual(s1, 0, first)
        let path = tmp.appendingPathComponent("simsiam-fig2.md").path
        XCTAssertTrue(first.hasSuffix("wrote \(path)\n"), first)
        let richer = "## T\n\n- Runs (2 planned): 1 finished, 1 diverged.\n"
        try richer.write(toFile: path, atomically: true, encoding: .utf8)
        let (s2, second) = try output(["report", "simsiam-fig2", "--db", scratchDB])
        XCTAssertEqual(s2, 0, second)
        XCTAssertTrue(second.contains("note: kept \(path): it counts 2 finished run(s), this table 0; "
                                      + "delete it or pass --output DIR to write this one"), second)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), richer)
    }
}
