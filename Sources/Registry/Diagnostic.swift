import Foundation
import SSL

/// A position in an experiment file. Line and column count from 1; columns count Unicode
/// scalars, as libyaml (and so Yams' `Mark`) does.
public struct SourceLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem in an experiment file: where it is, what is wrong, what was expected and what to
/// do about it, printed as `path:line:column: error: <problem>; expected <expected>; <fix>`.
public struct Diagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation
    public var problem: String
    public var expected: String
    public var fix: String

    public init(location: SourceLocation, problem: String, expected: String, fix: String) {
        self.location = location
        self.problem = problem
        self.expected = expected
        self.fix = fix
    }

    public var description: String { "\(location): error: \(problem); expected \(expected); \(fix)" }
}

/// Everything that can go wrong between an `experiments/` directory and a resolved
/// `TrainingConfig`.
public enum RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Every problem found in the experiment files, in file and line order. Nothing may run
    /// until the list is empty.
    case invalid([Diagnostic])
    /// The experiments directory does not exist or cannot be listed.
    case unreadableDirectory(path: String, reason: String)
    /// No table has this id.
    case unknownTable(id: String, known: [String], closest: String?)
    /// The table has no row of this name.
    case unknownRow(name: String, table: String, known: [String], closest: String?)
    /// A valid row whose configuration cannot be built (e.g. its protocol is not implemented).
    case unresolvable(row: String, location: SourceLocation, reason: String)

    public var description: String {
        switch self {
        case let .invalid(diagnostics):
            let count = diagnostics.count == 1 ? "1 error" : "\(diagnostics.count) errors"
            return (diagnostics.map(\.description) + ["\(count) in the experiment files"])
                .joined(separator: "\n")
        case let .unreadableDirectory(path, reason):
            return "error: cannot read the experiments directory `\(path)`: \(reason); "
                + "pass the directory that holds the `*.yaml` experiment files"
        case let .unknownTable(id, known, closest):
            guard !known.isEmpty else { return "error: unknown table `\(abbreviated(id))`; no experiment tables were found" }
            return "error: unknown table `\(abbreviated(id))`; known tables: \(listed(known))"
                + (closest.map { "; did you mean `\($0)`?" } ?? "")
        case let .unknownRow(name, table, known, closest):
            // Names that hold a comma are quoted, or the list could not be read back.
            let names = known.contains { $0.contains(",") } ? known.map { "`\($0)`" } : known
            return "error: table `\(table)` has no row `\(abbreviated(name))`; its rows: \(listed(names))"
                + (closest.map { "; did you mean `\($0)`?" } ?? "")
        case let .unresolvable(row, location, reason):
            return "\(location): error: row `\(row)` cannot be resolved: \(reason)"
        }
    }
}

/// The candidate with the smallest edit distance to `word` (ignoring case) if it is reasonably
/// close (the threshold of `ConfigKey.closest(to:)`, and fewer edits than `word` has characters);
/// otherwise the shortest candidate that starts with `word` (`cov` → `cov_offdiag`).
/// Bounded: edit distances only between strings of at most `suggestionLength` characters, among
/// the first `suggestionCandidates` candidates.
func closest(to word: String, among candidates: [String]) -> String? {
    let candidates = candidates.prefix(suggestionCandidates)
    let lowered = word.lowercased()
    guard !lowered.isEmpty, lowered.count <= suggestionLength else { return nil }
    let limit = min(max(3, word.count / 3), word.count - 1)
    let best = candidates.filter { $0.count <= suggestionLength }
        .map { ($0, editDistance($0.lowercased(), lowered, limit: limit)) }.min { $0.1 < $1.1 }
    if let best, best.1 <= limit { return best.0 }
    return candidates.filter { $0.lowercased().hasPrefix(lowered) }.min { $0.count < $1.count }
}

/// Suggestions are looked for among this many candidates, of at most this many characters.
let suggestionCandidates = 100
let suggestionLength = 32

/// `ConfigKey.closest(to:)`, or else the key whose last component is `key` (`stop_gradient` →
/// `loss.stop_gradient`).
func closestKey(to key: String) -> String? {
    ConfigKey.closest(to: key) ?? ConfigKey.all.first { $0.name.hasSuffix("." + key) }?.name
}
