import Foundation
import SSL

/// One paper table or figure as data: a protocol, the metrics to measure, and rows that are each
/// a small set of overrides on the protocol, with the paper's value and the claim it tests.
/// Parsed and validated from one YAML file (experiments/README.md describes the format).
public struct ExperimentTable: Sendable, Equatable {
    /// e.g. `simsiam-fig2`; unique in a registry.
    public var id: String
    public var title: String
    /// The citation, e.g. "Chen & He, CVPR 2021".
    public var paper: String
    /// Where in the paper: "Fig 2", "Table 1".
    public var source: String
    /// `smoke`, `mini` or `cifar` (PROTOCOLS.md).
    public var protocolName: String
    /// What each run reports, from `Metric.reportable` (SSL's catalogue). The first metric is the
    /// one the rows' `paper` values are in; a report shows kNN top-1 (`Metric.main`, what
    /// `within`/`below`/`above` claims compare; see Report's `evaluateClaim`) first, then the
    /// others in this order.
    public var metrics: [Metric]
    /// Seeds per row by default.
    public var seeds: Int
    /// In file order; names are unique.
    public var rows: [ExperimentRow]
    /// The file the table was read from, as given to the loader.
    public var file: String
    /// Where the table's `id` is written.
    public var location: SourceLocation

    /// The protocol names an experiment file may use (PROTOCOLS.md; part of the interface).
    public static let protocolNames = ["smoke", "mini", "cifar"]

    /// The row called `name` (compared without surrounding spaces: `"baseline "` is `baseline`);
    /// the error lists the table's rows and the closest name.
    public func row(named name: String) throws -> ExperimentRow {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if let row = rows.first(where: { $0.name == name }) { return row }
        let names = rows.map(\.name)
        throw RegistryError.unknownRow(name: name, table: id, known: names, closest: closest(to: name, among: names))
    }

    /// The protocol's defaults with the row's overrides applied in file order.
    public func resolvedConfig(for row: ExperimentRow) throws -> TrainingConfig {
        do {
            return try TrainingConfig.named(protocolName).applying(row.overrides)
        } catch {
            throw RegistryError.unresolvable(row: row.name, location: row.location, reason: "\(error)")
        }
    }
}

/// One row of a table: a named delta on the protocol.
public struct ExperimentRow: Sendable {
    public var name: String
    /// Dotted keys from `ConfigKey.all` with their values, in file order; empty for the baseline.
    public var overrides: [(key: String, value: ConfigValue)]
    /// The paper's number for this row, in the table's first metric.
    public var paper: PaperValue
    /// Where the number is printed: table, row, page.
    public var paperSource: String
    /// What the paper says of this row, each decided separately (`claim:` takes one or a list).
    public var claims: [Claim]
    public var note: String?
    /// Where the row starts in its file.
    public var location: SourceLocation

    public init(name: String, overrides: [(key: String, value: ConfigValue)], paper: PaperValue, paperSource: String,
                claims: [Claim], note: String?, location: SourceLocation) {
        self.name = name
        self.overrides = overrides
        self.paper = paper
        self.paperSource = paperSource
        self.claims = claims
        self.note = note
        self.location = location
    }
}

extension ExperimentRow: Equatable {
    public static func == (a: ExperimentRow, b: ExperimentRow) -> Bool {
        a.name == b.name && a.overrides.map(\.key) == b.overrides.map(\.key)
            && a.overrides.map(\.value) == b.overrides.map(\.value) && a.paper == b.paper
            && a.paperSource == b.paperSource && a.claims == b.claims && a.note == b.note && a.location == b.location
    }
}

/// What the paper reports for a row: a number, or a word where it gives none.
public enum PaperValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case collapse
    case nan
    case unstable
    case notFound

    /// The words allowed instead of a number, as written in experiment files.
    public static let words = ["collapse", "NaN", "unstable", "not found"]

    public init?(word: String) {
        switch word {
        case "collapse": self = .collapse
        case "NaN": self = .nan
        case "unstable": self = .unstable
        case "not found": self = .notFound
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case let .number(x): return formatNumber(x)
        case .collapse: return "collapse"
        case .nan: return "NaN"
        case .unstable: return "unstable"
        case .notFound: return "not found"
        }
    }
}

/// What a row is expected to show, checked later against its measured metrics.
public enum Claim: Sendable, Equatable, CustomStringConvertible {
    case collapses
    case doesNotCollapse
    case diverges
    /// |this row − target row| ≤ points, in measured kNN top-1 %.
    case within(points: Double, of: String)
    case below(String)
    case above(String)
    /// This row − target row ≥ −points (non-inferiority): SimSiam §5.2's "10 and 100 steps not
    /// below 1 step", with the margin the measurement can resolve written out.
    case notBelow(points: Double, of: String)
    /// A curve claim: the metric's stored curve (per step where stored, else per epoch) ends higher
    /// than it starts; the per-epoch curve from epoch `afterEpoch` on when given.
    case rises(metric: String, afterEpoch: Int? = nil)
    /// The curve ends lower than it starts; from epoch `afterEpoch` on when given.
    case falls(metric: String, afterEpoch: Int?)
    /// A final metric's mean over seeds lies within `tolerance` of `value` (Zhang et al. Fig 5a:
    /// `eta_zero within 0.25 of -0.5`).
    case near(metric: String, value: Double, tolerance: Double)

    /// The forms an experiment file may write.
    public static let forms = ["collapses", "does-not-collapse", "diverges", "within <pts> of <row>", "below <row>", "above <row>",
                               "not more than <pts> below <row>",
                               "<metric> rises", "<metric> falls", "<metric> rises after epoch <k>", "<metric> falls after epoch <k>",
                               "<metric> within <x> of <value>"]

    /// Metrics a curve claim may name: those stored every epoch (or step).
    public static let curveMetrics = Metric.all.filter(\.perEpoch).map(\.key)
    /// Metrics a `<metric> within <x> of <value>` claim may name: the end-of-training metrics.
    public static let finalMetrics = Metric.reportable.map(\.key)

    /// Parses `collapses`, `does-not-collapse`, `diverges`, `within 1.5 of baseline` (also
    /// `within 1.5 pts of …`), `below no predictor`, `above <row>`, `not more than 1 below 1-step`
    /// (also `… 1 pt below …`); row names may contain spaces;
    /// the curve claims `m_o rises`, `m_r rises after epoch 7`, `cov_offdiag falls after epoch 2`;
    /// `eta_zero within 0.25 of -0.5` (a final metric near a number).
    /// Nil for anything else (including a non-positive or non-finite `within` margin).
    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch t {
        case "collapses": self = .collapses; return
        case "does-not-collapse": self = .doesNotCollapse; return
        case "diverges": self = .diverges; return
        default: break
        }
        let words = t.split(separator: " ").map(String.init)
        if words.count == 5, Claim.finalMetrics.contains(words[0]), words[1] == "within", words[3] == "of" {
            guard let tolerance = Double(words[2]), tolerance.isFinite, tolerance > 0,
                  let value = Double(words[4]), value.isFinite else { return nil }
            self = .near(metric: words[0], value: value, tolerance: tolerance); return
        }
        if words.count >= 2, Claim.curveMetrics.contains(words[0]) {
            switch Array(words.dropFirst()) {
            case ["rises"]: self = .rises(metric: words[0]); return
            case ["falls"]: self = .falls(metric: words[0], afterEpoch: nil); return
            case let w where w.count == 4 && w[1...2] == ["after", "epoch"] && ["rises", "falls"].contains(w[0]):
                guard let k = Int(w[3]), k >= 1 else { return nil }
                self = w[0] == "rises" ? .rises(metric: words[0], afterEpoch: k) : .falls(metric: words[0], afterEpoch: k); return
            default: return nil
            }
        }
        if let rest = t.remainder(after: "not more than") {
            guard let (points, tail) = Claim.margin(rest), let row = tail.remainder(after: "below") else { return nil }
            self = .notBelow(points: points, of: row); return
        }
        if let row = t.remainder(after: "below") { self = .below(row); return }
        if let row = t.remainder(after: "above") { self = .above(row); return }
        guard let rest = t.remainder(after: "within"), let (points, tail) = Claim.margin(rest),
              let row = tail.remainder(after: "of") else { return nil }
        self = .within(points: points, of: row)
    }

    /// "1.5 pts of b" → (1.5, "of b"): a positive finite number, an optional unit, the rest.
    private static func margin(_ text: String) -> (Double, String)? {
        let parts = text.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let points = Double(parts[0]), points.isFinite, points > 0 else { return nil }
        var tail = String(parts[1])
        if let unit = ["points", "point", "pts", "pt"].first(where: { tail.hasPrefix($0 + " ") }),
           let afterUnit = tail.remainder(after: unit) {
            tail = afterUnit
        }
        return (points, tail)
    }

    /// `rises` / `falls`: decided from stored curves, not from final metrics.
    public var isCurveClaim: Bool {
        switch self {
        case .rises, .falls: return true
        default: return false
        }
    }

    /// The row a comparative claim refers to.
    public var targetRow: String? {
        switch self {
        case .collapses, .doesNotCollapse, .diverges, .rises, .falls, .near: return nil
        case let .within(_, row), let .below(row), let .above(row), let .notBelow(_, row): return row
        }
    }

    public var description: String {
        switch self {
        case .collapses: return "collapses"
        case .doesNotCollapse: return "does-not-collapse"
        case .diverges: return "diverges"
        case let .within(points, row): return "within \(formatNumber(points)) of \(row)"
        case let .below(row): return "below \(row)"
        case let .above(row): return "above \(row)"
        case let .notBelow(points, row): return "not more than \(formatNumber(points)) below \(row)"
        case let .rises(metric, after): return "\(metric) rises" + (after.map { " after epoch \($0)" } ?? "")
        case let .falls(metric, after): return "\(metric) falls" + (after.map { " after epoch \($0)" } ?? "")
        case let .near(metric, value, tolerance): return "\(metric) within \(formatNumber(tolerance)) of \(formatNumber(value))"
        }
    }

    /// The claim as reports print it, in words: "does not collapse", "within 1 pt of baseline",
    /// "within 1.5 pts of baseline" (`description` is the form experiment files write).
    public var text: String {
        switch self {
        case .collapses: return "collapses"
        case .doesNotCollapse: return "does not collapse"
        case .diverges: return "diverges"
        case let .within(points, row): return "within \(formatNumber(points)) \(points == 1 ? "pt" : "pts") of \(row)"
        case let .below(row): return "below \(row)"
        case let .above(row): return "above \(row)"
        case let .notBelow(points, row): return "not more than \(formatNumber(points)) \(points == 1 ? "pt" : "pts") below \(row)"
        case .rises, .falls, .near: return description
        }
    }
}

extension String {
    /// The trimmed text after `word` and at least one space, if self starts that way and
    /// something follows.
    fileprivate func remainder(after word: String) -> String? {
        guard hasPrefix(word + " ") else { return nil }
        let rest = dropFirst(word.count).trimmingCharacters(in: .whitespaces)
        return rest.isEmpty ? nil : rest
    }
}

/// 68 → "68", 67.7 → "67.7".
func formatNumber(_ x: Double) -> String {
    if x.isFinite, x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
    return String(x)
}
