import ArgumentParser
import Foundation

@main
struct Ablate: ParsableCommand {
    /// NOTE: OpenBLAS's worker threads spin (sched_yield) between GEMMs and take the core from the
    /// threads doing BN / im2col; `OPENBLAS_THREAD_TIMEOUT=4` lets them sleep instead (measured:
    /// mini step 198 → 151 ms). OpenBLAS reads it when the library loads, so when the user has
    /// not set it, ablate sets it and re-executes itself once. A value the user set is kept.
    static func main() {
        if getenv("OPENBLAS_THREAD_TIMEOUT") == nil {
            setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
            var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", &argv)   // returns only if it failed; then run as we are
        }
        // Line-buffered even into a file (`nohup ablate run … >log`): the plan and the split are
        // printed to stdout, the live line to stderr; block buffering put them out of order.
        setvbuf(stdout, nil, _IOLBF, 0)
        do {
            var command = try parseAsRoot(nil)
            try command.run()
        } catch {
            // Errors of the library layers already say `error:` (or `path:line:column: error:`);
            // printed as they are, not as "Error: error: …".
            let text = "\(error)"
            guard text.hasPrefix("error: ") || text.contains(": error: ") else { exit(withError: error) }
            FileHandle.standardError.write(Data((text + "\n").utf8))
            Foundation.exit(1)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "ablate",
        abstract: "Reproduce the ablation tables of self-supervised learning papers on a CPU.",
        discussion: """
        Each paper table is a YAML file under experiments/ (rows = overrides of a protocol, with \
        the paper's value and a claim to check). `run` trains the rows × seeds it has not finished \
        yet and stores every metric in SQLite; `report` turns the database into a markdown table \
        with the paper's number beside the measured one.

        Quick start:
          ablate list                         # tables, rows, paper values, runs done
          ablate run simsiam-fig2             # stop-gradient ablation on Fashion-MNIST (mini)
          ablate report simsiam-fig2          # markdown → results/simsiam-fig2.md
          ablate plot simsiam-fig2            # curves → results/figures/*.svg
          ablate train --protocol smoke       # one run, no database
        """,
        subcommands: [Run.self, Status.self, ReportCommand.self, Plot.self, List.self, Compare.self, Export.self, Train.self, Bench.self,
                      WorkerCommand.self])
}
