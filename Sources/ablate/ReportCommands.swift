import ArgumentParser
import Foundation
import Registry
import Report
import SSL
import Store

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print a table as markdown (paper vs measured) and write results/<table-id>.md.",
        discussion: """
        Reads only the database: nothing is trained. Rows without finished runs show "—".

        Examples:
          ablate report simsiam-fig2
          ablate report all --seeds 3
        """)

    @Argument(help: "Table id, several separated by commas, or `all`.")
    var table: String

    @Option(parsing: .unconditional, help: "Seeds to report, 0..<N (default: the table's).")
    var seeds: Int?

    @Option(name: .customLong("protocol"), help: "Report the runs made on another protocol (as `run --protocol`).")
    var protocolName: String?

    @Option(help: "Directory the markdown files are written to (default: results/ for the default database and the table's own protocol, else the database's directory).")
    var output: String?

    @OptionGroup var options: TableOptions

    func validate() throws {
        try validateSeeds(seeds)
        try validateProtocol(protocolName)
        if let output { try validateDirectory(output, option: "--output") }
    }

    func run() throws {
        let store = try options.store()
        var reports: [TableReport] = []
        for t in try options.tables(table) {
            let report = try tableReport(t, store: store, seeds: seeds, protocolName: protocolName)
            reports.append(report)
            let markdown = report.markdown()
            print(markdown)
            print(try writeTable(report, table: t, output: output, db: options.db, protocolName: protocolName, epochs: nil))
        }
        // `report all` on the committed database also writes the scorecard beside the tables.
        if table == "all", protocolName == nil, output != nil || samePath(options.db, defaultDatabase) {
            let path = ((output ?? defaultOutput) as NSString).appendingPathComponent("README.md")
            try Scorecard.markdown(reports).write(toFile: path, atomically: true, encoding: .utf8)
            print("wrote \(path)")
        }
    }
}

/// The report of one table from the store (with the same protocol / epochs choices as `run`).
func tableReport(_ t: ExperimentTable, store: Store, seeds: Int?, protocolName: String?, epochs: Int? = nil) throws -> TableReport {
    var config = try t.resolvedConfig(for: t.rows[0])
    if let protocolName { config = try TrainingConfig.named(protocolName).applying(t.rows[0].overrides) }
    if let epochs { config.epochs = epochs }
    var description = TableDescription(t, epochs: config.epochs, seeds: (0..<UInt64(max(1, seeds ?? t.seeds))).map { $0 })
    description.protocolName = config.protocolName
    return try TableReport(table: description, records: try tableRuns(t, store: store, seeds: seeds, protocolName: protocolName, epochs: epochs),
                           store: store)
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tables, their rows, paper values and how many runs are done.",
        discussion: "`ablate list --keys` prints the configuration keys an experiment row may override.")

    @Flag(help: "List the override keys instead.")
    var keys = false

    @OptionGroup var options: TableOptions

    func run() throws {
        if keys {
            for k in ConfigKey.all { print("\(k.name)  (\(k.expected))  \(k.help)" + (k.methods.map { "  [\($0.joined(separator: ", ")) only]" } ?? "")) }
            return
        }
        let registry = try options.registry()
        let store = FileManager.default.fileExists(atPath: options.db) ? try options.store() : nil
        for t in registry.tables {
            let runs = try store.map { try tableRuns(t, store: $0) } ?? []
            print("\(t.id)  — \(t.title) [\(t.paper), \(t.source)], protocol \(t.protocolName), \(t.seeds) seed(s)  (\(t.file))")
            for row in t.rows {
                let done = runs.filter { $0.rowName == row.name && $0.status.isDone }.count
                let claim = row.claims.isEmpty ? "" : "  claim: " + row.claims.map(\.text).joined(separator: "; ")
                print("  \(row.name.padding(toLength: 26, withPad: " ", startingAt: 0)) paper \(row.paper)  runs done \(done)\(claim)")
            }
        }
    }
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show two rows of a table side by side: config difference and measured metrics.",
        discussion: "Example: ablate compare simsiam-table1 baseline \"no predictor\"")

    @Argument(help: "Table id.") var table: String
    @Argument(help: "First row name.") var rowA: String
    @Argument(help: "Second row name.") var rowB: String
    @OptionGroup var options: TableOptions

    func run() throws {
        let t = try options.registry().table(id: table)
        let a = try t.row(named: rowA), b = try t.row(named: rowB)
        let oa = Dictionary(a.overrides.map { ($0.key, "\($0.value)") }, uniquingKeysWith: { $1 })
        let ob = Dictionary(b.overrides.map { ($0.key, "\($0.value)") }, uniquingKeysWith: { $1 })
        print("Overrides on protocol `\(t.protocolName)` (\"default\": the protocol's value):\n")
        print("| key | \(a.name) | \(b.name) |\n|---|---|---|")
        for key in Set(oa.keys).union(ob.keys).sorted() where oa[key] != ob[key] {
            print("| \(key) | \(oa[key] ?? "default") | \(ob[key] ?? "default") |")
        }
        let store = try options.store()
        let runs = try tableRuns(t, store: store)
        print("\n| metric | \(a.name) | \(b.name) |\n|---|---|---|")
        func finals(_ row: ExperimentRow) throws -> [StoredFinalMetrics] {
            try runs.filter { $0.rowName == row.name }.compactMap { try store.finalMetrics(runId: $0.id) }
        }
        let ma = try finals(a), mb = try finals(b)
        // The table's metrics, kNN first (as `report` shows them), each with its catalogue decimals.
        for metric in TableDescription(t, epochs: 0, seeds: []).columns {
            func cell(_ xs: [StoredFinalMetrics]) -> String {
                guard let m = MeanStd.of(xs.compactMap { $0[metric] }) else { return "—" }
                return m.n > 1 ? "\(metric.format(m.mean)) ± \(metric.format(m.std)) (n \(m.n))" : metric.format(m.mean)
            }
            let name = metric.label
            print("| \(name) | \(cell(ma)) | \(cell(mb)) |")
        }
    }

}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a table's runs and metrics as CSV or JSON (to standard output).",
        discussion: "Example: ablate export simsiam-fig2 --format csv > fig2.csv")

    @Argument(help: "Table id.") var table: String
    @Option(help: "csv or json.") var format: String = "csv"
    @OptionGroup var options: TableOptions

    func run() throws {
        guard let f = ExportFormat(rawValue: format) else {
            throw ValidationError("unknown format `\(format)`; use csv or json")
        }
        let t = try options.registry().table(id: table)
        let config = try t.resolvedConfig(for: t.rows[0])
        let description = TableDescription(t, epochs: config.epochs, seeds: (0..<UInt64(t.seeds)).map { $0 })
        let store = try options.store()
        print(try TableReport(table: description, records: try tableRuns(t, store: store), store: store).export(format: f), terminator: "")
    }
}
