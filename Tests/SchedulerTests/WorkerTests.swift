import Foundation
@testable import Scheduler
import SSL
import XCTest

/// The worker body on a real `smoke` run (a few seconds each).
final class WorkerTests: XCTestCase {
    func job(_ checkpoint: String) throws -> Job {
        var config = try TrainingConfig.named("smoke")
        config.epochs = 2
        return Job(id: "w", tableId: "t", rowName: "baseline", seed: 0, config: config, checkpointPath: checkpoint,
                   baselines: false, protocolVersion: "test")
    }

    func events(_ job: Job) -> [WorkerEvent] {
        var out: [WorkerEvent] = []
        Worker.run(job) { out.append($0) }
        return out
    }

    func epochs(_ events: [WorkerEvent]) -> [Int] {
        events.compactMap { if case let .epoch(_, r) = $0 { return r.epoch } else { return nil } }
    }

    /// A damaged checkpoint costs its epochs, not the run: the run starts over and finishes.
    func testDamagedCheckpointRestartsTheRun() throws {
        let path = NSTemporaryDirectory() + "ablate-worker-\(UUID().uuidString).ckpt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("ABLCKPT1 garbage that is not a header".utf8).write(to: URL(fileURLWithPath: path))
        let out = events(try job(path))
        guard case .started(_, resumedEpochs: 0)? = out.first else { return XCTFail("\(out)") }
        XCTAssertEqual(epochs(out), [1, 2])
        guard case .finished? = out.last else { return XCTFail("\(String(describing: out.last))") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the finished run's checkpoint is removed")
    }

    /// A run resumed from its checkpoint sends the checkpoint's epochs again, then the rest, so the
    /// database holds every epoch.
    func testResumedRunResendsItsEarlierEpochs() throws {
        let path = NSTemporaryDirectory() + "ablate-worker-\(UUID().uuidString).ckpt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let spec = try job(path)
        let (train, _, aug) = try spec.config.loadData()
        let first = try Trainer(config: spec.config, seed: 0, train: train, augmentation: aug)
        XCTAssertThrowsError(try first.run(epochEnd: { records in
            try first.saveCheckpoint(to: path, runId: spec.id, records: records)
            throw CancellationError()   // killed after epoch 1
        }))
        let out = events(spec)
        guard case .started(_, resumedEpochs: 1)? = out.first else { return XCTFail("\(out)") }
        XCTAssertEqual(epochs(out), [1, 2])
        guard case .finished? = out.last else { return XCTFail("\(String(describing: out.last))") }
    }
}
