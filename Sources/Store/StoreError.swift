import CSQLite
import Foundation

/// Everything the store can fail with. Each description says what failed, where (database path,
/// SQL statement, run id) and what to do next (GRDB's "while executing `…`" messages are the model).
public enum StoreError: Error, CustomStringConvertible, Equatable {
    /// The parent directory of the database could not be created.
    case cannotCreateDirectory(path: String, reason: String)
    /// `sqlite3_open_v2` failed (permissions, a directory in the way, …).
    case cannotOpen(path: String, code: Int32, message: String)
    /// The file exists but is not an SQLite database (or its header is damaged). It is left untouched.
    case notADatabase(path: String, message: String)
    /// A valid SQLite database that was not created by ablate (it has tables but no `migrations`).
    case foreignDatabase(path: String, tables: [String])
    /// The database has migrations this build does not know: it was written by a newer ablate.
    case newerSchema(path: String, unknownMigrations: [String])
    /// A statement failed.
    case sql(statement: String, path: String, code: Int32, message: String)
    /// A stored value has a shape this build cannot read (hand-edited or damaged database).
    case badStoredValue(path: String, what: String, value: String)
    /// The run is not (or no longer) held by this lease: another process took it over after the
    /// heartbeat went stale, or it was already finished or failed.
    case notOwner(runId: String, path: String, status: String)
    /// No run with this id.
    case unknownRun(runId: String, path: String)
    /// The run identity could not be computed (the config did not encode as JSON).
    case cannotEncodeConfig(reason: String)

    public var description: String {
        switch self {
        case let .cannotCreateDirectory(path, reason):
            return "cannot create the directory for the database \(path) (\(reason)); "
                + "check the permissions of its parent or pass --db PATH"
        case let .cannotOpen(path, code, message):
            return "cannot open the database \(path) (SQLite error \(code): \(message)); "
                + "check that the path is a writable file, not a directory, or pass --db PATH"
        case let .notADatabase(path, message):
            return "\(path) is not a valid ablate database (\(message)); it was left unchanged: "
                + "move it aside or pass --db PATH"
        case let .foreignDatabase(path, tables):
            return "\(path) is an SQLite database but not an ablate one (it has tables "
                + "\(tables.joined(separator: ", ")) and no `migrations` table); it was left unchanged: "
                + "pass --db PATH to use another file"
        case let .newerSchema(path, unknown):
            return "\(path) was written by a newer version of ablate (unknown migrations: "
                + "\(unknown.joined(separator: ", "))); update ablate or pass --db PATH"
        case let .sql(statement, path, code, message):
            return "SQLite error \(code) (\(message)) while executing `\(statement)` on \(path); "
                + StoreError.hint(code: code)
        case let .badStoredValue(path, what, value):
            return "\(path) holds an unexpected \(what) `\(value)`; the database was edited by hand or is "
                + "damaged: run `PRAGMA integrity_check`, or move it aside and pass --db PATH"
        case let .notOwner(runId, path, status):
            return "run \(runId) in \(path) is no longer held by this process (its status is now `\(status)`; "
                + "another process took it over after the heartbeat went stale, or it ended); "
                + "stop training it: its results would not be recorded"
        case let .unknownRun(runId, path):
            return "no run with id \(runId) in \(path); list the runs of its table or check the id"
        case let .cannotEncodeConfig(reason):
            return "cannot encode the training config as JSON to compute the run id (\(reason)); "
                + "this is a bug in ablate"
        }
    }

    /// What to do about an SQLite result code.
    static func hint(code: Int32) -> String {
        switch code & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return "another process held the database longer than the busy timeout; wait for it to finish "
                + "or use a different --db"
        case SQLITE_CORRUPT, SQLITE_NOTADB:
            return "the file is damaged: move it aside and pass --db PATH (finished runs in it are lost "
                + "unless `sqlite3 FILE .recover` can save them)"
        case SQLITE_FULL:
            return "the disk is full; free space and run again (finished runs are kept)"
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_CANTOPEN:
            return "the database or its directory is not writable; fix the permissions or pass --db PATH"
        case SQLITE_IOERR:
            return "an I/O error occurred; check the disk and run again"
        case SQLITE_CONSTRAINT:
            return "a value broke a schema constraint; this is a bug in ablate, please report it with the statement"
        default:
            return "this is unexpected; if it repeats, report it with the statement"
        }
    }
}
