import Foundation
import SSL
import Scheduler
import Store
import XCTest

/// A back end whose "worker" replays a fixed list of events, as a worker resuming from its
/// checkpoint sends them (`Worker.run`): `.started(resumedEpochs:)`, the checkpoint's epochs, the rest.
final class ReplayBackend: ExecutionBackend {
    let events: [WorkerEvent]
    init(_ events: [WorkerEvent]) { self.events = events }

    func launch(_ spec: Job, threads: Int) throws -> RunHandle { ReplayHandle(runId: spec.id, events: events) }
}

final class ReplayHandle: RunHandle {
    let runId: String
    private var pending: [WorkerEvent]
    init(runId: String, events: [WorkerEvent]) { self.runId = runId; pending = events }
    func poll() -> [WorkerEvent] { defer { pending = [] }; return pending }
    var hasExited: Bool { pending.isEmpty }
    func terminate() { pending = [] }
}

final class LedgerTests: XCTestCase {
    /// A protocol and seed whose stored baselines predate the linear probes get them computed
    /// (on `smoke`) without training; complete baselines are left alone.
    func testMissingBaselinesAreComputedOnceWithoutTraining() throws {
        let store = try Store.inMemory()
        let config = try TrainingConfig.named("smoke")
        func job(_ row: String, seed: UInt64, baselines: Bool) throws -> Job {
            let s = try RunSpec(tableId: "t", rowName: row, seed: seed, config: config, protocolVersion: "v1")
            return Job(id: s.id, tableId: "t", rowName: row, seed: seed, config: config,
                       checkpointPath: "/nonexistent/\(s.id).ckpt", baselines: baselines, protocolVersion: "v1")
        }
        try store.putBaselines([("raw_pixel_knn", 1), ("random_init_knn", 2)], protocolName: "smoke", seed: 0)
        let jobs = [try job("a", seed: 0, baselines: true), try job("b", seed: 0, baselines: false), try job("b", seed: 1, baselines: false)]
        let filled = try store.fillMissingBaselines(for: jobs)
        XCTAssertEqual(filled.map(\.seed), [0], "only the jobs that carry the table's baselines")
        let values = try XCTUnwrap(try store.baselines(protocolName: "smoke", seed: 0)?.values)
        XCTAssertEqual(Set(values.keys), ["raw_pixel_knn", "random_init_knn", "raw_pixel_linear", "random_init_linear"])
        XCTAssertGreaterThan(try XCTUnwrap(values["raw_pixel_linear"]), 50, "\(values)")
        XCTAssertNotEqual(values["raw_pixel_knn"], 1, "measured again, not the stale value")
        XCTAssertTrue(try store.fillMissingBaselines(for: jobs).isEmpty, "complete: nothing to compute")
    }

    /// Each table's first row asks for its seed's baselines; only the first job of a (protocol,
    /// seed) whose baselines are incomplete keeps asking.
    func testBaselinesAreAskedOnceAndOnlyWhereMissing() throws {
        let store = try Store.inMemory()
        let config = try TrainingConfig.named("smoke")
        func job(_ table: String, seed: UInt64) throws -> Job {
            let s = try RunSpec(tableId: table, rowName: "r", seed: seed, config: config, protocolVersion: "v1")
            return Job(id: s.id, tableId: table, rowName: "r", seed: seed, config: config,
                       checkpointPath: "/nonexistent/\(s.id).ckpt", baselines: true, protocolVersion: "v1")
        }
        try store.putBaselines([("raw_pixel_knn", 1), ("random_init_knn", 2), ("raw_pixel_linear", 3), ("random_init_linear", 4)],
                               protocolName: "smoke", seed: 0)
        try store.putBaselines([("raw_pixel_knn", 1), ("random_init_knn", 2)], protocolName: "smoke", seed: 1)
        let jobs = try [job("t1", seed: 0), job("t1", seed: 1), job("t2", seed: 0), job("t2", seed: 1), job("t1", seed: 2), job("t2", seed: 2)]
        XCTAssertEqual(try store.baselinesOnlyWhereMissing(jobs).map(\.baselines), [false, true, false, false, true, false])
    }

    func testAResumedRunThroughTheSchedulerHoldsEveryEpochOnce() throws {
        let store = try Store.inMemory()
        let clock = TickingClock()
        store.now = clock.next
        let config = try TrainingConfig.named("smoke")
        let s = try RunSpec(tableId: "t", rowName: "baseline", seed: 0, config: config, protocolVersion: "v1")
        let job = Job(id: s.id, tableId: "t", rowName: "baseline", seed: 0, config: config,
                      checkpointPath: "/nonexistent/\(s.id).ckpt", baselines: false, protocolVersion: "v1")

        // The first attempt recorded three epochs, but its checkpoint holds only two when it dies.
        let first = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        for epoch in 1...2 { try store.recordEpoch(first, try epochRecord(epoch: epoch, loss: -0.1 * Double(epoch))) }
        try store.recordEpoch(first, try epochRecord(epoch: 3, loss: -0.3, trainZStd: 0.5))
        try store.failRun(first, error: "worker exited without a result")
        let startedAt = try XCTUnwrap(try store.run(id: s.id)?.startedAt)

        // The second attempt resumes from 2 epochs, re-sends them and trains the third.
        var events: [WorkerEvent] = [.started(runId: s.id, resumedEpochs: 2)]
        for epoch in 1...2 { events.append(.epoch(runId: s.id, record: try epochRecord(epoch: epoch, loss: -0.1 * Double(epoch)))) }
        events.append(.epoch(runId: s.id, record: try epochRecord(epoch: 3, loss: -0.35)))
        events.append(.finished(runId: s.id, status: .finished,
                                metrics: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9), baselines: nil))
        let scheduler = Scheduler(ledger: StoreLedger(store: store, provenance: here), backend: ReplayBackend(events), workers: 1)
        scheduler.pollInterval = 0.01
        let summary = try scheduler.run([job]) { _ in }
        XCTAssertEqual(summary.ranNow, 1)

        let curves = try store.epochCurves(runId: s.id)
        XCTAssertEqual(curves["loss"]?.map(\.epoch), [1, 2, 3])
        XCTAssertEqual(curves["loss"]?.last?.value ?? 0, -0.35, accuracy: 1e-6)
        XCTAssertNil(curves["train_z_std"], "what the first attempt recorded after its checkpoint is dropped")
        let run = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertEqual(run.status, .finished)
        XCTAssertEqual(run.startedAt, startedAt)
        XCTAssertEqual(run.attempts, 2)
    }
}
