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
    if threads <= 1 || count * cost < 32_768 {
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
