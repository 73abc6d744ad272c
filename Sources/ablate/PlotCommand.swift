import ArgumentParser
import Foundation
import Registry
import Report
import SSL

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a table's training curves as SVG (one file per metric, one line per row).",
        discussion: """
        Reads only the database. Each line is a row's mean over its finished seeds, with a band of \
        ± one sample std where a row has two or more; per training step where the runs stored the \
        metric every few steps (m_o, m_r), else per epoch. By default: SimSiam Fig 2's panels \
        (loss, z_std·√d of the training batch, kNN on the monitor subset), m_o and m_r, and every \
        metric a curve claim names.

        Examples:
          ablate plot simsiam-fig2                  # → results/figures/simsiam-fig2-loss.svg, …
          ablate plot zhang2022-fig4 --metric m_o --metric m_r
          ablate plot all
        """)

    @Argument(help: "Table id, several separated by commas, or `all`.")
    var table: String

    @Option(name: .customLong("metric"), help: "A metric to draw (repeatable): loss, train_z_std, knn_subset, z_std, m_o, m_r, epoch_seconds.")
    var metrics: [String] = []

    @Option(help: "Seeds to draw, 0..<N (default: the table's).")
    var seeds: Int?

    @Option(name: .customLong("protocol"), help: "Draw the runs made on another protocol (as `run --protocol`).")
    var protocolName: String?

    @Option(help: "Directory the SVG files are written to.")
    var output: String = "results/figures"

    @OptionGroup var options: TableOptions

    func validate() throws {
        let curves = Metric.all.filter(\.perEpoch).map(\.key)
        for m in metrics where !curves.contains(m) {
            throw ValidationError("no curve is stored for `\(m)`; choose from \(curves.joined(separator: ", "))")
        }
    }

    func run() throws {
        let store = try options.store()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        for t in try options.tables(table) {
            let report = try tableReport(t, store: store, seeds: seeds, protocolName: protocolName)
            let chosen = metrics.isEmpty ? report.figureMetrics : metrics.compactMap(Metric.named)
            let figures = chosen.compactMap(report.figure)
            if figures.isEmpty { print("\(t.id): no curves stored yet (run the table first)") }
            for figure in figures {
                let path = (output as NSString).appendingPathComponent(figure.name + ".svg")
                try figure.svg().write(toFile: path, atomically: true, encoding: .utf8)
                print("wrote \(path)")
            }
        }
    }
}
