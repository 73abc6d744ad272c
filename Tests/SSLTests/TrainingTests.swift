import Data
import Foundation
import SSL
import Tensors
import XCTest

final class TrainingTests: XCTestCase {
    func smoke(_ edit: (inout TrainingConfig) -> Void = { _ in }) throws -> (Trainer, Monitor) {
        var config = try TrainingConfig.named("smoke")
        edit(&config)
        let (train, test, aug) = try config.loadData()
        return (try Trainer(config: config, seed: 0, train: train, augmentation: aug), Monitor(train: train, test: test, augmentation: aug))
    }

    func testSmokeRunIsBitIdenticalForTheSameSeed() throws {
        let a = try smoke { $0.epochs = 1 }.0.run(), b = try smoke { $0.epochs = 1 }.0.run()
        XCTAssertEqual(a.status, .finished)
        XCTAssertEqual(a.epochs.map(\.meanLoss), b.epochs.map(\.meanLoss))
    }

    func testSmokeLossDecreasesAndMetricsAreRecorded() throws {
        let (trainer, monitor) = try smoke()
        let result = try trainer.run(monitor: monitor)
        XCTAssertEqual(result.epochs.count, 3)
        XCTAssertLessThan(result.epochs[2].meanLoss, result.epochs[0].meanLoss)
        XCTAssertNotNil(result.epochs[2].knnSubset)
        XCTAssertNotNil(result.epochs[2].trainZStd)
        let final = try monitor.finalMetrics(trainer.model, seed: 0, diverged: false, linearProbe: false)
        XCTAssertEqual(final.verdict, Verdict.of(diverged: false, zStd: final.test.zStd, mO: final.test.mO, mR: final.test.mR))
    }

    func testHugeLearningRateStopsAsDiverged() throws {
        let (trainer, monitor) = try smoke { $0.baseLR = 1e30 }
        let result = try trainer.run()
        XCTAssertEqual(result.status, .diverged)
        XCTAssertLessThan(result.epochs.count, 3)
        let final = try monitor.finalMetrics(trainer.model, seed: 0, diverged: true, linearProbe: false)
        XCTAssertEqual(final.verdict, .diverged)
    }

    func testUnknownProtocolAndBadBatchAreExplained() throws {
        XCTAssertThrowsError(try TrainingConfig.named("tiny")) { e in XCTAssertTrue("\(e)".contains("smoke, mini"), "\(e)") }
        XCTAssertThrowsError(try smoke { $0.batch = 1_000_000 }) { e in XCTAssertTrue("\(e)".contains("batch 1000000"), "\(e)") }
    }
}

final class CheckpointTests: XCTestCase {
    /// Training 3 epochs straight and 1 epoch + checkpoint + 2 more in a new trainer give
    /// bit-identical parameters, momentum buffers and epoch records.
    func testResumeFromCheckpointIsBitIdentical() throws {
        let config = try TrainingConfig.named("smoke")
        let (train, _, aug) = try config.loadData()
        let straight = try Trainer(config: config, seed: 3, train: train, augmentation: aug)
        let full = try straight.run()

        let path = NSTemporaryDirectory() + "ablate-ckpt-\(UUID().uuidString).ckpt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try Trainer(config: config, seed: 3, train: train, augmentation: aug)
        XCTAssertThrowsError(try first.run(epochEnd: { records in
            if records.count == 1 {
                try first.saveCheckpoint(to: path, runId: "r", records: records)
                throw CancellationError()   // stop after the first epoch, as a crash would
            }
        }))
        let resumed = try Trainer(config: config, seed: 3, train: train, augmentation: aug)
        let previous = try resumed.loadCheckpoint(from: path, runId: "r")
        XCTAssertEqual(previous.count, 1)
        let rest = try resumed.run(previous: previous)
        XCTAssertEqual(rest.epochs.map(\.meanLoss), full.epochs.map(\.meanLoss))
        for ((name, a), (_, b)) in zip(straight.model.namedParameters, resumed.model.namedParameters) {
            XCTAssertEqual(a.array, b.array, name)
        }
        for ((name, a), (_, b)) in zip(straight.model.namedBuffers, resumed.model.namedBuffers) {
            XCTAssertEqual(a.array, b.array, name)
        }
        XCTAssertThrowsError(try resumed.loadCheckpoint(from: path, runId: "other")) { e in
            XCTAssertTrue("\(e)".contains("belongs to run r"), "\(e)")
        }
    }
}
