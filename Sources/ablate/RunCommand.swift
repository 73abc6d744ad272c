import ArgumentParser
import Foundation
import Registry
import Report
import Scheduler
import SSL
import Store

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a paper table (rows × seeds), skipping runs already finished.",
        discussion: """
        Every row × seed is one run, identified by a hash of its resolved configuration, seed and \
        training-code version. Finished runs are reused; failed, interrupted or missing ones are \
        (re)run, resuming from their last finished epoch. Runs go seed by seed: seed 0 of every row \
        (of every table, with `all`) first, then seed 1, and so on. Results go to the SQLite database; the \
        markdown table is written to results/<table-id>.md at the end (next to --db for another \
        database, protocol or epochs; a table with more finished runs is never replaced).

        Examples:
          ablate run simsiam-fig2                     # the table's rows and default seeds
          ablate run simsiam-table1 --rows "baseline,no predictor" --seeds 3
          ablate run all --protocol smoke --workers 2 # every table, on the seconds-long protocol
          ablate run simsiam-fig2 --backend slurm --partition cpu --time 02:00:00 --cpus-per-task 4

        With `--backend slurm` the runs still to do are submitted as one `sbatch --array` job per \
        table; specs, events and checkpoints go to the spool directory, which every node must \
        see. This process follows the array and stays the only writer of the database.
        """)

    @Argument(help: "Table id (see `ablate list`), several separated by commas, or `all`.")
    var table: String

    @Option(help: "Comma-separated row names (default: all rows).")
    var rows: String?

    // NOTE: `.unconditional` takes `-3` as the value, so `validate` can say what is wrong with it.
    @Option(parsing: .unconditional, help: "Number of seeds, 0..<N (default: the table's).")
    var seeds: Int?

    @Option(name: .customLong("protocol"), help: "Run on another protocol than the table's (smoke or mini).")
    var protocolName: String?

    @Option(parsing: .unconditional, help: "Override the number of epochs (a different config: new run ids).")
    var epochs: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Parallel worker processes (default: one per core, each with one thread; when fewer runs are left than workers, they get the spare cores).",
        discussion: "On 2 cores, 2 workers × 1 thread finish a table sooner than 1 × 2 (results/bench.md measures both); --workers 1 gives one run all the cores."))
    var workers: Int?

    @Option(help: "Directory for per-epoch checkpoints of unfinished runs.")
    var checkpoints: String = "results/checkpoints"

    @Option(help: "Directory with Fashion-MNIST's *-ubyte.gz files (mini).")
    var data: String?

    @Option(help: "Directory the markdown tables are written to (default: results/ for the default database and the table's own protocol and epochs, else the database's directory).")
    var output: String?

    @Option(help: "Where runs execute: local (worker processes here) or slurm (job arrays).")
    var backend: String = "local"

    @Option(help: "Slurm partition (default: the cluster's).")
    var partition: String?

    @Option(help: "Slurm time limit per run, HH:MM:SS.")
    var time: String?

    @Option(help: "Slurm cores per run (its threads).")
    var cpusPerTask: Int?

    @Option(help: "Slurm memory per run, e.g. 4G.")
    var mem: String?

    @Option(help: "Slurm: at most this many runs of an array at once.")
    var arrayParallelism: Int?

    @Option(help: "Slurm spool directory (specs, events, checkpoints), shared with the nodes.")
    var spool: String = "results/spool"

    @Flag(help: "Slurm: return once submitted; the same command run again collects the results.")
    var detach = false

    @Flag(help: "Print the plan (per table: runs finished and to run) and an estimate of its time from the epochs stored for the protocol, then stop; nothing runs.")
    var dryRun = false

    @OptionGroup var options: TableOptions

    /// Every option is checked before a table is read or a run starts.
    func validate() throws {
        try validateSeeds(seeds)
        if let workers, workers < 1 || workers > 64 {
            throw ValidationError("--workers \(workers): expected 1...64 parallel worker processes; pass e.g. --workers 2")
        }
        if let epochs, !(1...Limits.epochs).contains(epochs) {
            throw ValidationError("--epochs \(epochs): expected an integer in 1...\(Limits.epochs); pass e.g. --epochs 10")
        }
        if let rows, rowNames(rows).contains(where: \.isEmpty) {
            throw ValidationError("--rows \"\(rows)\" has an empty row name; expected comma-separated row names; "
                                  + "pass e.g. --rows \"baseline,no predictor\" or leave --rows out for every row")
        }
        try validateProtocol(protocolName)
        try validateDirectory(checkpoints, option: "--checkpoints")
        if let output { try validateDirectory(output, option: "--output") }
        guard ["local", "slurm"].contains(backend) else { throw ValidationError("unknown back end `\(backend)`; use local or slurm") }
        if backend == "local" {
            let slurmOnly = [partition.map { _ in "--partition" }, time.map { _ in "--time" }, cpusPerTask.map { _ in "--cpus-per-task" },
                             mem.map { _ in "--mem" }, arrayParallelism.map { _ in "--array-parallelism" }, detach ? "--detach" : nil]
            if let first = slurmOnly.compactMap({ $0 }).first { throw ValidationError("\(first) needs --backend slurm") }
        }
        if let c = cpusPerTask, c < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
        if let k = arrayParallelism, k < 1 { throw ValidationError("--array-parallelism must be at least 1") }
        if let t = time, t.range(of: #"^([0-9]+-)?[0-9]+(:[0-9]{2}){0,2}$"#, options: .regularExpression) == nil {
            throw ValidationError("--time `\(t)` is not a Slurm time limit; use HH:MM:SS (or D-HH:MM:SS)")
        }
    }

    func run() throws {
        let tables = try options.tables(table)
        let known = tables.flatMap { $0.rows.map(\.name) }
        let selected = rows.map { ablate.rowNames($0, known: known) }
        var jobs: [Job] = [], notes: [String] = []
        for t in tables {
            jobs += try Plan.jobs(for: t, rows: selected, seeds: seeds, protocolName: protocolName, epochs: epochs,
                                  checkpointDirectory: checkpoints, dataDirectory: data, notes: &notes)
        }
        jobs = Plan.seedMajor(jobs)   // one seed of every row first
        for note in notes { print("note: \(note)") }
        if dryRun { return try printPlan(jobs, tables: tables) }
        for job in jobs { try job.config.checkData() }   // a missing dataset fails here, not in every worker
        var slurm: SlurmBackend?
        if backend == "slurm" {
            let b = SlurmBackend(executable: ownExecutable(), options: SlurmOptions(
                partition: partition, time: time, cpusPerTask: cpusPerTask, mem: mem, arrayParallelism: arrayParallelism, spool: spool))
            try b.preflight()   // no sbatch, an unknown partition, an unwritable spool: before anything is claimed
            slurm = b
        }
        let store = try options.store()
        jobs = try store.baselinesOnlyWhereMissing(jobs)
        let git = gitState()
        let ledger = StoreLedger(store: store, provenance: .current(gitRevision: git.revision, gitDirty: git.dirty))
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let workers = self.workers ?? cores
        let scheduler = Scheduler(ledger: ledger, backend: slurm ?? LocalProcessBackend(executable: ownExecutable()), workers: workers,
                                  cores: cores)
        scheduler.detach = detach
        let interrupted = InterruptFlag()
        scheduler.shouldStop = { interrupted.isSet }
        print("\(jobs.count) run(s) planned in \(tables.map(\.id).joined(separator: ", ")); database \(options.db)")
        if slurm == nil {
            let threads = max(1, cores / workers)
            print("\(workers) worker(s) × \(threads) thread(s) on \(cores) core(s)"
                  + (self.workers == nil ? " (one worker per core: the fastest split measured; --workers overrides)" : "")
                  + "; runs left when fewer than the workers get the spare cores")
        }
        let live = LiveLine()
        let summary = try scheduler.run(jobs) { status in
            live.update(statusLine(status))
        }
        live.finish("")
        if let slurm {
            if !slurm.submittedJobs.isEmpty { print("Slurm array job(s) \(slurm.submittedJobs.joined(separator: ", ")); spool \(slurm.options.spool)") }
            if !slurm.reattached.isEmpty { print("followed \(slurm.reattached.count) run(s) submitted earlier") }
        }
        if summary.submitted > 0 {
            print("submitted \(summary.submitted), reused \(summary.skipped) of \(summary.total); run the same command again to collect the results")
            return
        }
        print("ran \(summary.ranNow), reused \(summary.skipped), failed \(summary.failed) of \(summary.total)")
        for f in summary.failures { print("  failed: \(f)") }
        for (name, seed) in try store.fillMissingBaselines(for: jobs) { print("computed the missing baselines of `\(name)` seed \(seed)") }
        for t in tables {
            let report = try tableReport(t, store: store, seeds: seeds, protocolName: protocolName, epochs: epochs)
            let markdown = report.markdown()
            print("\n" + markdown)
            print(try writeTable(report, table: t, output: output, db: options.db, protocolName: protocolName, epochs: epochs))
        }
        if summary.failed > 0 { throw ExitCode(1) }
    }
}

extension Run {
    /// `--dry-run`: per table, the runs finished and to run (as `run` would count them), and the
    /// time left at the mean epoch time of the protocol's finished runs in the database (they ran
    /// with their own split of the cores, so this is a guide, not a promise). Creates no database.
    func printPlan(_ jobs: [Job], tables: [ExperimentTable]) throws {
        let store = FileManager.default.fileExists(atPath: options.db) ? try options.store() : nil
        var finished = Set<String>()
        for job in jobs where try store?.run(id: job.id)?.status.isDone == true { finished.insert(job.id) }
        print("\(jobs.count) run(s) planned in \(tables.map(\.id).joined(separator: ", ")) (seed 0 of every row first); "
              + "database \(options.db)" + (store == nil ? " (not created yet)" : ""))
        for t in tables {
            let own = jobs.filter { $0.tableId == t.id }
            let done = own.filter { finished.contains($0.id) }.count
            print("  \(t.id): \(own.count) run(s), \(done) finished, \(own.count - done) to run")
        }
        let left = Plan.uniqueRuns(jobs).filter { !finished.contains($0.id) }
        guard !left.isEmpty else { return print("nothing to run") }
        let workers = self.workers ?? ProcessInfo.processInfo.activeProcessorCount
        for protocolName in Set(left.map(\.config.protocolName)).sorted() {
            let runs = left.filter { $0.config.protocolName == protocolName }
            let epochs = runs.map(\.config.epochs).reduce(0, +)
            guard let (mean, measured) = try store?.meanEpochMetric(Metric.epochSeconds.key, protocolName: protocolName) else {
                print("\(runs.count) \(protocolName) run(s) to run (\(epochs) epochs); no finished \(protocolName) run in the database to estimate the time from")
                continue
            }
            print("\(runs.count) \(protocolName) run(s) to run (\(epochs) epochs): about \(formatDuration(Double(epochs) * mean / Double(workers))) "
                  + "with \(workers) worker(s), at \(String(format: "%.0f", mean)) s per epoch (the mean of the \(measured) latest finished "
                  + "\(protocolName) run(s) here; rows with a larger batch or extra passes take longer, and the final evaluation adds a few %)")
        }
    }
}

/// `--rows "a, b"` → ["a", "b"] (an empty name stays, for `validate` to refuse). A row name
/// that itself holds a comma ("moving-average η, no h") is kept whole: from each piece on, the
/// longest run of pieces that spells one of the `known` names is one name.
func rowNames(_ list: String, known: [String] = []) -> [String] {
    let pieces = list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    let byNormalized = Dictionary(known.map { (rowNames($0).joined(separator: ", "), $0) }, uniquingKeysWith: { a, _ in a })
    var names: [String] = [], i = 0
    while i < pieces.count {
        let end = (i..<pieces.count).reversed().first { byNormalized[pieces[i...$0].joined(separator: ", ")] != nil } ?? i
        let joined = pieces[i...end].joined(separator: ", ")
        names.append(byNormalized[joined] ?? joined)
        i = end + 1
    }
    return names
}

func statusLine(_ s: SchedulerStatus) -> String {
    var line = "runs \(s.done + s.skipped)/\(s.total)"
    if s.failed > 0 { line += ", \(s.failed) failed" }
    for r in s.running {
        line += " | \(r.label) ep \(r.epoch)/\(r.epochs)"
        if let loss = r.loss { line += String(format: " loss %.3f", loss) }
    }
    if s.waitingOnOthers > 0 { line += " | \(s.waitingOnOthers) held by another process" }
    if let eta = s.secondsRemaining { line += " | ETA \(formatDuration(eta))" }
    return line
}

/// Set by SIGINT / SIGTERM so the scheduler can stop its workers and record the interruption.
final class InterruptFlag: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var flag = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock(); self.flag = true; self.lock.unlock()
            }
            source.resume()
            sources.append(source)
        }
    }
}
