/// Shape operations: reshape (shares storage), concat and slice along the batch axis 0.

/// The same values under another shape with the same element count.
public func reshape(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
    guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == x.count else {
        throw TensorError.shapeMismatch(op: "reshape", lhs: x.shape, rhs: shape, expected: "the same number of elements")
    }
    return Tensor.result(shape, x.storage, parents: [x]) { dy in
        x.accumulateGrad(from: dy)
    }
}

/// Stacks tensors along axis 0; all other axes must agree.
public func concat(_ xs: [Tensor]) throws -> Tensor {
    guard let first = xs.first else { throw TensorError.invalidArgument(op: "concat", message: "no tensors given") }
    let tail = Array(first.shape.dropFirst())
    for x in xs where x.rank != first.rank || Array(x.shape.dropFirst()) != tail {
        throw TensorError.shapeMismatch(op: "concat", lhs: first.shape, rhs: x.shape, expected: "equal sizes on every axis but the first")
    }
    let total = xs.reduce(0) { $0 + $1.count }
    let out = Storage(uninitializedCount: total)
    var offsets: [Int] = []
    var o = 0
    for x in xs { offsets.append(o); (out.pointer + o).update(from: x.pointer, count: x.count); o += x.count }
    let shape = [xs.reduce(0) { $0 + $1.shape[0] }] + tail
    return Tensor.result(shape, out, parents: xs) { dy in
        for (x, off) in zip(xs, offsets) where x.requiresGrad {
            x.accumulateGrad(from: dy + off)
        }
    }
}

/// Rows `range` of x along axis 0 (a copy).
public func slice(_ x: Tensor, _ range: Range<Int>) throws -> Tensor {
    guard x.rank >= 1, range.lowerBound >= 0, range.upperBound <= x.shape[0] else {
        throw TensorError.invalidArgument(op: "slice", message: "rows \(range) are outside 0..<\(x.shape.first ?? 0) of shape \(x.shape)")
    }
    let row = x.count / max(x.shape[0], 1)
    let out = Storage(uninitializedCount: range.count * row)
    out.pointer.update(from: x.pointer + range.lowerBound * row, count: range.count * row)
    let off = range.lowerBound * row, n = range.count * row
    return Tensor.result([range.count] + x.shape.dropFirst(), out, parents: [x]) { dy in
        x.accumulateGrad { g, overwrite in
            if overwrite { g.initialize(repeating: 0, count: x.count) }
            for i in 0..<n { g[off + i] += dy[i] }
        }
    }
}

/// Splits x along axis 0 into pieces of the given sizes (which must add up to x.shape[0]).
public func split(_ x: Tensor, sizes: [Int]) throws -> [Tensor] {
    guard x.rank >= 1, sizes.reduce(0, +) == x.shape[0], sizes.allSatisfy({ $0 >= 0 }) else {
        throw TensorError.invalidArgument(op: "split", message: "sizes \(sizes) do not add up to the first axis of shape \(x.shape)")
    }
    var start = 0
    return try sizes.map { n in defer { start += n }; return try slice(x, start..<start + n) }
}
