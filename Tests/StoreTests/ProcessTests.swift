import Foundation
import Scheduler
import Store
import XCTest

/// Two processes sharing one database, as two `ablate` commands would: the test binary starts
/// copies of itself that run `testWorker` (which does nothing unless started this way).
final class ProcessTests: XCTestCase {
    static let dbVariable = "ABLATE_STORE_WORKER_DB", outVariable = "ABLATE_STORE_WORKER_OUT"
    static let startVariable = "ABLATE_STORE_WORKER_START", reverseVariable = "ABLATE_STORE_WORKER_REVERSE"
    static let runs = 40

    func testTwoProcessesClaimingTheSameRunsOnlyOneWinsEach() throws {
        #if os(Linux)
        let dir = try temporaryDirectory(self)
        let db = dir.appendingPathComponent("shared.sqlite").path
        let binary = URL(fileURLWithPath: CommandLine.arguments[0])
        let outputs = (0..<2).map { dir.appendingPathComponent("worker\($0).txt") }
        // Both workers start claiming at the same moment, after their (slow) process start.
        let start = String(Date().timeIntervalSince1970 + 1.5)
        let processes = try outputs.enumerated().map { index, out -> Process in
            let p = Process()
            p.executableURL = binary
            p.arguments = ["StoreTests.ProcessTests/testWorker"]
            p.environment = ProcessInfo.processInfo.environment.merging(
                [ProcessTests.dbVariable: db, ProcessTests.outVariable: out.path, ProcessTests.startVariable: start,
                 ProcessTests.reverseVariable: index == 1 ? "1" : "0"]) { _, new in new }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in processes { p.waitUntilExit() }
        var wins: [String: Int] = [:]
        for (p, out) in zip(processes, outputs) {
            let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map(String.init)
            XCTAssertEqual(p.terminationStatus, 0, lines.filter { $0.hasPrefix("error") }.joined(separator: "\n"))
            XCTAssertEqual(lines.last, "done")
            for line in lines where line.hasPrefix("won ") { wins[String(line.dropFirst(4)), default: 0] += 1 }
        }
        XCTAssertEqual(wins.count, ProcessTests.runs)
        XCTAssertTrue(wins.values.allSatisfy { $0 == 1 }, "\(wins)")
        let store = try Store(path: db)
        XCTAssertEqual(try store.runs(forTable: "t").filter { $0.status == .finished }.count, ProcessTests.runs)
        XCTAssertEqual(try store.integrityCheck(), "ok")
        #else
        throw XCTSkip("starts the test binary as a worker; only arranged for Linux")
        #endif
    }

    /// The worker: claims every run, records an epoch and finishes the ones it won.
    func testWorker() throws {
        let env = ProcessInfo.processInfo.environment
        guard let db = env[ProcessTests.dbVariable], let out = env[ProcessTests.outVariable] else { return }
        var lines: [String] = []
        defer { try? (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8) }
        do {
            let store = try Store(path: db)
            let me = Provenance.current(gitRevision: nil, gitDirty: false)
            if let start = env[ProcessTests.startVariable].flatMap(Double.init) {
                Thread.sleep(until: Date(timeIntervalSince1970: start))
            }
            // The workers go through the runs in opposite orders, so they meet and race in the middle.
            let seeds = env[ProcessTests.reverseVariable] == "1" ? Array((0..<ProcessTests.runs).reversed()) : Array(0..<ProcessTests.runs)
            for seed in seeds {
                Thread.sleep(forTimeInterval: 0.005)   // a pause between claims, as training would make
                let s = try spec(seed: UInt64(seed))
                guard case .claimed(let lease, _) = try store.claimRun(s, provenance: me, staleAfter: 300) else { continue }
                lines.append("won \(s.id)")
                try store.recordEpoch(lease, try epochRecord(epoch: 1, loss: -0.5))
                try store.finishRun(lease, status: .finished, final: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9))
            }
            lines.append("done")
        } catch {
            lines.append("error \(error)")
            throw error
        }
    }
}
