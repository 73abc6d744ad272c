import Foundation
import Registry
import SSL

/// What a report needs to know about a paper table: plain values, usually built from a Registry
/// table with `init(_:epochs:seeds:)`; tests and tools may also fill them in directly.
public struct TableDescription: Sendable, Equatable {
    public var id: String
    public var title: String
    /// The paper, e.g. "Chen & He, CVPR 2021 (arXiv 2011.10566)".
    public var paper: String
    /// Where in the paper, e.g. "Table 1, p. 4".
    public var source: String
    public var protocolName: String
    /// Only runs trained with this protocol version count; nil accepts any (the newest run of a
    /// row and seed wins either way).
    public var protocolVersion: String?
    public var epochs: Int
    public var seeds: [UInt64]
    /// Rendered in this order.
    public var rows: [RowDescription]
    /// The table's metrics (an experiment file's `metrics:`), in the order it lists them.
    public var metrics: [Metric]

    public init(id: String, title: String, paper: String, source: String, protocolName: String,
                protocolVersion: String? = nil, epochs: Int, seeds: [UInt64], rows: [RowDescription],
                metrics: [Metric] = Metric.defaultColumns) {
        self.id = id; self.title = title; self.paper = paper; self.source = source
        self.protocolName = protocolName; self.protocolVersion = protocolVersion
        self.epochs = epochs; self.seeds = seeds; self.rows = rows; self.metrics = metrics
    }

    /// The markdown's metric columns: the main metric (kNN top-1, which claims compare and whose
    /// cell counts the seeds) first, then the other `metrics` in their order.
    public var columns: [Metric] { [Metric.main] + metrics.filter { $0 != Metric.main } }
}

/// One row of a paper table.
public struct RowDescription: Sendable, Equatable {
    public var name: String
    /// The paper's number as the paper prints it ("67.7", "0.1", "unstable", "not found").
    public var paperValue: String
    /// Where that number is ("P1 Table 1").
    public var paperSource: String
    /// The claims this row tests (none, one or several).
    public var claims: [Claim]

    public init(name: String, paperValue: String, paperSource: String, claims: [Claim]) {
        self.name = name; self.paperValue = paperValue; self.paperSource = paperSource; self.claims = claims
    }

    /// A row whose claim is given as text in an experiment file's form (`Claim(parsing:)` of the
    /// Registry); an empty text means no claim.
    public init(name: String, paperValue: String, paperSource: String, claimText: String) throws {
        let trimmed = claimText.trimmingCharacters(in: .whitespacesAndNewlines)
        var claims: [Claim] = []
        if !trimmed.isEmpty {
            guard let parsed = Claim(parsing: trimmed) else { throw ReportError.badClaim(text: trimmed, row: name) }
            claims = [parsed]
        }
        self.init(name: name, paperValue: paperValue, paperSource: paperSource, claims: claims)
    }
}

extension TableDescription {
    /// The description of a Registry table: its id, title, paper, source, protocol, metrics and rows in file
    /// order, each with the paper's value as the paper table prints it (`67.7`, `collapse`, `NaN`,
    /// `unstable`, `not found`), where the paper prints it, and the row's claim.
    ///
    /// The table does not fix how many epochs its runs train or which seeds they use: pass the
    /// epochs of the resolved configuration (e.g. `table.resolvedConfig(for: table.rows[0]).epochs`)
    /// and the seeds the runs were scheduled with.
    public init(_ table: ExperimentTable, epochs: Int, seeds: [UInt64], protocolVersion: String? = nil) {
        self.init(id: table.id, title: table.title, paper: table.paper, source: table.source,
                  protocolName: table.protocolName, protocolVersion: protocolVersion, epochs: epochs, seeds: seeds,
                  rows: table.rows.map { row in
                      RowDescription(name: row.name, paperValue: row.paper.description, paperSource: row.paperSource,
                                     claims: row.claims)
                  },
                  metrics: table.metrics)
    }
}

/// Errors of this module, each saying what to fix.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    case badClaim(text: String, row: String?)
    case cannotEncode(format: String, reason: String)

    public var description: String {
        switch self {
        case let .badClaim(text, row):
            let place = row.map { "row `\($0)`: " } ?? ""
            return "\(place)cannot read the claim `\(text)`; write one of: \(Claim.forms.joined(separator: ", "))"
        case let .cannotEncode(format, reason):
            return "cannot write the \(format) export (\(reason)); this is a bug in ablate"
        }
    }
}
