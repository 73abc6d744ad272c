import Foundation
@testable import Scheduler
import SSL
import XCTest

final class SchedulerTests: XCTestCase {
    let ledger = FakeLedger()
    let backend = FakeBackend()

    /// A scheduler on the fakes with intervals small enough that waiting tests take milliseconds.
    func scheduler(workers: Int, cores: Int = 4) -> Scheduler {
        let s = Scheduler(ledger: ledger, backend: backend, workers: workers, cores: cores)
        s.pollInterval = 0.001
        s.heartbeatEvery = 0.005
        s.staleAfter = 60
        return s
    }

    func testRunsEveryJobOnAtMostWorkersAtOnceWithCoresSplitBetweenThem() throws {
        let jobs = try ["a", "b", "c", "d", "e"].map { try Fixture.job($0) }
        for j in jobs { backend.scripts[j.id] = Fixture.succeeds(j.id, epochs: 2) }
        var displays: [SchedulerStatus] = []
        let summary = try scheduler(workers: 2, cores: 8).run(jobs) { displays.append($0) }

        XCTAssertEqual(summary, SchedulerSummary(total: 5, ranNow: 5, skipped: 0, failed: 0, failures: []))
        XCTAssertEqual(backend.launched.map(\.id), jobs.map(\.id))
        XCTAssertEqual(backend.maxLive, 2)
        XCTAssertEqual(backend.launched.prefix(4).map(\.threads), [4, 4, 4, 4])
        // The last run gets every core if it starts when it is the only one left.
        XCTAssertTrue([4, 8].contains(backend.launched.last?.threads ?? 0))
        XCTAssertEqual(Set(ledger.finishes), Set(jobs.map(\.id)))
        for j in jobs {
            let epochs = ledger.calls.compactMap { call -> Int? in
                if case let .epoch(id, n) = call, id == j.id { return n } else { return nil }
            }
            XCTAssertEqual(epochs, [1, 2], j.id)
        }
        XCTAssertEqual(ledger.heartbeats.first, ["a-0", "b-0"])
        XCTAssertTrue(displays.contains { $0.running.count == 2 })
        XCTAssertEqual(displays.last?.message, "done")
        XCTAssertEqual(displays.last?.done, 5)
    }

    func testThreadsPerWorkerAreCoresOverWorkersAndAtLeastOne() throws {
        for (workers, cores, concurrent, threads) in [(2, 3, 2, 1), (4, 1, 4, 1), (1, 6, 3, 6), (0, 6, 1, 6), (2, 8, 5, 4), (4, 8, 2, 4)] {
            let s = Scheduler(ledger: FakeLedger(), backend: FakeBackend(), workers: workers, cores: cores)
            XCTAssertEqual(s.threadsPerRun(concurrent: concurrent), threads, "workers \(workers), cores \(cores), runs \(concurrent)")
        }
    }

    func testTheOnlyRunLeftGetsEveryCore() throws {
        for (workers, cores, threads) in [(2, 3, 3), (4, 1, 1), (1, 6, 6), (0, 6, 6)] {
            let ledger = FakeLedger(), backend = FakeBackend()
            let job = try Fixture.job("a")
            backend.scripts[job.id] = Fixture.succeeds(job.id, epochs: 1)
            let s = Scheduler(ledger: ledger, backend: backend, workers: workers, cores: cores)
            s.pollInterval = 0.001
            _ = try s.run([job]) { _ in }
            XCTAssertEqual(backend.launched.map(\.threads), [threads], "workers \(workers), cores \(cores)")
        }
    }

    func testFinishedRunIsSkippedAndNeverLaunched() throws {
        let jobs = try [Fixture.job("a"), Fixture.job("b")]
        ledger.finished = ["a-0"]
        backend.scripts["b-0"] = Fixture.succeeds("b-0")
        let summary = try scheduler(workers: 2).run(jobs) { _ in }

        XCTAssertEqual(summary, SchedulerSummary(total: 2, ranNow: 1, skipped: 1, failed: 0, failures: []))
        XCTAssertEqual(backend.launched.map(\.id), ["b-0"])
        XCTAssertEqual(ledger.finishes, ["b-0"])
        XCTAssertEqual(ledger.failures, [:])
    }

    /// Finished runs are counted before the first run starts (a resumed sweep's progress line
    /// starts at what is done), and the ETA is there before any run of this sweep has finished:
    /// from what the running runs expect, times the runs still queued.
    func testFinishedRunsCountFromTheFirstLineAndTheETAComesBeforeTheFirstRunEnds() throws {
        let jobs = try ["a", "b", "c", "d", "e"].map { try Fixture.job($0) }
        ledger.finished = ["a-0", "c-0"]
        for j in jobs { backend.scripts[j.id] = Fixture.succeeds(j.id, epochs: 2) }
        var displays: [SchedulerStatus] = []
        let summary = try scheduler(workers: 1).run(jobs) { displays.append($0) }

        XCTAssertEqual(summary, SchedulerSummary(total: 5, ranNow: 3, skipped: 2, failed: 0, failures: []))
        XCTAssertEqual(backend.launched.map(\.id), ["b-0", "d-0", "e-0"])
        XCTAssertEqual(displays.first?.skipped, 2, "the finished runs are counted from the first line")
        let beforeFirstFinish = displays.prefix { $0.done == 0 }
        // b runs (its progress says 1 s left) with d and e queued: ETA ≥ 1 s + 2 runs of ≥ 1 s each.
        let eta = try XCTUnwrap(beforeFirstFinish.compactMap(\.secondsRemaining).first, "an ETA before the first run ends")
        XCTAssertGreaterThanOrEqual(eta, 3)
    }

    /// A run resumed after 2 of its 3 epochs expects 1 s for its last one: a whole run takes
    /// 3 s, so the two queued behind it add 6 s, not 2 s.
    func testResumedRunCountsAsAWholeRunInTheETA() throws {
        let jobs = try ["a", "b", "c"].map { try Fixture.job($0) }
        backend.scripts["a-0"] = [[.started(runId: "a-0", resumedEpochs: 2)], [Fixture.progress("a-0", epoch: 3)],
                                  [.finished(runId: "a-0", status: .finished, metrics: Fixture.metrics, baselines: nil)]]
        for j in jobs.dropFirst() { backend.scripts[j.id] = Fixture.succeeds(j.id) }
        var displays: [SchedulerStatus] = []
        _ = try scheduler(workers: 1).run(jobs) { displays.append($0) }

        let eta = try XCTUnwrap(displays.prefix { $0.done == 0 }.compactMap(\.secondsRemaining).first)
        XCTAssertGreaterThanOrEqual(eta, 7, "1 s left of a + 2 queued runs of 3 s")
        XCTAssertLessThan(eta, 8)
    }

    /// Two tables' rows with one configuration are one run: the second waits for the first to
    /// end, then its claim finds the run finished (and lists it under its row); it is not launched.
    func testASpecSharingARunningRunIsClaimedAfterItEnds() throws {
        var shared = try Fixture.job("a")
        shared.tableId = "other"
        let jobs = [try Fixture.job("a"), shared, try Fixture.job("b")]
        for id in ["a-0", "b-0"] { backend.scripts[id] = Fixture.succeeds(id) }
        var waitingSeen = 0
        let summary = try scheduler(workers: 2).run(jobs) { waitingSeen = max(waitingSeen, $0.waitingOnOthers) }

        XCTAssertEqual(summary, SchedulerSummary(total: 3, ranNow: 2, skipped: 1, failed: 0, failures: []))
        XCTAssertEqual(backend.launched.map(\.id), ["a-0", "b-0"])
        XCTAssertEqual(ledger.claims, ["a-0", "b-0", "a-0"], "the shared spec is claimed once its run has ended")
        XCTAssertEqual(waitingSeen, 0, "not shown as held by another process")
    }

    /// Another live process holds `a`; the scheduler runs `b` meanwhile, asks again later and
    /// runs `a` once the holder has given it up (e.g. its run failed).
    func testRunHeldByLiveProcessIsRetriedAndRunsOnceTheHolderLetsGo() throws {
        let jobs = try [Fixture.job("a"), Fixture.job("b")]
        ledger.holders["a-0"] = .init(heartbeat: .distantFuture, busyAnswers: 2, finishes: false)
        for j in jobs { backend.scripts[j.id] = Fixture.succeeds(j.id) }
        var waitingSeen = 0
        let started = Date()
        let summary = try scheduler(workers: 1).run(jobs) { waitingSeen = max(waitingSeen, $0.waitingOnOthers) }

        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        XCTAssertEqual(summary, SchedulerSummary(total: 2, ranNow: 2, skipped: 0, failed: 0, failures: []))
        XCTAssertEqual(ledger.claims, ["a-0", "b-0", "a-0", "a-0"])
        XCTAssertEqual(backend.launched.map(\.id), ["b-0", "a-0"])
        XCTAssertEqual(waitingSeen, 1)
    }

    /// A holder that finishes the run itself: the retry finds it finished and skips it.
    func testRunFinishedByItsLiveHolderIsSkippedOnRetry() throws {
        let job = try Fixture.job("a")
        ledger.holders["a-0"] = .init(heartbeat: .distantFuture, busyAnswers: 1, finishes: true)
        let summary = try scheduler(workers: 1).run([job]) { _ in }

        XCTAssertEqual(summary, SchedulerSummary(total: 1, ranNow: 0, skipped: 1, failed: 0, failures: []))
        XCTAssertEqual(ledger.claims, ["a-0", "a-0"])
        XCTAssertTrue(backend.launched.isEmpty)
    }

    /// The holder stops heartbeating: the ledger answers busy until its heartbeat is older than
    /// the scheduler's `staleAfter`, then lets this process take the run over.
    func testAbandonedRunIsTakenOverOnceStale() throws {
        let job = try Fixture.job("a")
        ledger.holders["a-0"] = .init(heartbeat: Date(), busyAnswers: nil, finishes: true)
        backend.scripts["a-0"] = Fixture.succeeds("a-0")
        let s = scheduler(workers: 1)
        s.staleAfter = 0.05
        let summary = try s.run([job]) { _ in }

        XCTAssertEqual(summary, SchedulerSummary(total: 1, ranNow: 1, skipped: 0, failed: 0, failures: []))
        XCTAssertGreaterThan(ledger.claims.count, 1, "the first claim comes before the hold is stale")
        XCTAssertEqual(Set(ledger.staleAfterSeen), [0.05])
        XCTAssertEqual(backend.launched.map(\.id), ["a-0"])
        XCTAssertEqual(ledger.finishes, ["a-0"])
    }

    func testWorkerReportingFailureIsRecordedAndOthersStillRun() throws {
        let jobs = try ["a", "b", "c"].map { try Fixture.job($0) }
        backend.scripts["a-0"] = Fixture.succeeds("a-0")
        backend.scripts["b-0"] = [[.started(runId: "b-0", resumedEpochs: 0)], [.failed(runId: "b-0", message: "loss is NaN at step 3")]]
        backend.scripts["c-0"] = Fixture.succeeds("c-0")
        let summary = try scheduler(workers: 1).run(jobs) { _ in }

        XCTAssertEqual(summary, SchedulerSummary(total: 3, ranNow: 2, skipped: 0, failed: 1, failures: ["b seed 0: loss is NaN at step 3"]))
        XCTAssertEqual(ledger.failures, ["b-0": "loss is NaN at step 3"])
        XCTAssertEqual(ledger.finishes, ["a-0", "c-0"])
    }

    func testWorkerExitingWithoutResultIsRecordedFailed() throws {
        let jobs = try [Fixture.job("a"), Fixture.job("b")]
        backend.scripts["a-0"] = [[.started(runId: "a-0", resumedEpochs: 0)], [Fixture.progress("a-0", epoch: 1)]]
        backend.scripts["b-0"] = Fixture.succeeds("b-0")
        let summary = try scheduler(workers: 2).run(jobs, labels: ["a-0": "row a, seed 0"]) { _ in }

        let message = "worker exited without a result (crashed or killed); rerun to resume from its last checkpoint"
        XCTAssertEqual(summary, SchedulerSummary(total: 2, ranNow: 1, skipped: 0, failed: 1, failures: ["row a, seed 0: " + message]))
        XCTAssertEqual(ledger.failures, ["a-0": message])
        XCTAssertEqual(ledger.finishes, ["b-0"])
    }

    func testStopTerminatesRunningWorkersMarksThemInterruptedAndThrows() throws {
        let jobs = try ["a", "b", "c"].map { try Fixture.job($0) }
        for j in jobs { backend.scripts[j.id] = Fixture.runsLong(j.id) }
        let s = scheduler(workers: 2)
        s.shouldStop = { [backend] in backend.polls >= 6 }

        XCTAssertThrowsError(try s.run(jobs) { _ in }) { error in
            guard case SchedulerError.interrupted(running: 2) = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(backend.launched.map(\.id), ["a-0", "b-0"])
        XCTAssertTrue(backend.handles.values.allSatisfy(\.terminated))
        let interrupted = "interrupted; rerun to resume from the last finished epoch"
        XCTAssertEqual(ledger.failures, ["a-0": interrupted, "b-0": interrupted])
        XCTAssertFalse(ledger.claims.contains("c-0"), "a queued job is not claimed after the stop")
        XCTAssertTrue(ledger.finishes.isEmpty)
    }

    /// A worker that cannot be started fails its run (not left `running` until it goes stale);
    /// the other jobs still run.
    func testRunWhoseWorkerCannotStartIsRecordedFailed() throws {
        let jobs = try ["a", "b"].map { try Fixture.job($0) }
        backend.scripts["b-0"] = Fixture.succeeds("b-0")      // a-0 has no script: launch throws
        let summary = try scheduler(workers: 1).run(jobs) { _ in }
        XCTAssertEqual(summary.failed, 1)
        XCTAssertEqual(summary.ranNow, 1)
        XCTAssertTrue(ledger.failures["a-0"]?.contains("no script for a-0") == true, "\(ledger.failures)")
        XCTAssertEqual(ledger.finishes, ["b-0"])
    }

    /// A ledger error mid-run stops every worker and records their runs before it propagates.
    func testLedgerErrorStopsTheWorkersBeforeItPropagates() throws {
        struct DiskFull: Error {}
        let jobs = try ["a", "b"].map { try Fixture.job($0) }
        for j in jobs { backend.scripts[j.id] = Fixture.runsLong(j.id) }
        backend.scripts["a-0"] = Fixture.succeeds("a-0")
        ledger.epochError = ("a-0", DiskFull())
        XCTAssertThrowsError(try scheduler(workers: 2).run(jobs) { _ in }) { error in XCTAssertTrue(error is DiskFull, "\(error)") }
        XCTAssertTrue(backend.handles.values.allSatisfy { $0.terminated || $0.hasExited })
        XCTAssertTrue(backend.handles["b-0"]?.terminated == true)
        XCTAssertTrue(ledger.failures["b-0"]?.contains("scheduler failed") == true, "\(ledger.failures)")
    }
}
