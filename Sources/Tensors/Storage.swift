/// A fixed-size, 64-byte aligned block of Float32, owned by one or more tensors.
///
/// Tensors that share a `Storage` (reshape, stopGradient) see the same numbers; operations
/// never write into an input's storage.
public final class Storage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialised memory: callers must write every element.
    public init(uninitializedCount count: Int) {
        self.count = count
        pointer = StoragePool.shared.take(count)
    }

    public convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    public convenience init(_ values: [Float]) {
        self.init(uninitializedCount: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { StoragePool.shared.give(pointer, count) }

    /// Frees the blocks kept for reuse (`StoragePool`): call between phases that allocate other
    /// sizes (training, then the final evaluation), so the process does not hold both.
    public static func releaseCachedBlocks() { StoragePool.shared.drain() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
}

/// A cache of large freed blocks, keyed by exact size. A training step allocates the same sizes
/// every time; reusing them avoids mmap/munmap and the page faults of touching fresh memory
/// (glibc maps every block above 32 MB anew). Small blocks go straight to malloc.
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()
    /// Blocks below this many floats are not cached.
    let minCount = 16_384
    /// Freed memory kept for reuse, at most (bytes); `ABLATE_POOL_MB` overrides.
    let capacityBytes: Int
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedBytes = 0
    private var lock = pthread_mutex_t()

    init() {
        let mb = ProcessInfo.processInfo.environment["ABLATE_POOL_MB"].flatMap(Int.init) ?? 2048
        capacityBytes = mb << 20
        pthread_mutex_init(&lock, nil)
    }

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count >= minCount {
            pthread_mutex_lock(&lock)
            let p = free[count]?.popLast()
            if p != nil { cachedBytes -= count * 4 }
            pthread_mutex_unlock(&lock)
            if let p { return p }
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func drain() {
        pthread_mutex_lock(&lock)
        let blocks = free.values.joined()
        free.removeAll()
        cachedBytes = 0
        pthread_mutex_unlock(&lock)
        for p in blocks { UnsafeMutableRawPointer(p).deallocate() }
    }

    func give(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        if count >= minCount {
            pthread_mutex_lock(&lock)
            if cachedBytes + count * 4 <= capacityBytes {
                free[count, default: []].append(p)
                cachedBytes += count * 4
                pthread_mutex_unlock(&lock)
                return
            }
            pthread_mutex_unlock(&lock)
        }
        UnsafeMutableRawPointer(p).deallocate()
    }
}

import Foundation
