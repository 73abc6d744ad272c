import Foundation
@testable import Scheduler
import SSL
import XCTest

/// Slurm as its commands answer: `sbatch` prints a job id, `scontrol` the task states a test
/// sets. Every call is logged. (The real cluster is exercised by CLITests/SlurmClusterTests.)
final class FakeSlurm: @unchecked Sendable {
    private let lock = NSLock()
    private var _calls: [[String]] = []
    private var nextJob = 100
    /// `scontrol -o show job <id>` output per job id; a missing id answers "Invalid job id".
    var jobs: [String: String] = [:]
    var partitions = ["debug"]

    var calls: [[String]] { lock.lock(); defer { lock.unlock() }; return _calls }
    var submissions: [[String]] { calls.filter { $0.first == "sbatch" } }

    var commands: SlurmCommands {
        SlurmCommands { [self] args in
            lock.lock(); defer { lock.unlock() }
            _calls.append(args)
            switch args.first {
            case "sbatch":
                nextJob += 1
                return (0, "\(nextJob)\n")
            case "scontrol" where args.dropFirst().first == "release":
                return (0, "")
            case "scontrol" where args.dropLast().last == "job":
                guard let text = jobs[args.last!] else { return (1, "slurm_load_jobs error: Invalid job id specified\n") }
                return (0, text)
            case "scontrol":
                return partitions.contains(args.last!) ? (0, "PartitionName=\(args.last!) AllowGroups=ALL\n") : (1, "Partition \(args.last!) not found\n")
            case "sinfo":
                return (0, partitions.map { $0 + "\n" }.joined())
            default:
                return (0, "")
            }
        }
    }

    static func task(_ job: String, _ tasks: String, _ state: String, reason: String = "None", exit: String = "0:0", node: String = "n1") -> String {
        "JobId=1 ArrayJobId=\(job) ArrayTaskId=\(tasks) JobName=ablate JobState=\(state) Reason=\(reason) Dependency=(null) ExitCode=\(exit) NodeList=\(node) WorkDir=/w\n"
    }
}

final class SlurmBackendTests: XCTestCase {
    var tmp: URL!
    let slurm = FakeSlurm()

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ablate-slurm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func backend(_ options: SlurmOptions? = nil) throws -> SlurmBackend {
        let b = SlurmBackend(executable: "/opt/ablate's/ablate", options: options ?? SlurmOptions(spool: tmp.appendingPathComponent("spool").path),
                             workingDirectory: tmp.path, commands: slurm.commands)
        b.refreshEvery = 0
        try b.preflight(path: try fakeSbatchPath())
        return b
    }

    /// A PATH with an executable `sbatch` in it (preflight only looks for it).
    func fakeSbatchPath() throws -> String {
        let bin = tmp.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let sbatch = bin.appendingPathComponent("sbatch")
        if !FileManager.default.fileExists(atPath: sbatch.path) {
            try "#!/bin/sh\n".write(to: sbatch, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: sbatch.path)
        }
        return bin.path
    }

    func job(_ table: String, _ row: String) throws -> Job {
        var j = try Fixture.job(row)
        j.tableId = table
        j.id = "\(table)-\(row)"
        return j
    }

    func appendEvents(_ b: SlurmBackend, _ id: String, _ events: [WorkerEvent]) throws {
        let path = b.runFile(id, "events")
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        let fh = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try fh.seekToEnd()
        fh.write(Data(events.map { $0.line() + "\n" }.joined().utf8))
        try fh.close()
    }

    // MARK: - Reading scontrol

    func testScontrolLinesGiveEachTaskItsStateIncludingCollapsedPendingRanges() {
        let text = FakeSlurm.task("7", "0", "COMPLETED") + FakeSlurm.task("7", "1", "FAILED", reason: "NonZeroExitCode", exit: "0:9")
            + FakeSlurm.task("7", "2-4%2", "PENDING", reason: "JobArrayTaskLimit", node: "(null)") + FakeSlurm.task("8", "5", "RUNNING")
        let tasks = SlurmTaskState.parse(scontrol: text, arrayJobId: "7")
        XCTAssertEqual(tasks.keys.sorted(), [0, 1, 2, 3, 4])
        XCTAssertEqual(tasks[1], SlurmTaskState(state: "FAILED", reason: "NonZeroExitCode", exitCode: "0:9", node: "n1"))
        XCTAssertEqual(tasks[3]?.node, nil)
        XCTAssertEqual(tasks[3]?.isActive, true)
        XCTAssertEqual(tasks[1]?.summary, "FAILED (reason NonZeroExitCode, exit code 0:9, node n1)")
        XCTAssertEqual(SlurmTaskState.taskIndices("1,3-4"), [1, 3, 4])
        XCTAssertEqual(SlurmTaskState.taskIndices("0-6:2%1"), [0, 2, 4, 6])
    }

    // MARK: - Submitting

    func testOneArrayPerTableWithTheSbatchOptionsAndASpecPerRun() throws {
        let b = try backend(SlurmOptions(partition: "debug", time: "01:00:00", cpusPerTask: 2, mem: "2G", arrayParallelism: 3,
                                         spool: tmp.appendingPathComponent("spool").path))
        let jobs = try [job("t1", "a"), job("t2", "a"), job("t1", "b")]
        let handles = try b.launch(batch: jobs, threads: 1)

        XCTAssertEqual(handles.map(\.runId), jobs.map(\.id))
        XCTAssertEqual(b.submittedJobs, ["101", "102"])
        let spool = tmp.appendingPathComponent("spool").path
        XCTAssertEqual(slurm.submissions.map { Array($0.dropLast()) }, [
            ["sbatch", "--parsable", "--job-name=ablate-t1", "--array=0-1%3", "--output=\(spool)/logs/%A_%a.out", "--chdir=\(tmp.path)",
             "--no-requeue", "--hold", "--partition=debug", "--time=01:00:00", "--cpus-per-task=2", "--mem=2G"],
            ["sbatch", "--parsable", "--job-name=ablate-t2", "--array=0-0%3", "--output=\(spool)/logs/%A_%a.out", "--chdir=\(tmp.path)",
             "--no-requeue", "--hold", "--partition=debug", "--time=01:00:00", "--cpus-per-task=2", "--mem=2G"],
        ])
        XCTAssertEqual(slurm.calls.filter { $0.first == "scontrol" && $0.dropFirst().first == "release" }, [
            ["scontrol", "release", "101"], ["scontrol", "release", "102"],
        ], "submitted held, released once the spool names every task")
        let script = try String(contentsOfFile: try XCTUnwrap(slurm.submissions.first?.last), encoding: .utf8)
        XCTAssertTrue(script.contains("runs=(t1-a t1-b)"), script)
        XCTAssertTrue(script.contains(#"exec '/opt/ablate'\''s/ablate' worker --spec "$dir/$id.json" --events "$dir/$id.events""#), script)
        XCTAssertEqual(try String(contentsOfFile: b.runFile("t1-b", "task"), encoding: .utf8), "101_1\n")
        let spec = try JSONDecoder().decode(Job.self, from: Data(contentsOf: URL(fileURLWithPath: b.runFile("t1-b", "json"))))
        XCTAssertEqual(spec.checkpointPath, "\(spool)/checkpoints/t1-b.ckpt", "checkpoints live on the shared spool")
    }

    // MARK: - Following tasks

    func testEventsArriveFromTheFileAndTheResultEndsTheRun() throws {
        let b = try backend()
        let j = try job("t", "a")
        let handle = try b.launch(batch: [j], threads: 1)[0]
        slurm.jobs["101"] = FakeSlurm.task("101", "0", "RUNNING")
        XCTAssertTrue(handle.poll().isEmpty)
        try appendEvents(b, j.id, Fixture.succeeds(j.id, epochs: 2).flatMap { $0 })
        let events = handle.poll()
        XCTAssertEqual(events.count, 6)
        guard case .finished? = events.last else { return XCTFail("\(events)") }
        XCTAssertTrue(handle.hasExited)
    }

    func testATaskThatEndsWithoutAResultFailsWithSlurmsStateAndReason() throws {
        let b = try backend()
        let j = try job("t", "a")
        let handle = try b.launch(batch: [j], threads: 1)[0]
        try appendEvents(b, j.id, [.started(runId: j.id, resumedEpochs: 0)])
        slurm.jobs["101"] = FakeSlurm.task("101", "0", "TIMEOUT", reason: "TimeLimit", exit: "0:15")
        let events = handle.poll()
        guard case .started? = events.first, case let .failed(_, message)? = events.last, events.count == 2 else { return XCTFail("\(events)") }
        XCTAssertEqual(message, "Slurm task 101_0 TIMEOUT (reason TimeLimit, exit code 0:15, node n1); rerun to resume from its last checkpoint")
        XCTAssertTrue(handle.hasExited)
    }

    /// A task that exited 0 may show its result a little later (a network file system's cache):
    /// it is waited for, up to `resultGrace`; then the run fails saying so.
    func testACompletedTaskGetsTimeForItsResultToShowUp() throws {
        let b = try backend()
        b.resultGrace = 0.2
        let handles = try b.launch(batch: [job("t", "a"), job("t", "b")], threads: 1)
        slurm.jobs["101"] = FakeSlurm.task("101", "0-1", "COMPLETED")
        XCTAssertTrue(handles[0].poll().isEmpty)
        XCTAssertFalse(handles[0].hasExited)
        try appendEvents(b, "t-a", Fixture.succeeds("t-a").flatMap { $0 })
        guard case .finished? = handles[0].poll().last else { return XCTFail("the late result is collected") }

        XCTAssertTrue(handles[1].poll().isEmpty)
        Thread.sleep(forTimeInterval: 0.25)
        guard case let .failed(_, message)? = handles[1].poll().last else { return XCTFail("no result after the grace") }
        XCTAssertTrue(message.hasPrefix("Slurm task 101_1 COMPLETED (reason None, exit code 0:0"), message)
    }

    /// A task cancelled while pending can vanish from `scontrol`: unlisted twice, it is cancelled.
    func testATaskNoLongerListedCountsAsCancelled() throws {
        let b = try backend()
        let handles = try b.launch(batch: [job("t", "a"), job("t", "b")], threads: 1)
        slurm.jobs["101"] = FakeSlurm.task("101", "0", "RUNNING")
        XCTAssertTrue(handles[1].poll().isEmpty, "unlisted once: not yet")
        let events = handles[1].poll()
        guard case let .failed(_, message)? = events.last else { return XCTFail("\(events)") }
        XCTAssertTrue(message.hasPrefix("Slurm task 101_1 CANCELLED"), message)
        XCTAssertFalse(handles[0].hasExited)
        handles[0].terminate()
        XCTAssertEqual(slurm.calls.last, ["scancel", "101_0"])
    }

    /// A later submission follows what an earlier one still holds: a running task and a task
    /// finished with its result on the spool; only the run whose task failed is resubmitted.
    func testResubmitsOnlyRunsWithoutALiveOrFinishedTask() throws {
        let first = try backend()
        let jobs = try [job("t", "a"), job("t", "b"), job("t", "c"), job("t", "d")]
        _ = try first.launch(batch: jobs, threads: 1)
        try appendEvents(first, "t-b", Fixture.succeeds("t-b").flatMap { $0 })
        try appendEvents(first, "t-c", [.started(runId: "t-c", resumedEpochs: 0)])
        slurm.jobs["101"] = FakeSlurm.task("101", "0", "RUNNING") + FakeSlurm.task("101", "1", "COMPLETED")
            + FakeSlurm.task("101", "2", "CANCELLED")
        // Task 3 was cancelled while pending and is listed nowhere any more.

        let second = try backend()
        let handles = try second.launch(batch: jobs, threads: 1)
        XCTAssertEqual(second.reattached, ["t-a", "t-b"])
        XCTAssertEqual(slurm.calls.filter { $0 == ["scontrol", "-o", "show", "job", "101"] }.count, 2,
                       "one look at the array, and one more because a task is not listed")
        XCTAssertEqual(second.submittedJobs, ["102"])
        XCTAssertTrue(try String(contentsOfFile: slurm.submissions[1].last!, encoding: .utf8).contains("runs=(t-c t-d)"))
        XCTAssertEqual(try String(contentsOfFile: second.runFile("t-c", "task"), encoding: .utf8), "102_0\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: second.runFile("t-c", "events")), "the old attempt's events are gone")
        guard case .finished? = handles[1].poll().last else { return XCTFail("the finished run's result is collected") }
    }

    // MARK: - Bad input, before anything is submitted

    func testNoSbatchOnThePath() throws {
        let b = SlurmBackend(executable: "/x", options: SlurmOptions(spool: tmp.path), commands: slurm.commands)
        XCTAssertThrowsError(try b.preflight(path: tmp.appendingPathComponent("nowhere").path)) { error in
            XCTAssertTrue("\(error)".contains("`sbatch` is not on the PATH"), "\(error)")
        }
    }

    func testUnwritableSpoolAndUnknownPartition() throws {
        let file = tmp.appendingPathComponent("a-file")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        let path = try fakeSbatchPath()
        let spoolUnderFile = SlurmBackend(executable: "/x", options: SlurmOptions(spool: file.appendingPathComponent("spool").path),
                                          commands: slurm.commands)
        XCTAssertThrowsError(try spoolUnderFile.preflight(path: path)) { error in
            XCTAssertTrue("\(error)".contains("the spool directory \(file.path)/spool is not writable"), "\(error)")
        }
        let badPartition = SlurmBackend(executable: "/x", options: SlurmOptions(partition: "gpu", spool: tmp.path), commands: slurm.commands)
        XCTAssertThrowsError(try badPartition.preflight(path: path)) { error in
            XCTAssertEqual("\(error)", "Slurm has no partition `gpu`; available: debug (--partition)")
        }
        XCTAssertTrue(slurm.submissions.isEmpty)
    }
}
