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

    /// The evaluation batch is a memory choice only: the features are the same up to rounding.
    func testEmbeddingDoesNotDependOnTheEvaluationBatch() throws {
        let (trainer, monitor) = try smoke { $0.epochs = 1 }
        _ = try trainer.run()
        let model = trainer.model
        model.setTraining(false)
        let features = try [7, 256, 1000].map { batch in
            try Evaluation.embed(monitor.test, augmentation: monitor.augmentation, batch: batch) { try model.backbone($0) }.storage.array
        }
        // Equal up to rounding (OpenBLAS may pick another kernel for another batch width, and
        // kernels differ between CPUs): the largest difference against the features' scale, since
        // an element near 0 after cancellation has no relative precision to speak of.
        let scale = features[0].map { abs($0) }.max() ?? 1
        for other in features.dropFirst() {
            XCTAssertEqual(other.count, features[0].count)
            let worst = zip(other, features[0]).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst / scale, 1e-5)
        }
    }

    func testSmokeLossDecreasesAndMetricsAreRecorded() throws {
        let (trainer, monitor) = try smoke()
        let result = try trainer.run(monitor: monitor)
        XCTAssertEqual(result.epochs.count, 3)
        XCTAssertLessThan(result.epochs[2].meanLoss, result.epochs[0].meanLoss)
        XCTAssertNotNil(result.epochs[2].knnSubset)
        XCTAssertNotNil(result.epochs[2].trainZStd)
        // m_o and m_r every 10 updates from the untrained model (update 0) on, over the whole run.
        let steps = result.epochs.flatMap { $0.steps ?? [] }.map(\.step)
        XCTAssertEqual(steps.first, 0)
        XCTAssertEqual(steps, Array(Swift.stride(from: 0, to: 3 * trainer.stepsPerEpoch, by: 10)))
        let final = try monitor.finalMetrics(trainer.model, seed: 0, diverged: false, linearProbe: false)
        XCTAssertEqual(final.verdict, Verdict.of(diverged: false, zStd: final.test.zStd, mO: final.test.mO, mR: final.test.mR))
        // SimSiam has a predictor: its output's spread is measured too (and only then).
        let p = try XCTUnwrap(final.predictionStd)
        XCTAssertTrue(p > 0 && p.isFinite, "\(p)")
        XCTAssertTrue(final.metricValues.contains { $0.key == "p_std" && $0.value == p })
        let (noPredictor, noPredictorMonitor) = try smoke { $0.epochs = 1; $0.model.predictorHidden = nil }
        XCTAssertNil(try noPredictorMonitor.finalMetrics(noPredictor.model, seed: 0, diverged: false, linearProbe: false).predictionStd)
    }

    /// `lossStd` is the sample std of the losses the epoch's steps reported (SimSiam Table 3 (d)).
    func testLossStdIsTheSpreadOfTheEpochsStepLosses() throws {
        let (trainer, _) = try smoke { $0.epochs = 2 }
        var losses: [[Double]] = [[], []]
        let result = try trainer.run(progress: { p in losses[p.epoch].append(Double(p.loss)) })
        for (record, steps) in zip(result.epochs, losses) {
            XCTAssertEqual(steps.count, trainer.stepsPerEpoch)
            let mean = steps.reduce(0, +) / Double(steps.count)
            let std = (steps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(steps.count - 1)).squareRoot()
            let measured = try XCTUnwrap(record.lossStd)
            XCTAssertEqual(measured, std, accuracy: 1e-6 * max(1, std))
            XCTAssertGreaterThan(measured, 0)
            XCTAssertTrue(record.metricValues.contains { $0.key == "loss_std" && $0.value == measured })
        }
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

final class MethodTests: XCTestCase {
    /// BYOL through the method protocol learns on `smoke`: its loss falls epoch by epoch, the
    /// target moves, and the embedding does not collapse.
    func testBYOLLearnsOnSmoke() throws {
        let config = try TrainingConfig.named("smoke").applying([("method", .string("byol"))])
        let (train, test, aug) = try config.loadData()
        let trainer = try Trainer(config: config, seed: 0, train: train, augmentation: aug)
        let byol = try XCTUnwrap(trainer.model as? BYOL)
        let targetBefore = byol.targetBackbone.parameters.map(\.array)
        let monitor = Monitor(train: train, test: test, augmentation: aug)
        let result = try trainer.run(monitor: monitor)
        XCTAssertEqual(result.status, .finished)
        XCTAssertLessThan(result.epochs[2].meanLoss, result.epochs[0].meanLoss)
        XCTAssertTrue(result.epochs.allSatisfy { $0.meanLoss >= 0 && $0.meanLoss <= 8 }, "2 − 2·cos summed over two views lies in [0, 8]")
        XCTAssertNotEqual(byol.targetBackbone.parameters.map(\.array), targetBefore, "the EMA moved the target")
        let final = try monitor.finalMetrics(trainer.model, seed: 0, diverged: false, linearProbe: false)
        XCTAssertNotEqual(final.verdict, .collapsed)
        XCTAssertGreaterThan(final.knn, 20, "above chance (10 classes)")
    }

    /// SimCLR, MoCo v2 and SwAV (and SimCLR with SimSiam Fig 3's predictor and stop-gradient)
    /// learn on `smoke`: the loss falls from the first epoch to the last (MoCo: ends below chance),
    /// the embedding does not collapse, kNN is above chance.
    func testContrastiveAndClusteringMethodsLearnOnSmoke() throws {
        let rows: [[(key: String, value: ConfigValue)]] = [
            [("method", .string("simclr"))],
            [("method", .string("simclr")), ("simclr.predictor", .bool(true)), ("simclr.stop_gradient", .bool(true))],
            [("method", .string("moco"))],
            [("method", .string("swav"))],
        ]
        for overrides in rows {
            let what = overrides.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let config = try TrainingConfig.named("smoke").applying(overrides)
            let (train, test, aug) = try config.loadData()
            let trainer = try Trainer(config: config, seed: 0, train: train, augmentation: aug)
            let monitor = Monitor(train: train, test: test, augmentation: aug)
            let result = try trainer.run(monitor: monitor)
            XCTAssertEqual(result.status, .finished, what)
            if config.method == "moco" {
                // MoCo's loss rises while real keys replace the queue's random ones (easy negatives);
                // learning shows as a loss below chance, ln(1 + K).
                XCTAssertLessThan(Double(result.epochs[2].meanLoss), Foundation.log(4097.0) - 0.3, what)
            } else {
                XCTAssertLessThan(result.epochs[2].meanLoss, result.epochs[0].meanLoss, what)
            }
            let final = try monitor.finalMetrics(trainer.model, seed: 0, diverged: false, linearProbe: false)
            XCTAssertNotEqual(final.verdict, .collapsed, what)
            XCTAssertGreaterThan(final.knn, 20, "\(what): above chance (10 classes)")
        }
    }

    /// MoCo's queue is a FIFO of the key encoder's unit-length keys: after one step the batch's
    /// keys sit at the old pointer, which moves on by the batch size.
    func testMoCoEnqueuesTheKeysOfEachStep() throws {
        let config = try TrainingConfig.named("smoke").applying([("method", .string("moco")), ("moco.queue", .int(300))])
        let moco = try XCTUnwrap(try Methods.make(config, inChannels: 1, seed: 1) as? MoCo)
        moco.setTraining(true)
        var rng = RNG(seed: 9)
        let views = (0..<2).map { _ in Tensor.randn([128, 1, 16, 16], rng: &rng) }
        let optimizer = makeOptimizer(for: moco, config: config, totalSteps: 10)
        for step in 0..<3 {
            let before = Int(moco.queuePointer.item)
            _ = try trainingStep(moco, optimizer, views: views, totalSteps: 10)
            XCTAssertEqual(Int(moco.queuePointer.item), (before + 128) % 300, "step \(step)")
        }
        let d = moco.queue.shape[1]
        for row in [0, 127, 255, 299] {
            let norm = (0..<d).reduce(Float(0)) { $0 + moco.queue.pointer[row * d + $1] * moco.queue.pointer[row * d + $1] }
            XCTAssertEqual(norm, 1, accuracy: 1e-4, "row \(row) is a unit key")
        }
    }

    /// Sinkhorn–Knopp codes: every row (sample) sums to 1 after any number of iterations (the
    /// last step normalises rows); with enough iterations every column (prototype) holds N/K,
    /// the batch spread evenly over the prototypes.
    func testSinkhornCodesAreEquipartitioned() throws {
        var rng = RNG(seed: 4)
        let scores = try l2Normalize(Tensor.randn([64, 16], rng: &rng))
        for iterations in [3, 200] {
            let q = try sinkhornKnopp(scores, epsilon: 0.05, iterations: iterations)
            for r in try sum(q, axis: 1).array { XCTAssertEqual(r, 1, accuracy: 1e-5) }
            XCTAssertTrue(q.array.allSatisfy { $0 >= 0 })
            if iterations == 200 { for c in try sum(q, axis: 0).array { XCTAssertEqual(c, 4, accuracy: 0.01) } }
        }
    }

    /// SimCLR's stop-gradient acts on the branch without the predictor, so it needs one.
    func testSimCLRStopGradientNeedsThePredictor() throws {
        let smoke = try TrainingConfig.named("smoke")
        XCTAssertThrowsError(try smoke.applying([("method", .string("simclr")), ("simclr.stop_gradient", .bool(true))])) { e in
            XCTAssertTrue("\(e)".contains("simclr.predictor: true"), "\(e)")
        }
        let both = try smoke.applying([("method", .string("simclr")), ("simclr.stop_gradient", .bool(true)), ("simclr.predictor", .bool(true))])
        let simclr = try XCTUnwrap(try Methods.make(both, inChannels: 1, seed: 0) as? SimCLR)
        XCTAssertNotNil(simclr.predictor)
        XCTAssertTrue(simclr.stopGradientOnTarget)
    }

    /// The method key decides which keys a row may set, and says so.
    func testKeysOfAnotherMethodAreRefusedNamingTheMethod() throws {
        let smoke = try TrainingConfig.named("smoke")
        XCTAssertThrowsError(try smoke.applying([("byol.tau_base", .double(0.9))])) { e in
            XCTAssertTrue("\(e)".contains("not of method `simsiam`"), "\(e)")
        }
        XCTAssertThrowsError(try smoke.applying([("method", .string("byol")), ("loss.stop_gradient", .bool(false))])) { e in
            XCTAssertTrue("\(e)".contains("not of method `byol`"), "\(e)")
        }
        XCTAssertThrowsError(try smoke.applying([("method", .string("dino"))])) { e in
            XCTAssertTrue("\(e)".contains("one of simsiam, byol, simclr, moco, swav"), "\(e)")
        }
        // `method` is applied first wherever it is written in the row.
        let byol = try smoke.applying([("byol.tau_base", .double(0.9)), ("method", .string("byol"))])
        XCTAssertEqual(byol.method, "byol")
        XCTAssertEqual(byol.options["byol.tau_base"], .double(0.9))
        // A method setting at its default is not stored, so it changes nothing.
        XCTAssertEqual(try smoke.applying([("method", .string("byol")), ("byol.tau_base", .int(0))]).options.count, 1)
        XCTAssertEqual(try smoke.applying([("method", .string("byol")), ("byol.tau_base", .double(0.99))]),
                       try smoke.applying([("method", .string("byol"))]))
        XCTAssertEqual(try smoke.applying([("method", .string("simsiam"))]), smoke)
    }

    /// Fields added after the first runs are left out of the JSON while at their default, so old
    /// runs keep their ids; a value that differs is written (and changes the id).
    func testIdentityJSONLeavesOutLaterFieldsAtTheirDefault() throws {
        let mini = try TrainingConfig.named("mini")
        let text = String(decoding: try mini.identityJSON(), as: UTF8.self)
        for absent in ["method", "options", "dataDirectory"] { XCTAssertFalse(text.contains("\"\(absent)\""), absent) }
        let byol = String(decoding: try mini.applying([("method", .string("byol")), ("byol.tau_base", .double(0.9))]).identityJSON(), as: UTF8.self)
        XCTAssertTrue(byol.contains("\"method\":\"byol\""), byol)
        XCTAssertTrue(byol.contains("\"byol.tau_base\":0.9"), byol)
        let decoded = try JSONDecoder().decode(TrainingConfig.self, from: try mini.json())
        XCTAssertEqual(decoded, mini)
    }
}

final class CheckpointTests: XCTestCase {
    /// Training 3 epochs straight and 1 epoch + checkpoint + 2 more in a new trainer give
    /// bit-identical parameters, buffers (BYOL: its target network) and epoch records.
    func testResumeFromCheckpointIsBitIdentical() throws {
        for method in Methods.names { try checkResume(method: method) }
    }

    /// Targets kept as state (issue 15): η of the moving average (both starts) and the alternation
    /// cache are part of the checkpoint, so those runs resume bit-identically too.
    func testResumeWithTargetsAsStateIsBitIdentical() throws {
        let noPredictor: [(String, ConfigValue)] = [("model.predictor", .string("none"))]
        try checkResume(method: "simsiam", [("loss.target", .string("moving-average"))] + noPredictor)
        try checkResume(method: "simsiam", [("loss.target", .string("moving-average")),
                                            ("loss.moving_average_start", .string("random"))] + noPredictor)
        try checkResume(method: "simsiam", [("loss.target", .string("alternation")), ("loss.alternation_steps", .int(3))])
    }

    func checkResume(method: String, _ overrides: [(String, ConfigValue)] = []) throws {
        let config = try TrainingConfig.named("smoke").applying([("method", .string(method))] + overrides)
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

    /// Damaged checkpoints are refused with the file named and what to do, never a crash.
    func testDamagedCheckpointsAreExplained() throws {
        let config = try TrainingConfig.named("smoke")
        let (train, _, aug) = try config.loadData()
        let trainer = try Trainer(config: config, seed: 0, train: train, augmentation: aug)
        let path = NSTemporaryDirectory() + "ablate-ckpt-\(UUID().uuidString).ckpt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try trainer.saveCheckpoint(to: path, runId: "r", records: [])
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var huge = good
        huge.replaceSubrange(8..<16, with: [UInt8](repeating: 0xFF, count: 8))   // header length 2^64 − 1
        var garbled = good
        garbled.replaceSubrange(16..<24, with: Array("not json".utf8))
        let cases: [(String, Data, String)] = [
            ("empty", Data(), "not an ablate checkpoint"),
            ("huge header length", huge, "header length"),
            ("garbled header", garbled, "header is not valid"),
            ("truncated", good.prefix(40), "header length"),
        ]
        for (what, data, expected) in cases {
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try trainer.loadCheckpoint(from: path, runId: "r"), what) { e in
                XCTAssertTrue(e is CheckpointError, "\(what): \(e)")
                XCTAssertTrue("\(e)".contains(path) && "\(e)".contains(expected) && "\(e)".contains("restart"), "\(what): \(e)")
            }
        }
    }
}
