import Foundation
import Registry
import SSL
import Store

/// Expands tables into jobs: the listed rows × seeds 0..<n (rows are never multiplied).
public enum Plan {
    /// `rows` nil means all rows of the table; `seeds` nil means the table's default;
    /// `protocolName` replaces the table's protocol (e.g. run a `mini` table on `smoke`).
    /// Throws `RegistryError.unresolvable` (at the row) for a config that cannot run: contradictory
    /// settings, a batch the data cannot fill, or a peak memory estimate above `memoryLimit`.
    /// `notes` collects what was adapted to fit another protocol (a batch cut to the data set).
    /// The jobs with each run once: rows of two tables with the same configuration and seed are
    /// one run (the first job of it is kept).
    public static func uniqueRuns(_ jobs: [Job]) -> [Job] {
        var seen = Set<String>()
        return jobs.filter { seen.insert($0.id).inserted }
    }

    /// The jobs of several tables in the order to run them: seed 0 of every row of every table
    /// first, then seed 1, and so on (stable within a seed), so that every row has a first result
    /// early and a run interrupted after hours still leaves whole seeds of whole tables.
    public static func seedMajor(_ jobs: [Job]) -> [Job] {
        jobs.enumerated().sorted { ($0.element.seed, $0.offset) < ($1.element.seed, $1.offset) }.map(\.element)
    }

    public static func jobs(for table: ExperimentTable, rows: [String]? = nil, seeds: Int? = nil, protocolName: String? = nil,
                            epochs: Int? = nil, checkpointDirectory: String, dataDirectory: String? = nil,
                            memoryLimit: Double = Double(ProcessInfo.processInfo.physicalMemory),
                            notes: inout [String]) throws -> [Job] {
        let selected = try (rows ?? table.rows.map(\.name)).map { try table.row(named: $0) }
        var jobs: [Job] = []
        for row in selected {
            var config = try table.resolvedConfig(for: row)
            if let protocolName, protocolName != config.protocolName {
                let fitted = try TrainingConfig.named(protocolName).applying(row.overrides, checkConflicts: false).fittedToData()
                config = fitted.config
                if let note = fitted.note { notes.append("\(table.id) `\(row.name)`: \(note)") }
            }
            if let epochs { config.epochs = epochs }
            if let dataDirectory { config.dataDirectory = dataDirectory }
            // Everything a run could fail on deterministically is refused here, before any run starts.
            do {
                try config.validate(memoryLimit: memoryLimit)
            } catch {
                throw RegistryError.unresolvable(row: row.name, location: row.location,
                                                 reason: "\(error)" + (epochs != nil || protocolName != nil ? " (with the command line's --epochs / --protocol)" : ""))
            }
            for seed in 0..<UInt64(max(1, seeds ?? table.seeds)) {
                let spec = try RunSpec(tableId: table.id, rowName: row.name, seed: seed, config: config,
                                       protocolVersion: TrainingConfig.codeVersion)
                jobs.append(Job(id: spec.id, tableId: table.id, rowName: row.name, seed: seed, config: config,
                                checkpointPath: (checkpointDirectory as NSString).appendingPathComponent(spec.id + ".ckpt"),
                                baselines: row.name == selected.first?.name, protocolVersion: TrainingConfig.codeVersion))
            }
        }
        return jobs
    }
}
