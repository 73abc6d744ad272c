import ArgumentParser
import Foundation
import Registry
import Report
import Scheduler
import SSL
import Store

/// Options every table command shares.
struct TableOptions: ParsableArguments {
    @Option(help: "SQLite database of runs.")
    var db: String = "results/ablate.sqlite"

    @Option(help: "Directory of experiment files (one YAML file per paper table).")
    var experiments: String = "experiments"

    func registry() throws -> Registry { try Registry(directory: experiments) }
    func store() throws -> Store { try Store.open(db) }

    /// The tables named by `id`: one id, several separated by commas (each once, in the order
    /// given), or `all` for every table.
    func tables(_ id: String) throws -> [ExperimentTable] {
        let registry = try registry()
        if id == "all" { return registry.tables }
        var seen = Set<String>()
        return try id.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { seen.insert($0).inserted }
            .map { try registry.table(id: $0) }
    }
}

/// The git revision of the working tree and whether it has uncommitted changes (nil outside git).
/// Changes under results/ do not count: the committed database and reports change while a sweep
/// writes them, which says nothing about the code that ran.
func gitState() -> (revision: String?, dirty: Bool) {
    func git(_ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git"] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    guard let rev = git(["rev-parse", "--short=12", "HEAD"]) else { return (nil, false) }
    let status = git(["status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results"]) ?? ""
    return (rev, !status.isEmpty)
}

/// The path of this executable (workers and bench children are started from it): /proc/self/exe
/// on Linux, else argv[0] resolved against the working directory or PATH, else argv[0] as given.
func ownExecutable() -> String {
    #if os(Linux)
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
       FileManager.default.isExecutableFile(atPath: path) {
        return path
    }
    #endif
    let arg0 = CommandLine.arguments.first ?? ""
    if arg0.contains("/") {
        let url = URL(fileURLWithPath: arg0, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        if FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
    } else if let pathVar = ProcessInfo.processInfo.environment["PATH"] {
        for dir in pathVar.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(arg0)") {
            return "\(dir)/\(arg0)"
        }
    }
    return arg0
}

/// The database and output directory every table command defaults to; the markdown files there
/// are committed.
let defaultDatabase = "results/ablate.sqlite"
let defaultOutput = "results"

func samePath(_ a: String, _ b: String) -> Bool {
    URL(fileURLWithPath: a).standardizedFileURL.path == URL(fileURLWithPath: b).standardizedFileURL.path
}

/// Writes a table's markdown where it belongs and says where, without clobbering committed
/// tables: results/<id>.md only for the default database and the table's own protocol and
/// epochs (or an explicit `--output`); otherwise next to the scratch database. A file that counts
/// more finished runs than this table is kept. Returns the line to print.
func writeTable(_ report: TableReport, table: ExperimentTable, output: String?, db: String, protocolName: String?,
                epochs: Int?) throws -> String {
    let markdown = report.markdown()
    let ownSetup = (protocolName == nil || protocolName == table.protocolName) && epochs == nil
    let committed = (defaultOutput as NSString).appendingPathComponent("\(table.id).md")
    let directory = output ?? (samePath(db, defaultDatabase) && ownSetup ? defaultOutput : (db as NSString).deletingLastPathComponent)
    let path = (directory.isEmpty ? "." : directory as NSString).appendingPathComponent("\(table.id).md")
    if output == nil, samePath(path, committed), !(samePath(db, defaultDatabase) && ownSetup) {
        let why = ownSetup ? "the database is not \(defaultDatabase)" : "this is not the table's own protocol (\(table.protocolName)) and epochs"
        return "note: did not write \(committed) (\(why)); pass --output DIR to write this table"
    }
    if let old = try? String(contentsOfFile: path, encoding: .utf8), let had = TableReport.finishedRuns(inMarkdown: old),
       let has = TableReport.finishedRuns(inMarkdown: markdown), has < had {
        return "note: kept \(path): it counts \(had) finished run(s), this table \(has); delete it or pass --output DIR to write this one"
    }
    // The table's curves go beside it, in figures/, linked from the markdown.
    let figures = report.figures
    var written = markdown
    if !figures.isEmpty {
        let folder = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("figures")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        written += "\nCurves (mean over seeds, ± std where a row has several):\n\n"
        for figure in figures {
            try figure.svg().write(toFile: (folder as NSString).appendingPathComponent(figure.name + ".svg"), atomically: true, encoding: .utf8)
            written += "![\(figure.yLabel)](figures/\(figure.name).svg)\n"
        }
    }
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try written.write(toFile: path, atomically: true, encoding: .utf8)
    return "wrote \(path)" + (figures.isEmpty ? "" : " and \(figures.count) figure(s) in figures/")
}

/// A path that must be a directory (or not exist yet); the message names the option.
func validateDirectory(_ path: String, option: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
        throw ValidationError("\(option) \(path) is an existing file; expected a directory (it is created if missing); pass another path")
    }
}

/// `--seeds N`: seeds 0..<N.
let maxSeeds = 1000
func validateSeeds(_ seeds: Int?) throws {
    if let seeds, !(1...maxSeeds).contains(seeds) {
        throw ValidationError("--seeds \(seeds): expected a number of seeds in 1...\(maxSeeds) (seeds 0..<N are run); pass e.g. --seeds 3")
    }
}

func validateProtocol(_ name: String?) throws {
    if let name, !TrainingConfig.protocolNames.contains(name) {
        throw ValidationError("--protocol \(name): expected one of \(TrainingConfig.protocolNames.joined(separator: ", ")); pass e.g. --protocol smoke")
    }
}

/// A table's runs: those listed under it, and runs of the same configuration and seed trained for
/// another table (`ablate run` of this table would reuse them, and list them then), under this
/// table's row names. Without the second kind, a row shared by two tables (SimSiam's baseline)
/// would show only the seeds trained while this table ran.
func tableRuns(_ t: ExperimentTable, store: Store, seeds: Int? = nil, protocolName: String? = nil, epochs: Int? = nil) throws -> [RunRecord] {
    var runs = try store.runs(forTable: t.id)
    var notes: [String] = []
    // A table whose rows cannot be planned (a config refused) has only its listed runs.
    guard let jobs = try? Plan.jobs(for: t, seeds: seeds, protocolName: protocolName, epochs: epochs,
                                    checkpointDirectory: "", notes: &notes) else { return runs }
    var listed = Set(runs.map { "\($0.rowName)\u{0}\($0.id)" })
    for job in jobs where !listed.contains("\(job.rowName)\u{0}\(job.id)") {
        guard var record = try store.run(id: job.id) else { continue }
        record.tableId = t.id
        record.rowName = job.rowName
        runs.append(record)
        listed.insert("\(job.rowName)\u{0}\(job.id)")
    }
    return runs
}

