import Foundation

/// Where runs execute. The scheduler only needs to start a run and collect its events; the
/// local back end runs worker processes on this machine, the Slurm back end (SlurmBackend.swift)
/// submits `sbatch` array jobs and reads their event files — everything else is shared.
public protocol ExecutionBackend {
    /// Starts `spec`; its events arrive through the handle.
    func launch(_ spec: Job, threads: Int) throws -> RunHandle
}

/// A back end that queues runs itself (a Slurm job array): the scheduler claims every run it
/// can, instead of one per free worker slot, and hands the claimed ones over in one call.
public protocol BatchExecutionBackend: ExecutionBackend {
    /// Starts `specs` together; one handle per spec, in the same order. Throwing means none
    /// was started.
    func launch(batch specs: [Job], threads: Int) throws -> [RunHandle]
}

public protocol RunHandle: AnyObject {
    var runId: String { get }
    /// Events received since the last call.
    func poll() -> [WorkerEvent]
    /// True once the run's process has exited (and all its events were delivered by `poll`).
    var hasExited: Bool { get }
    /// Stops the run (the checkpoint stays, so it resumes later).
    func terminate()
    /// How the run's process ended, once it has: nil while it runs or when unknown.
    var exit: WorkerExit? { get }
}

extension RunHandle {
    public var exit: WorkerExit? { nil }
}

/// How a worker process ended.
public enum WorkerExit: Sendable, Equatable {
    case status(Int32)
    case signal(Int32)

    /// Why a worker that sent no result stopped, and whether running it again can help: a kill
    /// (the kernel's out-of-memory killer, a user) can be resumed; a crash of the same config
    /// comes back on every attempt.
    public static func message(_ exit: WorkerExit?) -> String {
        switch exit {
        case let .signal(s)? where [SIGKILL, SIGTERM, SIGINT, SIGHUP].contains(s):
            return "worker was killed (signal \(s)) before it reported a result; "
                + "rerun to resume from its last checkpoint (if the kernel killed it for memory, lower `optim.batch` first)"
        case let .signal(s)?:
            return "worker crashed (signal \(s)) before it reported a result; the same configuration crashes again, so rerunning "
                + "will not help: see the worker's error output above and report it with this run's id"
        case let .status(code)?:
            return "worker exited with status \(code) without a result; the same configuration fails again, so rerunning "
                + "will not help: see the worker's error output above"
        case nil:
            return "worker exited without a result (crashed or killed); rerun to resume from its last checkpoint"
        }
    }
}

public enum BackendError: Error, CustomStringConvertible {
    case launchFailed(String)
    public var description: String {
        switch self { case let .launchFailed(m): return "could not start a worker: \(m)" }
    }
}

/// Worker processes on this machine: `<executable> worker` with the spec as JSON on stdin,
/// events as JSON lines on stdout. A crash of one worker loses nothing else.
public final class LocalProcessBackend: ExecutionBackend {
    let executable: String

    public init(executable: String) { self.executable = executable }

    public func launch(_ spec: Job, threads: Int) throws -> RunHandle {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["worker"]
        var env = ProcessInfo.processInfo.environment
        env["ABLATE_THREADS"] = String(threads)
        p.environment = env
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.standardError
        let handle = LocalRunHandle(runId: spec.id, process: p, output: output)
        do { try p.run() } catch { throw BackendError.launchFailed("\(executable): \(error)") }
        input.fileHandleForWriting.write(Data((try JSONEncoder().encode(spec))))
        try? input.fileHandleForWriting.close()
        handle.startReading()
        return handle
    }
}

final class LocalRunHandle: RunHandle, @unchecked Sendable {
    let runId: String
    let process: Process
    let output: Pipe
    private let lock = NSLock()
    private var events: [WorkerEvent] = []
    private var eof = false

    init(runId: String, process: Process, output: Pipe) {
        self.runId = runId; self.process = process; self.output = output
    }

    func startReading() {
        let fh = output.fileHandleForReading
        Thread.detachNewThread { [self] in
            var buffer = Data()
            while true {
                let chunk = fh.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let nl = buffer.firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex...nl)
                    if let e = WorkerEvent.parse(line) { lock.lock(); events.append(e); lock.unlock() }
                }
            }
            process.waitUntilExit()
            lock.lock(); eof = true; lock.unlock()
        }
    }

    func poll() -> [WorkerEvent] {
        lock.lock(); defer { lock.unlock() }
        let out = events
        events.removeAll()
        return out
    }

    var hasExited: Bool { lock.lock(); defer { lock.unlock() }; return eof && events.isEmpty }

    func terminate() { if process.isRunning { process.terminate() } }

    var exit: WorkerExit? {
        guard hasExited else { return nil }
        return process.terminationReason == .uncaughtSignal ? .signal(process.terminationStatus) : .status(process.terminationStatus)
    }
}
