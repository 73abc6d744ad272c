import Foundation

import CBLAS

/// Number of threads the elementwise / im2col / batchnorm passes use.
/// `ABLATE_THREADS` overrides it (the scheduler gives each worker process its share of cores),
/// and then also sets OpenBLAS's thread count for this process (the environment is left alone).
public let parallelThreads: Int = {
    if let s = ProcessInfo.processInfo.environment["ABLATE_THREADS"], let n = Int(s), n > 0 {
        openblas_set_num_threads(Int32(n))
        return n
    }
    return max(1, ProcessInfo.processInfo.activeProcessorCount)
}()

/// Reads `ABLATE_THREADS` now (call once at start-up so OpenBLAS is configured before the first GEMM).
public func configureThreads() -> Int { parallelThreads }

/// Splits `0..<count` into contiguous chunks run on all cores when the work is large enough.
/// `cost` is the approximate number of scalar operations per index; small jobs stay serial,
/// because waking a second thread costs more than ~32k operations.
@inline(__always)
public func parallelFor(_ count: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = min(parallelThreads, count)
    if threads <= 1 || count * cost < 32_768 || Lanes.isInLane {
        if count > 0 { body(0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = count * t / threads, hi = count * (t + 1) / threads
            if lo < hi { box.value(lo..<hi) }
        }
    }
}

/// Carries a non-Sendable value (a closure, a raw pointer) into `concurrentPerform`.
/// NOTE: safe here because every chunk writes a disjoint range.
public struct UncheckedBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

// MARK: - Lanes: the independent branches of a step, one thread each

/// Lanes run the independent branches of one training step (the views: each goes through the
/// encoder on its own until the loss joins them) on threads of their own, each branch serial
/// inside (single-threaded BLAS, `parallelFor` inline), and `backward()` runs them back the same
/// way. Two views on two cores then scale like two processes, instead of splitting every GEMM
/// and every BN pass of a small model in two (issue 10: 1 × 2 threads was 1.47× one thread;
/// 2 processes × 1 thread 1.92×).
///
/// What keeps the result identical to running the branches one after the other:
/// - a branch's BN running statistics move after the join, in branch order (`Lanes.afterJoin`);
/// - gradients a branch sends to a tensor of another lane (parameters, shared inputs) go to a
///   buffer of the branch, added in branch order after the branches' backward passes;
/// - a branch may not read another branch's results (they run at the same time); the backward
///   pass falls back to the serial order if a graph has such an edge.
public enum Lanes {
    /// Off: branches run one after the other on the calling thread. On by default with two or
    /// more threads (`ABLATE_THREADS`), unless `ABLATE_LANES=0`; a worker process with one thread
    /// never uses lanes.
    nonisolated(unsafe) public static var enabled = byDefault
    /// What `enabled` starts as in this process.
    public static let byDefault = parallelThreads > 1 && ProcessInfo.processInfo.environment["ABLATE_LANES"] != "0"

    /// The lane this thread computes in, or nil outside lanes.
    @TaskLocal static var current: Int? = nil
    /// Work a lane leaves for after the join (BN running statistics), in lane order.
    @TaskLocal static var deferred: DeferredWork? = nil
    /// Where a lane's backward pass sends gradients for tensors outside the lane.
    @TaskLocal static var gradients: LaneGradients? = nil

    /// Whether this thread is inside a lane (so it must not start threads of its own).
    public static var isInLane: Bool { current != nil }

    /// Runs `body` now, or after the join when this thread is inside a lane.
    static func afterJoin(_ body: @escaping () -> Void) {
        if let deferred { deferred.work.append(body) } else { body() }
    }

    /// Runs `count` independent bodies at once, each on a thread of its own, and returns their
    /// results in order; serially when lanes are off, inside a lane, or for one body.
    /// The first error (in lane order) is thrown after every lane has finished.
    public static func run<T>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
        guard enabled, count > 1, current == nil else { return try (0..<count).map(body) }
        let grad = GradMode.isEnabled
        let deferred = (0..<count).map { _ in DeferredWork() }
        let slots = UnsafeMutablePointer<Result<T, Error>?>.allocate(capacity: count)
        slots.initialize(repeating: nil, count: count)
        defer { slots.deinitialize(count: count); slots.deallocate() }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox((body, slots))
            singleThreadedBLAS {
                DispatchQueue.concurrentPerform(iterations: count) { i in
                    GradMode.$isEnabled.withValue(grad) {
                        $current.withValue(i) {
                            $deferred.withValue(deferred[i]) { box.value.1[i] = Result { try box.value.0(i) } }
                        }
                    }
                }
            }
        }
        for d in deferred { for work in d.work { work() } }
        return try (0..<count).map { try slots[$0]!.get() }
    }

    /// OpenBLAS at one thread while `body` runs (lanes: each lane is one thread), then back.
    /// OpenBLAS's threads split a GEMM's rows and columns, which can change the last bit of a
    /// product; tests that compare with lanes run the serial order inside this too.
    public static func singleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        let before = openblas_get_num_threads()   // what ABLATE_THREADS or OPENBLAS_NUM_THREADS set
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(before) }
        return try body()
    }
}

/// A lane's work for after the join.
final class DeferredWork: @unchecked Sendable {
    var work: [() -> Void] = []
}

/// The gradients one lane's backward pass computed for tensors outside the lane, by tensor,
/// in the order they were first reached (added after the join, lane by lane).
final class LaneGradients: @unchecked Sendable {
    let lane: Int
    private(set) var order: [Tensor] = []
    private var buffers: [ObjectIdentifier: Storage] = [:]

    init(lane: Int) { self.lane = lane }

    /// The lane's buffer for `t` and whether it was just allocated (then it must be overwritten).
    func buffer(for t: Tensor) -> (UnsafeMutablePointer<Float>, fresh: Bool) {
        if let s = buffers[ObjectIdentifier(t)] { return (s.pointer, false) }
        let s = Storage(uninitializedCount: t.count)
        buffers[ObjectIdentifier(t)] = s
        order.append(t)
        return (s.pointer, true)
    }

    func storage(for t: Tensor) -> Storage { buffers[ObjectIdentifier(t)]! }
}
