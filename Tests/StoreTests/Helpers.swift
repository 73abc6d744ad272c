import Foundation
import SSL
import Scheduler
import Store
import XCTest

/// A fresh directory under the system temp dir, removed by the test's teardown.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ablate-store-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

func spec(table: String = "t", row: String = "baseline", seed: UInt64 = 0, version: String = "v1",
          edit: (inout TrainingConfig) -> Void = { _ in }) throws -> RunSpec {
    var config = try TrainingConfig.named("smoke")
    edit(&config)
    return try RunSpec(tableId: table, rowName: row, seed: seed, config: config, protocolVersion: version)
}

let here = Provenance(gitRevision: "abc1234", gitDirty: false, host: "test-host", pid: 42)

/// A clock that advances one second per reading, from a fixed start.
final class TickingClock: @unchecked Sendable {
    private var t: Double
    private let lock = NSLock()
    init(start: Double = 1_700_000_000) { t = start }
    func next() -> Date {
        lock.lock(); defer { lock.unlock() }
        t += 1
        return Date(timeIntervalSince1970: t)
    }
}

/// SSL's records have no public memberwise initialisers; build them through their Codable form.
/// Non-finite numbers are written as the strings "nan", "inf", "-inf".
private func decode<T: Decodable>(_ type: T.Type, _ object: [String: Any]) throws -> T {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try decoder.decode(type, from: JSONSerialization.data(withJSONObject: object))
}

private func number(_ x: Double) -> Any {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    return x
}

func epochRecord(epoch: Int, loss: Double, knn: Double? = nil, zStd: Double? = nil, mO: Double? = nil, mR: Double? = nil,
                 trainZStd: Double? = nil, seconds: Double = 1.5, targetSeconds: Double? = nil) throws -> EpochRecord {
    var object: [String: Any] = ["epoch": epoch, "meanLoss": number(loss), "seconds": seconds]
    if let targetSeconds { object["targetSeconds"] = targetSeconds }
    if let knn { object["knnSubset"] = number(knn) }
    if let zStd, let mO, let mR { object["test"] = ["zStd": number(zStd), "mO": number(mO), "mR": number(mR)] }
    if let trainZStd { object["trainZStd"] = number(trainZStd) }
    return try decode(EpochRecord.self, object)
}

func finalMetrics(knn: Double, linear: Double? = nil, zStd: Double, mO: Double, mR: Double,
                  verdict: Verdict? = nil) throws -> FinalMetrics {
    var object: [String: Any] = [
        "knn": number(knn), "test": ["zStd": number(zStd), "mO": number(mO), "mR": number(mR), "covOffdiag": 0.01],
        "verdict": (verdict ?? Verdict.of(diverged: false, zStd: zStd, mO: mO, mR: mR)).rawValue,
    ]
    if let linear { object["linear"] = number(linear) }
    return try decode(FinalMetrics.self, object)
}

func baselines(raw: Double, random: Double, rawLinear: Double? = nil, randomLinear: Double? = nil) throws -> Baselines {
    var object: [String: Any] = ["rawPixelKNN": raw, "randomBackboneKNN": random]
    if let rawLinear { object["rawPixelLinear"] = rawLinear }
    if let randomLinear { object["randomBackboneLinear"] = randomLinear }
    return try decode(Baselines.self, object)
}

/// The lease of a claim that must succeed.
func lease(_ result: StoreClaim, file: StaticString = #filePath, line: UInt = #line) throws -> RunLease {
    guard let lease = result.lease else {
        XCTFail("expected .claimed, got \(result)", file: file, line: line)
        throw UnexpectedClaim()
    }
    return lease
}

struct UnexpectedClaim: Error {}
