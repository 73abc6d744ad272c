import TestSupport
import Foundation
import NN
import SSL
import Tensors
import XCTest

/// Five steps of SimCLR, MoCo v2 and SwAV against PyTorch (fixtures `simclr_steps`,
/// `simclr_pred_sg_steps`, `moco_steps`, `swav_steps`, `swav_nosg_steps`, written by
/// Tests/Fixtures/make_fixtures.py `simclr` / `moco` / `swav`), through the same `trainingStep`
/// and `makeOptimizer` that training and `ablate bench` use: SGD (momentum 0.9, weight decay
/// 5e-4, lr 0.05·16/256 cosine per step, one group), then each method's `afterUpdate` (MoCo:
/// key-encoder EMA and the queue; its 64 keys wrap around within the five steps of 16).
/// The `mini` backbone with heads of width 128 (predictor 32), to keep the fixtures small.
/// Tolerances and the choice of data are SimSiamFixtureTests' (same float32 noise argument).
final class MethodFixtureTests: XCTestCase {
    static let steps = 5

    func testSimCLRFiveStepsMatchPyTorch() throws {
        try check("simclr_steps", [("method", .string("simclr"))])
    }

    func testSimCLRWithPredictorAndStopGradientMatchesPyTorch() throws {
        try check("simclr_pred_sg_steps", [("method", .string("simclr")), ("simclr.predictor", .bool(true)),
                                            ("simclr.stop_gradient", .bool(true))])
    }

    func testMoCoFiveStepsMatchPyTorchIncludingTheQueue() throws {
        let model = try check("moco_steps", [("method", .string("moco")), ("moco.queue", .int(64))])
        XCTAssertEqual((model as? MoCo)?.queuePointer.item, Float(Self.steps * 16 % 64), "the pointer wrapped around")
    }

    func testSwAVFiveStepsMatchPyTorch() throws {
        try check("swav_steps", [("method", .string("swav")), ("swav.prototypes", .int(20))])
    }

    func testSwAVWithoutStopGradientMatchesPyTorch() throws {
        try check("swav_nosg_steps", [("method", .string("swav")), ("swav.prototypes", .int(20)), ("swav.stop_gradient", .bool(false))])
    }

    @discardableResult
    func check(_ name: String, _ overrides: [(key: String, value: ConfigValue)],
               file: StaticString = #filePath, line: UInt = #line) throws -> SSLMethod {
        let fx = try Fixture.named(name)
        var config = try TrainingConfig.named("mini").applying(overrides)
        var heads: [(key: String, value: ConfigValue)] = [("model.projector_dim", .int(try XCTUnwrap(fx.meta["projector_dim"] as? Int)))]
        if ConfigKey.byName["model.predictor_hidden"]?.applies(to: config.method) == true {
            heads.append(("model.predictor_hidden", .int(try XCTUnwrap(fx.meta["predictor_hidden"] as? Int))))
        }
        config = try config.applying(heads)
        config.batch = try XCTUnwrap(fx.meta["batch"] as? Int)
        XCTAssertEqual(Double(config.learningRate), try XCTUnwrap(fx.meta["base_lr"] as? Double), accuracy: 1e-9)
        let model = try Methods.make(config, inChannels: 1, seed: 0)
        XCTAssertEqual(model.namedParameters.map(\.0), fx.meta["param_names"] as? [String], file: file, line: line)
        XCTAssertEqual(model.namedBuffers.map(\.0), fx.meta["buffer_names"] as? [String], file: file, line: line)
        for (n, t) in model.namedParameters + model.namedBuffers { try t.assign(from: fx.tensor("init/\(n)")) }
        model.setTraining(true)
        let optimizer = makeOptimizer(for: model, config: config, totalSteps: Self.steps)
        let views = [try fx.tensor("x1"), try fx.tensor("x2")]

        var losses: [Float] = [], lrs: [Float] = []
        for t in 0..<Self.steps {
            lrs.append(optimizer.currentLRs[0])
            losses.append(try trainingStep(model, optimizer, views: views, totalSteps: Self.steps).loss)
            if t == 0 {
                for (n, p) in model.namedParameters {
                    assertClose(try XCTUnwrap(p.grad, n), try fx.tensor("grad0/\(n)"), rtol: 1e-4, atol: 1e-6,
                                "\(name): first-step gradient of \(n)", file: file, line: line)
                }
            }
        }
        assertClose(lrs, try fx.tensor("lr").array, rtol: 1e-6, atol: 0, "\(name): lr per step", file: file, line: line)
        assertClose(losses, try fx.tensor("loss").array, rtol: 1e-4, atol: 1e-7, "\(name): loss per step", file: file, line: line)
        for (n, t) in model.namedParameters + model.namedBuffers {
            let expected = try fx.tensor("final/\(n)"), initial = try fx.tensor("init/\(n)").array
            assertClose(t, expected, rtol: 1e-4, atol: 1e-6, "\(name): final \(n)", file: file, line: line)
            let delta = zip(t.array, initial).map { $0 - $1 }, expectedDelta = zip(expected.array, initial).map { $0 - $1 }
            let scale = expectedDelta.map(abs).max() ?? 0, largest = initial.map(abs).max() ?? 0
            assertClose(delta, expectedDelta, rtol: 1e-3, atol: 1e-3 * scale + 4 * largest.ulp, "\(name): update of \(n)", file: file, line: line)
        }
        return model
    }
}
