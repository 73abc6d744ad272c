import ArgumentParser
import Foundation
import SSL

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pre-train one model (SimSiam unless --method says otherwise) and print the loss per epoch.",
        discussion: """
        Runs one protocol from PROTOCOLS.md end to end: `smoke` (synthetic 16×16 images, seconds) \
        or `mini` (Fashion-MNIST, minutes; needs the Debian package dataset-fashion-mnist).

        Examples:
          ablate train --protocol smoke
          ablate train --protocol mini --epochs 10 --seed 0
          ablate train --protocol mini --no-stop-grad
          ablate train --protocol mini --method moco --epochs 2
        """)

    @Option(help: "Protocol: smoke or mini.")
    var `protocol`: String = "mini"

    @Option(help: "The method, with its defaults: \(Methods.names.joined(separator: ", ")).")
    var method: String = Methods.defaultName

    @Option(help: "Epochs (default: the protocol's).")
    var epochs: Int?

    @Option(help: "Batch size (default: the protocol's; lr scales as 0.05 × batch / 256).")
    var batch: Int?

    @Option(help: "Seed for initialisation, data order and augmentation.")
    var seed: UInt64 = 0

    @Flag(help: "SimSiam Fig 2 ablation: let the gradient flow through the target branch.")
    var noStopGrad = false

    @Flag(help: "SimSiam Table 1 ablation: remove the predictor (h is the identity).")
    var noPredictor = false

    @Option(help: "Directory with Fashion-MNIST's *-ubyte.gz files (mini).")
    var data: String?

    @Flag(help: "Skip the per-epoch kNN and diagnostics (faster; the final evaluation still runs).")
    var noMonitor = false

    @Flag(help: "Skip the linear probe in the final evaluation.")
    var noLinear = false

    @Flag(help: "Also compute the raw-pixel and random-init-backbone baselines (kNN and linear probe).")
    var baselines = false

    @Option(help: "Also write the per-epoch records and final metrics to this JSON file.")
    var json: String?

    func validate() throws {
        if method != Methods.defaultName && (noStopGrad || noPredictor) {
            throw ValidationError("--no-stop-grad and --no-predictor are SimSiam's ablations; use them without --method \(method)")
        }
    }

    func run() throws {
        var config = try TrainingConfig.named(`protocol`).applying([(key: "method", value: .string(method))])
        if let epochs { config.epochs = epochs }
        if let batch { config.batch = batch }
        if let data { config.dataDirectory = data }
        if noStopGrad { config.model.stopGradient = false }
        if noPredictor { config.model.predictorHidden = nil }
        let (train, test, augmentation) = try config.loadData()
        let monitor = Monitor(train: train, test: test, augmentation: augmentation)
        let trainer = try Trainer(config: config, seed: seed, train: train, augmentation: augmentation)
        print("protocol \(config.protocolName), method \(config.method): \(train.count) images, \(config.epochs) epochs × \(trainer.stepsPerEpoch) steps, batch \(config.batch), lr \(config.learningRate), seed \(seed)")
        let live = LiveLine()
        let result = try trainer.run(monitor: noMonitor ? nil : monitor, progress: { p in
            live.update(String(format: "epoch %d/%d  step %d/%d  loss %.4f  %.0f img/s  ETA %@",
                               p.epoch + 1, p.epochs, p.step, p.stepsPerEpoch, p.loss, p.imagesPerSecond,
                               formatDuration(p.secondsRemaining)))
        }, epochEnd: { records in
            guard let r = records.last else { return }
            var line = String(format: "epoch %2d  loss %7.4f", r.epoch, r.meanLoss)
            if let knn = r.knnSubset, let t = r.test {
                line += String(format: "  kNN(subset) %5.2f  z_std·√d %.3f  m_o %.3f  m_r %.3f", knn, t.zStd, t.mO, t.mR)
            }
            if let z = r.trainZStd { line += String(format: "  train z_std·√d %.3f", z) }
            line += String(format: "  (%.1f s", r.seconds)
            if let a = r.augmentSeconds, let w = r.augmentWaitSeconds {
                line += String(format: "; augment %.1f s overlapped, %.1f s waited", a, w)
            }
            if let m = r.monitorSeconds { line += String(format: "; monitor %.1f s", m) }
            live.finish(line + ")")
        })
        live.finish("")
        print("training: \(result.status.rawValue) after \(String(format: "%.1f", result.seconds)) s; evaluating…")
        let evalStart = Date()
        let final = try monitor.finalMetrics(trainer.model, seed: seed, diverged: result.status == .diverged,
                                             linearProbe: !noLinear, extraGradient: config.measuresExtraGradient)
        print(String(format: "kNN top-1 %.2f %%", final.knn) + (final.linear.map { String(format: ", linear %.2f %%", $0) } ?? ""))
        print(String(format: "z_std·√d %.3f, m_o %.3f, m_r %.3f, cov_offdiag %.4g", final.test.zStd, final.test.mO, final.test.mR, final.test.covOffdiag ?? .nan))
        var base: Baselines?
        if baselines {
            let b = try monitor.baselines(config: config, seed: seed)
            print(String(format: "baselines: raw-pixel kNN %.2f %%, linear %.2f %%; random-init backbone kNN %.2f %%, linear %.2f %%",
                         b.rawPixelKNN, b.rawPixelLinear ?? .nan, b.randomBackboneKNN, b.randomBackboneLinear ?? .nan))
            base = b
        }
        print("verdict: \(final.verdict.rawValue)")
        print(String(format: "final evaluation %.1f s", Date().timeIntervalSince(evalStart)))
        if let json {
            let report = RunReport(config: config, seed: seed, status: result.status, seconds: result.seconds,
                                   epochs: result.epochs, final: final, baselines: base)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
            print("wrote \(json)")
        }
    }
}

/// A progress line rewritten in place on a terminal, printed sparsely when piped.
final class LiveLine {
    private let isTTY = isatty(STDERR_FILENO) != 0
    private var last = Date.distantPast

    func update(_ text: String) {
        let now = Date()
        guard now.timeIntervalSince(last) > (isTTY ? 0.2 : 10) else { return }
        last = now
        FileHandle.standardError.write(Data((isTTY ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    func finish(_ text: String) {
        if isTTY { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if !text.isEmpty { print(text) }
        fflush(stdout)
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}

/// What `ablate train --json` writes.
struct RunReport: Encodable {
    var config: TrainingConfig
    var seed: UInt64
    var status: RunStatus
    var seconds: Double
    var epochs: [EpochRecord]
    var final: FinalMetrics
    var baselines: Baselines?
}
