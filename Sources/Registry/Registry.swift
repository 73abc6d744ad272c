import Foundation
import SSL

/// Every experiment table under a directory, validated together, sorted by id.
public struct Registry: Sendable {
    /// Where the tables were read from (nil when built from tables in memory).
    public let directory: String?
    /// Sorted by id; ids are unique.
    public let tables: [ExperimentTable]

    /// Loads every `*.yaml` under `directory`, recursively. Throws `RegistryError.invalid` with
    /// the problems of all files at once (a stray `*.yml` file is one of them, so that it is not
    /// silently skipped).
    public init(directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RegistryError.unreadableDirectory(path: directory, reason: "no such directory")
        }
        // Listed through its resolved path so that a symlinked directory is read too; messages
        // keep the path as given.
        let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        guard let enumerator = FileManager.default.enumerator(atPath: resolved) else {
            throw RegistryError.unreadableDirectory(path: directory, reason: "it cannot be listed")
        }
        let relativePaths = enumerator.compactMap { $0 as? String }.sorted()
        let join = { (path: String) in directory.hasSuffix("/") ? directory + path : directory + "/" + path }
        var tables: [ExperimentTable] = []
        var diagnostics: [Diagnostic] = []
        for path in relativePaths.map(join) {
            if path.hasSuffix(".yml") {
                diagnostics.append(Diagnostic(location: SourceLocation(file: path, line: 1, column: 1),
                                              problem: "experiment file with the extension `.yml`",
                                              expected: "experiment files named `*.yaml`", fix: "rename it to end in `.yaml`"))
            }
            guard path.hasSuffix(".yaml") else { continue }
            do {
                tables.append(try ExperimentTable.load(path: path))
            } catch let RegistryError.invalid(found) {
                diagnostics += found
            }
        }
        diagnostics += Registry.duplicateIDs(in: tables)
        guard diagnostics.isEmpty else { throw RegistryError.invalid(diagnostics) }
        self.directory = directory
        self.tables = tables.sorted { $0.id < $1.id }
    }

    /// A registry of tables already in memory; throws if two share an id.
    public init(tables: [ExperimentTable]) throws {
        let duplicates = Registry.duplicateIDs(in: tables)
        guard duplicates.isEmpty else { throw RegistryError.invalid(duplicates) }
        directory = nil
        self.tables = tables.sorted { $0.id < $1.id }
    }

    public var ids: [String] { tables.map(\.id) }

    /// The table with this id; the error lists the known ids and the closest one.
    public func table(id: String) throws -> ExperimentTable {
        if let table = tables.first(where: { $0.id == id }) { return table }
        throw RegistryError.unknownTable(id: id, known: ids, closest: closest(to: id, among: ids))
    }

    private static func duplicateIDs(in tables: [ExperimentTable]) -> [Diagnostic] {
        var first: [String: SourceLocation] = [:]
        var diagnostics: [Diagnostic] = []
        for table in tables {
            if let earlier = first[table.id] {
                diagnostics.append(Diagnostic(location: table.location, problem: "duplicate table id `\(table.id)` (also \(earlier))",
                                              expected: "ids unique across the experiments directory",
                                              fix: "rename one of the two tables"))
            } else {
                first[table.id] = table.location
            }
        }
        return diagnostics
    }
}

/// Documentation generated from the code, so that it cannot drift.
public enum ExperimentFormat {
    /// The markdown table of overridable keys, from `ConfigKey.all`; experiments/README.md
    /// carries a copy that a test compares with this.
    public static func keyTable() -> String {
        let escape = { (s: String) in s.replacingOccurrences(of: "|", with: "\\|") }
        return (["| key | methods | value | what it changes |", "|---|---|---|---|"]
            + ConfigKey.all.map {
                "| `\($0.name)` | \($0.methods?.joined(separator: ", ") ?? "all") | \(escape($0.expected)) | \(escape($0.help)) |"
            })
            .joined(separator: "\n")
    }
}
