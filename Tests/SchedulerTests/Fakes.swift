import Foundation
@testable import Scheduler
@testable import SSL

/// An in-memory ledger: runs are finished, free, or held by another process (live until it
/// stops heartbeating or until it has been seen busy a given number of times). Every call is logged.
final class FakeLedger: RunLedger {
    enum Call: Equatable {
        case claim(String), started(String, Int), heartbeat([String]), epoch(String, Int), finish(String, RunStatus), fail(String, String)
    }
    /// Another process's hold on a run.
    struct Holder {
        /// Its last heartbeat; the hold is abandoned once this is older than `staleAfter`.
        var heartbeat: Date
        /// Claims answered `.busy` before the holder is done with the run (nil: never by itself).
        var busyAnswers: Int?
        /// The holder finished the run (true) or gave it up, e.g. failed (false).
        var finishes: Bool
    }

    private(set) var calls: [Call] = []
    private(set) var staleAfterSeen: [TimeInterval] = []
    var finished: Set<String> = []
    var holders: [String: Holder] = [:]

    func claim(_ spec: Job, staleAfter: TimeInterval) throws -> ClaimResult {
        calls.append(.claim(spec.id))
        staleAfterSeen.append(staleAfter)
        if var holder = holders[spec.id] {
            let stale = Date().timeIntervalSince(holder.heartbeat) > staleAfter
            if !stale, holder.busyAnswers.map({ $0 > 0 }) ?? true {
                holder.busyAnswers = holder.busyAnswers.map { $0 - 1 }
                holders[spec.id] = holder
                return .busy
            }
            holders[spec.id] = nil
            if !stale && holder.finishes { finished.insert(spec.id) }
        }
        return finished.contains(spec.id) ? .finished : .claimed
    }

    func isFinished(_ spec: Job) throws -> Bool { finished.contains(spec.id) }

    func started(_ runId: String, resumedEpochs: Int) throws { calls.append(.started(runId, resumedEpochs)) }

    func heartbeat(_ runIds: [String]) throws { calls.append(.heartbeat(runIds.sorted())) }

    /// The error `recordEpoch` throws for this run (a database that fails mid-run).
    var epochError: (runId: String, error: Error)?

    func recordEpoch(_ runId: String, _ record: EpochRecord) throws {
        if let e = epochError, e.runId == runId { throw e.error }
        calls.append(.epoch(runId, record.epoch))
    }

    func finish(_ runId: String, status: RunStatus, metrics: FinalMetrics, baselines: Baselines?, seed: UInt64, protocolName: String) throws {
        calls.append(.finish(runId, status))
        finished.insert(runId)
    }

    func fail(_ runId: String, message: String) throws { calls.append(.fail(runId, message)) }

    var claims: [String] { calls.compactMap { if case let .claim(id) = $0 { return id } else { return nil } } }
    var finishes: [String] { calls.compactMap { if case let .finish(id, _) = $0 { return id } else { return nil } } }
    var failures: [String: String] {
        var out: [String: String] = [:]
        for case let .fail(id, message) in calls { out[id] = message }
        return out
    }
    var heartbeats: [[String]] { calls.compactMap { if case let .heartbeat(ids) = $0 { return ids } else { return nil } } }
}

/// A back end whose runs replay a script: poll `i` returns `script[i]`; after the last batch the
/// run has exited. Nothing runs in the background, so tests are deterministic.
final class FakeBackend: ExecutionBackend {
    var scripts: [String: [[WorkerEvent]]] = [:]
    private(set) var launched: [(id: String, threads: Int)] = []
    private(set) var handles: [String: FakeHandle] = [:]
    /// The most runs that were live (launched, not yet exited or terminated) at one time.
    private(set) var maxLive = 0
    var polls: Int { handles.values.reduce(0) { $0 + $1.polls } }

    var live: Int { handles.values.filter { !$0.hasExited }.count }

    func launch(_ spec: Job, threads: Int) throws -> RunHandle {
        guard let script = scripts[spec.id] else { throw BackendError.launchFailed("no script for \(spec.id)") }
        launched.append((spec.id, threads))
        let handle = FakeHandle(runId: spec.id, script: script)
        handles[spec.id] = handle
        maxLive = max(maxLive, live)
        return handle
    }
}

final class FakeHandle: RunHandle {
    let runId: String
    let script: [[WorkerEvent]]
    private(set) var polls = 0
    private(set) var terminated = false

    init(runId: String, script: [[WorkerEvent]]) { self.runId = runId; self.script = script }

    func poll() -> [WorkerEvent] {
        guard !hasExited else { return [] }
        polls += 1
        return script[polls - 1]
    }

    var hasExited: Bool { terminated || polls >= script.count }

    func terminate() { terminated = true }
}

/// Scripts and jobs for the tests.
enum Fixture {
    static func job(_ row: String, seed: UInt64 = 0) throws -> Job {
        Job(id: "\(row)-\(seed)", tableId: "t", rowName: row, seed: seed, config: try TrainingConfig.named("smoke"),
            checkpointPath: "/nonexistent/\(row)-\(seed).ckpt", baselines: false, protocolVersion: "test")
    }

    static func epoch(_ n: Int) -> EpochRecord { EpochRecord(epoch: n, meanLoss: -0.5, seconds: 0.01) }

    static let metrics = FinalMetrics(knn: 50, linear: nil, test: CollapseDiagnostics(zStd: 0.5, mO: 0.1, mR: 0.9, covOffdiag: nil),
                                      verdict: .trained)

    static func progress(_ id: String, epoch: Int) -> WorkerEvent {
        .progress(runId: id, epoch: epoch, epochs: 3, step: 1, steps: 2, loss: -0.5, secondsRemaining: 1)
    }

    /// started, then `epochs` polls each with progress and an epoch record, then finished.
    static func succeeds(_ id: String, epochs: Int = 2) -> [[WorkerEvent]] {
        [[.started(runId: id, resumedEpochs: 0)]]
            + (1...epochs).map { [progress(id, epoch: $0), .epoch(runId: id, record: epoch($0))] }
            + [[.finished(runId: id, status: .finished, metrics: metrics, baselines: nil)]]
    }

    /// started, `polls` polls of progress, and no more: the run keeps going until terminated.
    static func runsLong(_ id: String, polls: Int = 10_000) -> [[WorkerEvent]] {
        [[.started(runId: id, resumedEpochs: 0)]] + Array(repeating: [progress(id, epoch: 1)], count: polls)
    }
}

/// A back end that queues runs itself (as Slurm does): records each batch it is handed and
/// runs the scripts of `FakeBackend`.
final class FakeBatchBackend: BatchExecutionBackend {
    let runs = FakeBackend()
    private(set) var batches: [[String]] = []
    /// Thrown by the next batch launch (nothing of it starts).
    var batchError: Error?

    func launch(_ spec: Job, threads: Int) throws -> RunHandle { try runs.launch(spec, threads: threads) }

    func launch(batch specs: [Job], threads: Int) throws -> [RunHandle] {
        batches.append(specs.map(\.id))
        if let e = batchError { batchError = nil; throw e }
        return try specs.map { try runs.launch($0, threads: threads) }
    }
}
