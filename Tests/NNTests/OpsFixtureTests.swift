import TestSupport
import Foundation
import Tensors
import XCTest

/// Every op's forward output and its gradients against PyTorch 2 (fixture `ops`, written by
/// Tests/Fixtures/make_fixtures.py). For a case C the fixture holds the inputs C/<name>, the
/// output C/out, a fixed random upstream weight C/w and the gradients C/grad/<name> of
/// sum(out * w); here the same scalar is built as `sum(mul(out, w))` and back-propagated.
///
/// Tolerances: rtol 1e-4, atol 1e-5 (the defaults of `assertClose`) everywhere, none looser.
/// Inputs are O(1) and every output is a sum of at most 140 terms; the measured differences from
/// PyTorch (OpenBLAS vs PyTorch's kernels, different summation orders) are ≤ 5e-6 absolute and
/// ≤ 1e-5 relative, so the check has ≥ 10× headroom and still catches any formula error.
final class OpsFixtureTests: XCTestCase {
    /// The ops each test method covers; `testEveryFixtureCaseIsCovered` checks nothing is left out.
    static let opsByTest: [String: [String]] = [
        "matmul": ["matmul"], "linear": ["linear"], "conv2d": ["conv2d"], "batchNorm": ["batchNorm"],
        "pointwise": ["relu", "exp", "log", "scale"], "globalAvgPool": ["globalAvgPool"],
        "binary": ["add", "sub", "mul", "div"], "reduce": ["sum", "mean"],
        "normalize": ["l2Normalize", "softmax", "logSoftmax"], "shape": ["concat", "split", "reshape"],
        "losses": ["cosineSimilarity", "negativeCosine", "crossEntropy"],
    ]

    func testMatmulAllTransposeCases() throws { try runCases(of: "matmul", expectedCount: 4) }
    func testLinearWithAndWithoutBias() throws { try runCases(of: "linear", expectedCount: 2) }
    func testConv2dConfigurations() throws { try runCases(of: "conv2d", expectedCount: 3) }
    func testBatchNormTrainEvalAffineAndRunningStats() throws { try runCases(of: "batchNorm", expectedCount: 10) }
    func testPointwiseOps() throws { try runCases(of: "pointwise", expectedCount: 4) }
    func testGlobalAvgPool() throws { try runCases(of: "globalAvgPool", expectedCount: 1) }
    func testBroadcastingBinaryOps() throws { try runCases(of: "binary", expectedCount: 16) }
    func testSumAndMean() throws { try runCases(of: "reduce", expectedCount: 10) }
    func testNormalizeSoftmaxLogSoftmax() throws { try runCases(of: "normalize", expectedCount: 3) }
    func testConcatSplitReshape() throws { try runCases(of: "shape", expectedCount: 3) }
    func testCosineNegativeCosineCrossEntropy() throws { try runCases(of: "losses", expectedCount: 3) }

    func testEveryFixtureCaseIsCovered() throws {
        let covered = Set(Self.opsByTest.values.joined())
        for (name, c) in try Self.cases() {
            XCTAssertTrue(covered.contains(c.op), "fixture case \(name) (op \(c.op)) is not exercised by any test")
        }
    }

    // MARK: - Driver

    struct Case {
        let op: String
        let inputs: [String]
        let outputs: Int
        let settings: [String: Any]
    }

    static func fixture() throws -> Fixture { try Fixture.named("ops") }

    static func cases() throws -> [(String, Case)] {
        guard let raw = try fixture().meta["cases"] as? [String: [String: Any]] else {
            throw FixtureError("ops.json: meta.cases missing")
        }
        return raw.map { name, s in
            (name, Case(op: s["op"] as? String ?? "?", inputs: s["inputs"] as? [String] ?? [],
                        outputs: s["outputs"] as? Int ?? 1, settings: s))
        }.sorted { $0.0 < $1.0 }
    }

    func runCases(of group: String, expectedCount: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let ops = Set(Self.opsByTest[group] ?? [])
        let selected = try Self.cases().filter { ops.contains($0.1.op) }
        XCTAssertEqual(selected.count, expectedCount, "number of \(group) cases in ops.json", file: file, line: line)
        for (name, c) in selected { try check(name, c) }
    }

    /// Forward, compare outputs; backward of Σ sum(out_i * w_i), compare every input's gradient.
    func check(_ name: String, _ c: Case) throws {
        let fx = try Self.fixture()
        var inputs: [String: Tensor] = [:]
        for k in c.inputs { inputs[k] = try fx.tensor("\(name)/\(k)", requiresGrad: true) }
        // BN cases: running statistics go in (and are updated in place in training mode).
        let runningMean = fx.has("\(name)/running_mean") ? try fx.tensor("\(name)/running_mean") : nil
        let runningVar = fx.has("\(name)/running_var") ? try fx.tensor("\(name)/running_var") : nil

        let outs = try apply(c, inputs, runningMean: runningMean, runningVar: runningVar)
        XCTAssertEqual(outs.count, c.outputs, "\(name): number of outputs")
        var total: Tensor?
        for (i, out) in outs.enumerated() {
            let suffix = c.outputs == 1 ? "" : "\(i)"
            assertClose(out, try fx.tensor("\(name)/out\(suffix)"), rtol: 1e-4, atol: 1e-5, "\(name) output \(suffix)")
            let term = sum(try mul(out, fx.tensor("\(name)/w\(suffix)")))
            total = try total.map { try add($0, term) } ?? term
        }
        if let runningMean, let runningVar {
            assertClose(runningMean, try fx.tensor("\(name)/running_mean_after"), rtol: 1e-4, atol: 1e-5, "\(name) running_mean after")
            assertClose(runningVar, try fx.tensor("\(name)/running_var_after"), rtol: 1e-4, atol: 1e-5, "\(name) running_var after")
        }
        try XCTUnwrap(total, "\(name): no output").backward()
        for k in c.inputs {
            let g = try XCTUnwrap(inputs[k]?.grad, "\(name): no gradient for \(k)")
            assertClose(g, try fx.tensor("\(name)/grad/\(k)"), rtol: 1e-4, atol: 1e-5, "\(name) d/d\(k)")
        }
    }

    func apply(_ c: Case, _ x: [String: Tensor], runningMean: Tensor?, runningVar: Tensor?) throws -> [Tensor] {
        func t(_ k: String) throws -> Tensor { try XCTUnwrap(x[k], "input \(k)") }
        func int(_ k: String) throws -> Int { try XCTUnwrap(c.settings[k] as? Int, "setting \(k)") }
        func bool(_ k: String) throws -> Bool { try XCTUnwrap(c.settings[k] as? Bool, "setting \(k)") }
        switch c.op {
        case "matmul":
            return [try matmul(t("a"), t("b"), transposeA: bool("transposeA"), transposeB: bool("transposeB"))]
        case "linear":
            return [try linear(t("x"), t("weight"), x["bias"])]
        case "conv2d":
            return [try conv2d(t("x"), t("weight"), stride: int("stride"), padding: int("padding"))]
        case "batchNorm":
            let momentum = try XCTUnwrap(c.settings["momentum"] as? Double), eps = try XCTUnwrap(c.settings["eps"] as? Double)
            return [try batchNorm(t("x"), gamma: x["gamma"], beta: x["beta"],
                                  runningMean: XCTUnwrap(runningMean), runningVar: XCTUnwrap(runningVar),
                                  training: bool("training"), momentum: Float(momentum), eps: Float(eps),
                                  fuseReLU: bool("fuseReLU"))]
        case "relu": return [relu(try t("x"))]
        case "exp": return [exp(try t("x"))]
        case "log": return [log(try t("x"))]
        case "scale": return [scale(try t("x"), Float(try XCTUnwrap(c.settings["s"] as? Double)))]
        case "globalAvgPool": return [try globalAvgPool(t("x"))]
        case "add": return [try add(t("a"), t("b"))]
        case "sub": return [try sub(t("a"), t("b"))]
        case "mul": return [try mul(t("a"), t("b"))]
        case "div": return [try div(t("a"), t("b"))]
        case "sum", "mean":
            if let axis = c.settings["axis"] as? Int {
                let keep = try bool("keepDims")
                return [c.op == "sum" ? try sum(t("x"), axis: axis, keepDims: keep) : try mean(t("x"), axis: axis, keepDims: keep)]
            }
            return [c.op == "sum" ? sum(try t("x")) : mean(try t("x"))]
        case "l2Normalize": return [try l2Normalize(t("x"))]
        case "softmax": return [try softmax(t("x"))]
        case "logSoftmax": return [try logSoftmax(t("x"))]
        case "concat": return [try concat([t("a"), t("b")])]
        case "split": return try split(t("x"), sizes: XCTUnwrap(c.settings["sizes"] as? [Int]))
        case "reshape": return [try reshape(t("x"), XCTUnwrap(c.settings["shape"] as? [Int]))]
        case "cosineSimilarity": return [try cosineSimilarity(t("a"), t("b"))]
        case "negativeCosine": return [try negativeCosine(t("p"), t("z"))]
        case "crossEntropy": return [try crossEntropy(t("logits"), labels: XCTUnwrap(c.settings["labels"] as? [Int]))]
        default:
            throw FixtureError("no Swift counterpart for op \(c.op)")
        }
    }
}
