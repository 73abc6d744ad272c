import CSQLite
import Foundation
import XCTest

/// End-to-end tests of the `ablate` executable (built by `swift build --build-tests` next to
/// the test bundle): help texts, crash safety under SIGKILL, two schedulers on one database.
final class CLITests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ablate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// The `ablate` binary of the same build as this test bundle.
    var executable: URL { CLITests.executable }
    static var executable: URL {
        let bundle = Bundle(for: CLITests.self).bundleURL
        let candidates = [bundle.appendingPathComponent("ablate"), bundle.deletingLastPathComponent().appendingPathComponent("ablate")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    @discardableResult
    /// `environment`: the child's whole environment (default: this process's, with COLUMNS=100).
    func ablate(_ args: [String], wait: Bool = true, in directory: URL = CLITests.root,
                environment: [String: String]? = nil) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        p.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env["COLUMNS"] = "100"
        p.environment = environment ?? env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        if wait { p.waitUntilExit() }
        return (p, out)
    }

    func output(_ args: [String], in directory: URL = CLITests.root,
                environment: [String: String]? = nil) throws -> (status: Int32, text: String) {
        let (p, out) = try ablate(args, wait: false, in: directory, environment: environment)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A run records the git revision and whether the code had uncommitted changes; changes under
    /// results/ (the committed database a sweep is writing) do not make it dirty.
    func testRunsAreDirtyOnlyForChangesOutsideResults() throws {
        let repo = tmp.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("results"), withIntermediateDirectories: true)
        func git(_ args: String...) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"] + args
            p.currentDirectoryURL = repo
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "git \(args)")
        }
        try "code\n".write(to: repo.appendingPathComponent("code.txt"), atomically: true, encoding: .utf8)
        try "db\n".write(to: repo.appendingPathComponent("results/db.txt"), atomically: true, encoding: .utf8)
        try git("init", "-q")
        try git("add", ".")
        try git("commit", "-q", "-m", "init")
        let db = repo.appendingPathComponent("results/t.sqlite").path
        let experiments = CLITests.root.appendingPathComponent("experiments").path
        func runRow(_ row: String) throws -> String {
            let (status, text) = try output(["run", "simsiam-table1", "--rows", row, "--protocol", "smoke", "--seeds", "1", "--epochs", "1",
                                             "--workers", "1", "--db", db, "--experiments", experiments], in: repo)
            XCTAssertEqual(status, 0, text)
            return try XCTUnwrap(query(db, "SELECT git_dirty FROM run WHERE row_name = '\(row)'").first?.first)
        }
        try "db changed\n".write(to: repo.appendingPathComponent("results/db.txt"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try runRow("baseline"), "0", "a change under results/ is not a dirty tree")
        try "code changed\n".write(to: repo.appendingPathComponent("code.txt"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try runRow("no predictor"), "1", "a change to the code is")
    }

    /// Compares with Tests/CLITests/Golden/<name>; `UPDATE_GOLDEN=1` rewrites the file instead.
    func assertGolden(_ text: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = CLITests.root.appendingPathComponent("Tests/CLITests/Golden/\(name)")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        XCTAssertEqual(text, expected, "output differs from \(url.path); rerun with UPDATE_GOLDEN=1 if the change is intended",
                       file: file, line: line)
    }

    func testHelpTextsAreGolden() throws {
        let (s1, top) = try output(["--help"])
        XCTAssertEqual(s1, 0)
        try assertGolden(top, "help.txt")
        let (s2, run) = try output(["run", "--help"])
        XCTAssertEqual(s2, 0)
        try assertGolden(run, "run-help.txt")
    }

    func testUnknownTableSuggestsTheClosestId() throws {
        let (status, text) = try output(["run", "simsiam-fig22", "--db", tmp.appendingPathComponent("db.sqlite").path])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(text.contains("simsiam-fig2"), text)
    }

    // MARK: - Crash safety

    func query(_ db: String, _ sql: String) throws -> [[String]] { try CLITests.query(db, sql) }

    /// The rows of `sql` on the database `db` (opened read-only), every value as text.
    static func query(_ db: String, _ sql: String) throws -> [[String]] {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(db, &handle, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { throw NSError(domain: "sqlite", code: 1) }
        defer { sqlite3_close(handle) }
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &stmt, nil) == SQLITE_OK else {
            throw NSError(domain: "sqlite", code: 2, userInfo: [NSLocalizedDescriptionKey: String(cString: sqlite3_errmsg(handle))])
        }
        defer { sqlite3_finalize(stmt) }
        var rows: [[String]] = []
        while sqlite3_step(stmt) == SQLITE_ROW {
            rows.append((0..<sqlite3_column_count(stmt)).map { i in
                sqlite3_column_text(stmt, i).map { String(cString: $0) } ?? "NULL"
            })
        }
        return rows
    }

    func runArgs(_ db: String, seeds: Int = 2) -> [String] {
        ["run", "simsiam-fig2", "--protocol", "smoke", "--seeds", "\(seeds)", "--db", db,
         "--checkpoints", tmp.appendingPathComponent("ck").path, "--output", tmp.path]
    }

    func testSIGKILLMidRunThenRerunCompletesWithoutDuplicates() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (p, _) = try ablate(runArgs(db), wait: false)
        // Wait until at least one run has finished, then kill the scheduler mid-table.
        let deadline = Date().addingTimeInterval(120)
        var finishedBefore: [[String]] = []
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            if FileManager.default.fileExists(atPath: db),
               let rows = try? query(db, "SELECT id, started_at, ended_at FROM run WHERE status = 'finished' ORDER BY id"),
               !rows.isEmpty {
                finishedBefore = rows
                break
            }
        }
        XCTAssertFalse(finishedBefore.isEmpty, "no run finished within the deadline")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(try query(db, "PRAGMA integrity_check"), [["ok"]])

        let (status, text) = try output(runArgs(db))
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(try query(db, "PRAGMA integrity_check"), [["ok"]])
        let runs = try query(db, "SELECT row_name, seed, status FROM run ORDER BY row_name, seed")
        XCTAssertEqual(runs.count, 4, "\(runs)")   // 2 rows × 2 seeds, each exactly once
        XCTAssertTrue(runs.allSatisfy { $0[2] == "finished" || $0[2] == "diverged" }, "\(runs)")
        let ids = Set(finishedBefore.map { $0[0] })
        let after = try query(db, "SELECT id, started_at, ended_at FROM run ORDER BY id").filter { ids.contains($0[0]) }
        XCTAssertEqual(after, finishedBefore, "finished runs must not be redone")
        XCTAssertTrue(text.contains("reused \(finishedBefore.count)"), text)
    }

    /// A row with the configuration of another table's row (Table 1's baseline is Fig 2's) shows
    /// that table's runs without being run itself, in report, list and status.
    func testARunSharedByTwoTablesIsReportedInBoth() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (status, text) = try output(runArgs(db, seeds: 1))
        XCTAssertEqual(status, 0, text)
        let (s2, report) = try output(["report", "simsiam-table1", "--protocol", "smoke", "--seeds", "1", "--db", db, "--output", tmp.path])
        XCTAssertEqual(s2, 0, report)
        let baseline = try XCTUnwrap(report.split(separator: "\n").first { $0.hasPrefix("| baseline |") }, report)
        XCTAssertTrue(baseline.contains("(1 of 1 seeds)"), String(baseline))
        let noPredictor = try XCTUnwrap(report.split(separator: "\n").first { $0.hasPrefix("| no predictor |") }, report)
        XCTAssertTrue(noPredictor.contains("(0 of 1 seeds)"), String(noPredictor))   // its own config: never trained
        let (s3, status3) = try output(["status", "simsiam-table1", "--db", db])
        XCTAssertEqual(s3, 0, status3)
    }

    /// Table commands take several ids separated by commas (each once, in the order given); an
    /// unknown one is named, with nothing done.
    func testTableCommandsTakeSeveralIdsSeparatedByCommas() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (s, text) = try output(["status", "simsiam-table1, simsiam-fig2,simsiam-table1", "--db", db])
        XCTAssertEqual(s, 0, text)
        let tables = text.split(separator: "\n").filter { $0.hasPrefix("simsiam-") }.map { $0.prefix { $0 != ":" } }
        XCTAssertEqual(tables, ["simsiam-table1", "simsiam-fig2"], text)
        let (bad, error) = try output(["status", "simsiam-fig2,simsiam-nope", "--db", db])
        XCTAssertNotEqual(bad, 0)
        XCTAssertTrue(error.contains("simsiam-nope"), error)
    }

    /// Zhang Fig 5a's and Fig 6's rows are one configuration: run together, it trains once and is
    /// listed under both tables (it used to wait on itself as "held by another process").
    func testARunSharedByTwoTablesRunsOnce() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (status, text) = try output(["run", "zhang2022-fig5a,zhang2022-fig6", "--protocol", "smoke", "--seeds", "1", "--epochs", "1",
                                         "--db", db, "--checkpoints", tmp.appendingPathComponent("ck").path, "--output", tmp.path])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("ran 1, reused 1, failed 0 of 2"), text)
        XCTAssertFalse(text.contains("held by another process"), text)
        XCTAssertEqual(try query(db, "SELECT table_id FROM run_row ORDER BY table_id").map { $0[0] }, ["zhang2022-fig5a", "zhang2022-fig6"])
    }

    /// `--rows` splits at commas, but keeps a row name that holds one whole ("moving-average η, no h").
    func testRowsKeepsARowNameWithACommaWhole() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        for (rows, count) in [("moving-average η, no h, random start", 1), ("no h, no moving average,moving-average η, no h", 2)] {
            let (status, text) = try output(["run", "simsiam-moving-average", "--rows", rows, "--protocol", "smoke", "--seeds", "1",
                                             "--db", db, "--dry-run"])
            XCTAssertEqual(status, 0, text)
            XCTAssertTrue(text.contains("simsiam-moving-average: \(count) run(s), 0 finished, \(count) to run"), text)
        }
        let (status, text) = try output(["run", "simsiam-moving-average", "--rows", "moving-average η", "--protocol", "smoke",
                                         "--db", db, "--dry-run"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(text.contains("its rows: `moving-average η, no h`, `no h, no moving average`, "), text)
        XCTAssertTrue(text.contains("did you mean `moving-average η, no h`?"), text)
    }

    /// `run --dry-run` counts each table's runs, finished and to run, estimates the time from the
    /// stored epochs, runs nothing, and creates no database.
    func testDryRunCountsTheRunsLeftAndEstimatesTheirTimeWithoutRunningAny() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (s0, fresh) = try output(runArgs(db, seeds: 1) + ["--dry-run"])
        XCTAssertEqual(s0, 0, fresh)
        XCTAssertTrue(fresh.contains("simsiam-fig2: 2 run(s), 0 finished, 2 to run"), fresh)
        XCTAssertTrue(fresh.contains("no finished smoke run in the database"), fresh)
        XCTAssertFalse(FileManager.default.fileExists(atPath: db), "a dry run creates no database")

        let (s1, ran) = try output(runArgs(db, seeds: 1) + ["--rows", "baseline"])
        XCTAssertEqual(s1, 0, ran)
        let (s2, plan) = try output(runArgs(db, seeds: 2) + ["--dry-run", "--workers", "1"])
        XCTAssertEqual(s2, 0, plan)
        XCTAssertTrue(plan.contains("simsiam-fig2: 4 run(s), 1 finished, 3 to run"), plan)
        XCTAssertTrue(plan.contains("3 smoke run(s) to run (9 epochs): about"), plan)
        XCTAssertTrue(plan.contains("the mean of the 1 latest finished smoke run(s) here"), plan)
        XCTAssertEqual(try query(db, "SELECT COUNT(*) FROM run").first?.first, "1", "the dry run ran nothing")
    }

    func testTwoSchedulersOnOneDatabaseBothFinishWithoutDuplicates() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (a, outA) = try ablate(runArgs(db), wait: false)
        let (b, outB) = try ablate(runArgs(db), wait: false)
        let textA = String(decoding: outA.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let textB = String(decoding: outB.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        a.waitUntilExit(); b.waitUntilExit()
        XCTAssertEqual(a.terminationStatus, 0, textA)
        XCTAssertEqual(b.terminationStatus, 0, textB)
        XCTAssertFalse((textA + textB).contains("database is locked"))
        let runs = try query(db, "SELECT row_name, seed, status FROM run ORDER BY row_name, seed")
        XCTAssertEqual(runs.count, 4, "\(runs)")
        XCTAssertTrue(runs.allSatisfy { $0[2] == "finished" || $0[2] == "diverged" }, "\(runs)")
        XCTAssertEqual(try query(db, "PRAGMA integrity_check"), [["ok"]])
    }
}

extension CLITests {
    func testCtrlCMarksRunsInterruptedAndARerunCompletesThem() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (p, out) = try ablate(runArgs(db, seeds: 1), wait: false)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            if FileManager.default.fileExists(atPath: db),
               let rows = try? query(db, "SELECT count(*) FROM run WHERE status = 'running'"),
               let running = rows.first?.first.flatMap({ Int($0) }), running >= 1 { break }   // one per worker
        }
        kill(p.processIdentifier, SIGINT)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("interrupted"), text)
        XCTAssertEqual(try query(db, "PRAGMA integrity_check"), [["ok"]])
        XCTAssertEqual(try query(db, "SELECT count(*) FROM run WHERE status = 'running'"), [["0"]])
        let (status, rerun) = try output(runArgs(db, seeds: 1))
        XCTAssertEqual(status, 0, rerun)
        XCTAssertEqual(try query(db, "SELECT count(*) FROM run WHERE status = 'finished' OR status = 'diverged'"), [["2"]])
    }
}

extension CLITests {
    func testMissingDatasetIsReportedBeforeAnyRunStarts() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (status, text) = try output(["run", "simsiam-fig2", "--data", tmp.appendingPathComponent("none").path, "--db", db])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(text.contains("none/train-images-idx3-ubyte.gz") && text.contains("dataset-fashion-mnist"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: db), "nothing is recorded when the data is missing")
    }
}

extension CLITests {
    /// Every committed table runs on `smoke` (one seed): every row finishes (or diverges, a
    /// result) and every table renders with all its rows. What CI checks of each table.
    func testEveryTableRunsOnSmoke() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (status, text) = try output(["run", "all", "--protocol", "smoke", "--seeds", "1", "--workers", "2", "--db", db,
                                         "--checkpoints", tmp.appendingPathComponent("ck").path, "--output", tmp.path])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("note: simsiam-table2 `batch 4096`: batch 4096 is larger than `smoke`'s 2048 training images"), text)
        let states = try query(db, "SELECT DISTINCT status FROM run").flatMap { $0 }
        XCTAssertTrue(Set(states).isSubset(of: ["finished", "diverged"]), "\(states)")
        let experiments = CLITests.root.appendingPathComponent("experiments")
        let files = try XCTUnwrap(FileManager.default.subpaths(atPath: experiments.path)).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(files.count, 13)
        let listed = try query(db, "SELECT table_id, count(*) FROM run_row GROUP BY table_id")
        for row in listed {
            let markdown = try String(contentsOf: tmp.appendingPathComponent("\(row[0]).md"), encoding: .utf8)
            XCTAssertFalse(markdown.contains("missing") || markdown.contains("(0 of"), "\(row[0]): \(markdown)")
            let tableLines = markdown.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| row ") }
            XCTAssertEqual(tableLines.count, Int(row[1]), "\(row[0]): \(markdown)")
        }
        XCTAssertEqual(listed.count, files.count, "every table has runs: \(listed)")
    }

    /// A run stopped after epoch 2 of 3 resumes from its checkpoint: the database ends with epochs
    /// 1, 2, 3 of it, each once, its first start kept and the resume counted.
    func testARunInterruptedAfterEpochTwoKeepsItsEpochsWhenResumed() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        var args = runArgs(db, seeds: 1)
        args.insert(contentsOf: ["--rows", "baseline"], at: 2)
        let (p, out) = try ablate(args, wait: false)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            if FileManager.default.fileExists(atPath: db),
               let rows = try? query(db, "SELECT count(*) FROM metric WHERE key = 'loss' AND step = 2"), rows.first?.first == "1" { break }
        }
        kill(p.processIdentifier, SIGINT)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let before = try query(db, "SELECT id, status, started_at FROM run")
        XCTAssertEqual(before.count, 1, text)
        guard before.first?[1] == "failed" else {
            throw XCTSkip("the run finished before it could be interrupted (\(before)); nothing to resume")
        }
        let (status, rerun) = try output(args)
        XCTAssertEqual(status, 0, rerun)
        let id = before[0][0]
        XCTAssertEqual(try query(db, "SELECT status, started_at, attempts, resumed_at IS NOT NULL FROM run WHERE id = '\(id)'"),
                       [["finished", before[0][2], "2", "1"]])
        XCTAssertEqual(try query(db, "SELECT step FROM metric WHERE run_id = '\(id)' AND key = 'loss' ORDER BY step"),
                       [["1"], ["2"], ["3"]])
        XCTAssertEqual(try query(db, "SELECT count(*) FROM metric WHERE run_id = '\(id)' AND key = 'final.knn'"), [["1"]])
    }
}

extension CLITests {
    /// Bad input for the Slurm back end is reported before any run is claimed or submitted.
    func testSlurmBackEndWithoutSbatchOrWithAnUnwritableSpoolFailsBeforeAnythingIsRecorded() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (noSbatch, text) = try output(["run", "simsiam-fig2", "--protocol", "smoke", "--backend", "slurm", "--spool", tmp.path, "--db", db],
                                          environment: ["PATH": tmp.path])
        XCTAssertNotEqual(noSbatch, 0)
        XCTAssertTrue(text.contains("`sbatch` is not on the PATH (\(tmp.path))"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: db), "nothing is recorded")

        let (status, local) = try output(["run", "simsiam-fig2", "--detach", "--db", db])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(local.contains("--detach needs --backend slurm"), local)
        let (timeStatus, time) = try output(["run", "simsiam-fig2", "--backend", "slurm", "--time", "90min", "--db", db])
        XCTAssertNotEqual(timeStatus, 0)
        XCTAssertTrue(time.contains("--time `90min` is not a Slurm time limit; use HH:MM:SS"), time)
    }
}

extension CLITests {
    /// `ablate bench` measures ablate, PyTorch, PyTorch, ablate for the model table and reports
    /// the mean of each pair of medians (a drift in the machine's speed then cancels out). PyTorch
    /// is a stand-in here: a fake `python3` on PATH that says torch imports and answers the
    /// reference's JSON, 300 ms/step the first time and 100 the second.
    func testBenchAlternatesAblateAndPyTorchAndAveragesTheRounds() throws {
        let bin = tmp.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let counter = tmp.appendingPathComponent("calls").path
        let fake = """
        #!/bin/sh
        [ "$1" = "-c" ] && exit 0
        n=$(cat \(counter) 2>/dev/null || echo 0); n=$((n + 1)); echo $n > \(counter)
        ms=$([ $n = 1 ] && echo 300 || echo 100)
        echo '{"framework": "pytorch", "model": "mini", "widths": [16, 32, 64, 128], "batch": 256, "warmup_steps": 0, "timed_steps": 1, "ms_per_step_median": '$ms', "ms_per_step_mean": '$ms', "ms_per_step_min": '$ms', "images_per_second": 1, "peak_rss_kib": 1024, "setup_rss_kib": 512, "final_loss": -0.5, "threads": 2}'
        """
        let python = bin.appendingPathComponent("python3")
        try fake.write(to: python, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
        let reference = tmp.appendingPathComponent("bench_torch.py")
        try "# stand-in\n".write(to: reference, atomically: true, encoding: .utf8)
        let markdown = tmp.appendingPathComponent("bench.md")

        var env = ProcessInfo.processInfo.environment
        env["PATH"] = bin.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let (status, text) = try output(["bench", "--model", "mini", "--method", "none", "--no-split", "--steps", "1", "--warmup", "0",
                                         "--reference", reference.path, "--output", markdown.path], environment: env)
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("PyTorch reference (round 1 of 2)") && text.contains("ablate again (round 2 of 2)"), text)
        let report = try String(contentsOf: markdown, encoding: .utf8)
        let row = try XCTUnwrap(report.split(separator: "\n").first { $0.hasPrefix("| mini (16/32/64/128) |") }, report)
        XCTAssertEqual(row.split(separator: "|")[2].trimmingCharacters(in: .whitespaces), "200.0", String(row))
        XCTAssertTrue(report.contains("measured ablate, PyTorch, PyTorch, ablate (ablate "), report)
        XCTAssertTrue(report.contains("ms, PyTorch 300.0 and 100.0 ms; the columns are their means)"), report)
    }
}
