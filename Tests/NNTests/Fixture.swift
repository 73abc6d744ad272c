import Foundation
import Tensors
import XCTest

/// A golden fixture written by Tests/Fixtures/make_fixtures.py (format: Fixtures/README.md):
/// `NAME.json` indexes float32 tensors in `NAME.bin` by name, and carries free-form `meta`.
final class Fixture {
    let name: String
    let meta: [String: Any]
    private let index: [String: (shape: [Int], offset: Int, count: Int)]
    private let floats: [Float]

    /// Loaded fixtures, by name (the SimSiam ones are ~10 MB and several tests read them).
    nonisolated(unsafe) private static var cache: [String: Fixture] = [:]
    private static let lock = NSLock()

    static func named(_ name: String) throws -> Fixture {
        lock.lock(); defer { lock.unlock() }
        if let f = cache[name] { return f }
        let f = try Fixture(name)
        cache[name] = f
        return f
    }

    private init(_ name: String) throws {
        self.name = name
        guard let jsonURL = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
              let binURL = Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures") else {
            throw FixtureError("fixture \(name) is missing from the NNTests bundle (run Tests/Fixtures/make_fixtures.py)")
        }
        guard let root = try JSONSerialization.jsonObject(with: Data(contentsOf: jsonURL)) as? [String: Any],
              let tensors = root["tensors"] as? [String: [String: Any]] else {
            throw FixtureError("\(name).json has no \"tensors\" object")
        }
        meta = root["meta"] as? [String: Any] ?? [:]
        let bin = try Data(contentsOf: binURL)
        guard bin.count % 4 == 0 else { throw FixtureError("\(name).bin is \(bin.count) bytes, not a whole number of float32") }
        // Little-endian float32, independent of the host's byte order.
        floats = bin.withUnsafeBytes { raw in
            (0..<bin.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        var index: [String: (shape: [Int], offset: Int, count: Int)] = [:]
        for (key, entry) in tensors {
            guard let shape = entry["shape"] as? [Int], let offset = entry["offset"] as? Int, let count = entry["count"] as? Int,
                  shape.reduce(1, *) == count, offset >= 0, offset + count <= floats.count else {
                throw FixtureError("\(name).json: bad index entry for \(key): \(entry)")
            }
            index[key] = (shape, offset, count)
        }
        self.index = index
    }

    var tensorNames: [String] { Array(index.keys) }

    func has(_ key: String) -> Bool { index[key] != nil }

    /// A fresh tensor (own storage) holding the stored values.
    func tensor(_ key: String, requiresGrad: Bool = false) throws -> Tensor {
        guard let e = index[key] else { throw FixtureError("fixture \(name) has no tensor \(key)") }
        return try Tensor(shape: e.shape, Array(floats[e.offset..<e.offset + e.count]), requiresGrad: requiresGrad)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
