import Foundation
import Registry
import SSL

/// The page a reader opens first (results/README.md): for each paper, each table with its link and
/// how many of its claims reproduced, did not, are inconclusive or have no runs yet, and one line
/// per claim that failed.
public enum Scorecard {
    public static func markdown(_ reports: [TableReport]) -> String {
        var lines = ["# Reproduction scorecard", "",
                     "Claims of each table, decided from the stored runs by `ablate report all` (nothing typed in). "
                        + "\"not yet run\": the row has no finished run; \"inconclusive\": the runs do not decide it (see the table).", ""]
        let papers = reports.map(\.table.paper).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for paper in papers {
            lines += ["## \(paper)", "", "| table | source | reproduced | not reproduced | inconclusive | not yet run |", "|---|---|---:|---:|---:|---:|"]
            var failures: [String] = []
            for report in reports where report.table.paper == paper {
                var counts = [0, 0, 0, 0]
                for (i, row) in report.table.rows.enumerated() {
                    let ran = !report.rows[i].verdicts.isEmpty
                    for (claim, outcome) in zip(row.claims, report.outcomes[i]) {
                        switch outcome {
                        case _ where !ran: counts[3] += 1
                        case .holds: counts[0] += 1
                        case .fails:
                            counts[1] += 1
                            failures.append("- `\(report.table.id)` \(row.name): \(claim.text) — not reproduced")
                        case .inconclusive: counts[2] += 1
                        }
                    }
                }
                lines.append("| [\(report.table.title)](\(report.table.id).md) | \(report.table.source) | "
                             + counts.map(String.init).joined(separator: " | ") + " |")
            }
            lines.append("")
            if !failures.isEmpty { lines += ["Claims that did not reproduce:", ""] + failures + [""] }
        }
        return lines.joined(separator: "\n")
    }
}
