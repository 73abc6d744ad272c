/// C = op(A)·op(B) for 2-D tensors, with op = transpose when the flag is set (cblas_sgemm).
///
/// Backward: dA = dC·op(B)ᵀ and dB = op(A)ᵀ·dC, written back in the operands' stored layout.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
    guard a.rank == 2, b.rank == 2 else {
        throw TensorError.shapeMismatch(op: "matmul", lhs: a.shape, rhs: b.shape, expected: "two 2-D tensors")
    }
    let (m, ka) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    guard ka == kb else {
        throw TensorError.shapeMismatch(op: "matmul", lhs: a.shape, rhs: b.shape,
            expected: "inner sizes equal (op(A) is \(m)×\(ka), op(B) is \(kb)×\(n))")
    }
    let k = ka
    let out = Storage(uninitializedCount: m * n)
    sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, a: a.pointer, b: b.pointer, c: out.pointer)
    return Tensor.result([m, n], out, parents: [a, b]) { dc in
        if a.requiresGrad {
            a.accumulateGrad { ga, overwrite in
                if transposeA {   // dA (k×m) = op(B)·dCᵀ
                    sgemm(transA: transposeB, transB: true, m: k, n: m, k: n, a: b.pointer, b: dc,
                          beta: overwrite ? 0 : 1, c: ga)
                } else {          // dA (m×k) = dC·op(B)ᵀ
                    sgemm(transA: false, transB: !transposeB, m: m, n: k, k: n, a: dc, b: b.pointer,
                          beta: overwrite ? 0 : 1, c: ga)
                }
            }
        }
        if b.requiresGrad {
            b.accumulateGrad { gb, overwrite in
                if transposeB {   // dB (n×k) = dCᵀ·op(A)
                    sgemm(transA: true, transB: transposeA, m: n, n: k, k: m, a: dc, b: a.pointer,
                          beta: overwrite ? 0 : 1, c: gb)
                } else {          // dB (k×n) = op(A)ᵀ·dC
                    sgemm(transA: !transposeA, transB: false, m: k, n: n, k: m, a: a.pointer, b: dc,
                          beta: overwrite ? 0 : 1, c: gb)
                }
            }
        }
    }
}
