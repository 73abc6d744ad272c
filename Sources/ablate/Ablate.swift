import ArgumentParser

@main
struct Ablate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ablate",
        abstract: "Reproduce the ablation tables of self-supervised learning papers on a CPU.",
        subcommands: [])
}
