import Foundation
import SSL
import Store

/// The scheduler's ledger on the SQLite store: claims runs atomically, keeps their leases, and
/// writes every event as it arrives (nothing is kept only in memory).
public final class StoreLedger: RunLedger {
    let store: Store
    let provenance: Provenance
    private var leases: [String: RunLease] = [:]

    public init(store: Store, provenance: Provenance) {
        self.store = store
        self.provenance = provenance
    }

    /// The store's view of a job (its id is the config hash; see `RunSpec(…, config:, …)`).
    public static func spec(_ job: Job, protocolVersion: String) throws -> RunSpec {
        try RunSpec(tableId: job.tableId, rowName: job.rowName, seed: job.seed, config: job.config, protocolVersion: protocolVersion)
    }

    public func claim(_ job: Job, staleAfter: TimeInterval) throws -> ClaimResult {
        let spec = try StoreLedger.spec(job, protocolVersion: job.protocolVersion)
        let host = provenance.host
        let result = try store.claimRun(spec, provenance: provenance, staleAfter: staleAfter) { previous in
            // A run held by a process of this host that no longer exists is abandoned now.
            guard previous.host == host, let pid = previous.pid, pid > 0 else { return false }
            return kill(pid_t(pid), 0) != 0 && errno == ESRCH
        }
        switch result {
        case let .claimed(lease, _):
            leases[job.id] = lease
            return .claimed
        case .done: return .finished
        case .busy: return .busy
        }
    }

    public func isFinished(_ job: Job) throws -> Bool {
        try store.run(id: job.id)?.status.isDone ?? false
    }

    public func heartbeat(_ runIds: [String]) throws {
        for id in runIds { if let lease = leases[id] { try store.heartbeat(lease) } }
    }

    public func started(_ runId: String, resumedEpochs: Int) throws {
        guard let lease = leases[runId] else { return }
        try store.resumeRun(lease, keepingEpochs: resumedEpochs)
    }

    public func recordEpoch(_ runId: String, _ record: EpochRecord) throws {
        guard let lease = leases[runId] else { return }
        try store.recordEpoch(lease, record)
    }

    public func finish(_ runId: String, status: RunStatus, metrics: FinalMetrics, baselines: Baselines?, seed: UInt64, protocolName: String) throws {
        guard let lease = leases.removeValue(forKey: runId) else { return }
        if let baselines { try store.putBaselines(baselines, protocolName: protocolName, seed: seed) }
        try store.finishRun(lease, status: status, final: metrics)
    }

    public func fail(_ runId: String, message: String) throws {
        guard let lease = leases.removeValue(forKey: runId) else { return }
        try store.failRun(lease, error: message)
    }
}
