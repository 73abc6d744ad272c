/// Sums and means: over everything, or over one axis (keeping it as size 1 if asked).
/// Backward broadcasts the gradient back over the reduced elements.

public func sum(_ x: Tensor) -> Tensor {
    let out = Storage(repeating: vsum(x.pointer, x.count), count: 1)
    return Tensor.result([], out, parents: [x]) { dy in
        let g0 = dy[0]
        x.accumulateGrad { g, overwrite in
            if overwrite { g.initialize(repeating: g0, count: x.count) } else { for i in 0..<x.count { g[i] += g0 } }
        }
    }
}

public func mean(_ x: Tensor) -> Tensor { scale(sum(x), 1 / Float(max(x.count, 1))) }

public func sum(_ x: Tensor, axis: Int, keepDims: Bool = false) throws -> Tensor {
    guard axis >= 0 && axis < x.rank else {
        throw TensorError.invalidArgument(op: "sum", message: "axis \(axis) is out of range for shape \(x.shape)")
    }
    let outer = x.shape[..<axis].reduce(1, *), len = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
    var shape = x.shape
    if keepDims { shape[axis] = 1 } else { shape.remove(at: axis) }
    let out = Storage(repeating: 0, count: outer * inner)
    let xp = x.pointer, y = out.pointer
    for o in 0..<outer {
        for l in 0..<len {
            let src = xp + (o * len + l) * inner, dst = y + o * inner
            for i in 0..<inner { dst[i] += src[i] }
        }
    }
    return Tensor.result(shape, out, parents: [x]) { dy in
        x.accumulateGrad { g, overwrite in
            for o in 0..<outer {
                for l in 0..<len {
                    let dst = g + (o * len + l) * inner, src = dy + o * inner
                    writeOrAdd(src, into: dst, count: inner, overwrite: overwrite)
                }
            }
        }
    }
}

public func mean(_ x: Tensor, axis: Int, keepDims: Bool = false) throws -> Tensor {
    guard axis >= 0 && axis < x.rank else {
        throw TensorError.invalidArgument(op: "mean", message: "axis \(axis) is out of range for shape \(x.shape)")
    }
    return scale(try sum(x, axis: axis, keepDims: keepDims), 1 / Float(max(x.shape[axis], 1)))
}

/// [N, C, H, W] → [N, C], the mean over each H×W plane.
public func globalAvgPool(_ x: Tensor) throws -> Tensor {
    guard x.rank == 4 else { throw TensorError.badShape(op: "globalAvgPool", shape: x.shape, expected: "[N, C, H, W]") }
    let planes = x.shape[0] * x.shape[1], hw = x.shape[2] * x.shape[3]
    let out = Storage(uninitializedCount: planes)
    let inv = 1 / Float(hw)
    for p in 0..<planes { out.pointer[p] = vsum(x.pointer + p * hw, hw) * inv }
    return Tensor.result([x.shape[0], x.shape[1]], out, parents: [x]) { dy in
        x.accumulateGrad { g, overwrite in
            for p in 0..<planes {
                let v = dy[p] * inv, dst = g + p * hw
                if overwrite { dst.initialize(repeating: v, count: hw) } else { for i in 0..<hw { dst[i] += v } }
            }
        }
    }
}
