import Foundation
@testable import Scheduler
import SSL
import XCTest

/// The scheduler on a back end that takes runs in batches (Slurm arrays): same claims, events
/// and failures as with worker slots, but every claimable run goes out in one call.
final class BatchSchedulerTests: XCTestCase {
    let ledger = FakeLedger()
    let backend = FakeBatchBackend()

    func scheduler(workers: Int = 1) -> Scheduler {
        let s = Scheduler(ledger: ledger, backend: backend, workers: workers, cores: 4)
        s.pollInterval = 0.001
        s.heartbeatEvery = 0.005
        return s
    }

    func testEveryClaimableRunGoesOutInOneBatchWhateverTheWorkers() throws {
        let jobs = try ["a", "b", "c", "d"].map { try Fixture.job($0) }
        ledger.finished = ["a-0"]
        for j in jobs { backend.runs.scripts[j.id] = Fixture.succeeds(j.id) }
        let summary = try scheduler(workers: 1).run(jobs) { _ in }

        XCTAssertEqual(summary, SchedulerSummary(total: 4, ranNow: 3, skipped: 1, failed: 0, failures: []))
        XCTAssertEqual(backend.batches, [["b-0", "c-0", "d-0"]])
        XCTAssertEqual(backend.runs.maxLive, 3)
        XCTAssertEqual(Set(ledger.finishes), ["b-0", "c-0", "d-0"])
    }

    func testAFailedBatchLaunchFailsEveryRunOfIt() throws {
        struct NoSbatch: Error, CustomStringConvertible { var description: String { "sbatch: unknown partition" } }
        let jobs = try ["a", "b"].map { try Fixture.job($0) }
        backend.batchError = NoSbatch()
        let summary = try scheduler().run(jobs) { _ in }

        XCTAssertEqual(summary.failed, 2)
        XCTAssertEqual(ledger.failures, ["a-0": "sbatch: unknown partition", "b-0": "sbatch: unknown partition"])
        XCTAssertTrue(backend.runs.launched.isEmpty)
    }

    /// A run another process holds is not in the first batch; once it lets go, it goes out in a
    /// second one (and never twice).
    func testARunHeldElsewhereGoesOutInALaterBatch() throws {
        let jobs = try ["a", "b"].map { try Fixture.job($0) }
        ledger.holders["a-0"] = .init(heartbeat: .distantFuture, busyAnswers: 1, finishes: false)
        for j in jobs { backend.runs.scripts[j.id] = Fixture.succeeds(j.id, epochs: 5) }
        let summary = try scheduler().run(jobs) { _ in }

        XCTAssertEqual(summary, SchedulerSummary(total: 2, ranNow: 2, skipped: 0, failed: 0, failures: []))
        XCTAssertEqual(backend.batches, [["b-0"], ["a-0"]])
    }

    func testDetachReturnsOnceSubmittedAndLeavesTheRunsToTheBackEnd() throws {
        let jobs = try ["a", "b", "c"].map { try Fixture.job($0) }
        ledger.finished = ["c-0"]
        for j in jobs { backend.runs.scripts[j.id] = Fixture.runsLong(j.id) }
        let s = scheduler()
        s.detach = true
        let summary = try s.run(jobs) { _ in }

        XCTAssertEqual(summary, SchedulerSummary(total: 3, ranNow: 0, skipped: 1, failed: 0, failures: [], submitted: 2))
        XCTAssertEqual(backend.batches, [["a-0", "b-0"]])
        XCTAssertFalse(backend.runs.handles.values.contains(where: \.terminated), "detached runs go on")
        XCTAssertTrue(ledger.failures.isEmpty && ledger.finishes.isEmpty)
    }

    /// `detach` means nothing to a back end whose workers are children of this process.
    func testDetachIsIgnoredByPerRunBackEnds() throws {
        let runs = FakeBackend()
        let job = try Fixture.job("a")
        runs.scripts[job.id] = Fixture.succeeds(job.id)
        let s = Scheduler(ledger: ledger, backend: runs, workers: 1, cores: 1)
        s.pollInterval = 0.001
        s.detach = true
        let summary = try s.run([job]) { _ in }
        XCTAssertEqual(summary, SchedulerSummary(total: 1, ranNow: 1, skipped: 0, failed: 0, failures: []))
    }
}
