import Foundation
import NN
import SSL
import Tensors
import XCTest

/// Lanes (each view of a step on its own thread, forward and backward) give the same numbers,
/// bit for bit, as the views one after the other: gradients, loss and BN running statistics.
/// Both at one BLAS thread: how OpenBLAS splits a GEMM across threads can change a last bit.
final class LanesTests: XCTestCase {
    override func tearDown() { Lanes.enabled = Lanes.byDefault }

    /// One training step's loss, every parameter's gradient and every buffer, with lanes on or off.
    func step(method: String, lanes: Bool, overrides: [(key: String, value: ConfigValue)] = []) throws -> [String: [Float]] {
        Lanes.enabled = lanes
        let config = try TrainingConfig.named("smoke").applying([("method", .string(method))] + overrides)
        let m = try Methods.make(config, inChannels: 1, seed: 3)
        m.setTraining(true)
        var rng = RNG(seed: 11)
        let views = (0..<m.viewCount).map { _ in Tensor.randn([8, 1, 16, 16], rng: &rng) }
        // The serial order at one BLAS thread, as each lane computes: OpenBLAS's threads split a
        // GEMM differently on different CPUs (AMD EPYC changed last bits here that Intel did not).
        let out = try Lanes.singleThreadedBLAS {
            let out = try m.loss(views)
            try out.loss.backward()
            return out
        }
        var values = ["loss": out.loss.array]
        for (name, p) in m.namedParameters { values["grad " + name] = p.grad?.array ?? [] }
        for (name, b) in m.namedBuffers { values["buffer " + name] = b.array }
        for (i, z) in out.projections.enumerated() { values["z\(i)"] = z.array }
        return values
    }

    func testEveryMethodsStepIsIdenticalWithAndWithoutLanes() throws {
        for method in Methods.names {
            let serial = try step(method: method, lanes: false), laned = try step(method: method, lanes: true)
            XCTAssertEqual(serial.keys.sorted(), laned.keys.sorted(), method)
            for (key, value) in serial where laned[key] != value {
                XCTFail("\(method): \(key) differs with lanes: max |diff| \(zip(value, laned[key] ?? []).map { abs($0 - $1) }.max() ?? .nan)")
            }
            XCTAssertTrue(serial["grad backbone.conv1.weight"]?.contains { $0 != 0 } ?? false, "\(method): the backbone gets a gradient")
        }
    }

    func testStepsWithoutStopGradientAreIdenticalWithLanes() throws {
        // Without the stop-gradient the loss joins both lanes' results: gradients cross back into both.
        for (method, key) in [("simsiam", "loss.stop_gradient"), ("swav", "swav.stop_gradient")] {
            let overrides: [(key: String, value: ConfigValue)] = [(key, .bool(false))]
            let serial = try step(method: method, lanes: false, overrides: overrides)
            let laned = try step(method: method, lanes: true, overrides: overrides)
            for (key, value) in serial where laned[key] != value {
                XCTFail("\(method): \(key) differs with lanes: max |diff| \(zip(value, laned[key] ?? []).map { abs($0 - $1) }.max() ?? .nan)")
            }
        }
    }

    /// Five optimiser steps on the `mini` model: the weights and statistics after each step are the same bits.
    func testFiveTrainingStepsAreIdenticalWithLanes() throws {
        func run(method: String, lanes: Bool, _ overrides: [(key: String, value: ConfigValue)]) throws -> [[(String, [Float])]] {
            Lanes.enabled = lanes
            let config = try TrainingConfig.named("mini").applying([("method", .string(method))] + overrides)
            let m = try Methods.make(config, inChannels: 1, seed: 5)
            m.setTraining(true)
            let optimizer = makeOptimizer(for: m, config: config, totalSteps: 5)
            var rng = RNG(seed: 2)
            let views = (0..<m.viewCount).map { _ in Tensor.randn([16, 1, 28, 28], rng: &rng) }
            var states: [[(String, [Float])]] = []
            for _ in 0..<5 {
                // Serially with one BLAS thread too: OpenBLAS's threading alone can change a last bit.
                _ = try lanes ? trainingStep(m, optimizer, views: views, totalSteps: 5)
                    : Lanes.singleThreadedBLAS { try trainingStep(m, optimizer, views: views, totalSteps: 5) }
                states.append((m.namedParameters + m.namedBuffers).map { ($0.0, $0.1.array) })
            }
            return states
        }
        for (method, overrides) in [("simsiam", []), ("swav", [("swav.prototypes", ConfigValue.int(20)), ("swav.stop_gradient", .bool(false))])] {
            let serial = try run(method: method, lanes: false, overrides), laned = try run(method: method, lanes: true, overrides)
            for (i, (a, b)) in zip(serial, laned).enumerated() {
                guard let (name, x) = a.first(where: { n, x in b.first { $0.0 == n }?.1 != x }) else { continue }
                let y = b.first { $0.0 == name }!.1
                XCTFail("\(method): \(name) after step \(i + 1) differs with lanes (max |diff| \(zip(x, y).map { abs($0 - $1) }.max()!))")
                break
            }
        }
    }

    /// SimSiam's variants that encode their views through `encodePair` or four lanes.
    func testSimSiamVariantsAreIdenticalWithLanes() throws {
        let variants: [[(key: String, value: ConfigValue)]] = [
            [("loss.symmetry", .string("asymmetric"))], [("loss.symmetry", .string("asymmetric-2x"))],
            [("loss.target", .string("z-minus-oe"))], [("loss.target", .string("inverse-predictor"))],
        ]
        for overrides in variants {
            let serial = try step(method: "simsiam", lanes: false, overrides: overrides)
            let laned = try step(method: "simsiam", lanes: true, overrides: overrides)
            for (key, value) in serial where laned[key] != value {
                XCTFail("\(overrides[0].value): \(key) differs with lanes")
            }
        }
    }

    func testLanesReturnInOrderAndRethrow() throws {
        Lanes.enabled = true
        XCTAssertEqual(try Lanes.run(3) { $0 * 10 }, [0, 10, 20])
        struct Boom: Error {}
        XCTAssertThrowsError(try Lanes.run(2) { i -> Int in if i == 1 { throw Boom() }; return i }) { XCTAssertTrue($0 is Boom) }
        // Inside a lane, a nested run is serial on the lane's thread.
        let nested = try Lanes.run(2) { i in (Lanes.isInLane, try Lanes.run(2) { j in j + i }) }
        XCTAssertEqual(nested.map(\.0), [true, true])
        XCTAssertEqual(nested.map(\.1), [[0, 1], [1, 2]])
    }

    /// A lane whose result feeds another lane's graph cannot run back at once: the pass falls back
    /// to the serial order and the gradient is still right.
    func testALaneReadingAnotherLanesResultFallsBackToSerial() throws {
        Lanes.enabled = true
        let w = try Tensor(shape: [2], [1, 2], requiresGrad: true)
        let a = try Lanes.run(2) { i in scale(w, Float(i + 2)) }          // 2w, 3w
        let b = try Lanes.run(2) { i in try a[1 - i] * a[i] }             // lane 0 reads lane 1's result
        try sum(b[0] + b[1]).backward()                                   // Σ 2·(2w·3w) = Σ 12w²
        XCTAssertEqual(w.grad?.array, [24, 48])
    }
}
