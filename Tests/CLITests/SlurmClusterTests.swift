import Foundation
import XCTest

/// The Slurm back end against a real Slurm: the one-node cluster of
/// `scripts/slurm-test-cluster.sh up` (CI brings it up before `make test`). Skipped, saying so,
/// when `sbatch` is not on the PATH or no cluster answers.
final class SlurmClusterTests: XCTestCase {
    var tmp: URL!
    var env: [String: String] = [:]

    /// Why the cluster tests are skipped (nil: a cluster answers); found out once per test run.
    nonisolated(unsafe) static var unavailable: String??

    override func setUpWithError() throws {
        env = ProcessInfo.processInfo.environment
        if env["SLURM_CONF"] == nil {
            let conf = (env["ABLATE_SLURM_DIR"] ?? "/tmp/ablate-slurm") + "/slurm.conf"
            if FileManager.default.fileExists(atPath: conf) { env["SLURM_CONF"] = conf }
        }
        if SlurmClusterTests.unavailable == nil { SlurmClusterTests.unavailable = .some(clusterProblem()) }
        if let reason = SlurmClusterTests.unavailable ?? nil { throw XCTSkip(reason) }
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ablate-slurm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let tmp { try? FileManager.default.removeItem(at: tmp) } }

    /// Nil when `sbatch` is on the PATH and `sinfo` sees a node; otherwise what is missing.
    func clusterProblem() -> String? {
        let path = env["PATH"] ?? ""
        guard path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/sbatch") }) else {
            return "no `sbatch` on the PATH; install slurmctld slurmd slurm-client and run scripts/slurm-test-cluster.sh up"
        }
        // Without a slurm.conf, sinfo retries for a minute before it fails.
        let conf = env["SLURM_CONF"] ?? "/etc/slurm/slurm.conf"
        guard FileManager.default.fileExists(atPath: conf) else {
            return "no Slurm configuration at \(conf); run scripts/slurm-test-cluster.sh up (or set SLURM_CONF)"
        }
        let (status, states) = command(["sinfo", "-h", "-o", "%T"])
        guard status == 0, states.contains("idle") || states.contains("mixed") || states.contains("allocated") else {
            return "no Slurm cluster answers (sinfo: \(states.trimmingCharacters(in: .whitespacesAndNewlines))); run scripts/slurm-test-cluster.sh up"
        }
        return nil
    }

    @discardableResult
    func command(_ args: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        guard (try? p.run()) != nil else { return (127, "") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    var spool: String { tmp.appendingPathComponent("spool").path }

    func args(_ db: String, rows: String? = "baseline", seeds: Int = 1, slurm extra: [String]? = []) -> [String] {
        var a = ["run", "simsiam-fig2", "--protocol", "smoke", "--seeds", "\(seeds)", "--db", db, "--output", tmp.path,
                 "--checkpoints", tmp.appendingPathComponent("ck").path]
        if let rows { a += ["--rows", rows] }
        if let extra { a += ["--backend", "slurm", "--spool", spool] + extra }
        return a
    }

    /// `ablate` with SLURM_CONF pointing at the test cluster; waits unless `wait` is false.
    func ablate(_ args: [String], wait: Bool = true) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = CLITests.executable
        p.arguments = args
        p.currentDirectoryURL = CLITests.root
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return (p, out)
    }

    func output(_ args: [String]) throws -> (status: Int32, text: String) {
        let (p, out) = try ablate(args)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func finals(_ db: String) throws -> [[String]] {
        try CLITests.query(db, """
            SELECT run_id, key, value FROM metric WHERE key LIKE 'final.%'
            AND key NOT IN ('final.peak_rss_mib', 'final.epoch_seconds') ORDER BY run_id, key
            """)
    }

    /// Waits until `condition` holds (polling), failing after `seconds`.
    func waitFor(_ what: String, seconds: Double = 120, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTFail("timed out waiting for \(what)")
        throw XCTSkip("gave up")
    }

    func taskFiles() -> [String: String] {
        let dir = spool + "/runs"
        var out: [String: String] = [:]
        for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where f.hasSuffix(".task") {
            out[String(f.dropLast(5))] = (try? String(contentsOfFile: dir + "/" + f, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return out
    }

    /// The acceptance check: both rows of Fig 2 as one array give the local run's ids and metrics.
    func testSmokeTableAsOneArrayMatchesALocalRunOfTheSameSeeds() throws {
        let local = tmp.appendingPathComponent("local.sqlite").path
        let onSlurm = tmp.appendingPathComponent("slurm.sqlite").path
        let (s1, t1) = try output(args(local, rows: nil, slurm: nil) + ["--workers", "2"])
        XCTAssertEqual(s1, 0, t1)
        let (s2, t2) = try output(args(onSlurm, rows: nil))
        XCTAssertEqual(s2, 0, t2)
        XCTAssertTrue(t2.contains("ran 2, reused 0, failed 0 of 2"), t2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool + "/arrays").count, 1, "one sbatch for the table")
        XCTAssertEqual(Set(taskFiles().values.map { $0.split(separator: "_")[1] }), ["0", "1"], "one array, two tasks")

        let runs = "SELECT id, row_name, seed, status FROM run ORDER BY id"
        XCTAssertEqual(try CLITests.query(onSlurm, runs), try CLITests.query(local, runs))
        let a = try finals(local), b = try finals(onSlurm)
        XCTAssertEqual(a.map { $0.prefix(2) }, b.map { $0.prefix(2) })
        XCTAssertFalse(a.isEmpty)
        for (x, y) in zip(a, b) {
            let u = Double(x[2]) ?? .nan, v = Double(y[2]) ?? .nan
            XCTAssertTrue(x[2] == y[2] || abs(u - v) <= 1e-4 * max(1, abs(u)), "\(x) vs \(y)")
        }
        let epochs = "SELECT run_id, step FROM metric WHERE key = 'loss' ORDER BY run_id, step"
        XCTAssertEqual(try CLITests.query(onSlurm, epochs), try CLITests.query(local, epochs))
    }

    /// A task cancelled while it waits its turn (`--array-parallelism 1`) is recorded failed with
    /// Slurm's state; the rerun submits only that run, and the finished one is not redone.
    func testScancelOfOneTaskThenARerunCompletesIt() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (p, out) = try ablate(args(db, seeds: 2, slurm: ["--array-parallelism", "1"]), wait: false)
        var tasks: [String: String] = [:]
        try waitFor("the array to be submitted") { tasks = taskFiles(); return tasks.count == 2 }
        let cancelled = try XCTUnwrap(tasks.first { $0.value.hasSuffix("_1") })
        command(["scancel", cancelled.value])
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1, text)
        let failed = try CLITests.query(db, "SELECT id, error FROM run WHERE status = 'failed'")
        XCTAssertEqual(failed.map { $0[0] }, [cancelled.key], text)
        XCTAssertTrue(failed.first?[1].contains("Slurm task \(cancelled.value) CANCELLED") == true, "\(failed)")
        let finished = try CLITests.query(db, "SELECT id, started_at, ended_at FROM run WHERE status = 'finished' OR status = 'diverged'")
        XCTAssertEqual(finished.count, 1)

        let (status, rerun) = try output(args(db, seeds: 2))
        XCTAssertEqual(status, 0, rerun)
        XCTAssertTrue(rerun.contains("ran 1, reused 1, failed 0 of 2"), rerun)
        XCTAssertEqual(try CLITests.query(db, "SELECT count(*) FROM run WHERE status = 'finished' OR status = 'diverged'"), [["2"]])
        XCTAssertEqual(try CLITests.query(db, "SELECT id, started_at, ended_at FROM run WHERE id = '\(finished[0][0])'"), finished)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool + "/arrays").count, 2)
    }

    /// `kill -9` of the worker on the node after its first epoch: the task fails (Slurm says
    /// why), the run is recorded failed, and the rerun resumes it from the spool's checkpoint.
    func testTaskKilledOnTheNodeIsRecordedFailedAndResumedByARerun() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (p, out) = try ablate(args(db, slurm: []), wait: false)
        var runId = ""
        try waitFor("the task's first epoch") {
            guard let id = taskFiles().keys.first,
                  let events = try? String(contentsOfFile: "\(spool)/runs/\(id).events", encoding: .utf8) else { return false }
            runId = id
            return events.contains(#"{"epoch":"#)
        }
        let worker = try XCTUnwrap(workerPid(specPath: "\(spool)/runs/\(runId).json"), "the worker process of \(runId)")
        kill(worker, SIGKILL)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1, text)
        let before = try CLITests.query(db, "SELECT status, error FROM run WHERE id = '\(runId)'")
        XCTAssertEqual(before.first?[0], "failed", text)
        XCTAssertTrue(before.first?[1].contains("FAILED") == true && before.first?[1].contains("exit code 0:9") == true, "\(before)")

        let (status, rerun) = try output(args(db))
        XCTAssertEqual(status, 0, rerun)
        XCTAssertEqual(try CLITests.query(db, "SELECT status, attempts, resumed_at IS NOT NULL FROM run WHERE id = '\(runId)'"),
                       [["finished", "2", "1"]])
        XCTAssertEqual(try CLITests.query(db, "SELECT step FROM metric WHERE run_id = '\(runId)' AND key = 'loss' ORDER BY step"),
                       [["1"], ["2"], ["3"]])
    }

    /// `--detach` returns once the array is submitted; the same command later follows the task
    /// (it is not submitted again) and stores its result.
    func testDetachThenTheSameCommandCollects() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (s1, t1) = try output(args(db, slurm: ["--detach"]))
        XCTAssertEqual(s1, 0, t1)
        XCTAssertTrue(t1.contains("submitted 1, reused 0 of 1; run the same command again"), t1)
        XCTAssertEqual(try CLITests.query(db, "SELECT status FROM run"), [["running"]])
        let (s0, status) = try output(["status", "simsiam-fig2", "--spool", spool, "--db", db])
        XCTAssertEqual(s0, 0, status)
        XCTAssertTrue(status.contains("simsiam-fig2: 1 run(s) stored, 1 running") && status.contains("baseline seed 0: running, Slurm task "), status)
        let (s2, t2) = try output(args(db))
        XCTAssertEqual(s2, 0, t2)
        XCTAssertTrue(t2.contains("followed 1 run(s) submitted earlier") && t2.contains("ran 1, reused 0, failed 0 of 1"), t2)
        XCTAssertEqual(try CLITests.query(db, "SELECT status FROM run"), [["finished"]])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool + "/arrays").count, 1, "submitted once")
    }

    /// The pid of `ablate worker --spec <specPath>` (on this one-node cluster, a local process).
    func workerPid(specPath: String) -> pid_t? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if argv.contains("worker") && argv.contains(specPath) { return pid }
        }
        return nil
    }
}

extension SlurmClusterTests {
    /// The same table submitted twice at once: the second command finds the runs claimed by the
    /// first, waits, and reuses them; one array is submitted, each run trains once.
    func testSubmittingATableTwiceAtOnceRunsEachRunOnce() throws {
        let db = tmp.appendingPathComponent("db.sqlite").path
        let (a, outA) = try ablate(args(db, seeds: 2, slurm: []), wait: false)
        try waitFor("the first array") { taskFiles().count == 2 }
        let (b, outB) = try ablate(args(db, seeds: 2, slurm: []), wait: false)
        let textA = String(decoding: outA.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let textB = String(decoding: outB.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        a.waitUntilExit(); b.waitUntilExit()
        XCTAssertEqual(a.terminationStatus, 0, textA)
        XCTAssertEqual(b.terminationStatus, 0, textB)
        XCTAssertTrue(textB.contains("ran 0, reused 2, failed 0 of 2"), textB)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool + "/arrays").count, 1, "one submission")
        XCTAssertEqual(try CLITests.query(db, "SELECT status, attempts FROM run"), [["finished", "1"], ["finished", "1"]])
    }
}
