import ArgumentParser
import Foundation
import Scheduler
import Store

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show where the runs of a table stand, with the Slurm state of submitted ones.",
        discussion: """
        Reads the database and, for runs submitted with `run --backend slurm`, asks `scontrol` \
        about their array tasks; nothing is written. The same `ablate run` command collects \
        what finished and resubmits what failed.

        Example: ablate status simsiam-fig2 --spool /shared/ablate-spool
        """)

    @Argument(help: "Table id, several separated by commas, or `all`.")
    var table: String

    @Option(help: "Slurm spool directory (as given to `run --backend slurm`).")
    var spool: String = "results/spool"

    @OptionGroup var options: TableOptions

    func run() throws {
        let store = try options.store()
        let slurm = SlurmBackend(executable: ownExecutable(), options: SlurmOptions(spool: spool))
        for t in try options.tables(table) {
            let runs = try tableRuns(t, store: store)
            let counts = Dictionary(grouping: runs, by: \.status.rawValue).mapValues(\.count).sorted { $0.key < $1.key }
            print("\(t.id): \(runs.count) run(s) stored" + counts.map { ", \($0.value) \($0.key)" }.joined())
            let open = runs.filter { !$0.status.isDone }
            let tasks = slurm.taskStates(open.map(\.id))
            for r in open {
                var line = "  \(r.rowName) seed \(r.seed): \(r.status.rawValue)"
                if let task = tasks[r.id] { line += ", Slurm task \(task)" }
                if r.status == .failed, let error = r.error { line += " — \(error)" }
                print(line)
            }
        }
    }
}
