import TestSupport
import Tensors
import XCTest

/// Gradient checks of batch normalisation (train / eval, affine on / off, batch 2, fused ReLU).
final class BatchNormGradTests: XCTestCase {
    // MARK: - batchNorm

    /// Training-mode BN, affine and not, on inputs of the given shape.
    private func checkTrainingGradients(_ shape: [Int], seed: UInt64, _ label: String) throws {
        var rng = RNG(seed: seed)
        let c = shape[1]
        let x = bnInput(shape, &rng)
        let (g, b) = affineParams(c, &rng)
        let rm = Tensor.zeros([c]), rv = Tensor.full([c], 1)
        try gradCheck([x, g, b], h: 1e-3, rtol: 1e-2, atol: 2e-3, "\(label), affine") { t in
            try batchNorm(t[0], gamma: t[1], beta: t[2], runningMean: rm, runningVar: rv, training: true)
        }
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 2e-3, "\(label), no affine") { t in
            try batchNorm(t[0], gamma: nil, beta: nil, runningMean: rm, runningVar: rv, training: true)
        }
    }

    func testBatchNorm1dTrain() throws { try checkTrainingGradients([6, 3], seed: 6, "batchNorm1d train") }

    func testBatchNorm2dTrain() throws { try checkTrainingGradients([3, 3, 3, 4], seed: 7, "batchNorm2d train") }

    /// H·W = 20 > 16, so the SIMD16 loops of the kernels run their vector body and their tail.
    func testBatchNorm2dTrainWideChannels() throws { try checkTrainingGradients([2, 2, 4, 5], seed: 8, "batchNorm2d train, H·W = 20") }

    func testBatchNormTrainForwardAndRunningStats() throws {
        // One channel, values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased var 14/3.
        let x = try Tensor(shape: [4, 1], [1, 2, 3, 6])
        let g = try Tensor(shape: [1], [2]), b = try Tensor(shape: [1], [0.5])
        let rm = Tensor.zeros([1]), rv = Tensor.full([1], 1)
        let y = try batchNorm(x, gamma: g, beta: b, runningMean: rm, runningVar: rv, training: true)
        let r = 1 / (3.5 + 1e-5).squareRoot()
        assertClose(y.array, [-2, -1, 0, 3].map { Float(2 * $0 * r + 0.5) }, rtol: 1e-5, atol: 1e-5, "batchNorm forward")
        assertClose(rm.array, [0.3], rtol: 1e-6, atol: 1e-7, "running mean (momentum 0.1)")
        assertClose(rv.array, [Float(0.9 + 0.1 * 14.0 / 3)], rtol: 1e-6, atol: 1e-7, "running var (unbiased)")
    }

    func testBatchNorm1dBatchOfTwo() throws {
        var rng = RNG(seed: 9)
        let c = 3
        let x = bnInput([2, c], &rng)
        let (g, b) = affineParams(c, &rng)
        let rm = Tensor.zeros([c]), rv = Tensor.full([c], 1)
        // With N = 2 the normalised values are ±1 (up to ε), so dL/dx is tiny but must stay finite
        // and match; dγ and dβ are of order one.
        try gradCheck([x, g, b], h: 1e-3, rtol: 1e-2, atol: 2e-3, "batchNorm1d train, N = 2") { t in
            try batchNorm(t[0], gamma: t[1], beta: t[2], runningMean: rm, runningVar: rv, training: true)
        }
        let rm2 = Tensor.zeros([c]), rv2 = Tensor.full([c], 1)
        let y = try batchNorm(x, gamma: nil, beta: nil, runningMean: rm2, runningVar: rv2, training: true)
        let xv = x.array
        for ch in 0..<c {
            let d = Double(xv[ch]) - Double(xv[c + ch])
            let sign: Float = d > 0 ? 1 : -1
            assertClose([y.array[ch], y.array[c + ch]], [sign, -sign], rtol: 1e-4, atol: 1e-4, "N = 2 output, channel \(ch)")
            assertClose([rv2.array[ch]], [Float(0.9 + 0.1 * d * d / 2)], rtol: 1e-5, atol: 1e-6, "N = 2 running var, channel \(ch)")
        }
        // One value per channel cannot be normalised in training mode.
        XCTAssertThrowsError(try batchNorm(Tensor.zeros([1, c]), gamma: nil, beta: nil, runningMean: rm2, runningVar: rv2,
                                           training: true))
    }

    func testBatchNormEval() throws {
        var rng = RNG(seed: 10)
        let c = 3
        let rm = randomTensor([c], &rng, -0.5, 0.5), rv = randomTensor([c], &rng, 0.5, 2)
        let (g, b) = affineParams(c, &rng)
        for shape in [[4, c], [2, c, 2, 3]] {
            let x = bnInput(shape, &rng)
            let rmBefore = rm.array, rvBefore = rv.array
            try gradCheck([x, g, b], h: 1e-3, rtol: 1e-2, atol: 1e-3, "batchNorm eval \(shape), affine") { t in
                try batchNorm(t[0], gamma: t[1], beta: t[2], runningMean: rm, runningVar: rv, training: false)
            }
            try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "batchNorm eval \(shape), no affine") { t in
                try batchNorm(t[0], gamma: nil, beta: nil, runningMean: rm, runningVar: rv, training: false)
            }
            XCTAssertEqual(rm.array, rmBefore, "eval mode must not move the running mean")
            XCTAssertEqual(rv.array, rvBefore, "eval mode must not move the running var")
            // Values: (x − μ_run)/√(σ²_run + ε)·γ + β.
            let y = try batchNorm(x, gamma: g, beta: b, runningMean: rm, runningVar: rv, training: false)
            let hw = shape.count == 4 ? shape[2] * shape[3] : 1
            let xv = x.array
            var ref = [Float](repeating: 0, count: x.count)
            for i in 0..<x.count {
                let ch = (i / hw) % c
                ref[i] = (xv[i] - rmBefore[ch]) / (rvBefore[ch] + 1e-5).squareRoot() * g.array[ch] + b.array[ch]
            }
            assertClose(y.array, ref, rtol: 1e-5, atol: 1e-5, "batchNorm eval forward \(shape)")
        }
    }

    /// Draws BN inputs until every pre-activation is at least `margin` away from the ReLU kink,
    /// so that no finite-difference step crosses it. Deterministic: the draws come from `rng`.
    private func bnInputAwayFromKink(_ shape: [Int], gamma: Tensor?, beta: Tensor?, training: Bool,
                                     runningMean: Tensor, runningVar: Tensor, margin: Float,
                                     _ rng: inout RNG) throws -> Tensor {
        for _ in 0..<1000 {
            let x = bnInput(shape, &rng)
            let rm = runningMean.detachedCopy(), rv = runningVar.detachedCopy()
            let pre = try batchNorm(x, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv, training: training)
            if pre.array.allSatisfy({ abs($0) >= margin }) && pre.array.contains(where: { $0 < 0 }) { return x }
        }
        XCTFail("no input with all pre-activations at least \(margin) from 0")
        return bnInput(shape, &rng)
    }

    func testBatchNormFusedReLU() throws {
        var rng = RNG(seed: 11)
        let c = 2
        let (g, b) = affineParams(c, &rng)
        // H·W = 20 runs the 16-wide vector body of the masked reductions as well as their tail.
        for (shape, training) in [([8, c], true), ([2, c, 3, 3], true), ([2, c, 4, 5], true),
                                  ([5, c], false), ([2, c, 2, 3], false), ([1, c, 4, 5], false)] {
            let rm = training ? Tensor.zeros([c]) : randomTensor([c], &rng, -0.5, 0.5)
            let rv = training ? Tensor.full([c], 1) : randomTensor([c], &rng, 0.5, 2)
            let x = try bnInputAwayFromKink(shape, gamma: g, beta: b, training: training,
                                            runningMean: rm, runningVar: rv, margin: 0.05, &rng)
            try gradCheck([x, g, b], h: 1e-3, rtol: 1e-2, atol: 2e-3, "batchNorm fuseReLU \(shape) training \(training)") { t in
                try batchNorm(t[0], gamma: t[1], beta: t[2], runningMean: rm, runningVar: rv, training: training, fuseReLU: true)
            }
            // Fused equals batchNorm followed by relu, values and gradients.
            let rmA = rm.detachedCopy(), rvA = rv.detachedCopy(), rmB = rm.detachedCopy(), rvB = rv.detachedCopy()
            let fused = try batchNorm(x, gamma: g, beta: b, runningMean: rmA, runningVar: rvA, training: training, fuseReLU: true)
            let unfused = relu(try batchNorm(x, gamma: g, beta: b, runningMean: rmB, runningVar: rvB, training: training))
            assertClose(fused, unfused, rtol: 0, atol: 0, "fused vs unfused values")
            assertClose(rmA, rmB, rtol: 0, atol: 0, "fused vs unfused running mean")
        }
    }
}
