import Foundation
import TestSupport
import Tensors
import XCTest

/// Gradient checks of every primitive and composite against central finite differences
/// (see `gradCheck`). The autograd bookkeeping is in AutogradTests.
///
/// Tolerances: the ops are evaluated in Float32, so the finite difference carries roundoff of
/// roughly (ulp of the affected outputs)·√(count)/(2h) ≈ 1e-4 with h = 1e-3, plus a truncation
/// error h²·f‴/6 for the nonlinear ops. atol 1e-3 … 2e-3 and rtol 1e-2 leave a margin of ~10×
/// over that, while any real backward bug gives errors of order one.
final class FiniteDifferenceTests: XCTestCase {
    // MARK: - matmul, linear

    func testMatmulAllTransposeCases() throws {
        var rng = RNG(seed: 1)
        let m = 3, k = 4, n = 5
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomTensor(ta ? [k, m] : [m, k], &rng)
            let b = randomTensor(tb ? [n, k] : [k, n], &rng)
            try gradCheck([a, b], h: 1e-3, rtol: 1e-2, atol: 5e-4, "matmul(transposeA: \(ta), transposeB: \(tb))") { t in
                let c = try matmul(t[0], t[1], transposeA: ta, transposeB: tb)
                XCTAssertEqual(c.shape, [m, n])
                return c
            }
        }
    }

    func testMatmulValuesByHandTransposed() throws {
        // A = [[1, 2], [3, 4], [5, 6]] stored transposed as [2, 3]; B = [[1, 0, 2], [0, 1, 1]] stored as [3, 2].
        let at = try Tensor(shape: [2, 3], [1, 3, 5, 2, 4, 6])
        let bt = try Tensor(shape: [3, 2], [1, 0, 0, 1, 2, 1])
        let c = try matmul(at, bt, transposeA: true, transposeB: true)
        XCTAssertEqual(c.shape, [3, 3])
        assertClose(c.array, [1, 2, 4, 3, 4, 10, 5, 6, 16])
    }

    func testLinearWithBias() throws {
        var rng = RNG(seed: 2)
        let x = randomTensor([4, 3], &rng), w = randomTensor([5, 3], &rng), b = randomTensor([5], &rng)
        try gradCheck([x, w, b], h: 1e-3, rtol: 1e-2, atol: 5e-4, "linear with bias") { t in
            try linear(t[0], t[1], t[2])
        }
        // Values: x·Wᵀ + b.
        let y = try linear(x, w, b)
        let ref = try matmul(x, w, transposeB: true) + b
        assertClose(y, ref, rtol: 1e-6, atol: 1e-6, "linear forward")
    }

    func testLinearWithoutBias() throws {
        var rng = RNG(seed: 3)
        let x = randomTensor([6, 4], &rng), w = randomTensor([2, 4], &rng)
        try gradCheck([x, w], h: 1e-3, rtol: 1e-2, atol: 5e-4, "linear without bias") { t in
            try linear(t[0], t[1])
        }
    }

    // MARK: - conv2d

    func testConv2dGradients() throws {
        struct Case { let x: [Int], w: [Int], stride: Int, padding: Int, out: [Int] }
        let cases = [
            Case(x: [2, 3, 5, 5], w: [4, 3, 3, 3], stride: 1, padding: 1, out: [2, 4, 5, 5]),
            Case(x: [2, 2, 7, 6], w: [3, 2, 3, 3], stride: 2, padding: 1, out: [2, 3, 4, 3]),   // non-square, stride 2
            Case(x: [1, 2, 6, 5], w: [2, 2, 2, 3], stride: 2, padding: 0, out: [1, 2, 3, 2]),   // non-square kernel
            Case(x: [2, 1, 5, 7], w: [2, 1, 1, 1], stride: 1, padding: 0, out: [2, 2, 5, 7]),   // 1×1
            Case(x: [1, 2, 7, 7], w: [2, 2, 3, 3], stride: 3, padding: 2, out: [1, 2, 3, 3]),   // stride 3, wide padding
            Case(x: [1, 1, 4, 4], w: [1, 1, 3, 3], stride: 2, padding: 3, out: [1, 1, 4, 4]),   // windows entirely in the padding
            Case(x: [2, 2, 4, 5], w: [3, 2, 4, 5], stride: 1, padding: 0, out: [2, 3, 1, 1]),   // kernel = whole image
            // Kernel width 3, stride 2, padding 1 (the convnet's down-sampling), odd width: its own im2col/col2im.
            Case(x: [2, 2, 5, 7], w: [3, 2, 3, 3], stride: 2, padding: 1, out: [2, 3, 3, 4]),
            // K = C·KH·KW ≤ 16 runs as direct loops instead of GEMMs (the 1-channel first layer, K = 9).
            Case(x: [2, 1, 6, 5], w: [3, 1, 3, 3], stride: 2, padding: 1, out: [2, 3, 3, 3]),
        ]
        var rng = RNG(seed: 4)
        for c in cases {
            let x = randomTensor(c.x, &rng), w = randomTensor(c.w, &rng)
            try gradCheck([x, w], h: 1e-3, rtol: 1e-2, atol: 1e-3,
                          "conv2d x \(c.x) w \(c.w) stride \(c.stride) padding \(c.padding)") { t in
                let y = try conv2d(t[0], t[1], stride: c.stride, padding: c.padding)
                XCTAssertEqual(y.shape, c.out)
                return y
            }
        }
    }

    func testConv2dForwardMatchesDirectLoop() throws {
        var rng = RNG(seed: 5)
        let x = randomTensor([2, 3, 7, 6], &rng), w = randomTensor([4, 3, 3, 2], &rng)
        let stride = 2, pad = 1
        let y = try conv2d(x, w, stride: stride, padding: pad)
        let (n, c, h, wd) = (2, 3, 7, 6), (o, kh, kw) = (4, 3, 2)
        let oh = (h + 2 * pad - kh) / stride + 1, ow = (wd + 2 * pad - kw) / stride + 1
        XCTAssertEqual(y.shape, [n, o, oh, ow])
        let xv = x.array, wv = w.array
        var ref = [Float](repeating: 0, count: n * o * oh * ow)
        for b in 0..<n { for oc in 0..<o { for oy in 0..<oh { for ox in 0..<ow {
            var s: Double = 0
            for ic in 0..<c { for i in 0..<kh { for j in 0..<kw {
                let iy = oy * stride - pad + i, ix = ox * stride - pad + j
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                s += Double(xv[((b * c + ic) * h + iy) * wd + ix]) * Double(wv[((oc * c + ic) * kh + i) * kw + j])
            } } }
            ref[((b * o + oc) * oh + oy) * ow + ox] = Float(s)
        } } } }
        assertClose(y.array, ref, rtol: 1e-5, atol: 1e-5, "conv2d vs direct loop")
    }

    // MARK: - Elementwise

    func testReluAwayFromZero() throws {
        var rng = RNG(seed: 12)
        let x = randomTensorAwayFromZero([4, 5], &rng, minAbs: 0.05, maxAbs: 2)
        try gradCheck([x], h: 1e-3, rtol: 1e-3, atol: 1e-4, "relu") { t in relu(t[0]) }
    }

    func testReluGradientAtZeroIsZero() throws {
        let x = try Tensor(shape: [5], [0, -1, 2, 0, -0.0], requiresGrad: true)
        let y = relu(x)
        XCTAssertEqual(y.array, [0, 0, 2, 0, 0])
        try sum(y).backward()
        XCTAssertEqual(x.grad!.array, [0, 0, 1, 0, 0], "PyTorch convention: relu'(0) = 0")
        // The fused BN ReLU follows the same convention: an output of exactly 0 passes no gradient.
        let z = try Tensor(shape: [2, 1], [1, -1], requiresGrad: true)
        let rm = Tensor.zeros([1]), rv = Tensor.full([1], 1)
        let y0 = try batchNorm(z, gamma: nil, beta: nil, runningMean: rm, runningVar: rv, training: false).array[0]
        let beta = try Tensor(shape: [1], [-y0], requiresGrad: true)   // shift = −y0: outputs exactly 0 and < 0
        let out = try batchNorm(z, gamma: nil, beta: beta, runningMean: rm, runningVar: rv, training: false, fuseReLU: true)
        XCTAssertEqual(out.array, [0, 0])
        try sum(out).backward()
        XCTAssertEqual(z.grad!.array, [0, 0])
        XCTAssertEqual(beta.grad!.array, [0])
    }

    func testGlobalAvgPool() throws {
        var rng = RNG(seed: 13)
        let x = randomTensor([2, 3, 4, 5], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-3, atol: 1e-4, "globalAvgPool") { t in try globalAvgPool(t[0]) }
        let y = try globalAvgPool(x)
        XCTAssertEqual(y.shape, [2, 3])
        let xv = x.array
        assertClose(y.array, (0..<6).map { p in xv[(p * 20)..<(p * 20 + 20)].reduce(0, +) / 20 }, rtol: 1e-5, atol: 1e-6)
    }

    /// Shape pairs that broadcast: both directions of [N, D] vs [D], [N, 1], [1, D], plus
    /// both operands broadcast at once, equal shapes, a scalar and a per-channel [C, 1, 1].
    private let broadcastPairs: [([Int], [Int], [Int])] = [
        ([3, 4], [3, 4], [3, 4]),
        ([3, 4], [4], [3, 4]), ([4], [3, 4], [3, 4]),
        ([3, 4], [3, 1], [3, 4]), ([3, 1], [3, 4], [3, 4]),
        ([3, 4], [1, 4], [3, 4]), ([1, 4], [3, 4], [3, 4]),
        ([3, 1], [1, 4], [3, 4]), ([1, 4], [3, 1], [3, 4]),
        ([3, 4], [], [3, 4]), ([], [3, 4], [3, 4]),
        ([2, 3, 2, 2], [3, 1, 1], [2, 3, 2, 2]),
    ]

    private func checkBinary(_ name: String, seed: UInt64, divisor: Bool,
                             _ op: @escaping (Tensor, Tensor) throws -> Tensor) throws {
        var rng = RNG(seed: seed)
        for (sa, sb, so) in broadcastPairs {
            let a = randomTensor(sa, &rng)
            let b = divisor ? randomTensorAwayFromZero(sb, &rng, minAbs: 0.5, maxAbs: 1.5) : randomTensor(sb, &rng)
            try gradCheck([a, b], h: 1e-3, rtol: 1e-2, atol: 1e-3, "\(name) \(sa) with \(sb)") { t in
                let y = try op(t[0], t[1])
                XCTAssertEqual(y.shape, so)
                return y
            }
        }
    }

    func testAddBroadcasting() throws { try checkBinary("add", seed: 14, divisor: false) { try $0 + $1 } }
    func testSubBroadcasting() throws { try checkBinary("sub", seed: 15, divisor: false) { try $0 - $1 } }
    func testMulBroadcasting() throws { try checkBinary("mul", seed: 16, divisor: false) { try $0 * $1 } }
    func testDivBroadcasting() throws { try checkBinary("div", seed: 17, divisor: true) { try $0 / $1 } }

    func testBroadcastValues() throws {
        let a = try Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try (a + Tensor(shape: [3], [10, 20, 30])).array, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual(try (a - Tensor(shape: [2, 1], [1, 2])).array, [0, 1, 2, 2, 3, 4])
        XCTAssertEqual(try (Tensor(shape: [1, 3], [2, 2, 2]) * a).array, [2, 4, 6, 8, 10, 12])
        XCTAssertEqual(try (Tensor(shape: [2, 1], [6, 12]) / Tensor(shape: [1, 3], [1, 2, 3])).array, [6, 3, 2, 12, 6, 4])
    }

    func testSameTensorAsBothOperands() throws {
        var rng = RNG(seed: 18)
        let x = randomTensor([3, 4], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "x * x") { t in try t[0] * t[0] }
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "concat([x, x])") { t in try concat([t[0], t[0]]) }
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "x·xᵀ") { t in try matmul(t[0], t[0], transposeB: true) }
    }

    func testSharedSubexpressions() throws {
        // A diamond-shaped graph: y1 feeds three later nodes, y2 two. Backward must visit every
        // node after all of its consumers (topological order) and sum the contributions.
        var rng = RNG(seed: 39)
        let x = randomTensor([2, 3], &rng), v = randomTensor([3], &rng)
        try gradCheck([x, v], h: 1e-3, rtol: 1e-2, atol: 1e-3, "diamond") { t in
            let y1 = scale(t[0], 0.5)
            let y2 = exp(y1)
            let y3 = try y1 * y2 + t[1]
            let y4 = try reshape(y3, [3, 2])
            let y5 = try matmul(y4, y1)          // [3, 2]·[2, 3]
            return try concat([y5, y2 * t[1], y1])
        }
    }

    func testExp() throws {
        var rng = RNG(seed: 19)
        let x = randomTensor([3, 5], &rng, -2, 2)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "exp") { t in exp(t[0]) }
    }

    func testLog() throws {
        var rng = RNG(seed: 20)
        let x = randomTensor([3, 5], &rng, 0.5, 3)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "log") { t in log(t[0]) }
    }

    func testScale() throws {
        var rng = RNG(seed: 21)
        let x = randomTensor([3, 5], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "scale") { t in scale(t[0], -2.5) }
    }

    // MARK: - Reductions

    func testSumAndMeanAll() throws {
        var rng = RNG(seed: 22)
        let x = randomTensor([3, 4], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "sum") { t in sum(t[0]) }
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "mean") { t in mean(t[0]) }
        XCTAssertEqual(sum(x).shape, [])
        assertClose([sum(x).item], [x.array.reduce(0, +)], rtol: 1e-6, atol: 1e-6)
        assertClose([mean(x).item], [x.array.reduce(0, +) / 12], rtol: 1e-6, atol: 1e-6)
    }

    func testSumAndMeanOverAxis() throws {
        var rng = RNG(seed: 23)
        let x = randomTensor([3, 4], &rng)
        let x3 = randomTensor([2, 3, 4], &rng)
        for keep in [false, true] {
            for axis in [0, 1] {
                try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "sum axis \(axis) keepDims \(keep)") { t in
                    let y = try sum(t[0], axis: axis, keepDims: keep)
                    XCTAssertEqual(y.shape, keep ? (axis == 0 ? [1, 4] : [3, 1]) : (axis == 0 ? [4] : [3]))
                    return y
                }
                try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "mean axis \(axis) keepDims \(keep)") { t in
                    try mean(t[0], axis: axis, keepDims: keep)
                }
            }
            for axis in [0, 1, 2] {
                try gradCheck([x3], h: 1e-3, rtol: 1e-2, atol: 1e-3, "sum [2, 3, 4] axis \(axis) keepDims \(keep)") { t in
                    try sum(t[0], axis: axis, keepDims: keep)
                }
            }
        }
        let v = try Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try sum(v, axis: 0).array, [5, 7, 9])
        XCTAssertEqual(try sum(v, axis: 1, keepDims: true).array, [6, 15])
        XCTAssertEqual(try mean(v, axis: 1).array, [2, 5])
        XCTAssertThrowsError(try sum(v, axis: 2))
    }

    // MARK: - Normalisation, softmax

    func testL2Normalize() throws {
        var rng = RNG(seed: 24)
        let x = randomTensor([4, 5], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "l2Normalize") { t in try l2Normalize(t[0]) }
        let wide = randomTensor([2, 37], &rng)   // SIMD body plus tail in vdot
        try gradCheck([wide], h: 1e-3, rtol: 1e-2, atol: 1e-3, "l2Normalize D = 37") { t in try l2Normalize(t[0]) }
        let y = try l2Normalize(try Tensor(shape: [1, 2], [3, 4]))
        assertClose(y.array, [0.6, 0.8])
    }

    func testSoftmax() throws {
        var rng = RNG(seed: 25)
        let x = randomTensor([3, 5], &rng, -2, 2)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "softmax") { t in try softmax(t[0]) }
        let y = try softmax(try Tensor(shape: [1, 3], [1, 2, 3]))
        let e = [1, 2, 3].map { Foundation.exp(Double($0)) }, s = e.reduce(0, +)
        assertClose(y.array, e.map { Float($0 / s) }, rtol: 1e-6, atol: 1e-7)
    }

    func testLogSoftmax() throws {
        var rng = RNG(seed: 26)
        let x = randomTensor([3, 5], &rng, -2, 2)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "logSoftmax") { t in try logSoftmax(t[0]) }
        // Large logits stay finite (max subtraction).
        let y = try logSoftmax(try Tensor(shape: [1, 2], [1000, 0]))
        assertClose(y.array, [0, -1000], rtol: 1e-6, atol: 1e-6)
    }

    // MARK: - Shape ops

    func testConcat() throws {
        var rng = RNG(seed: 27)
        let a = randomTensor([2, 3], &rng), b = randomTensor([3, 3], &rng), c = randomTensor([1, 3], &rng)
        try gradCheck([a, b, c], h: 1e-3, rtol: 1e-2, atol: 1e-3, "concat 2-D") { t in
            let y = try concat(t)
            XCTAssertEqual(y.shape, [6, 3])
            return y
        }
        let p = randomTensor([1, 2, 2, 2], &rng), q = randomTensor([2, 2, 2, 2], &rng)
        try gradCheck([p, q], h: 1e-3, rtol: 1e-2, atol: 1e-3, "concat 4-D") { t in try concat(t) }
        XCTAssertEqual(try concat([a, b, c]).array, a.array + b.array + c.array)
    }

    func testSlice() throws {
        var rng = RNG(seed: 28)
        let x = randomTensor([5, 3], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "slice 1..<4") { t in
            let y = try slice(t[0], 1..<4)
            XCTAssertEqual(y.shape, [3, 3])
            return y
        }
        XCTAssertEqual(try slice(x, 1..<4).array, Array(x.array[3..<12]))
        XCTAssertThrowsError(try slice(x, 3..<6))
    }

    func testSplit() throws {
        var rng = RNG(seed: 29)
        let x = randomTensor([6, 2], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "split [1, 3, 2]") { t in
            let parts = try split(t[0], sizes: [1, 3, 2])
            XCTAssertEqual(parts.map(\.shape), [[1, 2], [3, 2], [2, 2]])
            return parts
        }
        // Only some pieces used: the unused rows get zero gradient.
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "split, middle piece only") { t in
            try split(t[0], sizes: [2, 2, 2])[1]
        }
        XCTAssertThrowsError(try split(x, sizes: [2, 2]))
    }

    func testReshape() throws {
        var rng = RNG(seed: 30)
        let x = randomTensor([2, 6], &rng)
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "reshape") { t in
            // A nonlinearity after the reshape so that the gradient depends on the layout.
            try reshape(t[0], [3, 4]) * reshape(t[0], [3, 4])
        }
        try gradCheck([x], h: 1e-3, rtol: 1e-2, atol: 1e-3, "reshape to rank 3, then sum over an axis") { t in
            try sum(try reshape(t[0], [2, 3, 2]), axis: 1)
        }
        XCTAssertEqual(try reshape(x, [4, 3]).array, x.array)
        XCTAssertThrowsError(try reshape(x, [5, 2])) { e in
            XCTAssertTrue("\(e)".contains("[2, 6]") && "\(e)".contains("[5, 2]"), "\(e)")
        }
    }

    // MARK: - Composites

    func testCosineSimilarity() throws {
        var rng = RNG(seed: 31)
        let a = randomTensor([4, 5], &rng), b = randomTensor([4, 5], &rng)
        try gradCheck([a, b], h: 1e-3, rtol: 1e-2, atol: 1e-3, "cosineSimilarity") { t in try cosineSimilarity(t[0], t[1]) }
        let s = try cosineSimilarity(try Tensor(shape: [2, 2], [1, 0, 1, 1]), try Tensor(shape: [2, 2], [0, 2, 2, 2]))
        assertClose(s.array, [0, 1], rtol: 1e-6, atol: 1e-6)
    }

    func testNegativeCosine() throws {
        var rng = RNG(seed: 32)
        let p = randomTensor([4, 5], &rng), z = randomTensor([4, 5], &rng)
        try gradCheck([p, z], h: 1e-3, rtol: 1e-2, atol: 1e-3, "negativeCosine") { t in try negativeCosine(t[0], t[1]) }
        let same = try negativeCosine(p, p)
        assertClose([same.item], [-1], rtol: 1e-6, atol: 1e-6)
    }

    /// NT-Xent against finite differences, and its value against a direct double-precision sum.
    func testNTXent() throws {
        var rng = RNG(seed: 34)
        let a = randomTensor([3, 4], &rng), b = randomTensor([3, 4], &rng)
        try gradCheck([a, b], h: 1e-3, rtol: 1e-2, atol: 1e-3, "ntXent") { t in try ntXent(t[0], t[1], temperature: 0.5) }
        let rows = (0..<3).map { Array(a.array[($0 * 4)..<($0 * 4 + 4)]) } + (0..<3).map { Array(b.array[($0 * 4)..<($0 * 4 + 4)]) }
        let unit = rows.map { r -> [Double] in let n = r.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot(); return r.map { Double($0) / n } }
        var ref = 0.0
        for i in 0..<6 {
            let logits = (0..<6).map { j in zip(unit[i], unit[j]).reduce(0.0) { $0 + $1.0 * $1.1 } / 0.5 }
            let others = (0..<6).filter { $0 != i }.map { Foundation.exp(logits[$0]) }.reduce(0, +)
            ref += -(logits[(i + 3) % 6] - Foundation.log(others))
        }
        assertClose([try ntXent(a, b, temperature: 0.5).item], [Float(ref / 6)], rtol: 1e-5, atol: 1e-6)
    }

    /// InfoNCE against finite differences, and its value against a direct double-precision sum
    /// over each query's own key and the negatives only.
    func testInfoNCE() throws {
        var rng = RNG(seed: 35)
        let q = randomTensor([3, 4], &rng), k = randomTensor([3, 4], &rng), queue = randomTensor([5, 4], &rng)
        try gradCheck([q, k, queue], h: 1e-3, rtol: 1e-2, atol: 1e-3, "infoNCE") { t in
            try infoNCE(query: t[0], key: t[1], negatives: t[2], temperature: 0.2)
        }
        let dot = { (x: Tensor, i: Int, y: Tensor, j: Int) in (0..<4).reduce(0.0) { $0 + Double(x.array[i * 4 + $1] * y.array[j * 4 + $1]) } / 0.2 }
        var ref = 0.0
        for i in 0..<3 {
            let pos = dot(q, i, k, i), neg = (0..<5).map { dot(q, i, queue, $0) }
            ref += -(pos - Foundation.log(([pos] + neg).map { Foundation.exp($0) }.reduce(0, +)))
        }
        assertClose([try infoNCE(query: q, key: k, negatives: queue, temperature: 0.2).item], [Float(ref / 3)], rtol: 1e-5, atol: 1e-6)
    }

    func testCrossEntropy() throws {
        var rng = RNG(seed: 33)
        let logits = randomTensor([5, 4], &rng, -2, 2)
        let labels = [0, 3, 1, 1, 2]
        try gradCheck([logits], h: 1e-3, rtol: 1e-2, atol: 1e-3, "crossEntropy") { t in try crossEntropy(t[0], labels: labels) }
        // Value: mean of −log softmax[label].
        let lv = logits.array
        var ref = 0.0
        for (i, y) in labels.enumerated() {
            let row = lv[(i * 4)..<(i * 4 + 4)].map(Double.init)
            ref -= row[y] - Foundation.log(row.map { Foundation.exp($0) }.reduce(0, +))
        }
        assertClose([try crossEntropy(logits, labels: labels).item], [Float(ref / 5)], rtol: 1e-5, atol: 1e-6)
        XCTAssertThrowsError(try crossEntropy(logits, labels: [0, 1, 2, 3, 4]))
        XCTAssertThrowsError(try crossEntropy(logits, labels: [0, 1]))
    }

    func testSmallNetworkEndToEnd() throws {
        // conv → BN → (ReLU away from kinks is not guaranteed, so exp) → pool → linear → cross-entropy.
        var rng = RNG(seed: 34)
        let x = randomTensor([3, 2, 4, 4], &rng), w = randomTensor([3, 2, 3, 3], &rng, -0.5, 0.5)
        let g = randomTensor([3], &rng, 0.5, 1.5), b = randomTensor([3], &rng, -0.5, 0.5)
        let fc = randomTensor([4, 3], &rng), fb = randomTensor([4], &rng)
        let rm = Tensor.zeros([3]), rv = Tensor.full([3], 1)
        try gradCheck([x, w, g, b, fc, fb], h: 1e-3, rtol: 1e-2, atol: 2e-3, "conv-bn-exp-pool-linear-CE") { t in
            let h1 = try conv2d(t[0], t[1], stride: 1, padding: 1)
            let h2 = try batchNorm(h1, gamma: t[2], beta: t[3], runningMean: rm, runningVar: rv, training: true)
            let h3 = try globalAvgPool(exp(scale(h2, 0.5)))
            return try crossEntropy(try linear(h3, t[4], t[5]), labels: [1, 3, 0])
        }
    }

    func testLargeShapesUseTheParallelPaths() throws {
        // Big enough that parallelFor splits the work over threads (count·cost ≥ 32768) in im2col,
        // col2im, the NCHW permutes, batchNorm forward/backward and the unary ops; a sample of
        // elements of each input is checked. Larger sums of roundoff here, so conv and BN take
        // h = 1e-2 (conv is linear: no truncation error; BN's is O(h²/M)).
        XCTAssertGreaterThan(parallelThreads, 0)
        var rng = RNG(seed: 38)
        let x = randomTensor([8, 8, 16, 16], &rng), w = randomTensor([16, 8, 3, 3], &rng, -0.3, 0.3)
        for stride in [1, 2] {
            try gradCheck([x, w], h: 1e-2, rtol: 1e-2, atol: 2e-3, sample: 12, "large conv2d stride \(stride)") { t in
                try conv2d(t[0], t[1], stride: stride, padding: 1)
            }
        }
        let (g, b) = affineParams(8, &rng)
        let rm = Tensor.zeros([8]), rv = Tensor.full([8], 1)
        let xb = bnInput([8, 8, 16, 16], &rng)
        try gradCheck([xb, g, b], h: 1e-2, rtol: 1e-2, atol: 2e-3, sample: 12, "large batchNorm2d train") { t in
            try batchNorm(t[0], gamma: t[1], beta: t[2], runningMean: rm, runningVar: rv, training: true)
        }
        let u = randomTensor([200, 200], &rng, -2, 2)
        try gradCheck([u], h: 1e-3, rtol: 1e-2, atol: 1e-3, sample: 16, "large exp") { t in exp(t[0]) }
        try gradCheck([u], h: 1e-3, rtol: 1e-2, atol: 1e-3, sample: 16, "large scale") { t in scale(t[0], 0.5) }
        // Parallel forward values equal a serial reference.
        let e = exp(u).array, uv = u.array
        XCTAssertEqual(e, uv.map { Foundation.exp($0) })
        XCTAssertEqual(relu(u).array, uv.map { max($0, 0) })
    }
}
