import TestSupport
import Tensors
import XCTest

/// The autograd bookkeeping: gradients accumulate across backward calls, zeroGrad, noGrad,
/// backward from a non-scalar, stopGradient, and shape errors that name both shapes.
final class AutogradTests: XCTestCase {
    // MARK: - Autograd bookkeeping

    func testGradientsAccumulateAcrossBackwardCalls() throws {
        var rng = RNG(seed: 35)
        let x = randomTensor([3, 4], &rng), w = randomTensor([2, 4], &rng, -1, 1)
        w.setRequiresGrad(true)
        try sum(try linear(x, w) * linear(x, w)).backward()
        let g1 = w.grad!.array
        try mean(try linear(x, w)).backward()
        let g2only: [Float] = try {
            let w2 = w.detachedCopy(); w2.setRequiresGrad(true)
            try mean(try linear(x, w2)).backward()
            return w2.grad!.array
        }()
        assertClose(w.grad!.array, zip(g1, g2only).map { $0 + $1 }, rtol: 1e-6, atol: 1e-6, "grad of the first + second loss")
        w.zeroGrad()
        XCTAssertNil(w.grad, "zeroGrad clears the gradient")
        try mean(try linear(x, w)).backward()
        assertClose(w.grad!.array, g2only, rtol: 0, atol: 0, "after zeroGrad only the new gradient")
    }

    func testNoGradRecordsNothing() throws {
        var rng = RNG(seed: 36)
        let x = randomTensor([3, 4], &rng), w = randomTensor([2, 4], &rng)
        w.setRequiresGrad(true)
        let y = try noGrad { try mean(relu(try linear(x, w))) }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(y.isLeaf)
        XCTAssertThrowsError(try y.backward()) { e in
            guard case TensorError.notDifferentiable = e else { return XCTFail("\(e)") }
        }
        XCTAssertNil(w.grad)
        // Recording resumes afterwards; the values are the same.
        let z = try mean(relu(try linear(x, w)))
        XCTAssertTrue(z.requiresGrad)
        XCTAssertEqual(z.item, y.item)
        // Nested noGrad restores the enclosing mode.
        noGrad { noGrad {}; XCTAssertFalse(GradMode.isEnabled) }
        XCTAssertTrue(GradMode.isEnabled)
    }

    func testBackwardOnNonScalarThrows() throws {
        let x = Tensor.zeros([2, 2], requiresGrad: true)
        XCTAssertThrowsError(try scale(x, 2).backward())
    }

    func testStopGradientBlocksTheStoppedBranch() throws {
        // SimSiam shape: z = enc(x), p = pred(z), L = D(p, stopgrad(z)). The gradient must be
        // exactly the one obtained with z replaced by a constant copy in the second slot.
        var rng = RNG(seed: 37)
        let x = randomTensor([4, 3], &rng)
        let w1 = randomTensor([5, 3], &rng), w2 = randomTensor([5, 5], &rng)
        w1.setRequiresGrad(true); w2.setRequiresGrad(true)

        let z = try linear(x, w1), p = try linear(z, w2)
        try negativeCosine(p, stopGradient(z)).backward()
        let g1 = w1.grad!.array, g2 = w2.grad!.array
        w1.zeroGrad(); w2.zeroGrad()

        let zc = try linear(x, w1), pc = try linear(zc, w2)
        let constant = zc.detachedCopy()
        try negativeCosine(pc, constant).backward()
        XCTAssertEqual(w1.grad!.array, g1, "stopGradient: w1 gradient equals the constant-target gradient")
        XCTAssertEqual(w2.grad!.array, g2, "stopGradient: w2 gradient equals the constant-target gradient")

        // And it differs from the un-stopped loss (the stop really removed a path).
        w1.zeroGrad(); w2.zeroGrad()
        let zf = try linear(x, w1), pf = try linear(zf, w2)
        try negativeCosine(pf, zf).backward()
        let diff = zip(w1.grad!.array, g1).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(diff, 1e-3)

        // A stopped tensor needs no gradient and shares the values.
        let s = stopGradient(z)
        XCTAssertFalse(s.requiresGrad)
        XCTAssertEqual(s.array, z.array)
        // Finite differences of the stopped form w.r.t. p only match the analytic gradient.
        let target = z.detachedCopy()
        try gradCheck([p.detachedCopy()], h: 1e-3, rtol: 1e-2, atol: 1e-3, "negativeCosine(p, stopGradient(z))") { t in
            try negativeCosine(t[0], stopGradient(target))
        }
    }

    // MARK: - Shape errors name both shapes

    private func assertThrowsNaming(_ shapes: [[Int]], _ what: String, file: StaticString = #filePath, line: UInt = #line,
                                    _ body: () throws -> Tensor) {
        XCTAssertThrowsError(try body(), what, file: file, line: line) { e in
            let msg = "\(e)"
            for s in shapes {
                XCTAssertTrue(msg.contains("\(s)"), "\(what): message \"\(msg)\" does not name \(s)", file: file, line: line)
            }
        }
    }

    func testShapeErrorsNameBothShapes() throws {
        assertThrowsNaming([[2, 3], [4, 5]], "matmul") { try matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5])) }
        assertThrowsNaming([[3, 2], [4, 5]], "matmul transposeA") {
            try matmul(Tensor.zeros([3, 2]), Tensor.zeros([4, 5]), transposeA: true)
        }
        assertThrowsNaming([[4, 3], [5, 2]], "linear") { try linear(Tensor.zeros([4, 3]), Tensor.zeros([5, 2])) }
        assertThrowsNaming([[5, 2], [3]], "linear bias") {
            try linear(Tensor.zeros([4, 2]), Tensor.zeros([5, 2]), Tensor.zeros([3]))
        }
        assertThrowsNaming([[1, 3, 5, 5], [2, 2, 3, 3]], "conv2d channels") {
            try conv2d(Tensor.zeros([1, 3, 5, 5]), Tensor.zeros([2, 2, 3, 3]))
        }
        assertThrowsNaming([[1, 1, 2, 2], [1, 1, 3, 3]], "conv2d kernel larger than the input") {
            try conv2d(Tensor.zeros([1, 1, 2, 2]), Tensor.zeros([1, 1, 3, 3]))
        }
        assertThrowsNaming([[2, 3], [4]], "add") { try Tensor.zeros([2, 3]) + Tensor.zeros([4]) }
        assertThrowsNaming([[2, 3], [3, 1]], "mul") { try Tensor.zeros([2, 3]) * Tensor.zeros([3, 1]) }
        assertThrowsNaming([[2, 3], [2, 4]], "concat") { try concat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])]) }
        assertThrowsNaming([[2, 3], [2, 3, 1]], "concat rank") { try concat([Tensor.zeros([2, 3]), Tensor.zeros([2, 3, 1])]) }
        assertThrowsNaming([[4, 3], [2]], "batchNorm gamma") {
            try batchNorm(Tensor.zeros([4, 3]), gamma: Tensor.zeros([2]), beta: nil,
                          runningMean: Tensor.zeros([3]), runningVar: Tensor.full([3], 1), training: true)
        }
        assertThrowsNaming([[2, 4, 2, 2], [3]], "batchNorm running mean") {
            try batchNorm(Tensor.zeros([2, 4, 2, 2]), gamma: nil, beta: nil,
                          runningMean: Tensor.zeros([3]), runningVar: Tensor.full([4], 1), training: false)
        }
        assertThrowsNaming([[2, 3], [5]], "cosineSimilarity") { try cosineSimilarity(Tensor.zeros([2, 3]), Tensor.zeros([5])) }
    }
}
