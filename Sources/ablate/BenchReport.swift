import Foundation
import SSL
import Tensors

/// The markdown of `ablate bench` (results/bench.md) from its measurements: the SimSiam step
/// beside PyTorch, the split of the cores between runs, every method, and the machine.
struct BenchReport {
    /// A result and how many cores other processes kept busy while it was measured.
    struct Measurement {
        var result: StepBenchmarkResult
        var foreignCores: Double?
        /// The median ms/step of each measurement this one combines, in the order they ran.
        var rounds: [Double] = []

        /// Several measurements of one step as one: ms/step is the mean of their medians (and of
        /// their means and minimums), memory and the other processes' load the worst of them.
        static func combined(_ parts: [Measurement]) -> Measurement {
            guard var r = parts.first?.result, parts.count > 1 else { return parts[0] }
            let mean: ([Double]) -> Double = { $0.reduce(0, +) / Double($0.count) }
            r.msPerStepMedian = mean(parts.map(\.result.msPerStepMedian))
            r.msPerStepMean = mean(parts.map(\.result.msPerStepMean))
            r.msPerStepMin = mean(parts.map(\.result.msPerStepMin))
            r.imagesPerSecond = Double(r.batch) / (r.msPerStepMedian / 1000)
            r.peakRSSKiB = parts.map(\.result.peakRSSKiB).max()!
            let cpu = parts.compactMap(\.result.cpuMsPerStep)
            r.cpuMsPerStep = cpu.count == parts.count ? mean(cpu) : nil
            let busy = parts.compactMap(\.foreignCores)
            return Measurement(result: r, foreignCores: busy.max(), rounds: parts.map(\.result.msPerStepMedian))
        }
    }

    struct Row {
        var model: BenchmarkModel
        var ours: Measurement
        var theirs: Measurement?
    }

    struct MethodRow {
        var name: String
        var ours: Measurement
        var theirs: Measurement?
    }

    var rows: [Row]
    var methodRows: [MethodRow]
    var split: SplitMeasurement?
    var torchIncluded: Bool
    /// PyTorch was not measured because of --no-reference (else: not installed).
    var referenceSkipped: Bool
    var loadAtStart: Double?
    var warmup: Int, steps: Int

    var markdown: String { table() + (split?.markdown ?? "") + methodTable() }

    /// One process with every core against one single-threaded process per core, on mini.
    struct SplitMeasurement {
        var shared: StepBenchmarkResult
        var perCore: [StepBenchmarkResult]
        /// The shared process again with lanes off (`ABLATE_LANES=0`), when they are on by default.
        var sharedWithoutLanes: StepBenchmarkResult?

        /// Batch images per second of all the processes together.
        var perCoreImagesPerSecond: Double { perCore.map(\.imagesPerSecond).reduce(0, +) }

        var markdown: String {
            let ratio = perCoreImagesPerSecond / shared.imagesPerSecond
            let steps = perCore.map { format($0.msPerStepMedian) }.joined(separator: ", ")
            var lines = ["", "## Splitting the cores between runs", "",
                         "`ablate run` starts one worker process per core, each with one thread, unless --workers says otherwise. "
                             + "Measured here on the mini SimSiam step: \(perCore.count) processes × 1 thread at once against "
                             + "1 process × \(shared.threads) threads (the first table).", "",
                         "| split | ms/step | batch images/s, all processes |", "|---|---:|---:|",
                         "| 1 process × \(shared.threads) threads\(sharedWithoutLanes == nil ? "" : ", lanes on (the default)") | \(format(shared.msPerStepMedian)) | \(format(shared.imagesPerSecond, digits: 0)) |"]
            if let off = sharedWithoutLanes {
                lines.append("| 1 process × \(off.threads) threads, lanes off (`ABLATE_LANES=0`) | \(format(off.msPerStepMedian)) | \(format(off.imagesPerSecond, digits: 0)) |")
            }
            lines += ["| \(perCore.count) processes × 1 thread | \(steps) | \(format(perCoreImagesPerSecond, digits: 0)) |", "",
                      "On the bare step, a table's runs would finish \(format(ratio, digits: 2))× sooner with one process per core. "
                          + "A run's real loop (augmentation, monitor) can tell otherwise: `scripts/split-timing.sh` measures that "
                          + "(results/timing/split.md), and `ablate run`'s default follows it.", ""]
            if let off = sharedWithoutLanes {
                lines += ["Lanes (each view of a step on a thread of its own) make the 2-thread step \(format(off.msPerStepMedian / shared.msPerStepMedian, digits: 2))× faster than with every thread on each operation.", ""]
            }
            return lines.joined(separator: "\n")
        }
    }

    private func table() -> String {
        var lines: [String] = []
        lines.append("# SimSiam training-step benchmark")
        lines.append("")
        lines.append("One step = zeroGrad, forward of two views (batch 256 each, 1×28×28 random inputs, no augmentation), "
            + "symmetric negative-cosine loss, backward, SGD update (mini protocol: momentum 0.9, wd 5e-4, "
            + "lr 0.05, encoder cosine, predictor fixed lr). \(warmup) warm-up + \(steps) timed steps; ms/step is the median (beside PyTorch: the mean of two medians, measured ablate, PyTorch, PyTorch, ablate). "
            + "img/s = batch images per second = 256 / median step time (each image is seen as two views). "
            + "Ratio = PyTorch ms ÷ ablate ms (> 1: ablate is faster). "
            + "GFLOP/step counts the convolutions and linear layers, forward and backward (2 per multiply-add, counted where "
            + "ablate computes them); fraction of sgemm peak = (GFLOP/step ÷ step time) ÷ the rate of a 2048×2048 sgemm "
            + "measured in the same process with the same threads (PyTorch's column divides the same FLOPs by its step time). "
            + "Peak RSS = getrusage ru_maxrss of a process that measures one model.")
        lines.append("")
        lines.append("| model | ablate ms/step | PyTorch ms/step | ablate img/s (batch images/s) | PyTorch img/s (batch images/s) | ratio (PyTorch ms ÷ ablate ms) | GFLOP/step | ablate fraction of sgemm peak | PyTorch fraction of sgemm peak | ablate peak RSS MiB | PyTorch peak RSS MiB |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows {
            let m = row.model, a = row.ours.result, t = row.theirs?.result
            let widths = m.widths.map(String.init).joined(separator: "/")
            let mib: (Int) -> String = { format(Double($0) / 1024, digits: 0) }
            var cells: [String] = ["\(m.rawValue) (\(widths))"]
            cells.append(format(a.msPerStepMedian))
            cells.append(t.map { format($0.msPerStepMedian) } ?? "")
            cells.append(format(a.imagesPerSecond, digits: 0))
            cells.append(t.map { format($0.imagesPerSecond, digits: 0) } ?? "")
            cells.append(t.map { format($0.msPerStepMedian / a.msPerStepMedian, digits: 2) } ?? "")
            cells.append(a.flopsPerStep.map { format($0 / 1e9, digits: 2) } ?? "")
            cells.append(a.fractionOfPeak.map { format($0, digits: 2) } ?? "")
            cells.append(t.flatMap { t in fraction(flops: a.flopsPerStep, ms: t.msPerStepMedian, peak: a.sgemmPeakGFLOPS) } ?? "")
            cells.append(mib(a.peakRSSKiB))
            cells.append(t.map { mib($0.peakRSSKiB) } ?? "")
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        let busy: (Double?) -> String = { $0.map { ", other processes kept \(format($0, digits: 2)) cores busy during the timed steps" } ?? "" }
        for row in rows {
            let a = row.ours.result
            var detail = "- \(row.model.rawValue): ablate mean \(format(a.msPerStepMean)) / min \(format(a.msPerStepMin)) ms, "
                + "RSS after setup \(format(Double(a.setupRSSKiB) / 1024, digits: 0)) MiB, \(a.threads) threads"
                + (a.cpuMsPerStep.map { ", CPU time \(format($0)) ms/step" } ?? "")
                + (a.sgemmPeakGFLOPS.map { ", sgemm peak \(format($0, digits: 0)) GFLOP/s" } ?? "") + busy(row.ours.foreignCores)
            if let theirs = row.theirs {
                let t = theirs.result
                detail += "; PyTorch mean \(format(t.msPerStepMean)) / min \(format(t.msPerStepMin)) ms, "
                    + "RSS after setup \(format(Double(t.setupRSSKiB) / 1024, digits: 0)) MiB, \(t.threads) threads" + busy(theirs.foreignCores)
            }
            if row.ours.rounds.count > 1, let theirs = row.theirs, theirs.rounds.count > 1 {
                let list: ([Double]) -> String = { $0.map { format($0) }.joined(separator: " and ") }
                detail += "; measured ablate, PyTorch, PyTorch, ablate (ablate \(list(row.ours.rounds)) ms, PyTorch \(list(theirs.rounds)) ms; "
                    + "the columns are their means)"
            }
            lines.append(detail)
        }
        let contended = rows.flatMap { [$0.ours.foreignCores, $0.theirs?.foreignCores] }.compactMap { $0 }.contains { $0 > 0.1 }
        if contended {
            lines.append("- WARNING: other processes used the cores during some measurements; those times are inflated "
                + "(PyTorch's OpenMP threads suffer most). Re-run on an idle machine.")
        }
        if !torchIncluded {
            lines.append(referenceSkipped ? "- PyTorch reference skipped (--no-reference)." : "- PyTorch not installed; reference column empty.")
        }
        lines.append("")
        lines.append(machineInfo())
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every method's step on the `mini` model, beside the same step in PyTorch (reference/bench_torch.py --method).
    private func methodTable() -> String {
        let rows = methodRows
        guard !rows.isEmpty else { return "" }
        let simsiam = rows.first { $0.name == Methods.defaultName }?.ours.result.msPerStepMedian
        var lines = ["", "## Every method on the mini model", "",
                     "The same step (batch 256, random views, \(warmup) warm-up + \(steps) timed steps, median) through each "
                        + "method's loss and after-update hook (EMA, queue, prototypes), in its own process, with each "
                        + "method's `mini` defaults, beside the same method in PyTorch (reference/bench_torch.py --method). "
                        + "Tables may train a method at another batch (simsiam-table4: 1024 for "
                        + "SimCLR, BYOL and SwAV); a step then costs about batch/256 times this.", "",
                     "| method | ablate ms/step | PyTorch ms/step | ratio (PyTorch ms ÷ ablate ms) | × SimSiam | img/s (batch images/s) | GFLOP/step | fraction of sgemm peak | peak RSS MiB |",
                     "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in rows {
            let r = row.ours.result, t = row.theirs?.result
            lines.append("| \(row.name) | \(format(r.msPerStepMedian)) | " + (t.map { format($0.msPerStepMedian) } ?? "") + " | "
                + (t.map { format($0.msPerStepMedian / r.msPerStepMedian, digits: 2) } ?? "") + " | "
                + (simsiam.map { format(r.msPerStepMedian / $0, digits: 2) } ?? "") + " | "
                + "\(format(r.imagesPerSecond, digits: 0)) | " + (r.flopsPerStep.map { format($0 / 1e9, digits: 2) } ?? "") + " | "
                + (r.fractionOfPeak.map { format($0, digits: 2) } ?? "") + " | \(format(Double(r.peakRSSKiB) / 1024, digits: 0)) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func machineInfo() -> String {
        let env = ProcessInfo.processInfo.environment
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let blas = env["OPENBLAS_NUM_THREADS"].map { "OPENBLAS_NUM_THREADS=\($0)" } ?? "OPENBLAS_NUM_THREADS unset (OpenBLAS default: all cores)"
        let timeout = env["OPENBLAS_THREAD_TIMEOUT"].map { "OPENBLAS_THREAD_TIMEOUT=\($0) (ablate sets 4 when unset)" } ?? "OPENBLAS_THREAD_TIMEOUT unset"
        let ours = env["ABLATE_THREADS"].map { "ABLATE_THREADS=\($0)" } ?? "ABLATE_THREADS unset (\(parallelThreads))"
        let lanes = Lanes.enabled ? "lanes on (each view on a thread of its own; ABLATE_LANES=0 turns them off)"
            : "lanes off (the views one after the other, every thread on each operation)"
        let date = ISO8601DateFormatter().string(from: Date())
        var cpu = ""
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":", maxSplits: 1).last {
            cpu = ", CPU \(name.trimmingCharacters(in: .whitespaces))"
        }
        let load = loadAtStart.map { "; cores busy with other work just before the run \(format($0, digits: 2))" } ?? ""
        return "Machine: \(cores) cores\(cpu); vector extensions \(vectorExtensions()); OpenBLAS kernels \(blasCoreName) "
            + "(openblas_get_corename); \(blas); \(timeout); \(ours); \(lanes); PyTorch torch.set_num_threads(2)\(load); date \(date)."
    }

    /// The CPU's SIMD extensions that matter for the kernels (from /proc/cpuinfo's flags).
    private func vectorExtensions() -> String {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return "unknown" }
        let flags = Set(line.split(separator: ":", maxSplits: 1).last?.split(separator: " ").map(String.init) ?? [])
        let known = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile"]
        let present = known.filter(flags.contains)
        return present.isEmpty ? "none of \(known.joined(separator: ", "))" : present.joined(separator: " ")
    }

    /// FLOPs per step ÷ step time, as a fraction of the sgemm peak.
    private func fraction(flops: Double?, ms: Double, peak: Double?) -> String? {
        guard let flops, let peak, peak > 0, ms > 0 else { return nil }
        return format(flops / (ms / 1000) / 1e9 / peak, digits: 2)
    }
}

func format(_ x: Double, digits: Int = 1) -> String {
    String(format: "%.\(digits)f", x)
}
