import Foundation
import SSL

/// Where the scheduler records runs (the SQLite store in practice; an in-memory one in tests).
/// The scheduler process is the only writer.
public protocol RunLedger: AnyObject {
    /// Takes `spec` for this process if it is new, queued, failed or abandoned (running with a
    /// heartbeat older than `staleAfter` seconds); reports `.finished` or `.busy` otherwise.
    func claim(_ spec: Job, staleAfter: TimeInterval) throws -> ClaimResult
    /// Whether `spec` is already finished (or diverged), without claiming anything.
    func isFinished(_ spec: Job) throws -> Bool
    func heartbeat(_ runIds: [String]) throws
    /// The worker started the run from its checkpoint's first `resumedEpochs` epochs (0: from
    /// scratch): what was recorded after them is dropped; the worker re-sends those epochs.
    func started(_ runId: String, resumedEpochs: Int) throws
    func recordEpoch(_ runId: String, _ record: EpochRecord) throws
    func finish(_ runId: String, status: RunStatus, metrics: FinalMetrics, baselines: Baselines?, seed: UInt64, protocolName: String) throws
    func fail(_ runId: String, message: String) throws
}

public enum ClaimResult: Sendable, Equatable {
    case claimed
    /// Already finished (or diverged): skipped.
    case finished
    /// Another live process is running it.
    case busy
}

public enum SchedulerError: Error, CustomStringConvertible {
    case interrupted(running: Int)
    public var description: String {
        switch self {
        case let .interrupted(n):
            return "interrupted: \(n) run(s) stopped and marked interrupted; run the same command again to resume them"
        }
    }
}

/// What the live display shows.
public struct SchedulerStatus: Sendable {
    public struct Current: Sendable {
        public var runId: String, label: String
        public var epoch: Int, epochs: Int, step: Int, steps: Int
        public var loss: Float?
        public var secondsRemaining: Double?
    }
    public var total: Int
    public var done: Int
    public var skipped: Int
    public var failed: Int
    public var running: [Current]
    public var waitingOnOthers: Int
    /// Rough: the slowest current run's remaining time plus the queue at the mean run time so far.
    public var secondsRemaining: Double?
    public var message: String?
}

public struct SchedulerSummary: Sendable, Equatable {
    public var total = 0, ranNow = 0, skipped = 0, failed = 0
    public var failures: [String] = []
    /// Runs handed to the back end and left running (`detach`).
    public var submitted = 0
}

/// Runs a list of specs on `workers` parallel workers (or, on a `BatchExecutionBackend`, all
/// at once as the back end queues them), skipping finished runs, waiting for runs that another
/// live process holds, and taking over abandoned ones.
public final class Scheduler {
    let ledger: RunLedger
    let backend: ExecutionBackend
    let workers: Int
    let cores: Int
    /// A run whose heartbeat is older than this is considered abandoned.
    public var staleAfter: TimeInterval = 60
    public var heartbeatEvery: TimeInterval = 5
    public var pollInterval: TimeInterval = 0.2
    /// Checked every poll; when true (e.g. after Ctrl-C) the workers are stopped, their runs are
    /// marked interrupted (they resume from their checkpoints next time) and `run` throws.
    public var shouldStop: () -> Bool = { false }
    /// With a batch back end: return once the runs claimed at the start are submitted, leaving
    /// them to the back end (runs held by another process are not waited for). They stay
    /// `running` in the ledger; a later `run` of the same specs collects them. Ignored for back
    /// ends that start runs one at a time (their workers would die with this process).
    public var detach = false

    public init(ledger: RunLedger, backend: ExecutionBackend, workers: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.ledger = ledger
        self.backend = backend
        self.workers = max(1, workers)
        self.cores = max(1, cores)
    }

    /// Threads for each of `concurrent` runs at once (at most `workers` of them): the cores split evenly.
    func threadsPerRun(concurrent: Int) -> Int {
        max(1, cores / max(1, min(workers, concurrent)))
    }

    public func run(_ specs: [Job], labels: [String: String] = [:], display: (SchedulerStatus) -> Void) throws -> SchedulerSummary {
        var summary = SchedulerSummary()
        summary.total = specs.count
        // Runs finished earlier are reused (and listed under their rows) before anything starts,
        // so the progress line counts them from its first line and the ETA covers what is left.
        var queue = ArraySlice<Job>()
        for spec in specs {
            if try ledger.isFinished(spec), try ledger.claim(spec, staleAfter: staleAfter) == .finished {
                summary.skipped += 1
            } else {
                queue.append(spec)
            }
        }
        var waiting: [Job] = []          // held by another process; retried later
        // Rows of two tables with one configuration share a run: a spec whose run this scheduler is
        // running waits here, and is claimed (so listed under its row) once that run has ended.
        var sharing: [String: [Job]] = [:]
        var running: [String: (handle: RunHandle, spec: Job, current: SchedulerStatus.Current)] = [:]
        var lastHeartbeat = Date.distantPast
        var runSeconds: [Double] = []
        var startedAt: [String: Date] = [:]
        var resumedEpochs: [String: Int] = [:]
        var lastWaitingCheck = Date()
        let batches = backend as? BatchExecutionBackend
        let slots = batches == nil ? workers : Int.max
        let detach = self.detach && batches != nil

        /// Starts claimed runs: all in one call on a batch back end (a failure fails them all),
        /// otherwise one by one (a failure fails that run only).
        func launch(_ specs: [Job]) -> [Result<RunHandle, Error>] {
            guard let batches else {
                // The cores go to the runs that can run at once: the last run of a table gets them all.
                let threads = threadsPerRun(concurrent: running.count + specs.count + queue.count + waiting.count)
                return specs.map { spec in Result { try backend.launch(spec, threads: threads) } }
            }
            guard !specs.isEmpty else { return [] }
            do { return try batches.launch(batch: specs, threads: threadsPerRun(concurrent: workers)).map { .success($0) } } catch {
                return specs.map { _ in .failure(error) }
            }
        }

        /// `seconds` of run `id` scaled to all its epochs: a run resumed after r of its E epochs
        /// ran E − r of them, so counting it as a whole run would make the queue look short.
        func wholeRun(_ seconds: Double, _ id: String, epochs: Int) -> Double {
            let resumed = resumedEpochs[id] ?? 0
            return resumed > 0 && epochs > resumed ? seconds * Double(epochs) / Double(epochs - resumed) : seconds
        }

        func status(_ message: String? = nil) -> SchedulerStatus {
            // A run's duration: the mean of the runs finished so far; before the first one, what
            // the running ones expect (time so far + their own estimate of the rest).
            let expected = running.compactMap { id, entry in
                entry.current.secondsRemaining.map {
                    wholeRun($0 + Date().timeIntervalSince(startedAt[id] ?? Date()), id, epochs: entry.current.epochs)
                }
            }
            let durations = runSeconds.isEmpty ? expected : runSeconds
            let mean = durations.isEmpty ? nil : durations.reduce(0, +) / Double(durations.count)
            let longest = running.values.compactMap(\.current.secondsRemaining).max()
            var eta: Double?
            if let mean {
                eta = (longest ?? 0) + mean * Double(queue.count + waiting.count) / Double(workers)
            } else if let longest, queue.isEmpty, waiting.isEmpty {
                eta = longest
            }
            return SchedulerStatus(total: summary.total, done: summary.ranNow, skipped: summary.skipped, failed: summary.failed,
                                   running: running.values.map(\.current).sorted { $0.label < $1.label },
                                   waitingOnOthers: waiting.count, secondsRemaining: eta, message: message)
        }

        // Whatever stops the loop (Ctrl-C, a database error) stops the workers first and records
        // their runs as failed, so no worker is left running on its own.
        func stopAll(_ message: String) {
            for (id, entry) in running {
                entry.handle.terminate()
                try? ledger.fail(id, message: message)
            }
            running.removeAll()
        }
        do {
        while !queue.isEmpty || !running.isEmpty || !waiting.isEmpty {
            if shouldStop() {
                let n = running.count
                stopAll("interrupted; rerun to resume from the last finished epoch")
                throw SchedulerError.interrupted(running: n)
            }
            // Fill free slots: one per worker, or every run that can be claimed when the back end
            // queues runs itself; then start what was claimed.
            var claimed: [(spec: Job, label: String)] = []
            while running.count + claimed.count < slots, let spec = queue.popFirst() {
                if running[spec.id] != nil || claimed.contains(where: { $0.spec.id == spec.id }) {
                    sharing[spec.id, default: []].append(spec)
                    continue
                }
                switch try ledger.claim(spec, staleAfter: staleAfter) {
                case .finished:
                    summary.skipped += 1
                case .busy:
                    waiting.append(spec)
                case .claimed:
                    claimed.append((spec, labels[spec.id] ?? "\(spec.rowName) seed \(spec.seed)"))
                }
            }
            for (entry, launched) in zip(claimed, launch(claimed.map(\.spec))) {
                let (spec, label) = entry
                switch launched {
                case let .failure(error):
                    try ledger.fail(spec.id, message: "\(error)")
                    summary.failed += 1
                    summary.failures.append("\(label): \(error)")
                case let .success(handle):
                    running[spec.id] = (handle, spec, .init(runId: spec.id, label: label, epoch: 0, epochs: spec.config.epochs,
                                                            step: 0, steps: 0, loss: nil, secondsRemaining: nil))
                    startedAt[spec.id] = Date()
                }
            }
            if detach {
                summary.submitted = running.count
                display(status("submitted"))
                return summary
            }
            // Runs held by other processes: look again every few seconds.
            if queue.isEmpty && running.count < slots && !waiting.isEmpty && Date().timeIntervalSince(lastWaitingCheck) > heartbeatEvery {
                queue.append(contentsOf: waiting)
                waiting.removeAll()
                lastWaitingCheck = Date()
                continue
            }
            // Collect events.
            for (id, entry) in running {
                for event in entry.handle.poll() {
                    switch event {
                    case let .started(_, resumed):
                        try ledger.started(id, resumedEpochs: resumed)
                        resumedEpochs[id] = resumed
                    case let .progress(_, epoch, epochs, step, steps, loss, remaining):
                        running[id]?.current = .init(runId: id, label: entry.current.label, epoch: epoch, epochs: epochs,
                                                     step: step, steps: steps, loss: loss, secondsRemaining: remaining)
                    case let .epoch(_, record):
                        try ledger.recordEpoch(id, record)
                    case let .finished(_, runStatus, metrics, baselines):
                        try ledger.finish(id, status: runStatus, metrics: metrics, baselines: baselines,
                                          seed: entry.spec.seed, protocolName: entry.spec.config.protocolName)
                        summary.ranNow += 1
                        runSeconds.append(wholeRun(Date().timeIntervalSince(startedAt[id] ?? Date()), id,
                                                   epochs: running[id]?.current.epochs ?? 0))
                        running[id] = nil
                    case let .failed(_, message):
                        try ledger.fail(id, message: message)
                        summary.failed += 1
                        summary.failures.append("\(entry.current.label): \(message)")
                        running[id] = nil
                    }
                }
                if running[id] != nil && entry.handle.hasExited {
                    let message = WorkerExit.message(entry.handle.exit)
                    try ledger.fail(id, message: message)
                    summary.failed += 1
                    summary.failures.append("\(entry.current.label): \(message)")
                    running[id] = nil
                }
            }
            for (id, specs) in sharing where running[id] == nil {
                queue.insert(contentsOf: specs, at: queue.startIndex)
                sharing[id] = nil
            }
            if Date().timeIntervalSince(lastHeartbeat) > heartbeatEvery {
                try ledger.heartbeat(Array(running.keys))
                lastHeartbeat = Date()
            }
            display(status())
            if !running.isEmpty || !waiting.isEmpty { Thread.sleep(forTimeInterval: pollInterval) }
        }
        } catch {
            stopAll("stopped because the scheduler failed (\(error)); rerun to resume from the last finished epoch")
            throw error
        }
        display(status("done"))
        return summary
    }
}
