import TestSupport
import Foundation
import Tensors
import XCTest

// MARK: - Seeded test inputs

/// Uniform values in [low, high) from the project's seeded RNG.
func randomTensor(_ shape: [Int], _ rng: inout RNG, _ low: Float = -1, _ high: Float = 1) -> Tensor {
    Tensor.uniform(shape, low, high, rng: &rng)
}

/// Values whose magnitude lies in [minAbs, maxAbs) with a random sign: keeps inputs away from a
/// kink at 0 (relu) or a pole at 0 (div) by more than any finite-difference step.
func randomTensorAwayFromZero(_ shape: [Int], _ rng: inout RNG, minAbs: Float, maxAbs: Float) -> Tensor {
    let n = shape.reduce(1, *)
    var v = [Float](repeating: 0, count: n)
    for i in 0..<n {
        let m = rng.uniform(minAbs, maxAbs)
        v[i] = rng.uniform() < 0.5 ? -m : m
    }
    return try! Tensor(shape: shape, v)
}

// MARK: - Finite-difference gradient check

/// Checks the analytic gradient of every input of `f` against central finite differences.
///
/// The scalar objective is L = Σ_i w_i·y_i over all elements of all outputs, with fixed random
/// weights w ∈ [−1, 1) (Float32 values, so the same numbers are exact in Double). The analytic
/// side builds L in the graph as Σ sum(y ⊙ w) and calls `backward()`; since dL/dy = w exactly,
/// this checks `f`'s backward. The numeric side never touches autograd: for every input element
/// x_j it evaluates f (in Float32, under `noGrad`) at x_j ± h_j, accumulates L in Double, and
/// divides by the step actually taken in Float32, (x_j + h_j) − (x_j − h_j).
/// The step is relative-ish: h_j = h·max(1, |x_j|).
///
/// Accumulation is checked too: a second forward + backward must double every gradient
/// (this exercises each op's "add into an existing gradient" branch).
///
/// Tolerances are explicit: |analytic − numeric| ≤ atol + rtol·|numeric| for every element.
/// `sample`: for large inputs (which exercise the multi-threaded paths), check only this many
/// elements of each input, drawn from the seeded RNG; nil checks every element.
func gradCheck(
    _ inputs: [Tensor], h: Double, rtol: Float, atol: Float, seed: UInt64 = 0x5EED, sample: Int? = nil,
    _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Tensor]) throws -> [Tensor]
) throws {
    for x in inputs {
        XCTAssertTrue(x.isLeaf, "\(what): gradCheck inputs must be leaves", file: file, line: line)
        x.setRequiresGrad(true)
        x.zeroGrad()
    }

    // Fixed random weights, one per output element.
    let probe = try f(inputs)
    XCTAssertFalse(probe.isEmpty, "\(what): no outputs", file: file, line: line)
    var rng = RNG(seed: seed)
    let weights: [[Float]] = probe.map { y in (0..<y.count).map { _ in rng.uniform(-1, 1) } }
    let weightTensors = try zip(probe, weights).map { y, w in try Tensor(shape: y.shape, w) }

    // Analytic: L = Σ sum(y ⊙ w) in the graph, then backward.
    func analyticPass() throws -> [[Float]] {
        for x in inputs { x.zeroGrad() }
        let ys = try f(inputs)
        XCTAssertTrue(ys.contains { $0.requiresGrad }, "\(what): no output requires grad", file: file, line: line)
        var loss: Tensor?
        for (y, w) in zip(ys, weightTensors) where y.requiresGrad {
            let term = sum(try y * w)
            loss = try loss.map { try $0 + term } ?? term
        }
        guard let loss else { XCTFail("\(what): no output requires grad", file: file, line: line); return [] }
        try loss.backward()
        return inputs.map { $0.grad?.array ?? [] }
    }
    let analytic = try analyticPass()
    guard analytic.count == inputs.count else { return }

    // Accumulation: a second pass without zeroGrad adds the same gradient again.
    do {
        let ys = try f(inputs)
        var loss: Tensor?
        for (y, w) in zip(ys, weightTensors) where y.requiresGrad {
            let term = sum(try y * w)
            loss = try loss.map { try $0 + term } ?? term
        }
        try loss?.backward()
        for (j, x) in inputs.enumerated() {
            assertClose(x.grad?.array ?? [], analytic[j].map { 2 * $0 }, rtol: 1e-5, atol: 1e-6,
                        "\(what): input \(j) gradient after a second backward() (accumulation)", file: file, line: line)
            x.zeroGrad()
        }
    }

    // Numeric: central differences of the same L, accumulated in Double.
    func objective() throws -> Double {
        let ys = try noGrad { try f(inputs) }
        var total = 0.0
        for (y, w) in zip(ys, weights) {
            let p = y.pointer
            for i in 0..<y.count { total += Double(w[i]) * Double(p[i]) }
        }
        return total
    }
    for (j, x) in inputs.enumerated() {
        let elements = sample.map { k in Array(rng.permutation(x.count).prefix(k)).sorted() } ?? Array(0..<x.count)
        var numeric = [Float](repeating: 0, count: elements.count)
        let p = x.pointer
        for (slot, e) in elements.enumerated() {
            let orig = p[e]
            let step = h * max(1, Double(abs(orig)))
            let plus = Float(Double(orig) + step), minus = Float(Double(orig) - step)
            p[e] = plus
            let lp = try objective()
            p[e] = minus
            let lm = try objective()
            p[e] = orig
            numeric[slot] = Float((lp - lm) / (Double(plus) - Double(minus)))
        }
        guard analytic[j].count == x.count else {
            XCTFail("\(what): input \(j) \(x.shape) got no gradient", file: file, line: line)
            continue
        }
        let checked = elements.map { analytic[j][$0] }
        if ProcessInfo.processInfo.environment["GRADCHECK_VERBOSE"] != nil {
            // The worst element's share of its tolerance (≤ 1 passes): how much margin the check has.
            let worst = zip(checked, numeric).map { a, n in abs(a - n) / (atol + rtol * abs(n)) }.max() ?? 0
            print(String(format: "gradCheck %-60@ input %d: worst error / tolerance = %.3f", what as NSString, j, worst))
        }
        assertClose(checked, numeric, rtol: rtol, atol: atol,
                    "\(what): input \(j) \(x.shape) analytic vs finite differences"
                        + (sample == nil ? "" : " (index = position among the sampled elements \(elements.prefix(8))…)"),
                    file: file, line: line)
    }
}

/// Single-output form.
func gradCheck(
    _ inputs: [Tensor], h: Double, rtol: Float, atol: Float, seed: UInt64 = 0x5EED, sample: Int? = nil,
    _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Tensor]) throws -> Tensor
) throws {
    try gradCheck(inputs, h: h, rtol: rtol, atol: atol, seed: seed, sample: sample, what, file: file, line: line) { [try f($0)] }
}

// MARK: - Batch-norm inputs (shared by the BN and finite-difference tests)

/// Per-channel affine parameters away from zero.
func affineParams(_ c: Int, _ rng: inout RNG) -> (Tensor, Tensor) {
    (randomTensor([c], &rng, 0.5, 1.5), randomTensor([c], &rng, -0.5, 0.5))
}

/// Inputs with a different mean and spread per channel.
func bnInput(_ shape: [Int], _ rng: inout RNG) -> Tensor {
    let x = randomTensor(shape, &rng, -1, 1)
    let c = shape[1], hw = shape.count == 4 ? shape[2] * shape[3] : 1
    let p = x.pointer
    for b in 0..<shape[0] { for ch in 0..<c { for i in 0..<hw {
        let idx = (b * c + ch) * hw + i
        p[idx] = p[idx] * Float(1 + ch) + Float(ch) - 1   // channel ch: spread 1+ch, mean ch−1
    } } }
    return x
}
