import Foundation

/// A schema change, registered by name (GRDB's `DatabaseMigrator`): applied once, in order, and
/// recorded in the `migrations` table in the same transaction as its statements.
/// Never edit a migration that has shipped; append a new one.
struct Migration {
    let name: String
    let sql: String
}

enum Schema {
    static let migrations: [Migration] = [
        Migration(name: "v1: run, run_row, param, metric, baseline", sql: """
            -- One training run; id = runIdentity(config, seed, protocol version) (see RunIdentity.swift).
            -- Times are Unix seconds (REAL). owner is a random token per claim: only its holder may write.
            CREATE TABLE run (
                id               TEXT PRIMARY KEY NOT NULL,
                table_id         TEXT NOT NULL,            -- the table/row that created the run
                row_name         TEXT NOT NULL,
                seed             INTEGER NOT NULL,         -- UInt64 stored as its Int64 bit pattern
                protocol         TEXT NOT NULL,
                protocol_version TEXT NOT NULL,
                status           TEXT NOT NULL
                    CHECK (status IN ('queued', 'running', 'finished', 'failed', 'diverged')),
                verdict          TEXT
                    CHECK (verdict IS NULL OR verdict IN ('trained', 'partial-collapse', 'collapsed', 'diverged')),
                git_revision     TEXT,
                git_dirty        INTEGER NOT NULL DEFAULT 0 CHECK (git_dirty IN (0, 1)),
                host             TEXT,
                pid              INTEGER,
                owner            TEXT,
                created_at       REAL NOT NULL,
                heartbeat_at     REAL,
                started_at       REAL,
                ended_at         REAL,
                error            TEXT
            );
            -- Every (table, row) that uses a run: two tables with the same resolved row share its run.
            CREATE TABLE run_row (
                run_id   TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                table_id TEXT NOT NULL,
                row_name TEXT NOT NULL,
                PRIMARY KEY (table_id, row_name, run_id)
            );
            CREATE INDEX run_row_by_run ON run_row(run_id);
            -- The resolved config flattened to dotted keys, plus `config_json`, `seed`, `protocol_version`.
            CREATE TABLE param (
                run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                key    TEXT NOT NULL,
                value  TEXT NOT NULL,
                PRIMARY KEY (run_id, key)
            );
            -- Long, narrow metrics. Per-epoch keys at step = epoch (1-based); final metrics under the
            -- key prefix `final.` at step 0. NaN/±Inf are data: value NULL and kind says which.
            CREATE TABLE metric (
                run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                key    TEXT NOT NULL,
                step   INTEGER NOT NULL,
                value  REAL,
                kind   TEXT NOT NULL CHECK (kind IN ('finite', 'nan', 'inf', '-inf')),
                CHECK ((kind = 'finite') = (value IS NOT NULL)),
                PRIMARY KEY (run_id, key, step)
            );
            -- kNN of raw pixels and of a randomly initialised backbone, per protocol and seed.
            CREATE TABLE baseline (
                protocol TEXT NOT NULL,
                seed     INTEGER NOT NULL,
                key      TEXT NOT NULL,
                value    REAL,
                kind     TEXT NOT NULL CHECK (kind IN ('finite', 'nan', 'inf', '-inf')),
                CHECK ((kind = 'finite') = (value IS NOT NULL)),
                PRIMARY KEY (protocol, seed, key)
            );
            """),
        Migration(name: "v2: run.attempts, run.resumed_at", sql: """
            -- A run taken over keeps its first started_at; attempts counts the claims that trained it
            -- and resumed_at is when the last one took over a run that had been started before.
            ALTER TABLE run ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE run ADD COLUMN resumed_at REAL;
            UPDATE run SET attempts = 1 WHERE started_at IS NOT NULL;
            """),
    ]

    /// Applies the migrations that are missing, in one `BEGIN IMMEDIATE` transaction, so two
    /// processes opening a new file at once apply each migration exactly once.
    /// Returns the names applied now (empty when the database was up to date).
    @discardableResult
    static func migrate(_ db: Connection, now: Date) throws -> [String] {
        try db.write {
            let tables = try db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .compactMap { $0.string(0) }
            if !tables.isEmpty && !tables.contains("migrations") {
                throw StoreError.foreignDatabase(path: db.path, tables: tables)
            }
            try db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY NOT NULL, applied_at REAL NOT NULL)")
            let applied = Set(try db.query("SELECT name FROM migrations").compactMap { $0.string(0) })
            let known = Set(migrations.map(\.name))
            let unknown = applied.subtracting(known).sorted()
            guard unknown.isEmpty else { throw StoreError.newerSchema(path: db.path, unknownMigrations: unknown) }
            var appliedNow: [String] = []
            for migration in migrations where !applied.contains(migration.name) {
                try db.executeScript(migration.sql)
                try db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                               [.text(migration.name), .real(now.timeIntervalSince1970)])
                appliedNow.append(migration.name)
            }
            return appliedNow
        }
    }
}
