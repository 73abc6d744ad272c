import Data
import Foundation
import NN
import SSL
import Tensors
import XCTest

/// Targets as state (SimSiam §5.2, Zhang et al. Table 1) on `smoke`.
final class TargetStateTests: XCTestCase {
    func trainer(_ overrides: [(key: String, value: ConfigValue)], epochs: Int = 1) throws -> Trainer {
        let config = try TrainingConfig.named("smoke").applying(overrides + [("optim.epochs", .int(epochs))])
        let (train, _, aug) = try config.loadData()
        return try Trainer(config: config, seed: 0, train: train, augmentation: aug)
    }

    /// The cache is refilled exactly every k steps: k batches × 2 views of target passes each time.
    func testAlternationRefreshesTheCacheEveryKSteps() throws {
        for k in [1, 5] {
            let t = try trainer([("loss.target", .string("alternation")), ("loss.alternation_steps", .int(k))])
            let result = try t.run()
            XCTAssertEqual(result.status, .finished)
            XCTAssertGreaterThan(result.epochs[0].targetSeconds ?? 0, 0, "the extra passes' time is recorded per epoch")
            let model = try XCTUnwrap(t.model as? SimSiam)
            // 16 steps per epoch: every step needs a target for both views, drawn once.
            XCTAssertEqual(model.targetEvaluations, 2 * t.stepsPerEpoch, "k = \(k)")
            XCTAssertGreaterThan(model.targetSeconds, 0)
        }
        let epoch = try trainer([("loss.target", .string("alternation")), ("loss.alternation_steps", .int(0))])
        XCTAssertEqual(try epoch.run().status, .finished)
        XCTAssertEqual((epoch.model as? SimSiam)?.targetEvaluations, 2 * epoch.stepsPerEpoch)
    }

    /// k = 1 is SimSiam: the same targets (the same batch through the same model), the same loss.
    func testAlternationWithOneStepIsSimSiam() throws {
        // At one BLAS thread: the target pass and the step's pass then add in the same order
        // whatever the CPU (threaded OpenBLAS changed a last bit on AMD EPYC).
        let a = try Lanes.singleThreadedBLAS { try trainer([("loss.target", .string("alternation")), ("loss.alternation_steps", .int(1))]).run() }
        let b = try Lanes.singleThreadedBLAS { try trainer([]).run() }
        XCTAssertEqual(a.epochs.map(\.meanLoss), b.epochs.map(\.meanLoss))
    }

    /// After two visits η = m·Z(first) + (1 − m)·Z(second) … with η started at the first Z.
    func testMovingAverageAfterTwoVisitsIsTheHandFormula() throws {
        let store = TargetStore(images: 3, slots: 1, dim: 2)
        XCTAssertNil(store.read(indices: [1], slot: 0))
        let m: Float = 0.8
        let first = try Tensor(shape: [1, 2], [1, 0]), second = try Tensor(shape: [1, 2], [0, 1])
        store.write(first, indices: [1], slot: 0)                 // first visit: η = Z
        let eta = try XCTUnwrap(store.read(indices: [1], slot: 0))
        store.write(try noGrad { try scale(eta, m) + scale(second, 1 - m) }, indices: [1], slot: 0)
        let after = try XCTUnwrap(store.read(indices: [1], slot: 0)).array
        XCTAssertEqual(after[0], 0.8, accuracy: 1e-7)
        XCTAssertEqual(after[1], 0.2, accuracy: 1e-7)
        // Through training: every image has its η after an epoch, and η is checkpointed (resumed
        // bit-identically: CheckpointTests.testResumeWithTargetsAsStateIsBitIdentical).
        let t = try trainer([("loss.target", .string("moving-average")), ("model.predictor", .string("none"))], epochs: 2)
        let full = try t.run()
        XCTAssertEqual(full.status, .finished)
        let store2 = try XCTUnwrap((t.model as? SimSiam)?.targets)
        XCTAssertEqual(store2.filled.array.reduce(0, +), Float(t.stepsPerEpoch * 128), "every image of a batch was seen")
        XCTAssertTrue(t.model.namedBuffers.contains { $0.0 == "targets.values" }, "η is part of the checkpoint")
    }

    /// `loss.moving_average_start: random`: η starts as seeded random unit vectors (the same for
    /// the same seed, the weights unchanged), and the first visit's target is that vector, not Z2.
    func testMovingAverageFromRandomStartsAtSeededUnitVectorsAndUsesThemFirst() throws {
        let base: [(key: String, value: ConfigValue)] = [("loss.target", .string("moving-average")), ("model.predictor", .string("none"))]
        let config = try TrainingConfig.named("smoke").applying(base + [("loss.moving_average_start", .string("random"))])
        let (train, _, aug) = try config.loadData()
        func model(_ c: TrainingConfig, seed: UInt64) throws -> SimSiam { try XCTUnwrap(try Methods.make(c, inChannels: 1, seed: seed) as? SimSiam) }
        let a = try model(config, seed: 0), b = try model(config, seed: 0), other = try model(config, seed: 1)
        let store = try XCTUnwrap(a.targets)
        XCTAssertEqual(store.filled.array, Array(repeating: 1, count: store.images), "every η is there before any visit")
        let values = store.values.array
        for r in [0, 7, store.images - 1] {
            let norm = values[r * store.dim..<(r + 1) * store.dim].reduce(0) { $0 + $1 * $1 }.squareRoot()
            XCTAssertEqual(norm, 1, accuracy: 1e-5, "row \(r) is a unit vector")
        }
        XCTAssertEqual(values, try XCTUnwrap(b.targets).values.array, "same seed, same start")
        XCTAssertNotEqual(values, try XCTUnwrap(other.targets).values.array)
        let plain = try model(try TrainingConfig.named("smoke").applying(base), seed: 0)
        XCTAssertEqual(a.namedParameters.map(\.1.array), plain.namedParameters.map(\.1.array), "the start draws from its own generator")
        XCTAssertNil(plain.targets?.read(indices: [0], slot: 0), "first-output: nothing before the first visit")

        // The first step's loss is −cos(z1, η) with η the stored random vector.
        a.setTraining(true)
        let indices = Array(0..<8)
        let context = BatchContext(indices: indices, epoch: 0, step: 0, stepsPerEpoch: 1, upcoming: { _ in nil },
                                   draw: { i, first, count in aug.views(of: train, indices: i, epoch: 0, seed: 0, first: first, count: count) })
        let views = aug.views(of: train, indices: indices, epoch: 0, seed: 0)
        let eta = try XCTUnwrap(store.read(indices: indices, slot: 0))
        let expected = try noGrad { try negativeCosine(a.projector(a.backbone(views[0])), eta) }.item
        XCTAssertEqual(try a.loss(views, context: context).loss.item, expected, accuracy: 1e-6)
        XCTAssertLessThan(abs(expected), 0.5, "a random target is nearly orthogonal to z1")
    }

    /// EOA with K = 1 draws one more view per image; with the augmentation switched off every view
    /// is the plain image, so the target is the plain image's Z.
    func testEOAWithOneViewAndNoAugmentationIsThePlainTarget() throws {
        let config = try TrainingConfig.named("smoke").applying([("loss.target", .string("eoa")), ("loss.eoa_views", .int(1)),
                                                                 ("model.predictor", .string("none"))])
        let (train, _, _) = try config.loadData()
        var fixed = Augmentation(outputSize: 16, mean: 0.5, std: 0.5)
        fixed.scale = 1...1; fixed.ratio = 1...1; fixed.flipProbability = 0; fixed.jitterProbability = 0
        let model = try XCTUnwrap(try Methods.make(config, inChannels: 1, seed: 0) as? SimSiam)
        model.setTraining(true)
        let indices = Array(0..<8)
        let context = BatchContext(indices: indices, epoch: 0, step: 0, stepsPerEpoch: 1, upcoming: { _ in nil },
                                   draw: { i, first, count in fixed.views(of: train, indices: i, epoch: 0, seed: 0, first: first, count: count) })
        let views = fixed.views(of: train, indices: indices, epoch: 0, seed: 0)
        let eoa = try model.loss(views, context: context).loss.item
        XCTAssertEqual(model.targetEvaluations, 1)
        // The plain target: −cos(z, sg(z)) of the same image = −1 for both views.
        XCTAssertEqual(eoa, -1, accuracy: 1e-5)
        XCTAssertThrowsError(try model.loss(views)) { XCTAssertTrue("\($0)".contains("batch context"), "\($0)") }
    }
}
