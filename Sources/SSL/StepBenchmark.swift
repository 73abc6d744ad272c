import Foundation
import NN
import Tensors

/// The models of the training-step benchmark: the `mini` protocol's SimSiam and the wider
/// `convnet-w` backbone with the same heads (PROTOCOLS.md).
public enum BenchmarkModel: String, CaseIterable, Codable, Sendable {
    case mini
    case convnetW = "convnet-w"

    /// Backbone widths (c1, c2, c3, c4).
    public var widths: [Int] {
        switch self {
        case .mini: return [16, 32, 64, 128]
        case .convnetW: return [32, 64, 128, 256]
        }
    }

    /// The `mini` protocol's SimSiam with this model's backbone widths.
    public var config: TrainingConfig {
        var c = TrainingConfig(protocolName: "mini", model: .mini, epochs: 10, batch: 256)
        c.model.widths = widths
        return c
    }
}

/// Settings of one benchmark run.
public struct StepBenchmarkOptions: Codable, Sendable, Equatable {
    public var batch = 256
    public var warmupSteps = 3
    public var timedSteps = 10
    public var seed: UInt64 = 0
    /// Input image shape (channels, height, width); Fashion-MNIST is 1×28×28.
    public var channels = 1, height = 28, width = 28

    public init() {}
}

/// One model's measurement. `imagesPerSecond` counts *batch images* (each seen as two views)
/// per second: batch / median step time. `peakRSSKiB` is the process's peak resident set size,
/// so a process should measure one model only.
public struct StepBenchmarkResult: Codable, Sendable {
    public var framework: String
    public var model: String
    public var widths: [Int]
    public var batch: Int
    public var warmupSteps: Int
    public var timedSteps: Int
    public var msPerStepMedian: Double
    public var msPerStepMean: Double
    public var msPerStepMin: Double
    public var imagesPerSecond: Double
    public var peakRSSKiB: Int
    /// Peak RSS after building the model, optimiser and inputs, before the first step.
    public var setupRSSKiB: Int
    public var finalLoss: Double
    public var threads: Int
    /// Cores that other processes kept busy during the timed steps (machine-wide busy time from
    /// /proc/stat minus this process's CPU time, per second of wall time); nil where unknown.
    /// Above ~0.1 the step times are inflated by competition for the cores.
    public var otherProcessesBusyCores: Double?
    /// FLOPs of one step (GEMMs and direct convolution loops, forward and backward; `FLOPs`).
    /// nil where not counted (the PyTorch reference).
    public var flopsPerStep: Double?
    /// The machine's sgemm rate (GFLOP/s) measured right after the steps with the same threads.
    public var sgemmPeakGFLOPS: Double?
    /// This process's CPU time per timed step (all its threads), ms: less sensitive than wall
    /// time to other processes on the machine, so A/B comparisons of kernels can use it.
    public var cpuMsPerStep: Double?

    /// The step's FLOP rate as a fraction of the sgemm peak: how close the step is to the limit.
    public var fractionOfPeak: Double? {
        guard let flopsPerStep, let sgemmPeakGFLOPS, sgemmPeakGFLOPS > 0 else { return nil }
        return flopsPerStep / (msPerStepMedian / 1000) / 1e9 / sgemmPeakGFLOPS
    }

    enum CodingKeys: String, CodingKey {
        case framework, model, widths, batch
        case warmupSteps = "warmup_steps", timedSteps = "timed_steps"
        case msPerStepMedian = "ms_per_step_median", msPerStepMean = "ms_per_step_mean"
        case msPerStepMin = "ms_per_step_min"
        case imagesPerSecond = "images_per_second"
        case peakRSSKiB = "peak_rss_kib", setupRSSKiB = "setup_rss_kib"
        case finalLoss = "final_loss", threads
        case otherProcessesBusyCores = "other_processes_busy_cores"
        case flopsPerStep = "flops_per_step", sgemmPeakGFLOPS = "sgemm_peak_gflops", cpuMsPerStep = "cpu_ms_per_step"
    }
}

public enum StepBenchmarkError: Error, CustomStringConvertible {
    case invalidOptions(String)
    case nonFiniteLoss(step: Int, value: Float)

    public var description: String {
        switch self {
        case let .invalidOptions(m): return "step benchmark: \(m)"
        case let .nonFiniteLoss(step, value): return "step benchmark: loss is \(value) at step \(step); the measurement is meaningless"
        }
    }
}

/// Builds the method of `model`'s config, its optimiser (the `mini` protocol's SGD) and random
/// input views, runs `warmupSteps` untimed steps and then `timedSteps` timed ones through the
/// training step (augmentation excluded).
public func runStepBenchmark(_ model: BenchmarkModel, options: StepBenchmarkOptions = .init()) throws -> StepBenchmarkResult {
    try runStepBenchmark(config: model.config, name: model.rawValue, options: options)
}

public func runStepBenchmark(config base: TrainingConfig, name: String, options: StepBenchmarkOptions) throws -> StepBenchmarkResult {
    guard options.batch >= 2 else { throw StepBenchmarkError.invalidOptions("batch \(options.batch) must be ≥ 2 (BatchNorm needs two samples)") }
    guard options.timedSteps >= 1 else { throw StepBenchmarkError.invalidOptions("timed steps \(options.timedSteps) must be ≥ 1") }
    guard options.warmupSteps >= 0 else { throw StepBenchmarkError.invalidOptions("warm-up steps \(options.warmupSteps) must be ≥ 0") }

    var config = base
    config.batch = options.batch
    let net = try Methods.make(config, inChannels: options.channels, seed: options.seed)
    net.setTraining(true)
    let totalSteps = options.warmupSteps + options.timedSteps
    let optimizer = makeOptimizer(for: net, config: config, totalSteps: totalSteps)
    var rng = RNG(seed: options.seed &+ 1)
    let shape = [options.batch, options.channels, options.height, options.width]
    let views = (0..<net.viewCount).map { _ in Tensor.randn(shape, rng: &rng) }
    let setupRSS = peakRSSKiB()

    var loss: Float = 0
    for s in 0..<options.warmupSteps {
        loss = try trainingStep(net, optimizer, views: views, totalSteps: totalSteps).loss
        guard loss.isFinite else { throw StepBenchmarkError.nonFiniteLoss(step: s, value: loss) }
    }
    var times: [Double] = []
    times.reserveCapacity(options.timedSteps)
    let cpuBefore = CPUAccounting.now()
    let flopsBefore = FLOPs.total
    for s in 0..<options.timedSteps {
        let t0 = monotonicNanoseconds()
        loss = try trainingStep(net, optimizer, views: views, totalSteps: totalSteps).loss
        times.append(Double(monotonicNanoseconds() - t0) / 1e6)
        guard loss.isFinite else { throw StepBenchmarkError.nonFiniteLoss(step: options.warmupSteps + s, value: loss) }
    }
    let cpuAfter = CPUAccounting.now()
    let otherBusy = cpuBefore.flatMap { b in cpuAfter.map { $0.otherProcessesBusyCores(since: b) } }
    let cpuMs = cpuBefore.flatMap { b in cpuAfter.map { ($0.ownSeconds - b.ownSeconds) * 1000 / Double(options.timedSteps) } }
    let flopsPerStep = Double(FLOPs.total - flopsBefore) / Double(options.timedSteps)
    let sorted = times.sorted()
    let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2]
        : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    let mean = times.reduce(0, +) / Double(times.count)
    return StepBenchmarkResult(
        framework: "ablate", model: name, widths: config.model.widths, batch: options.batch,
        warmupSteps: options.warmupSteps, timedSteps: options.timedSteps,
        msPerStepMedian: median, msPerStepMean: mean, msPerStepMin: sorted[0],
        imagesPerSecond: Double(options.batch) / (median / 1000),
        peakRSSKiB: peakRSSKiB(), setupRSSKiB: setupRSS, finalLoss: Double(loss), threads: parallelThreads,
        otherProcessesBusyCores: otherBusy, flopsPerStep: flopsPerStep,
        sgemmPeakGFLOPS: sgemmPeakGFLOPS(), cpuMsPerStep: cpuMs)
}

/// The process's peak resident set size in KiB (getrusage ru_maxrss: KiB on Linux, bytes on macOS).
public func peakRSSKiB() -> Int {
    var usage = rusage()
    #if os(Linux)
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss)
    #else
    guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
    return Int(usage.ru_maxrss) / 1024
    #endif
}

/// Monotonic clock in nanoseconds.
public func monotonicNanoseconds() -> UInt64 {
    DispatchTime.now().uptimeNanoseconds
}

/// Machine-wide busy CPU time (/proc/stat, all but idle and iowait) beside this process's own CPU
/// time, to tell how much other processes competed for the cores during a measurement.
/// Linux only (nil elsewhere).
public struct CPUAccounting {
    public var machineBusySeconds: Double
    public var ownSeconds: Double
    public var wallNanoseconds: UInt64

    public static func now() -> CPUAccounting? {
        #if os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard v.count >= 5, ticks > 0 else { return nil }
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return nil }
        let own = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return CPUAccounting(machineBusySeconds: (v.prefix(8).reduce(0, +) - v[3] - v[4]) / ticks,
                             ownSeconds: own, wallNanoseconds: monotonicNanoseconds())
        #else
        return nil
        #endif
    }

    /// Cores kept busy by other processes between `start` and this snapshot.
    public func otherProcessesBusyCores(since start: CPUAccounting) -> Double {
        let wall = Double(wallNanoseconds &- start.wallNanoseconds) / 1e9
        guard wall > 0 else { return 0 }
        return max(0, (machineBusySeconds - start.machineBusySeconds) - (ownSeconds - start.ownSeconds)) / wall
    }
}
