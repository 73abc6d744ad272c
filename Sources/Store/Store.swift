import CSQLite
import Foundation

/// Every run of every table, in one SQLite file (the schema is in Migrations.swift).
///
/// Crash safety: every write is one `BEGIN IMMEDIATE` transaction that either commits whole or
/// not at all; the store keeps nothing in memory but prepared statements, so a process killed at
/// any point loses at most the epoch it was training. WAL with `synchronous = FULL` makes each
/// commit durable. Several processes may share one file: writers queue on the write lock for up
/// to `busyTimeout`, readers never wait.
///
/// Not thread-safe: one `Store` per thread (each is its own connection).
public final class Store {
    /// The database file (or `:memory:`).
    public let path: String
    /// The clock used for heartbeats and timestamps; tests replace it.
    public var now: () -> Date = { Date() }
    let db: Connection

    public static let defaultBusyTimeout: TimeInterval = 30

    /// Opens the database at `path`, creating it and its parent directories if needed, and
    /// applies missing migrations. A file that is not an ablate database is never modified.
    public init(path: String, busyTimeout: TimeInterval = Store.defaultBusyTimeout) throws {
        self.path = path
        let inMemory = path == ":memory:"
        if !inMemory {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError.cannotCreateDirectory(path: directory.path, reason: error.localizedDescription)
            }
        }
        db = try Connection(path: path, busyTimeout: busyTimeout)
        // Read the header before anything can write: garbage fails here and stays untouched.
        do {
            try db.execute("PRAGMA schema_version")
        } catch let StoreError.sql(_, _, code, message) {
            switch code & 0xff {
            case SQLITE_NOTADB, SQLITE_CORRUPT: throw StoreError.notADatabase(path: path, message: message)
            case SQLITE_CANTOPEN: throw StoreError.cannotOpen(path: path, code: code, message: message)
            default: throw StoreError.sql(statement: "PRAGMA schema_version", path: path, code: code, message: message)
            }
        }
        if !inMemory {
            // Switching to WAL needs an exclusive lock, and SQLite returns SQLITE_BUSY here without
            // calling the busy handler (deadlock avoidance) when another process is creating the
            // same file: retry for up to the busy timeout.
            var mode: String?
            let deadline = Date().addingTimeInterval(busyTimeout)
            while true {
                do {
                    mode = try db.query("PRAGMA journal_mode = WAL").first?.string(0)
                    break
                } catch let StoreError.sql(_, _, code, _) where code & 0xff == SQLITE_BUSY && Date() < deadline {
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
            if mode?.lowercased() != "wal" {
                throw StoreError.sql(statement: "PRAGMA journal_mode = WAL", path: path, code: SQLITE_ERROR,
                                     message: "journal mode stayed `\(mode ?? "?")`; the file system may not support WAL")
            }
        }
        try db.execute("PRAGMA synchronous = FULL")
        try db.execute("PRAGMA foreign_keys = ON")
        try Schema.migrate(db, now: Date())
    }

    /// `Store(path:)`.
    public static func open(_ path: String) throws -> Store { try Store(path: path) }

    /// A private database that lives as long as this object (tests, dry runs).
    public static func inMemory() throws -> Store { try Store(path: ":memory:") }

    /// The names of the applied migrations, in the order they were applied.
    public func appliedMigrations() throws -> [String] {
        try db.query("SELECT name FROM migrations ORDER BY applied_at, rowid").compactMap { $0.string(0) }
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file, otherwise SQLite's list of problems.
    public func integrityCheck() throws -> String {
        try db.query("PRAGMA integrity_check").compactMap { $0.string(0) }.joined(separator: "\n")
    }

    private var timestamp: Double { now().timeIntervalSince1970 }

    // MARK: - Claiming and writing runs

    /// Registers a run as `queued` (if it does not exist yet) and lists it under its table and
    /// row. Returns the run as stored.
    @discardableResult
    public func enqueue(_ spec: RunSpec) throws -> RunRecord {
        try db.write {
            if try record(spec.id) == nil {
                try db.execute("""
                    INSERT INTO run (id, table_id, row_name, seed, protocol, protocol_version, status, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)
                    """, [.text(spec.id), .text(spec.tableId), .text(spec.rowName), .int(Int64(bitPattern: spec.seed)),
                          .text(spec.protocolName), .text(spec.protocolVersion), .real(timestamp)])
                try writeParams(spec)
            }
            try addRow(spec)
            return try existing(spec.id, listedAs: spec)
        }
    }

    /// Claims a run for this process, atomically: of several processes claiming the same id at
    /// once, exactly one gets `.claimed`. A new id is inserted as `running`; a `queued` or `failed`
    /// run, or a `running` one whose heartbeat is older than `staleAfter` seconds (its process
    /// died), is taken over: it keeps its metrics (the new owner resumes from its checkpoint and
    /// says how many epochs it kept with `resumeRun`), its first `started_at`, and counts the
    /// attempt (`attempts`, and `resumed_at` when it had been started before).
    /// A finished or diverged run is `.done` (reuse it); a running one with a fresh heartbeat is
    /// `.busy`. In every case the run is listed under `spec`'s table and row.
    /// `abandoned`, evaluated inside the transaction, may declare a running run dead before its
    /// heartbeat goes stale (e.g. its process on this host no longer exists).
    public func claimRun(_ spec: RunSpec, provenance: Provenance, staleAfter: TimeInterval,
                         abandoned: (RunRecord) -> Bool = { _ in false }) throws -> ClaimResult {
        try db.write {
            let t = timestamp
            let lease = RunLease(runId: spec.id, owner: UUID().uuidString)
            let previous = try record(spec.id)
            if let previous {
                try addRow(spec)
                if previous.status.isDone {
                    try upgradeParams(spec)
                    return .done(try existing(spec.id, listedAs: spec))
                }
                if previous.status == .running, let beat = previous.heartbeatAt,
                   t - beat.timeIntervalSince1970 <= staleAfter, !abandoned(previous) {
                    return .busy(try existing(spec.id, listedAs: spec))
                }
                try db.execute("""
                    UPDATE run SET status = 'running', verdict = NULL, git_revision = ?, git_dirty = ?, host = ?, pid = ?,
                        owner = ?, heartbeat_at = ?, ended_at = NULL, error = NULL, attempts = attempts + 1,
                        resumed_at = CASE WHEN started_at IS NULL THEN NULL ELSE ? END, started_at = COALESCE(started_at, ?)
                    WHERE id = ?
                    """, provenanceValues(provenance) + [.text(lease.owner), .real(t), .real(t), .real(t), .text(spec.id)])
                try db.execute("DELETE FROM param WHERE run_id = ?", [.text(spec.id)])
                try writeParams(spec)
            } else {
                try db.execute("""
                    INSERT INTO run (id, table_id, row_name, seed, protocol, protocol_version, status,
                        git_revision, git_dirty, host, pid, owner, created_at, heartbeat_at, started_at, attempts)
                    VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, 1)
                    """, [.text(spec.id), .text(spec.tableId), .text(spec.rowName), .int(Int64(bitPattern: spec.seed)),
                          .text(spec.protocolName), .text(spec.protocolVersion)]
                        + provenanceValues(provenance) + [.text(lease.owner), .real(t), .real(t), .real(t)])
                try writeParams(spec)
                try addRow(spec)
            }
            return .claimed(lease, previous: previous)
        }
    }

    /// Tells other processes this run is alive. Throws `notOwner` if it was taken over.
    public func heartbeat(_ lease: RunLease) throws {
        try db.write { try touch(lease) }
    }

    /// Starts a held run over from its checkpoint's `epochs` (0 without one): deletes its
    /// per-epoch points after that epoch, every `final.` point and every `step.` point (the worker
    /// sends the checkpoint's epochs again, per-step points included), so that what an earlier
    /// attempt recorded beyond the checkpoint is not mixed with the new attempt. Refreshes the heartbeat.
    public func resumeRun(_ lease: RunLease, keepingEpochs epochs: Int) throws {
        try db.write {
            try touch(lease)
            try db.execute("DELETE FROM metric WHERE run_id = ? AND (step > ? OR substr(key, 1, ?) = ? OR substr(key, 1, ?) = ?)",
                           [.text(lease.runId), .int(Int64(max(0, epochs))), .int(Int64(MetricPoint.finalPrefix.count)),
                            .text(MetricPoint.finalPrefix), .int(Int64(MetricPoint.stepPrefix.count)), .text(MetricPoint.stepPrefix)])
        }
    }

    /// Stores any metric points for a held run (replacing points with the same key and step) and
    /// refreshes the heartbeat.
    public func recordMetrics(_ lease: RunLease, _ points: [MetricPoint]) throws {
        try db.write {
            try touch(lease)
            for point in points { try insertMetric(lease.runId, point) }
        }
    }

    /// Ends a held run with its result: `diverged` (NaN/Inf appeared, never retried) or
    /// `finished`, with its verdict text and its final metrics (`MetricPoint.final`, step 0).
    public func finishRun(_ lease: RunLease, diverged: Bool, verdict: String?, final points: [MetricPoint]) throws {
        let state: RunState = diverged ? .diverged : .finished
        try db.write {
            let t = timestamp
            try db.execute("""
                UPDATE run SET status = ?, verdict = ?, ended_at = ?, heartbeat_at = ?, error = NULL
                WHERE id = ? AND owner = ? AND status = 'running'
                """, [.text(state.rawValue), verdict.map { .text($0) } ?? .null, .real(t), .real(t),
                      .text(lease.runId), .text(lease.owner)])
            try requireChange(lease)
            for point in points { try insertMetric(lease.runId, point) }
        }
    }

    /// Marks a held run `failed` with the error a user should read; it may be claimed again.
    public func failRun(_ lease: RunLease, error message: String) throws {
        try db.write {
            let t = timestamp
            try db.execute("""
                UPDATE run SET status = 'failed', error = ?, ended_at = ?, heartbeat_at = ?
                WHERE id = ? AND owner = ? AND status = 'running'
                """, [.text(message), .real(t), .real(t), .text(lease.runId), .text(lease.owner)])
            try requireChange(lease)
        }
    }

    // MARK: - Baselines

    /// Stores baseline values (e.g. the raw-pixel and random-init kNN) of a protocol and seed,
    /// replacing earlier values of the same keys.
    public func putBaselines(_ values: [(key: String, value: Double)], protocolName: String, seed: UInt64) throws {
        try db.write {
            for (key, value) in values {
                let kind = ValueKind(value)
                try db.execute("INSERT OR REPLACE INTO baseline (protocol, seed, key, value, kind) VALUES (?, ?, ?, ?, ?)",
                               [.text(protocolName), .int(Int64(bitPattern: seed)), .text(key),
                                kind == .finite ? .real(value) : .null, .text(kind.rawValue)])
            }
        }
    }

    /// The baselines of one protocol and seed, nil when none are stored.
    public func baselines(protocolName: String, seed: UInt64) throws -> StoredBaselines? {
        try baselines(protocolName: protocolName).first { $0.seed == seed }
    }

    /// Every seed's baselines for a protocol, by seed.
    public func baselines(protocolName: String) throws -> [StoredBaselines] {
        var bySeed: [UInt64: StoredBaselines] = [:]
        for row in try db.query("SELECT seed, key, value, kind FROM baseline WHERE protocol = ? ORDER BY seed, key",
                                [.text(protocolName)]) {
            let seed = UInt64(bitPattern: row.int(0) ?? 0)
            let value = try number(row, value: 2, kind: 3)
            bySeed[seed, default: StoredBaselines(protocolName: protocolName, seed: seed, values: [:])].values[row.string(1) ?? ""] = value
        }
        return bySeed.keys.sorted().compactMap { bySeed[$0] }
    }

    // MARK: - Reading

    /// One run, or nil.
    public func run(id: String) throws -> RunRecord? { try record(id) }

    /// The runs listed under a table (through `run_row`), ordered by row name, seed, creation.
    public func runs(forTable tableId: String) throws -> [RunRecord] {
        try db.query("""
            SELECT \(Store.runColumns), rr.table_id, rr.row_name FROM run_row rr JOIN run r ON r.id = rr.run_id
            WHERE rr.table_id = ? ORDER BY rr.row_name, r.seed, r.created_at, r.id
            """, [.text(tableId)]).map(decodeRun)
    }

    /// The mean of a per-epoch metric (e.g. `epoch_seconds`) over every epoch stored for the
    /// `latest` finished (or diverged) runs of a protocol, the last to end first — a faster build
    /// or another split of the cores shows in them, not in runs of weeks ago — and how many runs
    /// it covers; nil without any.
    public func meanEpochMetric(_ key: String, protocolName: String, latest: Int = 10) throws -> (mean: Double, runs: Int)? {
        let row = try db.query("""
            SELECT AVG(m.value), COUNT(DISTINCT m.run_id) FROM metric m
            WHERE m.key = ? AND m.kind = 'finite' AND m.run_id IN (
                SELECT id FROM run WHERE protocol = ? AND status IN ('finished', 'diverged')
                ORDER BY ended_at DESC LIMIT ?)
            """, [.text(key), .text(protocolName), .int(Int64(latest))]).first
        guard let row, let mean = row.double(0), let runs = row.int(1), runs > 0 else { return nil }
        return (mean, Int(runs))
    }

    /// The ids of all tables with runs.
    public func tableIds() throws -> [String] {
        try db.query("SELECT DISTINCT table_id FROM run_row ORDER BY table_id").compactMap { $0.string(0) }
    }

    /// A run's params (dotted config keys, `config_json`, `seed`, `protocol_version`).
    public func params(runId: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try db.query("SELECT key, value FROM param WHERE run_id = ?", [.text(runId)]) {
            if let key = row.string(0) { out[key] = row.string(1) ?? "" }
        }
        return out
    }

    /// Every metric point of a run (per-epoch and `final.`), ordered by key and step.
    public func metrics(runId: String) throws -> [MetricPoint] {
        try db.query("SELECT key, step, value, kind FROM metric WHERE run_id = ? ORDER BY key, step", [.text(runId)])
            .map { row in
                MetricPoint(key: row.string(0) ?? "", step: Int(row.int(1) ?? 0), value: try number(row, value: 2, kind: 3))
            }
    }

    /// The per-epoch curves of a run: key → points in epoch order (`final.` keys excluded).
    public func epochCurves(runId: String) throws -> [String: [CurvePoint]] {
        var curves: [String: [CurvePoint]] = [:]
        for point in try metrics(runId: runId) where !point.isFinal {
            curves[point.key, default: []].append(CurvePoint(epoch: point.step, value: point.value))
        }
        return curves
    }

    /// The final metrics and verdict of a run; nil when it has neither (not finished).
    /// Throws `unknownRun` for an id that is not stored.
    public func finalMetrics(runId: String) throws -> StoredFinalMetrics? {
        guard let run = try record(runId) else { throw StoreError.unknownRun(runId: runId, path: path) }
        var final = StoredFinalMetrics(verdict: run.verdict)
        var found = run.verdict != nil
        for point in try metrics(runId: runId) where point.isFinal {
            found = true
            final.values[String(point.key.dropFirst(MetricPoint.finalPrefix.count))] = point.value
        }
        return found ? final : nil
    }

    // MARK: - Internals

    static let runColumns = """
        r.id, r.seed, r.protocol, r.protocol_version, r.status, r.verdict, r.git_revision, r.git_dirty, r.host, r.pid,
        r.created_at, r.heartbeat_at, r.started_at, r.ended_at, r.error, r.attempts, r.resumed_at
        """

    private func record(_ id: String) throws -> RunRecord? {
        try db.query("SELECT \(Store.runColumns), r.table_id, r.row_name FROM run r WHERE r.id = ?", [.text(id)])
            .first.map(decodeRun)
    }

    /// The run `id` (which must exist), with the table and row of `spec`.
    private func existing(_ id: String, listedAs spec: RunSpec) throws -> RunRecord {
        guard var run = try record(id) else { throw StoreError.unknownRun(runId: id, path: path) }
        run.tableId = spec.tableId
        run.rowName = spec.rowName
        return run
    }

    private func decodeRun(_ row: Row) throws -> RunRecord {
        let date: (Int) -> Date? = { row.double($0).map(Date.init(timeIntervalSince1970:)) }
        let statusText = row.string(4) ?? ""
        guard let status = RunState(rawValue: statusText) else {
            throw StoreError.badStoredValue(path: path, what: "run status", value: statusText)
        }
        return RunRecord(
            id: row.string(0) ?? "", tableId: row.string(17) ?? "", rowName: row.string(18) ?? "",
            seed: UInt64(bitPattern: row.int(1) ?? 0), protocolName: row.string(2) ?? "", protocolVersion: row.string(3) ?? "",
            status: status, verdict: row.string(5), gitRevision: row.string(6), gitDirty: (row.int(7) ?? 0) != 0,
            host: row.string(8), pid: row.int(9).map { Int($0) }, createdAt: date(10) ?? Date(timeIntervalSince1970: 0),
            heartbeatAt: date(11), startedAt: date(12), endedAt: date(13), error: row.string(14),
            attempts: Int(row.int(15) ?? 0), resumedAt: date(16))
    }

    /// A stored number with its kind: NaN/±Inf come back as themselves.
    private func number(_ row: Row, value: Int, kind: Int) throws -> Double {
        let text = row.string(kind) ?? ""
        switch ValueKind(rawValue: text) {
        case .finite?:
            guard let v = row.double(value) else { throw StoreError.badStoredValue(path: path, what: "finite value", value: "NULL") }
            return v
        case .nan?: return .nan
        case .inf?: return .infinity
        case .negativeInf?: return -.infinity
        case nil: throw StoreError.badStoredValue(path: path, what: "value kind", value: text)
        }
    }

    private func insertMetric(_ runId: String, _ point: MetricPoint) throws {
        try db.execute("INSERT OR REPLACE INTO metric (run_id, key, step, value, kind) VALUES (?, ?, ?, ?, ?)",
                       [.text(runId), .text(point.key), .int(Int64(point.step)),
                        point.kind == .finite ? .real(point.value) : .null, .text(point.kind.rawValue)])
    }

    private func writeParams(_ spec: RunSpec) throws {
        for (key, value) in try runParams(spec) {
            try db.execute("INSERT OR REPLACE INTO param (run_id, key, value) VALUES (?, ?, ?)",
                           [.text(spec.id), .text(key), .text(value)])
        }
    }

    /// Rewrites a stored run's params when they are written under other keys than `spec`'s (runs
    /// stored before params used the experiment-file keys). The id is the same, so the values are;
    /// `config_json` of the stored run is kept (it records where that run read its data).
    private func upgradeParams(_ spec: RunSpec) throws {
        let stored = try params(runId: spec.id), wanted = try runParams(spec)
        guard Set(stored.keys) != Set(wanted.map(\.key)) else { return }
        let configJSON = stored[ParamKey.configJSON]
        try db.execute("DELETE FROM param WHERE run_id = ? AND key != ?", [.text(spec.id), .text(ParamKey.configJSON)])
        for (key, value) in wanted where key != ParamKey.configJSON || configJSON == nil {
            try db.execute("INSERT OR REPLACE INTO param (run_id, key, value) VALUES (?, ?, ?)", [.text(spec.id), .text(key), .text(value)])
        }
    }

    private func addRow(_ spec: RunSpec) throws {
        try db.execute("INSERT OR IGNORE INTO run_row (run_id, table_id, row_name) VALUES (?, ?, ?)",
                       [.text(spec.id), .text(spec.tableId), .text(spec.rowName)])
    }

    private func provenanceValues(_ p: Provenance) -> [SQLValue] {
        [p.gitRevision.map { .text($0) } ?? .null, .int(p.gitDirty ? 1 : 0), .text(p.host), .int(Int64(p.pid))]
    }

    /// Refreshes the heartbeat of a held run; throws `notOwner` if the lease no longer holds it.
    private func touch(_ lease: RunLease) throws {
        try db.execute("UPDATE run SET heartbeat_at = ? WHERE id = ? AND owner = ? AND status = 'running'",
                       [.real(timestamp), .text(lease.runId), .text(lease.owner)])
        try requireChange(lease)
    }

    private func requireChange(_ lease: RunLease) throws {
        guard db.changes == 0 else { return }
        guard let run = try record(lease.runId) else { throw StoreError.unknownRun(runId: lease.runId, path: path) }
        throw StoreError.notOwner(runId: lease.runId, path: path, status: run.status.rawValue)
    }
}
