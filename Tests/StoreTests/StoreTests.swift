import Foundation
import SSL
import Scheduler
@testable import Store
import XCTest

final class StoreTests: XCTestCase {
    func testMigrationsAreAppliedOnceAndReopeningIsIdempotent() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("runs.sqlite").path
        var store: Store? = try Store(path: path)
        let names = Schema.migrations.map(\.name)
        XCTAssertEqual(try store?.appliedMigrations(), names)
        let s = try spec()
        _ = try store?.enqueue(s)
        store = nil
        for _ in 0..<2 {
            let reopened = try Store(path: path)
            XCTAssertEqual(try reopened.appliedMigrations(), names)
            XCTAssertEqual(try Schema.migrate(reopened.db, now: Date()), [], "nothing left to apply")
            XCTAssertEqual(try reopened.run(id: s.id)?.status, .queued)
            XCTAssertEqual(try reopened.db.query("PRAGMA journal_mode").first?.string(0), "wal")
            XCTAssertEqual(try reopened.db.query("PRAGMA foreign_keys").first?.int(0), 1)
        }
    }

    func testOpenCreatesParentDirectories() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("a/b/c/runs.sqlite").path
        _ = try Store(path: path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
    }

    func testADirectoryInPlaceOfTheFileIsReported() throws {
        let path = try temporaryDirectory(self).path
        XCTAssertThrowsError(try Store(path: path)) { error in
            guard case .cannotOpen(let p, _, _)? = error as? StoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
            XCTAssertTrue("\(error)".hasSuffix("check that the path is a writable file, not a directory, or pass --db PATH"), "\(error)")
        }
    }

    func testClaimHeartbeatEpochsAndFinish() throws {
        let store = try Store.inMemory()
        let clock = TickingClock()
        store.now = clock.next
        let s = try spec()
        let claim = try store.claimRun(s, provenance: here, staleAfter: 300)
        guard case .claimed(let lease, let previous) = claim else { return XCTFail("expected .claimed, got \(claim)") }
        XCTAssertNil(previous)
        var run = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertEqual(run.status, .running)
        XCTAssertEqual(run.gitRevision, "abc1234")
        XCTAssertEqual(run.host, "test-host")
        XCTAssertEqual(run.pid, 42)
        XCTAssertEqual(run.protocolName, "smoke")
        let firstBeat = try XCTUnwrap(run.heartbeatAt)

        try store.heartbeat(lease)
        run = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertGreaterThan(try XCTUnwrap(run.heartbeatAt), firstBeat)

        try store.recordEpoch(lease, try epochRecord(epoch: 1, loss: -0.5, knn: 40, zStd: 0.8, mO: 0.3, mR: 0.9, trainZStd: 0.7))
        try store.recordEpoch(lease, try epochRecord(epoch: 2, loss: -0.75))
        // A run that is running elsewhere with a fresh heartbeat is busy, not claimable.
        guard case .busy = try store.claimRun(s, provenance: here, staleAfter: 300) else { return XCTFail("expected .busy") }

        try store.finishRun(lease, status: .finished, final: try finalMetrics(knn: 55.5, linear: 60.25, zStd: 0.9, mO: 0.2, mR: 0.95))
        run = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertEqual(run.status, .finished)
        XCTAssertEqual(run.verdict, "trained")
        XCTAssertNotNil(run.endedAt)

        let curves = try store.epochCurves(runId: s.id)
        XCTAssertEqual(curves["loss"], [CurvePoint(epoch: 1, value: -0.5), CurvePoint(epoch: 2, value: -0.75)])
        XCTAssertEqual(curves["knn_subset"], [CurvePoint(epoch: 1, value: 40)])
        XCTAssertEqual(curves["train_z_std"], [CurvePoint(epoch: 1, value: 0.7)])
        XCTAssertEqual(Set(curves.keys), ["loss", "epoch_seconds", "knn_subset", "z_std", "m_o", "m_r", "train_z_std"])
        XCTAssertEqual(try store.finalMetrics(runId: s.id),
                       StoredFinalMetrics(values: ["knn": 55.5, "linear": 60.25, "z_std": 0.9, "m_o": 0.2, "m_r": 0.95, "cov_offdiag": 0.01],
                                          verdict: "trained"))
        XCTAssertTrue(try store.metrics(runId: s.id).contains(MetricPoint(key: "final.knn", step: 0, value: 55.5)))

        // Finished: reused, never trained again; the old lease can no longer write.
        guard case .done(let done) = try store.claimRun(s, provenance: here, staleAfter: 300) else { return XCTFail("expected .done") }
        XCTAssertEqual(done.status, .finished)
        XCTAssertThrowsError(try store.heartbeat(lease)) { error in
            XCTAssertEqual(error as? StoreError, .notOwner(runId: s.id, path: ":memory:", status: "finished"))
        }
    }

    func testStaleRunIsTakenOverAndTheOldOwnerIsStopped() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("runs.sqlite").path
        let a = try Store(path: path), b = try Store(path: path)
        var t = 1000.0
        a.now = { Date(timeIntervalSince1970: t) }
        b.now = { Date(timeIntervalSince1970: t) }
        let s = try spec()
        let leaseA = try lease(try a.claimRun(s, provenance: here, staleAfter: 300))
        try a.recordEpoch(leaseA, try epochRecord(epoch: 1, loss: -0.4))   // heartbeat at 1000

        t = 1200
        guard case .busy(let busy) = try b.claimRun(s, provenance: here, staleAfter: 300) else { return XCTFail("expected .busy") }
        XCTAssertEqual(busy.status, .running)

        t = 1400   // 400 s without a heartbeat: A is presumed dead
        let other = Provenance(gitRevision: "def5678", gitDirty: true, host: "other-host", pid: 7)
        let result = try b.claimRun(s, provenance: other, staleAfter: 300)
        guard case .claimed(let leaseB, let previous) = result else { return XCTFail("expected .claimed, got \(result)") }
        XCTAssertEqual(previous?.status, .running)
        XCTAssertEqual(previous?.host, "test-host")
        let kept = try b.metrics(runId: s.id)
        XCTAssertEqual(kept.map(\.step), [1, 1], "the earlier attempt's epoch is kept until the new owner resumes")
        let run = try XCTUnwrap(try b.run(id: s.id))
        XCTAssertEqual(run.host, "other-host")
        XCTAssertEqual(run.gitDirty, true)
        XCTAssertEqual(run.startedAt, Date(timeIntervalSince1970: 1000), "the first start is kept")
        XCTAssertEqual(run.resumedAt, Date(timeIntervalSince1970: 1400))
        XCTAssertEqual(run.attempts, 2)

        // The old owner finds out at its next write and nothing of it is recorded.
        for write in [{ try a.heartbeat(leaseA) }, { try a.recordEpoch(leaseA, try epochRecord(epoch: 2, loss: -0.5)) },
                      { try a.finishRun(leaseA, status: .finished, final: nil) }, { try a.failRun(leaseA, error: "x") }] {
            XCTAssertThrowsError(try write()) { error in
                XCTAssertEqual(error as? StoreError, .notOwner(runId: s.id, path: path, status: "running"))
                XCTAssertTrue("\(error)".contains("stop training it"), "\(error)")
            }
        }
        XCTAssertEqual(try b.metrics(runId: s.id), kept, "nothing of the old owner is recorded")
        try b.finishRun(leaseB, status: .finished, final: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9))
        XCTAssertEqual(try a.run(id: s.id)?.status, .finished)
    }

    func testAResumedRunKeepsTheEpochsOfItsCheckpointAndDropsTheRest() throws {
        let store = try Store.inMemory()
        let clock = TickingClock()
        store.now = clock.next
        let s = try spec()
        let first = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        try store.resumeRun(first, keepingEpochs: 0)
        for epoch in 1...3 { try store.recordEpoch(first, try epochRecord(epoch: epoch, loss: -0.1 * Double(epoch))) }
        try store.recordMetrics(first, [MetricPoint.final("knn", 40)])   // as if a result had been half written
        try store.failRun(first, error: "interrupted")
        let startedAt = try XCTUnwrap(try store.run(id: s.id)?.startedAt)

        // The next attempt resumes from a checkpoint of 2 epochs: epoch 3 and final points go, 1–2 stay.
        let second = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        XCTAssertEqual(Set(try store.metrics(runId: s.id).map(\.step)), [0, 1, 2, 3], "claiming deletes nothing")
        try store.resumeRun(second, keepingEpochs: 2)
        XCTAssertEqual(try store.epochCurves(runId: s.id)["loss"]?.map(\.epoch), [1, 2])
        XCTAssertFalse(try store.metrics(runId: s.id).contains { $0.isFinal })
        for epoch in 1...3 { try store.recordEpoch(second, try epochRecord(epoch: epoch, loss: -0.2 * Double(epoch))) }
        try store.finishRun(second, status: .finished, final: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9))
        XCTAssertEqual(try store.epochCurves(runId: s.id)["loss"]?.map(\.epoch), [1, 2, 3])
        XCTAssertEqual(try store.finalMetrics(runId: s.id)?["knn"], 50)
        let run = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertEqual(run.startedAt, startedAt, "a resumed run keeps its first start")
        XCTAssertEqual(run.attempts, 2)
        XCTAssertNotNil(run.resumedAt)
        XCTAssertGreaterThan(try XCTUnwrap(run.resumedAt), startedAt)

        // A checkpoint that could not be used (0 epochs) drops every earlier point.
        let other = try spec(seed: 1)
        let l = try lease(try store.claimRun(other, provenance: here, staleAfter: 300))
        try store.recordEpoch(l, try epochRecord(epoch: 1, loss: -0.5))
        try store.failRun(l, error: "killed")
        let again = try lease(try store.claimRun(other, provenance: here, staleAfter: 300))
        try store.resumeRun(again, keepingEpochs: 0)
        XCTAssertEqual(try store.metrics(runId: other.id), [])
    }

    func testAQueuedRunIsNotAResumeWhenItFirstStarts() throws {
        let store = try Store.inMemory()
        let s = try spec()
        XCTAssertEqual(try store.enqueue(s).attempts, 0)
        _ = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        let run = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertEqual(run.attempts, 1)
        XCTAssertNil(run.resumedAt)
        XCTAssertNotNil(run.startedAt)
    }

    func testMigrationV2CountsTheAttemptsOfExistingRuns() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("old.sqlite").path
        do {
            // A database as the first release wrote it: only the v1 migration, one started and one queued run.
            let old = try Connection(path: path, busyTimeout: 1)
            try old.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY NOT NULL, applied_at REAL NOT NULL)")
            try old.executeScript(Schema.migrations[0].sql)
            try old.execute("INSERT INTO migrations (name, applied_at) VALUES (?, 0)", [.text(Schema.migrations[0].name)])
            try old.execute("""
                INSERT INTO run (id, table_id, row_name, seed, protocol, protocol_version, status, created_at, started_at)
                VALUES ('a', 't', 'r', 0, 'smoke', '1', 'finished', 1, 2), ('b', 't', 'r', 1, 'smoke', '1', 'queued', 1, NULL)
                """)
        }
        let store = try Store(path: path)
        XCTAssertEqual(try store.appliedMigrations(), Schema.migrations.map(\.name))
        XCTAssertEqual(try store.run(id: "a")?.attempts, 1)
        XCTAssertEqual(try store.run(id: "b")?.attempts, 0)
        XCTAssertNil(try store.run(id: "a")?.resumedAt)
        XCTAssertEqual(try store.run(id: "a")?.startedAt, Date(timeIntervalSince1970: 2))
    }

    func testQueuedAndFailedRunsAreClaimedAgain() throws {
        let store = try Store.inMemory()
        let s = try spec()
        XCTAssertEqual(try store.enqueue(s).status, .queued)
        XCTAssertEqual(try store.enqueue(s).status, .queued, "enqueue is idempotent")
        let first = try store.claimRun(s, provenance: here, staleAfter: 300)
        guard case .claimed(let lease1, let previous1) = first else { return XCTFail("expected .claimed") }
        XCTAssertEqual(previous1?.status, .queued)
        try store.failRun(lease1, error: "out of memory")
        let failed = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.error, "out of memory")
        let second = try store.claimRun(s, provenance: here, staleAfter: 300)
        guard case .claimed(_, let previous2) = second else { return XCTFail("expected .claimed") }
        XCTAssertEqual(previous2?.status, .failed)
        XCTAssertNil(try store.run(id: s.id)?.error)
    }

    /// The time per epoch comes from the runs that ended last: two old runs at 100 s per epoch,
    /// then one at 4 s (a faster build).
    func testMeanEpochTimeIsOverTheLatestRuns() throws {
        let store = try Store.inMemory()
        store.now = TickingClock().next
        for (seed, seconds) in [(0, 100.0), (1, 100), (2, 4)] {
            let l = try lease(try store.claimRun(try spec(seed: UInt64(seed)), provenance: here, staleAfter: 300))
            try store.recordEpoch(l, try epochRecord(epoch: 1, loss: -0.5, seconds: seconds))
            try store.finishRun(l, status: .finished, final: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.95))
        }
        let key = "epoch_seconds"
        XCTAssertEqual(try XCTUnwrap(store.meanEpochMetric(key, protocolName: "smoke", latest: 1)).mean, 4)
        let all = try XCTUnwrap(store.meanEpochMetric(key, protocolName: "smoke"))
        XCTAssertEqual(all.mean, 68, accuracy: 1e-9)
        XCTAssertEqual(all.runs, 3)
        XCTAssertNil(try store.meanEpochMetric(key, protocolName: "mini"))
    }

    func testDivergedRunIsAResultNotRetried() throws {
        let store = try Store.inMemory()
        let s = try spec()
        let l = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        try store.recordEpoch(l, try epochRecord(epoch: 1, loss: .nan))
        try store.finishRun(l, status: .diverged, final: nil)
        let run = try XCTUnwrap(try store.run(id: s.id))
        XCTAssertEqual(run.status, .diverged)
        XCTAssertEqual(run.verdict, "diverged")
        XCTAssertEqual(try store.finalMetrics(runId: s.id), StoredFinalMetrics(verdict: "diverged"))
        guard case .done = try store.claimRun(s, provenance: here, staleAfter: 300) else { return XCTFail("expected .done") }
    }

    func testNaNAndInfinityRoundTripAsKind() throws {
        let store = try Store.inMemory()
        let s = try spec()
        let l = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        let points = [MetricPoint(key: "x", step: 1, value: .nan), MetricPoint(key: "x", step: 2, value: .infinity),
                      MetricPoint(key: "x", step: 3, value: -.infinity), MetricPoint(key: "x", step: 4, value: -0.125)]
        try store.recordMetrics(l, points)
        try store.recordEpoch(l, try epochRecord(epoch: 5, loss: .nan, knn: 10, zStd: .nan, mO: .infinity, mR: 0))
        let back = try store.metrics(runId: s.id)
        XCTAssertEqual(back.filter { $0.key == "x" }.map(\.kind), [.nan, .inf, .negativeInf, .finite])
        XCTAssertTrue(back[back.firstIndex { $0.key == "x" && $0.step == 1 } ?? 0].value.isNaN)
        XCTAssertEqual(back.filter { $0.key == "x" }.map(\.value).dropFirst(), [.infinity, -.infinity, -0.125])
        XCTAssertEqual(back.first { $0.key == "loss" }?.kind, .nan)
        XCTAssertEqual(back.first { $0.key == "m_o" }?.kind, .inf)
        // In the table: value NULL and the kind beside it.
        let rows = try store.db.query("SELECT value IS NULL, kind FROM metric WHERE run_id = ? AND key = 'x' ORDER BY step", [.text(s.id)])
        XCTAssertEqual(rows.map { $0.int(0) }, [1, 1, 1, 0])
        XCTAssertEqual(rows.map { $0.string(1) }, ["nan", "inf", "-inf", "finite"])

        try store.finishRun(l, status: .finished, final: try finalMetrics(knn: .nan, zStd: .nan, mO: 0.5, mR: 0.5, verdict: .diverged))
        let final = try XCTUnwrap(try store.finalMetrics(runId: s.id))
        XCTAssertTrue(final["knn"]?.isNaN ?? false)
        XCTAssertEqual(final.verdict, "diverged")
    }

    func testTwoConnectionsClaimingTheSameRunsOnlyOneWinsEach() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("shared.sqlite").path
        let specs = try (0..<20).map { try spec(seed: UInt64($0)) }
        let workers = 6
        let lock = NSLock()
        var wins: [String: Int] = [:]
        var errors: [String] = []
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            do {
                // Each thread opens its own connection, so the first open also races on migrations.
                let store = try Store(path: path)
                let provenance = Provenance(gitRevision: nil, gitDirty: false, host: "h", pid: worker)
                for s in specs {
                    if case .claimed(let lease, _) = try store.claimRun(s, provenance: provenance, staleAfter: 300) {
                        try store.recordEpoch(lease, try epochRecord(epoch: 1, loss: -0.5))
                        lock.lock(); wins[s.id, default: 0] += 1; lock.unlock()
                    }
                }
            } catch {
                lock.lock(); errors.append("\(error)"); lock.unlock()
            }
        }
        XCTAssertEqual(errors, [])
        XCTAssertEqual(wins.count, specs.count)
        XCTAssertTrue(wins.values.allSatisfy { $0 == 1 }, "\(wins)")
        let store = try Store(path: path)
        XCTAssertEqual(try store.runs(forTable: "t").count, specs.count)
        XCTAssertEqual(try store.integrityCheck(), "ok")
    }

    func testIntegrityCheckIsOK() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("runs.sqlite").path
        let store = try Store(path: path)
        _ = try store.claimRun(try spec(), provenance: here, staleAfter: 300)
        XCTAssertEqual(try store.integrityCheck(), "ok")
    }

    func testCorruptFileGivesAClearErrorAndIsLeftUntouched() throws {
        let dir = try temporaryDirectory(self)
        for (name, size) in [("big.sqlite", 8192), ("small.sqlite", 17)] {
            let url = dir.appendingPathComponent(name)
            var rng = SystemRandomNumberGenerator()
            let garbage = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
            try garbage.write(to: url)
            let before = try FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date
            XCTAssertThrowsError(try Store(path: url.path)) { error in
                guard case .notADatabase(let path, _)? = error as? StoreError else { return XCTFail("\(error)") }
                XCTAssertEqual(path, url.path)
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("\(url.path) is not a valid ablate database ("), text)
                XCTAssertTrue(text.hasSuffix("move it aside or pass --db PATH"), text)
            }
            XCTAssertEqual(try Data(contentsOf: url), garbage, "the file's bytes are unchanged")
            let after = try FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date
            XCTAssertEqual(before, after)
        }
    }

    func testForeignSQLiteDatabaseIsRefusedAndLeftAlone() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("other.sqlite").path
        do {
            let other = try Connection(path: path, busyTimeout: 1)
            try other.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
        }
        XCTAssertThrowsError(try Store(path: path)) { error in
            XCTAssertEqual(error as? StoreError, .foreignDatabase(path: path, tables: ["photos"]))
        }
        let check = try Connection(path: path, busyTimeout: 1)
        XCTAssertEqual(try check.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0.string(0) }, ["photos"])
    }

    func testNewerSchemaIsRefused() throws {
        let path = try temporaryDirectory(self).appendingPathComponent("runs.sqlite").path
        do {
            let store = try Store(path: path)
            try store.db.execute("INSERT INTO migrations (name, applied_at) VALUES ('v99: from the future', 0)")
        }
        XCTAssertThrowsError(try Store(path: path)) { error in
            XCTAssertEqual(error as? StoreError, .newerSchema(path: path, unknownMigrations: ["v99: from the future"]))
        }
    }

    func testSQLErrorsNameTheStatementAndTheFile() throws {
        let store = try Store.inMemory()
        XCTAssertThrowsError(try store.db.execute("SELECT * FROM nowhere")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("while executing `SELECT * FROM nowhere` on :memory:"), text)
            XCTAssertTrue(text.contains("no such table: nowhere"), text)
        }
    }

    func testRunIdentityIsCanonicalStableAndSensitive() throws {
        let config = try TrainingConfig.named("smoke")
        let id = try runIdentity(config: config, seed: 0, protocolVersion: "v1")
        XCTAssertEqual(id.count, 64)
        XCTAssertTrue(id.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertEqual(try runIdentity(config: config, seed: 0, protocolVersion: "v1"), id)
        let json = try identityJSON(config: config, seed: 0, protocolVersion: "v1")
        XCTAssertTrue(json.hasPrefix("{\"config\":{\"baseLR\":0.05,\"batch\":128,"), json)
        XCTAssertTrue(json.hasSuffix("},\"protocol_version\":\"v1\",\"seed\":0}"), json)
        XCTAssertFalse(json.contains("dataDirectory"))
        XCTAssertEqual(id, SHA256.hex(json))

        var moved = config
        moved.dataDirectory = "/elsewhere"
        XCTAssertEqual(try runIdentity(config: moved, seed: 0, protocolVersion: "v1"), id, "where the data lives is not identity")
        var changed = config
        changed.model.stopGradient = false
        let others = [try runIdentity(config: changed, seed: 0, protocolVersion: "v1"),
                      try runIdentity(config: config, seed: 1, protocolVersion: "v1"),
                      try runIdentity(config: config, seed: 0, protocolVersion: "v2")]
        XCTAssertEqual(Set(others + [id]).count, 4)
    }

    /// The id of a run stored in results/ablate.sqlite (simsiam-fig2 `baseline`, seed 0): every
    /// change to how ids are computed must keep it.
    func testRunIdOfAStoredRunIsPinned() throws {
        let config = try TrainingConfig.named("mini")
        XCTAssertEqual(try runIdentity(config: config, seed: 0, protocolVersion: "1"),
                       "e72b578d737509382b024545aaf76ab1510ead0961c74b2012cbb2f3b2f83dee")
    }

    func testAKeySetToItsDefaultKeepsTheIdAndAnotherValueChangesIt() throws {
        let simsiam = try TrainingConfig.named("smoke")
        let id = try runIdentity(config: simsiam, seed: 0, protocolVersion: "1")
        let explicit = try simsiam.applying([(key: "method", value: .string("simsiam"))])
        XCTAssertEqual(try runIdentity(config: explicit, seed: 0, protocolVersion: "1"), id, "`method: simsiam` is the default")

        let byol = try simsiam.applying([(key: "method", value: .string("byol"))])
        let byolId = try runIdentity(config: byol, seed: 0, protocolVersion: "1")
        XCTAssertNotEqual(byolId, id)
        let tauDefault = try byol.applying([(key: "byol.tau_base", value: .double(0.99))])
        XCTAssertEqual(try runIdentity(config: tauDefault, seed: 0, protocolVersion: "1"), byolId, "0.99 is the default tau_base")
        let tauOther = try byol.applying([(key: "byol.tau_base", value: .double(0.996))])
        XCTAssertNotEqual(try runIdentity(config: tauOther, seed: 0, protocolVersion: "1"), byolId)
    }

    func testSHA256MatchesTheStandardVectors() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(String(repeating: "a", count: 1000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testParamsHoldTheExperimentFileKeys() throws {
        let store = try Store.inMemory()
        let s = try spec(seed: 3)
        _ = try store.claimRun(s, provenance: here, staleAfter: 300)
        let params = try store.params(runId: s.id)
        XCTAssertEqual(params["method"], "simsiam")
        XCTAssertEqual(params["model.projector_dim"], "64")
        XCTAssertEqual(params["model.widths"], "[8, 16, 16, 32]")
        XCTAssertEqual(params["loss.stop_gradient"], "true")
        XCTAssertEqual(params["optim.weight_decay"], "0.0005")
        XCTAssertNil(params["byol.tau_base"], "a key of another method")
        XCTAssertEqual(params["seed"], "3")
        XCTAssertEqual(params["protocol_version"], "v1")
        let json = try XCTUnwrap(params["config_json"]?.data(using: .utf8))
        let decoded = try JSONDecoder().decode(TrainingConfig.self, from: json)
        XCTAssertEqual(decoded, try TrainingConfig.named("smoke"))
    }

    /// A finished run stored with params under other keys (before they were the experiment-file
    /// keys) gets them rewritten when a table reuses it; its own config_json is kept.
    func testReusedRunGetsItsParamsUnderTheExperimentFileKeys() throws {
        let store = try Store.inMemory()
        let s = try spec(seed: 1)
        let l = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        try store.finishRun(l, status: .finished, final: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9))
        try store.db.execute("DELETE FROM param WHERE run_id = ? AND key != 'config_json'", [.text(s.id)])
        try store.db.execute("INSERT INTO param (run_id, key, value) VALUES (?, 'model.projectorDim', '64')", [.text(s.id)])
        try store.db.execute("UPDATE param SET value = 'old' WHERE run_id = ? AND key = 'config_json'", [.text(s.id)])
        guard case .done = try store.claimRun(s, provenance: here, staleAfter: 300) else { return XCTFail("expected .done") }
        let params = try store.params(runId: s.id)
        XCTAssertNil(params["model.projectorDim"])
        XCTAssertEqual(params["model.projector_dim"], "64")
        XCTAssertEqual(params["config_json"], "old")
        XCTAssertEqual(params["seed"], "1")
    }

    func testARunSharedByTwoTablesIsListedUnderBoth() throws {
        let store = try Store.inMemory()
        let a = try spec(table: "fig2", row: "w/ stop-grad"), b = try spec(table: "table1", row: "baseline")
        XCTAssertEqual(a.id, b.id)
        let l = try lease(try store.claimRun(a, provenance: here, staleAfter: 300))
        try store.finishRun(l, status: .finished, final: try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9))
        guard case .done(let done) = try store.claimRun(b, provenance: here, staleAfter: 300) else { return XCTFail("expected .done") }
        XCTAssertEqual(done.tableId, "table1")
        XCTAssertEqual(try store.runs(forTable: "fig2").map(\.rowName), ["w/ stop-grad"])
        XCTAssertEqual(try store.runs(forTable: "table1").map(\.rowName), ["baseline"])
        XCTAssertEqual(try store.tableIds(), ["fig2", "table1"])
    }

    func testBaselinesRoundTrip() throws {
        let store = try Store.inMemory()
        try store.putBaselines(try baselines(raw: 80.5, random: 41), protocolName: "smoke", seed: 1)
        try store.putBaselines(try baselines(raw: 80.5, random: 40), protocolName: "smoke", seed: 0)
        try store.putBaselines(try baselines(raw: 80.5, random: 39), protocolName: "smoke", seed: 0)
        XCTAssertEqual(try store.baselines(protocolName: "smoke", seed: 0),
                       StoredBaselines(protocolName: "smoke", seed: 0, values: ["raw_pixel_knn": 80.5, "random_init_knn": 39]))
        XCTAssertEqual(try store.baselines(protocolName: "smoke").map(\.seed), [0, 1])
        XCTAssertNil(try store.baselines(protocolName: "mini", seed: 0))
        try store.putBaselines(try baselines(raw: 80.5, random: 39, rawLinear: 85, randomLinear: 60), protocolName: "smoke", seed: 0)
        XCTAssertEqual(try store.baselines(protocolName: "smoke", seed: 0)?.values,
                       ["raw_pixel_knn": 80.5, "random_init_knn": 39, "raw_pixel_linear": 85, "random_init_linear": 60])
    }
}
