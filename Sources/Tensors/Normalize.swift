import Foundation

/// y = x / max(‖x‖₂, ε) along the last axis (PyTorch's F.normalize, ε = 1e-12).
///
/// Backward: dx = (dy − y·⟨y, dy⟩) / ‖x‖ where the norm exceeds ε, else dy / ε.
public func l2Normalize(_ x: Tensor, eps: Float = 1e-12) throws -> Tensor {
    guard x.rank >= 1, let d = x.shape.last, d > 0 else {
        throw TensorError.badShape(op: "l2Normalize", shape: x.shape, expected: "a non-empty last axis")
    }
    let rows = x.count / d
    let out = Storage(uninitializedCount: x.count)
    let norms = Storage(uninitializedCount: rows)
    let xp = x.pointer, y = out.pointer
    for r in 0..<rows {
        let src = xp + r * d, dst = y + r * d
        let nrm = vdot(src, src, d).squareRoot()
        norms.pointer[r] = nrm
        let inv = 1 / max(nrm, eps)
        for i in 0..<d { dst[i] = src[i] * inv }
    }
    return Tensor.result(x.shape, out, parents: [x]) { dy in
        x.accumulateGrad { g, overwrite in
            for r in 0..<rows {
                let yr = y + r * d, dyr = dy + r * d, gr = g + r * d
                let nrm = norms.pointer[r]
                let (k, proj): (Float, Float) = nrm > eps ? (1 / nrm, vdot(yr, dyr, d)) : (1 / eps, 0)
                for i in 0..<d {
                    let v = (dyr[i] - yr[i] * proj) * k
                    gr[i] = overwrite ? v : gr[i] + v
                }
            }
        }
        withExtendedLifetime((out, norms)) {}
    }
}

/// Softmax along the last axis (max-subtracted). Backward: dx = y·(dy − ⟨dy, y⟩).
public func softmax(_ x: Tensor) throws -> Tensor {
    let (rows, d) = try lastAxis("softmax", x)
    let out = Storage(uninitializedCount: x.count)
    let y = out.pointer
    for r in 0..<rows {
        let src = x.pointer + r * d, dst = y + r * d
        let lse = logSumExp(src, d)
        for i in 0..<d { dst[i] = Foundation.exp(src[i] - lse) }
    }
    return Tensor.result(x.shape, out, parents: [x]) { dy in
        x.accumulateGrad { g, overwrite in
            for r in 0..<rows {
                let yr = y + r * d, dyr = dy + r * d, gr = g + r * d
                let dot = vdot(yr, dyr, d)
                for i in 0..<d { let v = yr[i] * (dyr[i] - dot); gr[i] = overwrite ? v : gr[i] + v }
            }
        }
        withExtendedLifetime(out) {}
    }
}

/// log-softmax along the last axis (log-sum-exp). Backward: dx = dy − softmax·Σdy.
public func logSoftmax(_ x: Tensor) throws -> Tensor {
    let (rows, d) = try lastAxis("logSoftmax", x)
    let out = Storage(uninitializedCount: x.count)
    let y = out.pointer
    for r in 0..<rows {
        let src = x.pointer + r * d, dst = y + r * d
        let lse = logSumExp(src, d)
        for i in 0..<d { dst[i] = src[i] - lse }
    }
    return Tensor.result(x.shape, out, parents: [x]) { dy in
        x.accumulateGrad { g, overwrite in
            for r in 0..<rows {
                let yr = y + r * d, dyr = dy + r * d, gr = g + r * d
                let total = vsum(dyr, d)
                for i in 0..<d {
                    let v = dyr[i] - Foundation.exp(yr[i]) * total
                    gr[i] = overwrite ? v : gr[i] + v
                }
            }
        }
        withExtendedLifetime(out) {}
    }
}

/// log Σ exp(p[i]), shifted by the maximum so that nothing overflows.
private func logSumExp(_ p: UnsafePointer<Float>, _ d: Int) -> Float {
    var mx = -Float.infinity
    for i in 0..<d { mx = max(mx, p[i]) }
    var s: Float = 0
    for i in 0..<d { s += Foundation.exp(p[i] - mx) }
    return mx + Foundation.log(s)
}

private func lastAxis(_ op: String, _ x: Tensor) throws -> (rows: Int, d: Int) {
    guard x.rank >= 1, let d = x.shape.last, d > 0 else {
        throw TensorError.badShape(op: op, shape: x.shape, expected: "a non-empty last axis")
    }
    return (x.count / d, d)
}
