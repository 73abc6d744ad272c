import ArgumentParser

@main
struct Ablate: ParsableCommand {
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
          ablate train --protocol smoke       # one run, no database
        """,
        subcommands: [Run.self, ReportCommand.self, List.self, Compare.self, Export.self, Train.self, Bench.self,
                      WorkerCommand.self])
}
