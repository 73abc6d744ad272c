import ArgumentParser
import Foundation
import Registry
import Store

/// Options every table command shares.
struct TableOptions: ParsableArguments {
    @Option(help: "SQLite database of runs.")
    var db: String = "results/ablate.sqlite"

    @Option(help: "Directory of experiment files (one YAML file per paper table).")
    var experiments: String = "experiments"

    func registry() throws -> Registry { try Registry(directory: experiments) }
    func store() throws -> Store { try Store.open(db) }

    /// The tables named by `id` (`all` for every table).
    func tables(_ id: String) throws -> [ExperimentTable] {
        let registry = try registry()
        return id == "all" ? registry.tables : [try registry.table(id: id)]
    }
}

/// The git revision of the working tree and whether it has uncommitted changes (nil outside git).
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
    let status = git(["status", "--porcelain", "--untracked-files=no"]) ?? ""
    return (rev, !status.isEmpty)
}

/// The path of this executable (workers are started from it).
func ownExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
