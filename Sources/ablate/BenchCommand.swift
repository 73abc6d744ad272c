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

        var rows: [BenchReport.Row] = []
        for m in model.models {
            print("[bench] \(m.rawValue): ablate, \(warmup) warm-up + \(steps) timed steps …")
            let ours = try measureInChild(m)
            print("[bench] \(m.rawValue): ablate \(format(ours.result.msPerStepMedian)) ms/step (median)" + foreignNote(ours.foreignCores))
            var theirs: BenchReport.Measurement?
            var oursAgain: BenchReport.Measurement?
            if torchAvailable {
                // ablate, PyTorch, PyTorch, ablate: a machine whose speed drifts during the bench
                // (a shared host) then slows both columns alike instead of one.
                var rounds: [BenchReport.Measurement] = []
                for round in 1...2 {
                    print("[bench] \(m.rawValue): PyTorch reference (round \(round) of 2) …")
                    let r = try measureReference(m)
                    print("[bench] \(m.rawValue): PyTorch \(format(r.result.msPerStepMedian)) ms/step (median)" + foreignNote(r.foreignCores))
                    rounds.append(r)
                }
                theirs = .combined(rounds)
                print("[bench] \(m.rawValue): ablate again (round 2 of 2) …")
                let again = try measureInChild(m)
                print("[bench] \(m.rawValue): ablate \(format(again.result.msPerStepMedian)) ms/step (median)" + foreignNote(again.foreignCores))
                oursAgain = again
            }
            rows.append(BenchReport.Row(model: m, ours: oursAgain.map { .combined([ours, $0]) } ?? ours, theirs: theirs))
        }
        var methodRows: [BenchReport.MethodRow] = []
        for name in methodNames {
            if name == Methods.defaultName, let mini = rows.first(where: { $0.model == .mini }) {
                methodRows.append(BenchReport.MethodRow(name: name, ours: mini.ours, theirs: mini.theirs))
                continue
            }
            print("[bench] method \(name) on mini: ablate, \(warmup) warm-up + \(steps) timed steps …")
            let m = try measureInChild(.mini, method: name)
            print("[bench] method \(name): ablate \(format(m.result.msPerStepMedian)) ms/step (median)" + foreignNote(m.foreignCores))
            var theirs: BenchReport.Measurement?
            if torchAvailable {
                let r = try measureReference(.mini, method: name)
                print("[bench] method \(name): PyTorch \(format(r.result.msPerStepMedian)) ms/step (median)" + foreignNote(r.foreignCores))
                theirs = r
            }
            methodRows.append(BenchReport.MethodRow(name: name, ours: m, theirs: theirs))
        }
        var split: BenchReport.SplitMeasurement?
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if let mini = rows.first(where: { $0.model == .mini }), cores >= 2, !noSplit {
            print("[bench] workers × threads: \(cores) ablate processes × 1 thread at once …")
            split = BenchReport.SplitMeasurement(shared: mini.ours.result, perCore: try measureOnePerCore(cores))
            if Lanes.byDefault {
                print("[bench] workers × threads: 1 process × \(mini.ours.result.threads) threads without lanes …")
                split?.sharedWithoutLanes = try measureInChild(.mini, environment: ["ABLATE_LANES": "0"]).result
            }
        }
        let markdown = BenchReport(rows: rows, methodRows: methodRows, split: split, torchIncluded: torchAvailable,
                                   referenceSkipped: noReference, loadAtStart: loadAtStart, warmup: warmup, steps: steps).markdown
        print("")
        print(markdown)
        try write(markdown, to: output)
        print("wrote \(output)")
    }

    // MARK: - Measurement

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
        let exe = ownExecutable()
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

    /// `method` nil: the model's SimSiam (the PyTorch comparison).
    private func measureInChild(_ m: BenchmarkModel, method: String? = nil, environment: [String: String] = [:]) throws -> BenchReport.Measurement {
        let exe = ownExecutable()
        let args = ["bench", "--child", "--model", m.rawValue, "--method", method ?? "all",
                    "--steps", "\(steps)", "--warmup", "\(warmup)", "--no-reference"]
        let what = "ablate child for \(m.rawValue)" + (method.map { " / \($0)" } ?? "")
        let result = try decodeResult(try runProcess(exe, args, what: what, environment: environment), from: what)
        return BenchReport.Measurement(result: result, foreignCores: result.otherProcessesBusyCores)
    }

    private func measureReference(_ m: BenchmarkModel, method: String? = nil) throws -> BenchReport.Measurement {
        let args = [reference, "--model", m.rawValue, "--steps", "\(steps)", "--warmup", "\(warmup)"] + (method.map { ["--method", $0] } ?? [])
        let what = "PyTorch reference \(reference)"
        let result = try decodeResult(try runProcess("/usr/bin/env", ["python3"] + args, what: what), from: what)
        return BenchReport.Measurement(result: result, foreignCores: result.otherProcessesBusyCores)
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

    /// Runs a process with this process's stderr, and returns its stdout; throws on failure.
    private func runProcess(_ exe: String, _ args: [String], what: String, environment: [String: String] = [:]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
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


enum BenchError: Error, CustomStringConvertible {
    case missingReference(String)
    case launchFailed(String, String)
    case childFailed(String, String, String)
    case badOutput(String, String)
    case writeFailed(String, String)

    var description: String {
        switch self {
        case let .missingReference(path):
            return "the PyTorch reference script \(path) was not found; run from the package root, pass --reference PATH, or --no-reference"
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
