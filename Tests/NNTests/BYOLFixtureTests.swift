import TestSupport
import Foundation
import NN
import SSL
import Tensors
import XCTest

/// Five steps of BYOL on the `mini` heads against PyTorch (fixture `byol_steps`, written by
/// Tests/Fixtures/make_fixtures.py `byol`), through the same `trainingStep` and `makeOptimizer`
/// that training and `ablate bench` use: online SGD (momentum 0.9, weight decay 5e-4, lr
/// 0.05·16/256 cosine per step), then the target's EMA with τ_t = 1 − 0.01·(cos(πt/5) + 1)/2.
/// The tolerances are SimSiamFixtureTests' (same model sizes, same float32 noise argument); the
/// data were chosen the same way (no ReLU input within float32 noise of 0, online or target).
final class BYOLFixtureTests: XCTestCase {
    static let steps = 5

    func testFiveStepsMatchPyTorch() throws {
        let fx = try Fixture.named("byol_steps")
        var config = try TrainingConfig.named("mini").applying([("method", .string("byol"))])
        config.batch = try XCTUnwrap(fx.meta["batch"] as? Int)
        XCTAssertEqual(Double(config.learningRate), try XCTUnwrap(fx.meta["base_lr"] as? Double), accuracy: 1e-9)
        XCTAssertEqual(Double(config.weightDecay), try XCTUnwrap(fx.meta["weight_decay"] as? Double), accuracy: 1e-9)
        let model = try XCTUnwrap(try Methods.make(config, inChannels: 1, seed: 0) as? BYOL)
        XCTAssertEqual(model.namedParameters.map(\.0), fx.meta["param_names"] as? [String])
        XCTAssertEqual(model.namedBuffers.map(\.0), fx.meta["buffer_names"] as? [String])
        for (name, t) in model.namedParameters + model.namedBuffers { try t.assign(from: fx.tensor("init/\(name)")) }
        model.setTraining(true)
        let optimizer = makeOptimizer(for: model, config: config, totalSteps: Self.steps)
        let views = [try fx.tensor("x1"), try fx.tensor("x2")]

        var losses: [Float] = [], lrs: [Float] = [], taus: [Float] = []
        for t in 0..<Self.steps {
            lrs.append(optimizer.currentLRs[0])
            taus.append(model.tau(step: t, totalSteps: Self.steps))
            losses.append(try trainingStep(model, optimizer, views: views, totalSteps: Self.steps).loss)
            if t == 0 {
                for (name, p) in model.namedParameters {
                    assertClose(try XCTUnwrap(p.grad, name), try fx.tensor("grad0/\(name)"), rtol: 1e-4, atol: 1e-6, "first-step gradient of \(name)")
                }
            }
        }
        assertClose(lrs, try fx.tensor("lr").array, rtol: 1e-6, atol: 0, "lr per step")
        assertClose(taus, try XCTUnwrap(fx.meta["taus"] as? [Double]).map(Float.init), rtol: 1e-7, atol: 0, "τ per step")
        assertClose(losses, try fx.tensor("loss").array, rtol: 1e-4, atol: 1e-7, "loss per step")
        for (name, t) in model.namedParameters + model.namedBuffers {
            let expected = try fx.tensor("final/\(name)"), initial = try fx.tensor("init/\(name)").array
            assertClose(t, expected, rtol: 1e-4, atol: 1e-6, "final \(name)")
            let delta = zip(t.array, initial).map { $0 - $1 }, expectedDelta = zip(expected.array, initial).map { $0 - $1 }
            let scale = expectedDelta.map(abs).max() ?? 0, largest = initial.map(abs).max() ?? 0
            assertClose(delta, expectedDelta, rtol: 1e-3, atol: 1e-3 * scale + 4 * largest.ulp, "update of \(name)")
        }
    }

    /// The target starts as a copy of the online backbone and projector, is never trained, and
    /// moves towards the online weights by exactly (1 − τ) of the gap.
    func testTargetStartsAsACopyAndFollowsByEMA() throws {
        let config = try TrainingConfig.named("smoke").applying([("method", .string("byol"))])
        let model = try XCTUnwrap(try Methods.make(config, inChannels: 1, seed: 3) as? BYOL)
        let online = model.backbone.parameters + model.projector.parameters
        let target = model.targetBackbone.parameters + model.targetProjector.parameters
        for (t, o) in zip(target, online) {
            XCTAssertEqual(t.array, o.array)
            XCTAssertFalse(t.requiresGrad)
        }
        XCTAssertFalse(model.parameterGroups(schedule: LRSchedule(base: 1, totalSteps: 1), weightDecay: 0)
            .flatMap(\.parameters).contains { p in target.contains { $0 === p } }, "the target is not optimised")
        let before = target.map(\.array)
        for o in online { o.pointer.update(repeating: 1, count: o.count) }
        model.afterUpdate(step: 0, totalSteps: 10)
        let tau = model.tau(step: 0, totalSteps: 10)
        XCTAssertEqual(tau, 0.99, accuracy: 1e-7)
        XCTAssertEqual(model.tau(step: 10, totalSteps: 10), 1, accuracy: 1e-7)
        for (t, b) in zip(target, before) {
            assertClose(t.array, b.map { $0 * tau + (1 - tau) }, rtol: 1e-6, atol: 1e-7, "EMA")
        }
    }
}
