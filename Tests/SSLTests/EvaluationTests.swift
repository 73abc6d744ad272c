import Data
import Foundation
import SSL
import Tensors
import XCTest

final class EvaluationTests: XCTestCase {
    func testKNNOnToyClusters() throws {
        // Two classes along two axes; queries near each axis get that class.
        let memory = try Tensor(shape: [4, 2], [1, 0.1, 0.9, 0, 0, 1, 0.1, 0.8])
        let queries = try Tensor(shape: [3, 2], [1, 0.2, 0.2, 1, 0.7, 0.6])
        let acc = try Evaluation.knnAccuracy(memory: memory, memoryLabels: [0, 0, 1, 1], queries: queries,
                                             queryLabels: [0, 1, 1], k: 2, temperature: 0.1, classes: 2)
        // Third query is closer to class 0 (cosine 0.76·… ) → 2 of 3 correct.
        XCTAssertEqual(acc, 200.0 / 3, accuracy: 1e-9)
    }

    func testKNNWeightsVotesBySimilarity() throws {
        // k = 3: two weak class-1 neighbours lose to one very similar class-0 neighbour (τ = 0.1).
        let memory = try Tensor(shape: [3, 2], [1, 0, 0.6, 0.8, 0.6, 0.8])
        let q = try Tensor(shape: [1, 2], [1, 0])
        let acc = try Evaluation.knnAccuracy(memory: memory, memoryLabels: [0, 1, 1], queries: q, queryLabels: [0],
                                             k: 3, temperature: 0.1, classes: 2)
        XCTAssertEqual(acc, 100)   // e^10 > 2·e^6
    }

    /// The baselines on `smoke`: kNN and the linear probe on raw pixels and on the untrained
    /// backbone, deterministic for a seed; the synthetic classes are prototypes plus noise, so
    /// raw pixels are far above chance (10 %) on both metrics.
    func testBaselinesOnSmokeHaveBothMetricsOnRawPixelsAndTheRandomBackbone() throws {
        let config = try TrainingConfig.named("smoke")
        let (train, test, augmentation) = try config.loadData()
        let monitor = Monitor(train: train, test: test, augmentation: augmentation)
        let b = try monitor.baselines(config: config, seed: 0)
        let values = [b.rawPixelKNN, b.randomBackboneKNN, try XCTUnwrap(b.rawPixelLinear), try XCTUnwrap(b.randomBackboneLinear)]
        for v in values { XCTAssertTrue((0...100).contains(v), "\(values)") }
        XCTAssertGreaterThan(try XCTUnwrap(b.rawPixelLinear), 50, "\(values)")
        XCTAssertGreaterThan(b.rawPixelKNN, 50, "\(values)")
        let again = try monitor.baselines(config: config, seed: 0)
        XCTAssertEqual(again.metricValues.map(\.value), b.metricValues.map(\.value), "deterministic")
        XCTAssertEqual(b.metricValues.map(\.key), ["raw_pixel_knn", "random_init_knn", "raw_pixel_linear", "random_init_linear"])
    }

    func testLinearProbeSeparatesLinearlySeparableClasses() throws {
        var rng = RNG(seed: 3)
        var x: [Float] = [], y: [Int] = []
        for _ in 0..<600 {
            let c = rng.int(below: 3)
            y.append(c)
            for j in 0..<4 { x.append((j == c ? 3 : 0) + rng.normal() * 0.3) }
        }
        let t = try Tensor(shape: [600, 4], x)
        let train = Evaluation.gatherRows(t, Array(0..<500)), test = Evaluation.gatherRows(t, Array(500..<600))
        let acc = try Evaluation.linearProbe(train: train, trainLabels: Array(y[0..<500]), test: test,
                                             testLabels: Array(y[500..<600]), classes: 3, epochs: 40, seed: 0)   // 40 steps of batch 256
        XCTAssertEqual(acc, 100)
    }

    func testDiagnosticsOfIdenticalRowsAreCollapsed() throws {
        let z = try Tensor(shape: [5, 3], Array(repeating: [2, -1, 0.5], count: 5).flatMap { $0 })
        let d = try CollapseDiagnostics(z)
        XCTAssertEqual(d.zStd, 0, accuracy: 1e-6)
        XCTAssertEqual(d.mO, 1, accuracy: 1e-6)
        XCTAssertEqual(d.mR, 0, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(d.covOffdiag), 0, accuracy: 1e-10)
        XCTAssertEqual(Verdict.of(diverged: false, zStd: d.zStd, mO: d.mO, mR: d.mR), .collapsed)
    }

    func testDiagnosticsOfOrthonormalRowsAreHealthy() throws {
        let dim = 8
        var eye = [Float](repeating: 0, count: dim * dim)
        for i in 0..<dim { eye[i * dim + i] = 3 }   // scaled rows: normalisation removes the scale
        let d = try CollapseDiagnostics(try Tensor(shape: [dim, dim], eye))
        XCTAssertEqual(d.zStd, 1, accuracy: 1e-6)                          // std of each column = 1/√d
        XCTAssertEqual(d.mO, 1 / Double(dim).squareRoot(), accuracy: 1e-6)  // center = (1/d, …)
        XCTAssertEqual(d.mR, (1 - 1 / Double(dim)).squareRoot(), accuracy: 1e-6)
        // C = (I − 11ᵀ/d)/(d−1): off-diagonal entries −1/(d(d−1)), d(d−1) of them.
        XCTAssertEqual(try XCTUnwrap(d.covOffdiag), Double(dim * (dim - 1)) * pow(1 / Double(dim * (dim - 1)), 2) / Double(dim), accuracy: 1e-9)
        XCTAssertEqual(Verdict.of(diverged: false, zStd: d.zStd, mO: d.mO, mR: d.mR), .trained)
    }

    func testVerdictRules() {
        XCTAssertEqual(Verdict.of(diverged: true, zStd: 1, mO: 0.1, mR: 0.9), .diverged)
        XCTAssertEqual(Verdict.of(diverged: false, zStd: .nan, mO: 0.1, mR: 0.9), .diverged)
        XCTAssertEqual(Verdict.of(diverged: false, zStd: 0.099, mO: 0.99, mR: 0.1), .collapsed)
        XCTAssertEqual(Verdict.of(diverged: false, zStd: 0.1, mO: 0.8, mR: 0.6), .partialCollapse)
        XCTAssertEqual(Verdict.of(diverged: false, zStd: 0.5, mO: 0.6, mR: 0.6), .trained)   // m_o > m_r is strict
    }
}
