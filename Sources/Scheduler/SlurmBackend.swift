import Foundation

/// What `ablate run --backend slurm` passes to `sbatch` (nil: the cluster's default), and the
/// spool directory on storage shared by the submitting host and the nodes.
public struct SlurmOptions: Sendable, Equatable {
    public var partition: String?
    /// `--time`, e.g. `01:30:00`.
    public var time: String?
    public var cpusPerTask: Int?
    /// `--mem`, e.g. `4G`.
    public var mem: String?
    /// At most this many tasks of an array run at once (`--array=0-N%K`).
    public var arrayParallelism: Int?
    public var spool: String

    public init(partition: String? = nil, time: String? = nil, cpusPerTask: Int? = nil, mem: String? = nil,
                arrayParallelism: Int? = nil, spool: String) {
        self.partition = partition; self.time = time; self.cpusPerTask = cpusPerTask; self.mem = mem
        self.arrayParallelism = arrayParallelism; self.spool = spool
    }
}

/// Runs as tasks of Slurm job arrays: the runs claimed together become one `sbatch --array`
/// job per table. Each task runs `<executable> worker --spec <spool>/runs/<id>.json --events
/// <spool>/runs/<id>.events`; this process follows the tasks with `scontrol` and reads their
/// event files, so it stays the only database writer.
///
/// Spool layout: `runs/<id>.json` (the spec), `runs/<id>.events` (JSON lines), `runs/<id>.task`
/// (`<array job id>_<task>` of the attempt that holds the run), `checkpoints/<id>.ckpt`,
/// `arrays/<table>-<time>.sh` (the submitted script), `logs/<job>_<task>.out` (its output).
public final class SlurmBackend: BatchExecutionBackend {
    public let options: SlurmOptions
    let executable: String
    let workingDirectory: String
    let commands: SlurmCommands
    /// How often a followed array is asked for its state.
    public var refreshEvery: TimeInterval = 1
    /// How long a task Slurm reports COMPLETED may take to show its result in the event file
    /// (a network file system's attribute cache can lag behind the node that wrote it).
    public var resultGrace: TimeInterval = 10
    private var arrays: [String: SlurmArray] = [:]
    /// The array jobs submitted by this back end, in order.
    public private(set) var submittedJobs: [String] = []
    /// Runs found already queued, running or finished from an earlier submission, and followed.
    public private(set) var reattached: [String] = []

    public init(executable: String, options: SlurmOptions,
                workingDirectory: String = FileManager.default.currentDirectoryPath, commands: SlurmCommands = .system) {
        self.executable = executable
        var options = options
        options.spool = SlurmBackend.absolute(options.spool, in: workingDirectory)
        self.options = options
        self.workingDirectory = workingDirectory
        self.commands = commands
    }

    static func absolute(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
    }

    var runsDirectory: String { (options.spool as NSString).appendingPathComponent("runs") }
    func runFile(_ id: String, _ ext: String) -> String { (runsDirectory as NSString).appendingPathComponent("\(id).\(ext)") }

    /// The checks that must pass before anything is claimed or submitted: `sbatch` on the PATH,
    /// a writable spool, and the partition (when one is named) known to the cluster.
    public func preflight(path: String? = ProcessInfo.processInfo.environment["PATH"]) throws {
        guard SlurmCommands.which("sbatch", path: path) != nil else { throw SlurmError.noSbatch(path: path ?? "") }
        let fm = FileManager.default
        do {
            for sub in ["runs", "checkpoints", "arrays", "logs"] {
                try fm.createDirectory(atPath: (options.spool as NSString).appendingPathComponent(sub), withIntermediateDirectories: true)
            }
            let probe = (runsDirectory as NSString).appendingPathComponent(".write-test-\(getpid())")
            try Data().write(to: URL(fileURLWithPath: probe))
            try fm.removeItem(atPath: probe)
        } catch {
            throw SlurmError.spoolNotWritable(options.spool, reason: (error as NSError).localizedDescription)
        }
        if let partition = options.partition {
            let (status, output) = commands.run(["scontrol", "-o", "show", "partition", partition])
            if status != 0 || !output.contains("PartitionName=\(partition) ") {
                let listed = commands.run(["sinfo", "-h", "-o", "%R"]).output
                throw SlurmError.unknownPartition(partition, available: listed.split(separator: "\n").map(String.init))
            }
        }
    }

    public func launch(_ spec: Job, threads: Int) throws -> RunHandle {
        try launch(batch: [spec], threads: threads)[0]
    }

    /// Follows the runs an earlier submission still holds (queued, running, or finished with a
    /// result in its event file), and submits the others, one array job per table. `threads`
    /// is not used: a task's threads are its `--cpus-per-task`.
    public func launch(batch specs: [Job], threads: Int) throws -> [RunHandle] {
        var handles = [RunHandle?](repeating: nil, count: specs.count)
        for (i, handle) in reattach(specs).enumerated() where handle != nil {
            handles[i] = handle
            reattached.append(specs[i].id)
        }
        let toSubmit = specs.indices.filter { handles[$0] == nil }
        var tables: [String] = []
        for i in toSubmit where !tables.contains(specs[i].tableId) { tables.append(specs[i].tableId) }
        var submittedNow: [SlurmArray] = []
        do {
            for table in tables {
                let group = toSubmit.filter { specs[$0].tableId == table }
                let array = try submit(group.map { specs[$0] }, table: table)
                submittedNow.append(array)
                for (task, i) in group.enumerated() {
                    array.follow(task)
                    handles[i] = handle(specs[i].id, array, task)
                }
            }
        } catch {
            // All or nothing: what this call already submitted is cancelled.
            for array in submittedNow { _ = commands.run(["scancel", array.jobId]) }
            throw error
        }
        return handles.compactMap { $0 }
    }

    /// Handles on the attempts recorded in `runs/<id>.task` that may still deliver a result
    /// (queued, running, or ended with the result in the event file); nil for the others.
    /// Each array is asked once, or twice when a task is not listed (unlisted twice: cancelled).
    func reattach(_ specs: [Job]) -> [RunHandle?] {
        let recorded = specs.map { recordedTask($0.id) }
        var asked: Set<String> = []
        for case let (array, _)? in recorded where asked.insert(array.jobId).inserted {
            array.refresh()
            let unlisted = recorded.contains { entry in entry.map { $0.array === array && !array.lists($0.task) } ?? false }
            if unlisted { array.refresh() }
        }
        return zip(specs, recorded).map { spec, entry in
            guard let (array, task) = entry else { return nil }
            if array.state(of: task, refresh: false) == .active { return handle(spec.id, array, task) }
            let events = EventFile.read(runFile(spec.id, "events"))
            return events.contains { if case .finished = $0 { return true } else { return false } } ? handle(spec.id, array, task) : nil
        }
    }

    /// The array task `runs/<id>.task` names (the last attempt submitted for the run).
    private func recordedTask(_ runId: String) -> (array: SlurmArray, task: Int)? {
        guard let text = try? String(contentsOfFile: runFile(runId, "task"), encoding: .utf8) else { return nil }
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "_")
        guard parts.count == 2, let task = Int(parts[1]) else { return nil }
        let array = self.array(String(parts[0]))
        array.follow(task)
        return (array, task)
    }

    /// For each run the spool names a task for, that task and Slurm's word on it, e.g.
    /// `42_3 RUNNING (reason None, exit code 0:0, node n1)`; one `scontrol` per array.
    public func taskStates(_ runIds: [String]) -> [String: String] {
        var out: [String: String] = [:]
        var asked: Set<String> = []
        for id in runIds {
            guard let (array, task) = recordedTask(id) else { continue }
            if asked.insert(array.jobId).inserted { array.refresh() }
            out[id] = "\(array.jobId)_\(task) " + (array.listed(task)?.summary ?? "not listed by Slurm (ended before MinJobAge, or cancelled)")
        }
        return out
    }

    private func handle(_ runId: String, _ array: SlurmArray, _ task: Int) -> SlurmRunHandle {
        SlurmRunHandle(runId: runId, array: array, task: task, eventsPath: runFile(runId, "events"), resultGrace: resultGrace)
    }

    private func array(_ jobId: String) -> SlurmArray {
        if let a = arrays[jobId] { return a }
        let a = SlurmArray(jobId: jobId, commands: commands, refreshEvery: refreshEvery)
        arrays[jobId] = a
        return a
    }

    /// The `sbatch` options for an array of `count` tasks of `table`.
    func sbatchArguments(table: String, count: Int) -> [String] {
        var args = ["sbatch", "--parsable", "--job-name=ablate-\(table)",
                    "--array=0-\(count - 1)" + (options.arrayParallelism.map { "%\($0)" } ?? ""),
                    "--output=" + (options.spool as NSString).appendingPathComponent("logs/%A_%a.out"),
                    "--chdir=\(workingDirectory)", "--no-requeue", "--hold"]
        if let p = options.partition { args.append("--partition=\(p)") }
        if let t = options.time { args.append("--time=\(t)") }
        if let c = options.cpusPerTask { args.append("--cpus-per-task=\(c)") }
        if let m = options.mem { args.append("--mem=\(m)") }
        return args
    }

    /// Writes the specs and the batch script to the spool and submits one array job.
    private func submit(_ specs: [Job], table: String) throws -> SlurmArray {
        let fm = FileManager.default
        let safeTable = String(table.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        let encoder = JSONEncoder()
        for var spec in specs {
            // Checkpoints live on the spool, where the next attempt (on any node) finds them.
            spec.checkpointPath = (options.spool as NSString).appendingPathComponent("checkpoints/\(spec.id).ckpt")
            try encoder.encode(spec).write(to: URL(fileURLWithPath: runFile(spec.id, "json")), options: .atomic)
            try? fm.removeItem(atPath: runFile(spec.id, "events"))
            try? fm.removeItem(atPath: runFile(spec.id, "task"))
        }
        let script = (options.spool as NSString).appendingPathComponent(
            "arrays/\(safeTable)-\(Int(Date().timeIntervalSince1970 * 1000)).sh")
        try SlurmBackend.script(executable: executable, runsDirectory: runsDirectory, runIds: specs.map(\.id), table: table)
            .write(toFile: script, atomically: true, encoding: .utf8)
        let args = sbatchArguments(table: safeTable, count: specs.count) + [script]
        let (status, output) = commands.run(args)
        let jobId = output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard status == 0, !jobId.isEmpty, jobId.allSatisfy(\.isNumber) else {
            throw SlurmError.submissionFailed(command: args.joined(separator: " "), output: output)
        }
        submittedJobs.append(jobId)
        // Submitted held, released once every run's task is on the spool: if this process dies
        // in between, nothing runs that a rerun would not know about (it would submit it again).
        do {
            for (task, spec) in specs.enumerated() {
                try "\(jobId)_\(task)\n".write(toFile: runFile(spec.id, "task"), atomically: true, encoding: .utf8)
            }
            let (released, message) = commands.run(["scontrol", "release", jobId])
            guard released == 0 else { throw SlurmError.submissionFailed(command: "scontrol release \(jobId)", output: message) }
        } catch {
            _ = commands.run(["scancel", jobId])
            throw error
        }
        return array(jobId)
    }

    /// The batch script: task i runs the i-th run id.
    static func script(executable: String, runsDirectory: String, runIds: [String], table: String) -> String {
        func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return """
        #!/bin/bash
        # ablate: \(runIds.count) run(s) of table \(table), one per array task.
        runs=(\(runIds.joined(separator: " ")))
        id=${runs[$SLURM_ARRAY_TASK_ID]}
        dir=\(quoted(runsDirectory))
        export ABLATE_THREADS=${SLURM_CPUS_PER_TASK:-1}
        exec \(quoted(executable)) worker --spec "$dir/$id.json" --events "$dir/$id.events"

        """
    }
}

/// Reads a task's JSON-line event file as it grows.
enum EventFile {
    static func read(_ path: String) -> [WorkerEvent] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { WorkerEvent.parse(String($0)) }
    }
}

/// One array task: its events come from its event file; when Slurm reports the task ended
/// without a result in the file, a `failed` event with Slurm's state and reason is delivered.
final class SlurmRunHandle: RunHandle {
    let runId: String
    let array: SlurmArray
    let task: Int
    let eventsPath: String
    let resultGrace: TimeInterval
    private var completedAt: Date?
    private var offset: UInt64 = 0
    private var partial = Data()
    private var exited = false

    init(runId: String, array: SlurmArray, task: Int, eventsPath: String, resultGrace: TimeInterval) {
        self.runId = runId; self.array = array; self.task = task; self.eventsPath = eventsPath; self.resultGrace = resultGrace
    }

    var label: String { "Slurm task \(array.jobId)_\(task)" }

    func poll() -> [WorkerEvent] {
        guard !exited else { return [] }
        var events = readNew()
        if !events.contains(where: isResult) {
            let state = array.state(of: task)
            guard state != .active else { return events }
            events += readNew()   // what the task wrote before it ended
            if !events.contains(where: isResult), case let .ended(s) = state, s.state == "COMPLETED" {
                // The worker exited 0, so its result is on its way to this host's view of the file.
                completedAt = completedAt ?? Date()
                if Date().timeIntervalSince(completedAt ?? Date()) < resultGrace { return events }
            }
            if !events.contains(where: isResult) {
                let what: String
                switch state {
                case let .ended(s): what = s.summary
                default: what = "CANCELLED (no longer listed by Slurm: cancelled before it started)"
                }
                events.append(.failed(runId: runId, message: "\(label) \(what); rerun to resume from its last checkpoint"))
            }
        }
        exited = true
        return events
    }

    private func isResult(_ e: WorkerEvent) -> Bool {
        switch e { case .finished, .failed: return true; default: return false }
    }

    private func readNew() -> [WorkerEvent] {
        guard let fh = FileHandle(forReadingAtPath: eventsPath) else { return [] }
        defer { try? fh.close() }
        try? fh.seek(toOffset: offset)
        let data = fh.readDataToEndOfFile()
        offset += UInt64(data.count)
        partial.append(data)
        var out: [WorkerEvent] = []
        while let nl = partial.firstIndex(of: 0x0A) {
            let line = String(decoding: partial[partial.startIndex..<nl], as: UTF8.self)
            partial.removeSubrange(partial.startIndex...nl)
            if let e = WorkerEvent.parse(line) { out.append(e) }
        }
        return out
    }

    var hasExited: Bool { exited }

    func terminate() {
        guard !exited else { return }
        array.cancel(task)
        exited = true
    }
}
