import Foundation
import NN
import SSL
import Tensors
import XCTest

/// Each SimSiam variant of Tables 2–3 and §4.5–4.6 does what its name says, on `smoke` sizes.
final class VariantTests: XCTestCase {
    func model(_ overrides: [(key: String, value: ConfigValue)], seed: UInt64 = 1) throws -> SimSiam {
        let config = try TrainingConfig.named("smoke").applying(overrides)
        return try XCTUnwrap(try Methods.make(config, inChannels: 1, seed: seed) as? SimSiam)
    }

    func views(_ n: Int, batch: Int = 8, requiresGrad: Bool = false) -> [Tensor] {
        var rng = RNG(seed: 7)
        return (0..<n).map { _ in Tensor.randn([batch, 1, 16, 16], rng: &rng, requiresGrad: requiresGrad) }
    }

    /// Table 3: which BN layers the heads have, and which have γ, β.
    func testHeadBNPlacements() throws {
        func names(_ m: SimSiam) -> [String] { m.namedParameters.map(\.0).filter { !$0.hasPrefix("backbone.") } }
        let b = try model([])
        XCTAssertEqual(names(b), ["projector.fc1.weight", "projector.bn1.weight", "projector.bn1.bias",
                                  "projector.fc2.weight", "projector.bn2.weight", "projector.bn2.bias", "projector.fc3.weight",
                                  "projector.fc3.bias", "predictor.fc1.weight", "predictor.bn1.weight", "predictor.bn1.bias",
                                  "predictor.fc2.weight", "predictor.fc2.bias"], "(b) hidden-only, the mini default")
        let a = try model([("model.hidden_bn", .bool(false))])
        XCTAssertFalse(names(a).contains { $0.contains(".bn") }, "(a) no BN in either head")
        XCTAssertTrue(names(a).contains("projector.fc1.bias"), "(a) a hidden layer without BN has a bias")
        XCTAssertTrue(a.namedBuffers.allSatisfy { $0.0.hasPrefix("backbone.") })
        let c = try model([("model.projector_output_bn", .bool(true))])
        XCTAssertTrue(names(c).contains("projector.bn3.weight"))
        XCTAssertFalse(names(c).contains("projector.fc3.bias"), "(c) BN follows the last layer: no bias")
        let c2 = try model([("model.projector_output_bn", .bool(true)), ("model.projector_output_affine", .bool(false))])
        XCTAssertFalse(names(c2).contains("projector.bn3.weight"), "(c′) output BN without γ, β")
        XCTAssertTrue(c2.namedBuffers.map(\.0).contains("projector.bn3.running_mean"), "(c′) still normalises")
        let d = try model([("model.projector_output_bn", .bool(true)), ("model.predictor_output_bn", .bool(true))])
        XCTAssertTrue(names(d).contains("predictor.bn2.weight"), "(d) BN on the predictor output too")
        // (a): a hidden layer's output is relu(x·Wᵀ + b), not normalised.
        a.setTraining(true)
        let h = try a.projector.fcs[0](try a.backbone(views(1)[0]))
        let y = try noGrad { try a.projector.forward(try a.backbone(views(1)[0])) }
        XCTAssertEqual(y.shape, [8, 64])
        XCTAssertTrue(h.array.contains { $0 < 0 }, "pre-activations take both signs")
        XCTAssertThrowsError(try model([("model.projector_output_affine", .bool(false))])) { e in
            XCTAssertTrue("\(e)".contains("model.projector_output_bn: true"), "\(e)")
        }
        XCTAssertThrowsError(try model([("model.predictor", .string("none")), ("model.predictor_output_bn", .bool(true))]))
    }

    /// §4.5: D(p, z) = −softmax(z)·log softmax(p) (batch mean), gradient (softmax(p) − softmax(z))/N.
    func testCrossEntropySimilarityValueAndGradient() throws {
        let p = try Tensor(shape: [2, 3], [0.5, -1, 2, 0, 0.3, -0.2], requiresGrad: true)
        let z = try Tensor(shape: [2, 3], [1, 0, -1, 0.2, 0.2, 3])
        let loss = try softCrossEntropy(p, stopGradient(z))
        func softmax(_ v: [Float]) -> [Double] {
            let m = v.max()!, e = v.map { Foundation.exp(Double($0 - m)) }, s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        var expected = 0.0, grad: [Double] = []
        for r in 0..<2 {
            let sp = softmax(Array(p.array[(3 * r)..<(3 * r + 3)])), sz = softmax(Array(z.array[(3 * r)..<(3 * r + 3)]))
            expected -= zip(sz, sp).map { $0 * Foundation.log($1) }.reduce(0, +) / 2
            grad += zip(sp, sz).map { ($0 - $1) / 2 }
        }
        XCTAssertEqual(Double(loss.item), expected, accuracy: 1e-6)
        try loss.backward()
        let g = try XCTUnwrap(p.grad).array
        for (a, b) in zip(g, grad) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        let m = try model([("loss.similarity", .string("cross-entropy"))])
        m.setTraining(true)
        let o = try m.forward(views(2)[0], views(2)[1])
        let l = try m.loss(views(2)).loss
        XCTAssertEqual(l.item, 0.5 * (try softCrossEntropy(o.p1, o.z2).item + softCrossEntropy(o.p2, o.z1).item), accuracy: 1e-5)
    }

    /// §4.6: the asymmetric loss is D(p1, sg(z2)) and sends no gradient through view 2 (its z is
    /// a target, and p2 is never computed).
    func testAsymmetricLossSendsNoGradientThroughTheSecondView() throws {
        let m = try model([("loss.symmetry", .string("asymmetric"))])
        m.setTraining(true)
        XCTAssertEqual(m.viewCount, 2)
        let x = views(2, requiresGrad: true)
        let out = try m.loss(x)
        try out.loss.backward()
        XCTAssertTrue((x[0].grad?.array ?? []).contains { $0 != 0 }, "view 1 gets a gradient through p1")
        XCTAssertTrue(x[1].grad?.array.allSatisfy { $0 == 0 } ?? true, "view 2 gets none")
        // Same value as D(p1, z2) from the symmetric forward (BN sees the same batches).
        let sym = try model([])
        sym.setTraining(true)
        let o = try sym.forward(views(2)[0], views(2)[1])
        XCTAssertEqual(try m.loss(views(2)).loss.item, try negativeCosine(o.p1, o.z2).item, accuracy: 1e-6)
    }

    /// §4.6: asymmetric 2× draws four views and averages D over two independent pairs.
    func testAsymmetricTwiceUsesTwoPairsOfViews() throws {
        let m = try model([("loss.symmetry", .string("asymmetric-2x"))])
        m.setTraining(true)
        XCTAssertEqual(m.viewCount, 4)
        let v = views(4)
        let out = try m.loss(v)
        XCTAssertEqual(out.projections.count, 4)
        let one = try model([("loss.symmetry", .string("asymmetric"))])
        one.setTraining(true)
        let first = try one.loss([v[0], v[1]]).loss.item, second = try one.loss([v[2], v[3]]).loss.item
        XCTAssertEqual(out.loss.item, 0.5 * (first + second), accuracy: 1e-6)
        // The trainer draws as many views as the method asks for.
        let config = try TrainingConfig.named("smoke").applying([("loss.symmetry", .string("asymmetric-2x")), ("optim.epochs", .int(1))])
        let (train, _, aug) = try config.loadData()
        XCTAssertEqual(try Trainer(config: config, seed: 0, train: train, augmentation: aug).run().status, .finished)
    }

    /// App. B: the output dimension and the predictor's hidden width are the architecture's.
    func testOutputDimensionAndPredictorHidden() throws {
        let m = try model([("model.projector_dim", .int(32)), ("model.predictor_hidden", .int(8))])
        XCTAssertEqual(m.projector.fcs.map(\.weight.shape), [[32, 32], [32, 32], [32, 32]])
        XCTAssertEqual((m.predictor as? MLPHead)?.fcs.map(\.weight.shape), [[8, 32], [32, 8]])
    }
}
