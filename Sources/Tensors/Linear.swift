/// y = x·Wᵀ + b, with x [N, in], W [out, in] (PyTorch's layout), b [out] or nil.
///
/// Backward: dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy.
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) throws -> Tensor {
    guard x.rank == 2, weight.rank == 2, x.shape[1] == weight.shape[1] else {
        throw TensorError.shapeMismatch(op: "linear", lhs: x.shape, rhs: weight.shape,
                                        expected: "input [N, in] and weight [out, in]")
    }
    let n = x.shape[0], fin = x.shape[1], fout = weight.shape[0]
    if let bias, bias.shape != [fout] {
        throw TensorError.shapeMismatch(op: "linear (bias)", lhs: weight.shape, rhs: bias.shape,
                                        expected: "bias [\(fout)]")
    }
    let out = Storage(uninitializedCount: n * fout)
    let y = out.pointer
    if let bias {
        for r in 0..<n { (y + r * fout).update(from: bias.pointer, count: fout) }
    }
    sgemm(transA: false, transB: true, m: n, n: fout, k: fin, a: x.pointer, b: weight.pointer,
          beta: bias == nil ? 0 : 1, c: y)
    let parents = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor.result([n, fout], out, parents: parents) { dy in
        if x.requiresGrad {
            x.accumulateGrad { gx, overwrite in
                sgemm(transA: false, transB: false, m: n, n: fin, k: fout, a: dy, b: weight.pointer,
                      beta: overwrite ? 0 : 1, c: gx)
            }
        }
        if weight.requiresGrad {
            weight.accumulateGrad { gw, overwrite in
                sgemm(transA: true, transB: false, m: fout, n: fin, k: n, a: dy, b: x.pointer,
                      beta: overwrite ? 0 : 1, c: gw)
            }
        }
        if let bias, bias.requiresGrad {
            // Σ_rows dy first, then added to the gradient (as PyTorch does): the same rounding
            // whatever the gradient held, so lanes that add it later give the same bits.
            let sums = Storage(repeating: 0, count: fout), s = sums.pointer
            for r in 0..<n {
                let row = dy + r * fout
                for j in 0..<fout { s[j] += row[j] }
            }
            bias.accumulateGrad { gb, overwrite in
                for j in 0..<fout { gb[j] = overwrite ? s[j] : gb[j] + s[j] }
            }
        }
    }
}
