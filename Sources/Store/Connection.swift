import CSQLite
import Foundation

/// A value bound to or read from an SQLite statement.
enum SQLValue: Equatable {
    case null
    case int(Int64)
    case real(Double)
    case text(String)
}

/// One result row, read by column index.
struct Row {
    let values: [SQLValue]

    func string(_ i: Int) -> String? {
        switch values[i] {
        case let .text(s): return s
        case let .int(v): return String(v)
        case let .real(v): return String(v)
        case .null: return nil
        }
    }

    func int(_ i: Int) -> Int64? {
        switch values[i] {
        case let .int(v): return v
        case let .real(v): return Int64(exactly: v)
        default: return nil
        }
    }

    func double(_ i: Int) -> Double? {
        switch values[i] {
        case let .real(v): return v
        case let .int(v): return Double(v)
        default: return nil
        }
    }
}

/// One SQLite connection: prepared-statement cache, errors that name the statement and the file,
/// and write transactions that take the write lock up front (`BEGIN IMMEDIATE`), so that two
/// processes wait for each other through the busy timeout instead of failing with
/// "database is locked" when a reader tries to upgrade.
///
/// Not thread-safe: use one connection per thread (open a second `Store` for a second thread).
final class Connection {
    let path: String
    private let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    private var inTransaction = false

    /// NOTE: SQLITE_TRANSIENT makes SQLite copy bound text before `bind` returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Opens (creating if needed) the database; no I/O happens until the first statement.
    init(path: String, busyTimeout: TimeInterval) throws {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let handle { sqlite3_close_v2(handle) }
            throw StoreError.cannotOpen(path: path, code: rc, message: message)
        }
        db = handle
        sqlite3_busy_timeout(db, Int32(max(0, min(busyTimeout * 1000, Double(Int32.max)))))
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(db)
    }

    /// Rows changed by the last INSERT/UPDATE/DELETE.
    var changes: Int { Int(sqlite3_changes(db)) }

    private func error(_ sql: String, _ rc: Int32) -> StoreError {
        .sql(statement: sql, path: path, code: rc, message: String(cString: sqlite3_errmsg(db)))
    }

    /// Runs `sql` (one statement) and returns every row.
    @discardableResult
    func query(_ sql: String, _ bindings: [SQLValue] = []) throws -> [Row] {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (i, value) in bindings.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, index)
            case let .int(v): rc = sqlite3_bind_int64(statement, index, v)
            case let .real(v): rc = sqlite3_bind_double(statement, index, v)
            case let .text(s): rc = sqlite3_bind_text(statement, index, s, -1, Connection.transient)
            }
            guard rc == SQLITE_OK else { throw error(sql, rc) }
        }
        var rows: [Row] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(sql, rc) }
            let count = sqlite3_column_count(statement)
            rows.append(Row(values: (0..<count).map { column(statement, $0) }))
        }
        return rows
    }

    /// Runs `sql` (one statement) for its effect.
    func execute(_ sql: String, _ bindings: [SQLValue] = []) throws {
        try query(sql, bindings)
    }

    /// Runs a script of several statements (migrations); not cached.
    func executeScript(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        guard rc == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(message)
            throw StoreError.sql(statement: sql, path: path, code: rc, message: text)
        }
    }

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE` … `COMMIT`), rolled back if it
    /// throws. Nested calls join the outer transaction.
    func write<T>(_ body: () throws -> T) throws -> T {
        if inTransaction { return try body() }
        try execute("BEGIN IMMEDIATE")
        inTransaction = true
        defer { inTransaction = false }
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(sql, rc) }
        statements[sql] = statement
        return statement
    }

    private func column(_ statement: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(statement, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(statement, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, i))
        case SQLITE_NULL: return .null
        default: return sqlite3_column_text(statement, i).map { .text(String(cString: $0)) } ?? .null
        }
    }
}
