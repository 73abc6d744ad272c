import Foundation
import SSL
import Store

/// One stored run with everything a report or an export shows.
public struct RunData: Sendable, Equatable {
    public var record: RunRecord
    public var params: [String: String]
    public var metrics: [MetricPoint]
    public var final: StoredFinalMetrics?
}

extension RunData {
    /// The stored final metrics with those derived from the run's curves (`Metric.derivedFinals`)
    /// added where not stored; nil while the run has no final metrics.
    public var finalWithDerived: StoredFinalMetrics? {
        guard var final else { return nil }
        let derived = Metric.derivedFinals(metrics.map { ($0.key, $0.value) })
        final.values.merge(derived) { stored, _ in stored }
        return final
    }
}

/// A paper table next to the runs that reproduce it: markdown, CSV and JSON.
///
/// Which runs count: for each row and each seed of the table, the newest run (by creation time,
/// then id) listed under the table for that row and seed, trained with the table's protocol (and
/// protocol version when the description gives one). An older run — say from before a code change
/// — is kept in the database and in exports but does not appear in the markdown.
public struct TableReport: Sendable {
    public let table: TableDescription
    /// Every run listed under the table, in export order (row order, then seed, then creation).
    public let runs: [RunData]
    /// The run chosen for each row, by row name: at most one per seed, in seed order.
    public let selected: [String: [RunData]]
    public let rows: [RowStats]
    /// Per row, the outcome of each of its claims (in the row's order; empty without claims).
    public let outcomes: [[ClaimOutcome]]
    /// Per row and claim: for curve claims, the start and end the outcome was decided on.
    public let evidence: [[CurveEvidence?]]
    /// Per row and claim: for comparative claims (`within`, `below`, `above`), the interval of the
    /// kNN difference the outcome was decided on (nil without one).
    public let intervals: [[DifferenceInterval?]]
    public let baselines: [StoredBaselines]

    /// Loads the table's runs, their metrics and the protocol's baselines from the store.
    public init(table: TableDescription, store: Store) throws {
        try self.init(table: table, records: try store.runs(forTable: table.id), store: store)
    }

    /// The same with the table's runs given (their row names this table's).
    public init(table: TableDescription, records: [RunRecord], store: Store) throws {
        let runs = try records.map { record in
            RunData(record: record, params: try store.params(runId: record.id),
                    metrics: try store.metrics(runId: record.id), final: try store.finalMetrics(runId: record.id))
        }
        self.init(table: table, runs: runs, baselines: try store.baselines(protocolName: table.protocolName))
    }

    /// A report from runs already loaded (pure; the markdown depends only on these values).
    public init(table: TableDescription, runs: [RunData], baselines: [StoredBaselines]) {
        self.table = table
        let rowIndex = Dictionary(table.rows.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let ordered = runs.sorted { a, b in
            let ra = rowIndex[a.record.rowName] ?? Int.max, rb = rowIndex[b.record.rowName] ?? Int.max
            if ra != rb { return ra < rb }
            if a.record.rowName != b.record.rowName { return a.record.rowName < b.record.rowName }
            if a.record.seed != b.record.seed { return a.record.seed < b.record.seed }
            if a.record.createdAt != b.record.createdAt { return a.record.createdAt < b.record.createdAt }
            return a.record.id < b.record.id
        }
        self.runs = ordered
        var selected: [String: [RunData]] = [:]
        for row in table.rows {
            selected[row.name] = table.seeds.compactMap { seed in
                ordered.filter { run in
                    run.record.rowName == row.name && run.record.seed == seed && run.record.protocolName == table.protocolName
                        && (table.protocolVersion.map { $0 == run.record.protocolVersion } ?? true)
                }.last   // runs are sorted oldest first
            }
        }
        self.selected = selected
        let stats = table.rows.map { row in
            RowStats(name: row.name, plannedSeeds: table.seeds.count,
                     runs: (selected[row.name] ?? []).map { ($0.record, $0.finalWithDerived) })
        }
        rows = stats
        var outcomes: [[ClaimOutcome]] = [], evidence: [[CurveEvidence?]] = []
        for (row, stat) in zip(table.rows, stats) {
            let decided = row.claims.map { claim -> (ClaimOutcome, CurveEvidence?) in
                guard claim.isCurveClaim else { return (evaluateClaim(claim, stat, stats), nil) }
                return evaluateCurveClaim(claim, runs: (selected[row.name] ?? []).filter { $0.record.status.isDone }.map(\.metrics))
            }
            outcomes.append(decided.map(\.0)); evidence.append(decided.map(\.1))
        }
        self.outcomes = outcomes
        self.evidence = evidence
        intervals = zip(table.rows, stats).map { row, stat in row.claims.map { comparisonInterval($0, stat, stats) } }
        self.baselines = baselines.filter { table.seeds.contains($0.seed) }.sorted { $0.seed < $1.seed }
    }

    // MARK: - Markdown

    /// The table as markdown: one line per row in the given order, one column per metric of
    /// `table.columns` (kNN top-1 first, with its seed count, then the table's `metrics:` in order)
    /// with the metric's label and decimals (SSL's `Metric` catalogue), then a footer with protocol, seeds, run counts, code revisions and baselines,
    /// then where each paper value comes from (kept out of the table so that it stays narrow).
    public func markdown() -> String {
        var lines = ["## \(table.title) (`\(table.id)`)", "", "\(table.paper) — \(table.source).", ""]
        let columns = table.columns
        let headers = ["row", "paper"] + columns.map(\.label) + ["verdict", "claim", "holds"]
        lines.append("| " + headers.joined(separator: " | ") + " |")
        lines.append("|" + String(repeating: "---|", count: headers.count))
        let planned = table.seeds.count
        for (i, row) in table.rows.enumerated() {
            let s = rows[i], mainSeeds = s[Metric.main]?.n ?? 0
            let values = columns.map { metric in
                let cell = summary(s[metric], metric)
                if metric == Metric.main { return "\(cell) (\(mainSeeds) of \(planned) seeds)" }
                // A metric that older runs did not store says over how many seeds it stands.
                if let n = s[metric]?.n, n < mainSeeds { return "\(cell) (\(n) of \(mainSeeds) seeds)" }
                return cell
            }
            let cells = [row.name, row.paperValue] + values
                + [verdictCell(s.verdicts), claimsCell(row, i), outcomes[i].isEmpty ? "—" : outcomes[i].map(\.text).joined(separator: "; ")]
            lines.append("| " + cells.map(escapeCell).joined(separator: " | ") + " |")
        }
        lines.append("")
        lines += footer()
        let sourced = table.rows.filter { !$0.paperSource.isEmpty }
        if !sourced.isEmpty {
            lines += ["", "Where the paper values come from:", ""]
            lines += sourced.map { "- \($0.name): \($0.paperSource)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func footer() -> [String] {
        let chosen = table.rows.flatMap { selected[$0.name] ?? [] }
        let planned = table.rows.count * table.seeds.count
        var lines = ["- Protocol `\(table.protocolName)`, \(table.epochs) epochs, seeds "
                     + (table.seeds.isEmpty ? "none" : table.seeds.map(String.init).joined(separator: ", "))
                     + "; mean ± sample std over finished seeds."]
        var counts: [String] = []
        for state in [RunState.finished, .diverged, .running, .queued, .failed] {
            let n = chosen.filter { $0.record.status == state }.count
            if n > 0 { counts.append("\(n) \(state.rawValue)") }
        }
        if planned - chosen.count > 0 { counts.append("\(planned - chosen.count) missing") }
        lines.append("- Runs (\(planned) planned): " + (counts.isEmpty ? "none" : counts.joined(separator: ", ")) + ".")
        let revisions = Set(chosen.filter { $0.record.status != .queued }.map {
            "`\($0.record.gitRevision ?? "unknown")`" + ($0.record.gitDirty ? " (dirty)" : "")
        }).sorted()
        lines.append("- Code: " + (revisions.isEmpty ? "—" : revisions.joined(separator: ", ")) + ".")
        // Times and memory depend on the build and on what else ran on the machine: say so when the
        // runs behind such a column come from several builds (the baseline row often ran first).
        let cost = table.columns.filter { [Metric.epochSeconds.key, Metric.targetShare.key, Metric.peakRSSMiB.key].contains($0.key) }
        let builds = Set(chosen.filter { $0.record.status == .finished }.map { $0.record.gitRevision ?? "unknown" })
        if !cost.isEmpty && builds.count > 1 {
            lines.append("- " + cost.map(\.label).joined(separator: " and ") + " come from runs of \(builds.count) builds, each "
                         + "beside whatever else ran on the machine: they compare rows only roughly. "
                         + "`results/timing/` has rows timed with one build in one session.")
        }
        let n = table.seeds.count
        for (metric, measures) in Metric.baselines {
            let measured = measures.map { baseline in
                let s = MeanStd.of(baselines.compactMap { $0.values[baseline.key] })
                return "\(baseline.label) \(summary(s, baseline)) (\(s?.n ?? 0) of \(n) seeds)"
            }
            lines.append("- Baselines (\(metric.label)): " + measured.joined(separator: ", ") + ".")
        }
        for run in chosen where run.record.status == .failed {
            let message = (run.record.error ?? "no message").split(separator: "\n").first.map(String.init) ?? ""
            lines.append("- Failed: `\(run.record.rowName)` seed \(run.record.seed): \(message)")
        }
        return lines
    }

    /// Row i's claims, each followed by what it was decided on, separated by semicolons ("—" for none).
    private func claimsCell(_ row: RowDescription, _ i: Int) -> String {
        row.claims.isEmpty ? "—" : row.claims.indices.map { row.claims[$0].text + claimEvidence(i, $0) }.joined(separator: "; ")
    }

    /// What claim k of row i was decided on, printed after it: a curve's start and end, or the
    /// kNN difference's interval when it decided the claim (an inconclusive reason prints it already).
    private func claimEvidence(_ i: Int, _ k: Int) -> String {
        if let seen = evidence[i][k] { return " (\(seen.text))" }
        let outcome = outcomes[i][k]
        guard let ci = intervals[i][k], outcome == .holds || outcome == .fails else { return "" }
        return " (\(ci.text(Metric.main.format)))"
    }

    /// "mean ± std" (one seed: the mean) with the metric's decimals; "—" without values.
    private func summary(_ s: MeanStd?, _ metric: Metric) -> String {
        guard let s else { return "—" }
        return s.n > 1 ? "\(metric.format(s.mean)) ± \(metric.format(s.std))" : metric.format(s.mean)
    }

    /// The verdict when the seeds agree, otherwise each verdict with its count (most common first).
    private func verdictCell(_ verdicts: [Verdict]) -> String {
        guard let first = verdicts.first else { return "—" }
        if verdicts.allSatisfy({ $0 == first }) { return first.rawValue }
        let counts = Verdict.allCases.map { v in (v, verdicts.filter { $0 == v }.count) }.filter { $0.1 > 0 }
        let ordered = counts.enumerated().sorted { a, b in
            a.element.1 != b.element.1 ? a.element.1 > b.element.1 : a.offset < b.offset
        }
        return ordered.map { "\($0.element.1)× \($0.element.0.rawValue)" }.joined(separator: ", ")
    }
}

/// A table cell: pipes escaped, line breaks removed.
func escapeCell(_ text: String) -> String {
    text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
}

extension TableReport {
    /// The finished (or diverged) runs a table's markdown counts in its `- Runs (N planned): …`
    /// line; nil if the text has no such line (not a table this code wrote).
    public static func finishedRuns(inMarkdown text: String) -> Int? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("- Runs (") }),
              let colon = line.firstIndex(of: ":") else { return nil }
        var n = 0
        for part in line[line.index(after: colon)...].split(separator: ",") {
            let words = part.trimmingCharacters(in: .whitespaces.union(["."])).split(separator: " ")
            if words.count == 2, ["finished", "diverged"].contains(words[1]), let k = Int(words[0]) { n += k }
        }
        return n
    }
}
