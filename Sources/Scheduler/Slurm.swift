import Foundation

// What the Slurm back end asks of Slurm, and how it reads the answers. It relies on:
// `sbatch --parsable --hold` (prints `<job id>[;<cluster>]`), `scontrol release <id>`,
// `scontrol -o show job <id>` (one line per array task, or per range of pending tasks:
// `ArrayJobId`, `ArrayTaskId`, `JobState`, `Reason`, `ExitCode`, `NodeList`),
// `scontrol -o show partition <p>`, `sinfo -h -o %R` and `scancel <id>[_<task>]`. Not `sacct`:
// it needs slurmdbd, which small clusters often lack; finished tasks stay visible to
// `scontrol` for the cluster's `MinJobAge`.

/// Runs a Slurm command; the output is stdout and stderr together.
public struct SlurmCommands: Sendable {
    public var run: @Sendable ([String]) -> (status: Int32, output: String)

    public init(run: @escaping @Sendable ([String]) -> (status: Int32, output: String)) { self.run = run }

    /// The commands on this machine's PATH (a command that is missing exits 127).
    public static let system = SlurmCommands { args in
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return (127, "\(args[0]): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The full path of `name` on `path` (a PATH value), nil if it is not there.
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for dir in (path ?? "").split(separator: ":") {
            let candidate = (String(dir) as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// The state of one array task as `scontrol -o show job` reports it.
public struct SlurmTaskState: Sendable, Equatable {
    public var state: String
    public var reason: String?
    public var exitCode: String?
    public var node: String?

    public init(state: String, reason: String? = nil, exitCode: String? = nil, node: String? = nil) {
        self.state = state; self.reason = reason; self.exitCode = exitCode; self.node = node
    }

    /// States in which the task may still run (or is being cleaned up after running).
    static let activeStates: Set<String> = ["PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                                            "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
                                            "RESV_DEL_HOLD", "SPECIAL_EXIT"]
    public var isActive: Bool { SlurmTaskState.activeStates.contains(state) }

    /// "FAILED (reason NonZeroExitCode, exit code 0:9, node n1)".
    public var summary: String {
        let details = [reason.map { "reason \($0)" }, exitCode.map { "exit code \($0)" }, node.map { "node \($0)" }].compactMap { $0 }
        return details.isEmpty ? state : "\(state) (\(details.joined(separator: ", ")))"
    }

    /// The tasks of array job `arrayJobId` in the output of `scontrol -o show job <id>`.
    /// Pending tasks may share a line (`ArrayTaskId=2-5%1`, `1,3-4`); each gets that state.
    public static func parse(scontrol text: String, arrayJobId: String) -> [Int: SlurmTaskState] {
        var out: [Int: SlurmTaskState] = [:]
        for line in text.split(separator: "\n") {
            var fields: [String: String] = [:]
            for token in line.split(separator: " ") {
                guard let eq = token.firstIndex(of: "=") else { continue }
                fields[String(token[..<eq])] = String(token[token.index(after: eq)...])
            }
            guard fields["ArrayJobId"] == arrayJobId, let ids = fields["ArrayTaskId"], let state = fields["JobState"] else { continue }
            func value(_ key: String) -> String? { fields[key].flatMap { $0.isEmpty || $0 == "(null)" ? nil : $0 } }
            let task = SlurmTaskState(state: state, reason: value("Reason"), exitCode: value("ExitCode"), node: value("NodeList"))
            for index in taskIndices(ids) { out[index] = task }
        }
        return out
    }

    /// `3`, `2-5%1`, `1,3-4`, `0-6:2` → the indices.
    static func taskIndices(_ spec: String) -> [Int] {
        let list = spec.split(separator: "%").first.map(String.init) ?? ""
        return list.split(separator: ",").flatMap { part -> [Int] in
            let stepParts = part.split(separator: ":")
            let step = stepParts.count > 1 ? max(1, Int(stepParts[1]) ?? 1) : 1
            let bounds = stepParts[0].split(separator: "-").compactMap { Int($0) }
            guard let lo = bounds.first else { return [] }
            return Array(stride(from: lo, through: bounds.count > 1 ? bounds[1] : lo, by: step))
        }
    }
}

public enum SlurmError: Error, CustomStringConvertible {
    case noSbatch(path: String)
    case unknownPartition(String, available: [String])
    case spoolNotWritable(String, reason: String)
    case submissionFailed(command: String, output: String)

    public var description: String {
        switch self {
        case let .noSbatch(path):
            return "`sbatch` is not on the PATH (\(path)); run on a Slurm login node, or install slurm-client and point SLURM_CONF at the cluster's slurm.conf"
        case let .unknownPartition(p, available):
            return "Slurm has no partition `\(p)`; available: \(available.isEmpty ? "(none listed by sinfo)" : available.joined(separator: ", ")) (--partition)"
        case let .spoolNotWritable(dir, reason):
            return "the spool directory \(dir) is not writable (\(reason)); pass --spool DIR on storage every node can write"
        case let .submissionFailed(command, output):
            return "`\(command)` failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }
}

/// One submitted array job as `scontrol` shows it, refreshed at most every `refreshEvery`
/// seconds however many of its tasks are followed.
final class SlurmArray {
    let jobId: String
    let commands: SlurmCommands
    let refreshEvery: TimeInterval
    private var tasks: [Int: SlurmTaskState] = [:]
    /// Successive refreshes in which a task was not listed (Slurm may drop a task cancelled
    /// while pending from every view: listed missing twice, it counts as cancelled).
    private var unlisted: [Int: Int] = [:]
    private var lastRefresh = Date.distantPast

    init(jobId: String, commands: SlurmCommands, refreshEvery: TimeInterval) {
        self.jobId = jobId; self.commands = commands; self.refreshEvery = refreshEvery
    }

    enum Task: Equatable { case active, ended(SlurmTaskState), gone }

    /// The task's state, asking Slurm first if the last answer is older than `refreshEvery`
    /// (or never, with `refresh: false`).
    func state(of task: Int, refresh: Bool = true) -> Task {
        if refresh && Date().timeIntervalSince(lastRefresh) >= refreshEvery { self.refresh() }
        if let s = tasks[task] { return s.isActive ? .active : .ended(s) }
        return (unlisted[task] ?? 0) >= 2 ? .gone : .active
    }

    func refresh() {
        lastRefresh = Date()
        let (status, output) = commands.run(["scontrol", "-o", "show", "job", jobId])
        let unknownJob = output.contains("Invalid job id")
        // Anything else that fails (the controller restarting) tells nothing: keep what we knew.
        guard status == 0 || unknownJob else { return }
        let now = unknownJob ? [:] : SlurmTaskState.parse(scontrol: output, arrayJobId: jobId)
        for (task, state) in now { tasks[task] = state; unlisted[task] = nil }
        for task in Set(tasks.keys).union(unlisted.keys) where now[task] == nil {
            if let last = tasks[task], !last.isActive { continue }   // an ended task that aged out stays ended
            tasks[task] = nil
            unlisted[task, default: 0] += 1
        }
    }

    /// Whether the last refresh listed `task`.
    func lists(_ task: Int) -> Bool { tasks[task] != nil }

    /// What the last refresh said of `task` (nil: not listed).
    func listed(_ task: Int) -> SlurmTaskState? { tasks[task] }

    /// Makes sure a never-seen task counts as unlisted too.
    func follow(_ task: Int) { if tasks[task] == nil && unlisted[task] == nil { unlisted[task] = 0 } }

    func cancel(_ task: Int) { _ = commands.run(["scancel", "\(jobId)_\(task)"]) }
}
