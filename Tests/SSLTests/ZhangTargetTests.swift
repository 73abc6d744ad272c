import Foundation
import NN
import SSL
import Tensors
import XCTest

/// Zhang et al.'s variants: the gradient reaching the online vector (P_a, or Z_a without a
/// predictor) is exactly the named target (−T/N), and each target is the paper's formula
/// computed by hand here from the same normalised batches.
final class ZhangTargetTests: XCTestCase {
    let n = 4, d = 3

    func unitRows(_ seed: UInt64) throws -> Tensor {
        var rng = RNG(seed: seed)
        return try noGrad { try l2Normalize(Tensor.randn([n, d], rng: &rng)) }
    }

    func rows(_ t: Tensor) -> [[Double]] { (0..<n).map { i in (0..<d).map { Double(t.array[i * d + $0]) } } }
    func mean(_ m: [[Double]]) -> [Double] { (0..<d).map { j in m.map { $0[j] }.reduce(0, +) / Double(m.count) } }

    func testTheGradientReachingTheOnlineVectorIsTheTarget() throws {
        let za = try unitRows(1), zb = try unitRows(2), pa = try unitRows(3), pb = try unitRows(4)
        let Za = rows(za), Zb = rows(zb), Pb = rows(pb)
        let oz = mean(Zb), op = mean(Pb), oa = mean(Za)
        let Zn = (0..<n).map { Zb[($0 + 1) % n] }, on = mean(Zn)
        typealias T = SimSiamConfig.Target
        func rowwise(_ m: [[Double]], _ f: (Int, Int) -> Double) -> [[Double]] {
            (0..<m.count).map { i in (0..<d).map { j in f(i, j) } }
        }
        let pPlusOe: [[Double]] = rowwise(Pb) { i, j in Pb[i][j] + oz[j] - op[j] }          // P_b + o_e
        let zMinusOe: [[Double]] = rowwise(Zb) { i, j in Zb[i][j] - (oz[j] - op[j]) }       // Z_b − o_e
        let centerT: [[Double]] = rowwise(Za) { _, j in oa[j] }                              // o_z
        let residualT: [[Double]] = rowwise(Za) { i, j in Za[i][j] - oa[j] }                 // r_a
        let tripletT: [[Double]] = rowwise(Zb) { i, j in Zb[i][j] - Zn[i][j] }               // Z_b − Z_n
        let tripletOe: [[Double]] = rowwise(Zb) { i, j in Zb[i][j] - on[j] }                 // Z_b − mean(Z_n)
        let tripletRe: [[Double]] = rowwise(Zb) { i, j in Zb[i][j] - (Zn[i][j] - on[j]) }    // Z_b − (Z_n − mean(Z_n))
        var expected: [T: [[Double]]] = [:]
        expected[.z] = Zb
        expected[.p] = Pb
        expected[.pPlusOe] = pPlusOe
        expected[.zMinusOe] = zMinusOe
        expected[.center] = centerT
        expected[.residual] = residualT
        expected[.triplet] = tripletT
        expected[.tripletOe] = tripletOe
        expected[.tripletRe] = tripletRe
        for (t, hand) in expected {
            let target = try SimSiam.target(t, za: za, zb: zb, pa: pa, pb: pb)
            XCTAssertEqual(target.shape, [n, d], t.rawValue)
            for (a, b) in zip(rows(target).joined(), hand.joined()) { XCTAssertEqual(a, b, accuracy: 1e-6, t.rawValue) }
            let online = Tensor(shape: [n, d], storage: Storage((t.onlineIsZ ? za : pa).array), requiresGrad: true)
            try SimSiam.directionalLoss(online: online, target: target).backward()
            let g = try XCTUnwrap(online.grad, t.rawValue).array
            for (a, b) in zip(g, hand.joined()) { XCTAssertEqual(Double(a), -b / Double(n), accuracy: 1e-6, "\(t.rawValue): gradient") }
        }
        XCTAssertEqual(Set(expected.keys).union([.inversePredictor]), Set(T.allCases.filter { !$0.keepsState }),
                       "every target computed from the batch alone is checked here (the stateful ones in TargetStateTests)")
    }

    /// Every variant trains on `smoke` through the method protocol (the inverse predictor with its
    /// h⁻¹ in the checkpoint's parameters), and contradictory rows are refused.
    func testEveryTargetTrainsAndContradictionsAreRefused() throws {
        for t in SimSiamConfig.Target.allCases where t != .z {
            var overrides: [(key: String, value: ConfigValue)] = [("loss.target", .string(t.rawValue)), ("optim.epochs", .int(1))]
            if t.onlineIsZ { overrides.append(("model.predictor", .string("none"))) }
            let config = try TrainingConfig.named("smoke").applying(overrides)
            let (train, _, aug) = try config.loadData()
            let trainer = try Trainer(config: config, seed: 0, train: train, augmentation: aug)
            XCTAssertEqual(try trainer.run().status, .finished, t.rawValue)
            XCTAssertEqual(trainer.model.namedParameters.contains { $0.0.hasPrefix("inverse_predictor.") }, t == .inversePredictor)
        }
        let smoke = try TrainingConfig.named("smoke")
        XCTAssertThrowsError(try smoke.applying([("loss.target", .string("center"))])) { XCTAssertTrue("\($0)".contains("model.predictor: none"), "\($0)") }
        XCTAssertThrowsError(try smoke.applying([("loss.target", .string("p")), ("model.predictor", .string("none"))]))
        XCTAssertThrowsError(try smoke.applying([("loss.target", .string("p")), ("loss.stop_gradient", .bool(false))]))
    }

    /// The simplified predictors: a bias on Z (0 at init, so P = Z at first) and a d×d matrix on Z.
    func testSimplifiedPredictors() throws {
        let bias = try TrainingConfig.named("smoke").applying([("model.predictor", .string("bias"))])
        let m = try XCTUnwrap(try Methods.make(bias, inChannels: 1, seed: 0) as? SimSiam)
        XCTAssertEqual(m.namedParameters.filter { $0.0.hasPrefix("predictor.") }.map(\.0), ["predictor.bias"])
        var rng = RNG(seed: 9)
        let raw = Tensor.randn([4, 64], rng: &rng)
        let z = try noGrad { try l2Normalize(raw) }
        let head = try XCTUnwrap(m.predictor)
        let p = try head.forward(raw)
        XCTAssertEqual(p.array, z.array, "b = 0: P = z/‖z‖")
        let linear = try TrainingConfig.named("smoke").applying([("model.predictor", .string("linear"))])
        let l = try XCTUnwrap(try Methods.make(linear, inChannels: 1, seed: 0) as? SimSiam)
        XCTAssertEqual(l.namedParameters.filter { $0.0.hasPrefix("predictor.") }.map { $0.1.shape }, [[64, 64]])
        XCTAssertEqual(try bias.applying([]).params().first { $0.key == "model.predictor" }?.value, "bias")
    }
}
