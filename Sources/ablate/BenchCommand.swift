import ArgumentParser
import Foundation
import SSL
import Tensors

/// `ablate bench`: time the SimSiam training step (batch 256, two views, no augmentation) of the
/// `mini` and `convnet-w` models, beside the same step in PyTorch, then the step of every method
/// on the `mini` model (ablate only), and write markdown tables.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the SimSiam training step of the mini and convnet-w models, beside PyTorch, and every method's.",
        discussion: """
            Each model is measured in its own child process, so peak RSS is per model. A step is \
            zeroGrad, forward of both views (batch 256 each), symmetric loss, backward, SGD update; \
            augmentation is excluded. img/s counts batch images (256 per step, each seen as two \
            views) per second, from the median step time, for both ablate and PyTorch. \
            Then each method of `--method` (default all) is timed the same way on the mini model.
            """)

    enum ModelChoice: String, ExpressibleByArgument, CaseIterable {
        case mini
        case convnetW = "convnet-w"
        case all

        var models: [BenchmarkModel] {
            switch self {
            case .mini: return [.mini]
            case .convnetW: return [.convnetW]
            case .all: return BenchmarkModel.allCases
            }
        }
    }

    @Option(help: "Which model to time: mini, convnet-w or all.")
    var model: ModelChoice = .all

    @Option(help: "Methods to time on the mini model after the SimSiam comparison: all, none, or one method name.")
    var method = "all"

    @Option(help: "Timed steps per model.")
    var steps = 20

    @Option(help: "Untimed warm-up steps per model.")
    var warmup = 3

    @Option(help: "The PyTorch reference script.")
    var reference = "reference/bench_torch.py"

    @Flag(name: .customLong("no-reference"), help: "Skip the PyTorch reference.")
    var noReference = false

    @Flag(name: .customLong("no-split"), help: "Skip timing one process per core against one process with every core.")
    var noSplit = false

    @Option(help: "Where to write the markdown table.")
    var output = "results/bench.md"

    /// Internal: measure one model in this process and print its result as one JSON line.
    @Flag(help: .hidden)
    var child = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1 (got \(steps))") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be at least 0 (got \(warmup))") }
        if child && model == .all {
            throw ValidationError("--child measures one model: pass --model mini or --model convnet-w")
        }
        guard ["all", "none"].contains(method) || Methods.named(method) != nil else {
            throw ValidationError("--method \(method): choose all, none or one of \(Methods.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        if child {
            try runChild()
            return
        }
        var torchAvailable = false
        if !noReference {
            guard FileManager.default.isReadableFile(atPath: reference) else {
                throw BenchError.missingReference(reference)
            }
            torchAvailable = pythonHasTorch()
            if !torchAvailable { print("PyTorch not installed; reference column empty") }
        }
        let loadAtStart = busyCores()
        if let load = loadAtStart, load > 0.25 {
            print("[bench] warning: other processes keep \(format(load, digits: 2)) cores busy; "
                + "they compete with the benchmark and the timings (PyTorch's especially) will be slow and noisy")
        }

        var rows: [Row] = []
        for m in model.models {
            print("[bench] \(m.rawValue): ablate, \(warmup) warm-up + \(steps) timed steps …")
            let ours = try measureInChild(m)
            print("[bench] \(m.rawValue): ablate \(format(ours.result.msPerStepMedian)) ms/step (median)" + foreignNote(ours.foreignCores))
            var theirs: Measurement?
            if torchAvailable {
                print("[bench] \(m.rawValue): PyTorch reference …")
                let r = try measureReference(m)
                print("[bench] \(m.rawValue): PyTorch \(format(r.result.msPerStepMedian)) ms/step (median)" + foreignNote(r.foreignCores))
                theirs = r
            }
            rows.append(Row(model: m, ours: ours, theirs: theirs))
        }
        var methodRows: [MethodRow] = []
        for name in methodNames {
            if name == Methods.defaultName, let mini = rows.first(where: { $0.model == .mini }) {
                methodRows.append(MethodRow(name: name, ours: mini.ours, theirs: mini.theirs))
                continue
            }
            print("[bench] method \(name) on mini: ablate, \(warmup) warm-up + \(steps) timed steps …")
            let m = try measureInChild(.mini, method: name)
            print("[bench] method \(name): ablate \(format(m.result.msPerStepMedian)) ms/step (median)" + foreignNote(m.foreignCores))
            var theirs: Measurement?
            if torchAvailable {
                let r = try measureReference(.mini, method: name)
                print("[bench] method \(name): PyTorch \(format(r.result.msPerStepMedian)) ms/step (median)" + foreignNote(r.foreignCores))
                theirs = r
            }
            methodRows.append(MethodRow(name: name, ours: m, theirs: theirs))
        }
        var split: SplitMeasurement?
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if let mini = rows.first(where: { $0.model == .mini }), cores >= 2, !noSplit {
            print("[bench] workers × threads: \(cores) ablate processes × 1 thread at once …")
            split = SplitMeasurement(shared: mini.ours.result, perCore: try measureOnePerCore(cores))
        }
        let markdown = table(rows, torchIncluded: torchAvailable, loadAtStart: loadAtStart) + (split?.markdown ?? "")
            + methodTable(methodRows)
        print("")
        print(markdown)
        try write(markdown, to: output)
        print("wrote \(output)")
    }

    // MARK: - Measurement

    /// A result and how many cores other processes kept busy while it was measured.
    struct Measurement {
        var result: StepBenchmarkResult
        var foreignCores: Double?
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

    private func foreignNote(_ cores: Double?) -> String {
        guard let cores, cores > 0.1 else { return "" }
        return " — warning: other processes kept \(format(cores, digits: 2)) cores busy during the timed steps; the time is inflated"
    }

    /// The methods of `--method`, in `Methods.all` order.
    private var methodNames: [String] {
        switch method {
        case "all": return Methods.names
        case "none": return []
        default: return [method]
        }
    }

    private func runChild() throws {
        guard let m = model.models.first else { return }
        var options = StepBenchmarkOptions()
        options.timedSteps = steps
        options.warmupSteps = warmup
        let result: StepBenchmarkResult
        if let name = methodNames.first, method != "all" {
            let config = try m.config.applying([(key: "method", value: .string(name))])
            result = try runStepBenchmark(config: config, name: "\(m.rawValue)/\(name)", options: options)
        } else {
            result = try runStepBenchmark(m, options: options)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(result)
        print(String(decoding: data, as: UTF8.self))
    }

    /// The mini SimSiam step in `cores` single-threaded child processes at once (how `ablate run`
    /// splits the cores by default), each result as measured by its process.
    private func measureOnePerCore(_ cores: Int) throws -> [StepBenchmarkResult] {
        let exe = try ownExecutable()
        let args = ["bench", "--child", "--model", "mini", "--method", "all", "--steps", "\(steps)", "--warmup", "\(warmup)", "--no-reference"]
        var env = ProcessInfo.processInfo.environment
        env["ABLATE_THREADS"] = "1"
        let children: [(Process, Pipe)] = try (0..<cores).map { _ in
            let p = Process(), pipe = Pipe()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
            p.environment = env
            p.standardOutput = pipe
            do { try p.run() } catch { throw BenchError.launchFailed("single-threaded ablate child", "\(error)") }
            return (p, pipe)
        }
        return try children.map { p, pipe in
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self), what = "single-threaded ablate child"
            guard p.terminationReason == .exit && p.terminationStatus == 0 else {
                throw BenchError.childFailed(what, "exited with status \(p.terminationStatus)", text)
            }
            return try decodeResult(text, from: what)
        }
    }

    /// One process with every core against one single-threaded process per core, on mini.
    struct SplitMeasurement {
        var shared: StepBenchmarkResult
        var perCore: [StepBenchmarkResult]

        /// Batch images per second of all the processes together.
        var perCoreImagesPerSecond: Double { perCore.map(\.imagesPerSecond).reduce(0, +) }

        var markdown: String {
            let ratio = perCoreImagesPerSecond / shared.imagesPerSecond
            let steps = perCore.map { format($0.msPerStepMedian) }.joined(separator: ", ")
            return ["", "## Splitting the cores between runs", "",
                    "`ablate run` starts one worker process per core, each with one thread, unless --workers says otherwise. "
                        + "Measured here on the mini SimSiam step: \(perCore.count) processes × 1 thread at once against "
                        + "1 process × \(shared.threads) threads (the first table).", "",
                    "| split | ms/step | batch images/s, all processes |", "|---|---:|---:|",
                    "| 1 process × \(shared.threads) threads | \(format(shared.msPerStepMedian)) | \(format(shared.imagesPerSecond, digits: 0)) |",
                    "| \(perCore.count) processes × 1 thread | \(steps) | \(format(perCoreImagesPerSecond, digits: 0)) |",
                    "",
                    "A table's runs finish \(format(ratio, digits: 2))× sooner with one process per core "
                        + (ratio >= 1 ? "(the default)." : "; on this machine pass --workers 1 to `ablate run`."),
                    ""].joined(separator: "\n")
        }
    }

    /// `method` nil: the model's SimSiam (the PyTorch comparison).
    private func measureInChild(_ m: BenchmarkModel, method: String? = nil) throws -> Measurement {
        let exe = try ownExecutable()
        let args = ["bench", "--child", "--model", m.rawValue, "--method", method ?? "all",
                    "--steps", "\(steps)", "--warmup", "\(warmup)", "--no-reference"]
        let what = "ablate child for \(m.rawValue)" + (method.map { " / \($0)" } ?? "")
        let result = try decodeResult(try runProcess(exe, args, what: what), from: what)
        return Measurement(result: result, foreignCores: result.otherProcessesBusyCores)
    }

    private func measureReference(_ m: BenchmarkModel, method: String? = nil) throws -> Measurement {
        let args = [reference, "--model", m.rawValue, "--steps", "\(steps)", "--warmup", "\(warmup)"] + (method.map { ["--method", $0] } ?? [])
        let what = "PyTorch reference \(reference)"
        let result = try decodeResult(try runProcess("/usr/bin/env", ["python3"] + args, what: what), from: what)
        return Measurement(result: result, foreignCores: result.otherProcessesBusyCores)
    }

    private func pythonHasTorch() -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import torch"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationReason == .exit && p.terminationStatus == 0
    }

    /// This executable: /proc/self/exe on Linux, else argv[0] resolved against the working directory.
    private func ownExecutable() throws -> String {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
           FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        #endif
        let arg0 = CommandLine.arguments.first ?? ""
        if arg0.contains("/") {
            let url = URL(fileURLWithPath: arg0, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            if FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        } else if let pathVar = ProcessInfo.processInfo.environment["PATH"] {
            for dir in pathVar.split(separator: ":") {
                let candidate = "\(dir)/\(arg0)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        throw BenchError.noExecutable(arg0)
    }

    /// Runs a process with this process's stderr, and returns its stdout; throws on failure.
    private func runProcess(_ exe: String, _ args: [String], what: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        do { try p.run() } catch { throw BenchError.launchFailed(what, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationReason == .exit && p.terminationStatus == 0 else {
            let how = p.terminationReason == .exit ? "exited with status \(p.terminationStatus)" : "was killed by signal \(p.terminationStatus)"
            throw BenchError.childFailed(what, how, text)
        }
        return text
    }

    private func decodeResult(_ stdout: String, from what: String) throws -> StepBenchmarkResult {
        // The result is the last line that is a JSON object; anything printed before it is ignored.
        let line = stdout.split(whereSeparator: \.isNewline).map(String.init).last { $0.hasPrefix("{") }
        guard let line else { throw BenchError.badOutput(what, stdout) }
        do {
            return try JSONDecoder().decode(StepBenchmarkResult.self, from: Data(line.utf8))
        } catch {
            throw BenchError.badOutput(what, "\(line)\n(\(error))")
        }
    }

    // MARK: - Report

    private func table(_ rows: [Row], torchIncluded: Bool, loadAtStart: Double?) -> String {
        var lines: [String] = []
        lines.append("# SimSiam training-step benchmark")
        lines.append("")
        lines.append("One step = zeroGrad, forward of two views (batch 256 each, 1×28×28 random inputs, no augmentation), "
            + "symmetric negative-cosine loss, backward, SGD update (mini protocol: momentum 0.9, wd 5e-4, "
            + "lr 0.05, encoder cosine, predictor fixed lr). \(warmup) warm-up + \(steps) timed steps; ms/step is the median. "
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
            lines.append(detail)
        }
        let contended = rows.flatMap { [$0.ours.foreignCores, $0.theirs?.foreignCores] }.compactMap { $0 }.contains { $0 > 0.1 }
        if contended {
            lines.append("- WARNING: other processes used the cores during some measurements; those times are inflated "
                + "(PyTorch's OpenMP threads suffer most). Re-run on an idle machine.")
        }
        if !torchIncluded {
            lines.append(noReference ? "- PyTorch reference skipped (--no-reference)." : "- PyTorch not installed; reference column empty.")
        }
        lines.append("")
        lines.append(machineInfo(loadAtStart: loadAtStart))
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every method's step on the `mini` model, beside the same step in PyTorch (reference/bench_torch.py --method).
    private func methodTable(_ rows: [MethodRow]) -> String {
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

    private func machineInfo(loadAtStart: Double?) -> String {
        let env = ProcessInfo.processInfo.environment
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let blas = env["OPENBLAS_NUM_THREADS"].map { "OPENBLAS_NUM_THREADS=\($0)" } ?? "OPENBLAS_NUM_THREADS unset (OpenBLAS default: all cores)"
        let timeout = env["OPENBLAS_THREAD_TIMEOUT"].map { "OPENBLAS_THREAD_TIMEOUT=\($0) (ablate sets 4 when unset)" } ?? "OPENBLAS_THREAD_TIMEOUT unset"
        let ours = env["ABLATE_THREADS"].map { "ABLATE_THREADS=\($0)" } ?? "ABLATE_THREADS unset (\(parallelThreads))"
        let date = ISO8601DateFormatter().string(from: Date())
        var cpu = ""
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":", maxSplits: 1).last {
            cpu = ", CPU \(name.trimmingCharacters(in: .whitespaces))"
        }
        let load = loadAtStart.map { "; cores busy with other work just before the run \(format($0, digits: 2))" } ?? ""
        return "Machine: \(cores) cores\(cpu); vector extensions \(vectorExtensions()); OpenBLAS kernels \(blasCoreName) "
            + "(openblas_get_corename); \(blas); \(timeout); \(ours); PyTorch torch.set_num_threads(2)\(load); date \(date)."
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

    /// How many cores other processes keep busy: the non-idle share of all CPU time in
    /// /proc/stat over `seconds`, times the core count (nil where /proc/stat is unavailable).
    private func busyCores(over seconds: Double = 1) -> Double? {
        func sample() -> (busy: Double, total: Double)? {
            guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
                  let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
            let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            guard v.count >= 5 else { return nil }
            let total = v.prefix(8).reduce(0, +), idle = v[3] + v[4]   // idle + iowait
            return (total - idle, total)
        }
        guard let a = sample() else { return nil }
        Thread.sleep(forTimeInterval: seconds)
        guard let b = sample(), b.total > a.total else { return nil }
        return (b.busy - a.busy) / (b.total - a.total) * Double(ProcessInfo.processInfo.activeProcessorCount)
    }

    private func write(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        } catch {
            throw BenchError.writeFailed(path, "\(error)")
        }
    }
}

private func format(_ x: Double, digits: Int = 1) -> String {
    String(format: "%.\(digits)f", x)
}

enum BenchError: Error, CustomStringConvertible {
    case missingReference(String)
    case noExecutable(String)
    case launchFailed(String, String)
    case childFailed(String, String, String)
    case badOutput(String, String)
    case writeFailed(String, String)

    var description: String {
        switch self {
        case let .missingReference(path):
            return "the PyTorch reference script \(path) was not found; run from the package root, pass --reference PATH, or --no-reference"
        case let .noExecutable(arg0):
            return "cannot find this program's own executable (argv[0] = \(arg0)) to measure each model in a child process"
        case let .launchFailed(what, error):
            return "could not start the \(what): \(error)"
        case let .childFailed(what, how, out):
            return "the \(what) \(how)" + (out.isEmpty ? "" : "; its output:\n\(out)")
        case let .badOutput(what, out):
            return "the \(what) printed no result line (one JSON object); its output:\n\(out)"
        case let .writeFailed(path, error):
            return "could not write \(path): \(error)"
        }
    }
}
