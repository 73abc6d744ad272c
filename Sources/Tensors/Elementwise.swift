/// Elementwise add / sub / mul / div with NumPy broadcasting (a size-1 or missing leading axis
/// repeats), plus unary relu / exp / log / scale. Backward reduces over the broadcast axes.

public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try binary("add", a, b, { $0 + $1 }, da: { _, _ in 1 }, db: { _, _ in 1 })
}
public func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try binary("sub", a, b, { $0 - $1 }, da: { _, _ in 1 }, db: { _, _ in -1 })
}
public func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try binary("mul", a, b, { $0 * $1 }, da: { _, b in b }, db: { a, _ in a })
}
public func div(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try binary("div", a, b, { $0 / $1 }, da: { _, b in 1 / b }, db: { a, b in -a / (b * b) })
}

public func + (a: Tensor, b: Tensor) throws -> Tensor { try add(a, b) }
public func - (a: Tensor, b: Tensor) throws -> Tensor { try sub(a, b) }
public func * (a: Tensor, b: Tensor) throws -> Tensor { try mul(a, b) }
public func / (a: Tensor, b: Tensor) throws -> Tensor { try div(a, b) }

/// Where each output element reads an operand: the same index, or a broadcast of it.
private struct Broadcast {
    let outShape: [Int]
    let aIndex: [Int]?   // nil: same index as the output
    let bIndex: [Int]?

    init(_ op: String, _ a: [Int], _ b: [Int]) throws {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else {
                throw TensorError.shapeMismatch(op: op, lhs: a, rhs: b,
                    expected: "equal sizes or size 1 on every axis (NumPy broadcasting)")
            }
            out.append(max(x, y))
        }
        outShape = out
        aIndex = pa == out ? nil : Broadcast.indexTable(pa, out)
        bIndex = pb == out ? nil : Broadcast.indexTable(pb, out)
    }

    /// For every output position, the position it reads in an operand of shape `src`.
    static func indexTable(_ src: [Int], _ out: [Int]) -> [Int] {
        var strides = Array(repeating: 0, count: src.count)
        var s = 1
        for d in stride(from: src.count - 1, through: 0, by: -1) {
            strides[d] = src[d] == 1 ? 0 : s
            s *= src[d]
        }
        let total = out.reduce(1, *)
        var table = [Int](repeating: 0, count: total)
        var idx = Array(repeating: 0, count: out.count)
        var pos = 0
        for i in 0..<total {
            table[i] = pos
            var d = out.count - 1
            while d >= 0 {
                idx[d] += 1
                pos += strides[d]
                if idx[d] < out[d] { break }
                pos -= strides[d] * out[d]
                idx[d] = 0
                d -= 1
            }
        }
        return table
    }
}

private func binary(
    _ op: String, _ a: Tensor, _ b: Tensor, _ f: @escaping (Float, Float) -> Float,
    da: @escaping (Float, Float) -> Float, db: @escaping (Float, Float) -> Float
) throws -> Tensor {
    let bc = try Broadcast(op, a.shape, b.shape)
    let total = bc.outShape.reduce(1, *)
    let out = Storage(uninitializedCount: total)
    let ap = a.pointer, bp = b.pointer, y = out.pointer
    switch (bc.aIndex, bc.bIndex) {
    case (nil, nil): for i in 0..<total { y[i] = f(ap[i], bp[i]) }
    case let (ai?, nil): for i in 0..<total { y[i] = f(ap[ai[i]], bp[i]) }
    case let (nil, bi?): for i in 0..<total { y[i] = f(ap[i], bp[bi[i]]) }
    case let (ai?, bi?): for i in 0..<total { y[i] = f(ap[ai[i]], bp[bi[i]]) }
    }
    return Tensor.result(bc.outShape, out, parents: [a, b]) { dy in
        let ai = bc.aIndex, bi = bc.bIndex
        @inline(__always) func ia(_ i: Int) -> Int { ai?[i] ?? i }
        @inline(__always) func ib(_ i: Int) -> Int { bi?[i] ?? i }
        if a.requiresGrad {
            a.accumulateGrad { g, overwrite in
                sumThenAdd(g, count: a.count, overwrite: overwrite) { g in
                    for i in 0..<total { g[ia(i)] += dy[i] * da(ap[ia(i)], bp[ib(i)]) }
                }
            }
        }
        if b.requiresGrad {
            b.accumulateGrad { g, overwrite in
                sumThenAdd(g, count: b.count, overwrite: overwrite) { g in
                    for i in 0..<total { g[ib(i)] += dy[i] * db(ap[ia(i)], bp[ib(i)]) }
                }
            }
        }
    }
}

/// Lets `body` add its terms (a broadcast operand gets several per element) on zeros, then adds
/// the sums onto `g` unless `overwrite`: the same bits whatever `g` held before (see `Lanes`).
@inline(__always)
private func sumThenAdd(_ g: UnsafeMutablePointer<Float>, count: Int, overwrite: Bool,
                        _ body: (UnsafeMutablePointer<Float>) -> Void) {
    if overwrite {
        g.initialize(repeating: 0, count: count)
        body(g)
        return
    }
    let sums = Storage(repeating: 0, count: count), s = sums.pointer
    body(s)
    for i in 0..<count { g[i] += s[i] }
}

/// An elementwise function y = f(x) whose derivative is expressed through x and y.
private func unary(_ x: Tensor, _ f: @escaping (Float) -> Float,
                   derivative: @escaping (_ x: Float, _ y: Float) -> Float) -> Tensor {
    let out = Storage(uninitializedCount: x.count)
    let src = UncheckedBox(x.pointer), dst = UncheckedBox(out.pointer)
    parallelFor(x.count) { r in for i in r { dst.value[i] = f(src.value[i]) } }
    return Tensor.result(x.shape, out, parents: [x]) { dy in
        let d = UncheckedBox(dy)
        x.accumulateGrad { g, overwrite in
            let gp = UncheckedBox(g)
            parallelFor(x.count) { r in
                for i in r {
                    let v = d.value[i] * derivative(src.value[i], dst.value[i])
                    gp.value[i] = overwrite ? v : gp.value[i] + v
                }
            }
        }
        withExtendedLifetime(out) {}
    }
}

/// max(x, 0). NOTE: the gradient at exactly 0 is 0, as in PyTorch.
public func relu(_ x: Tensor) -> Tensor { unary(x, { max($0, 0) }, derivative: { x, _ in x > 0 ? 1 : 0 }) }

public func exp(_ x: Tensor) -> Tensor { unary(x, { Foundation.exp($0) }, derivative: { _, y in y }) }

public func log(_ x: Tensor) -> Tensor { unary(x, { Foundation.log($0) }, derivative: { x, _ in 1 / x }) }

/// s·x for a constant s.
public func scale(_ x: Tensor, _ s: Float) -> Tensor { unary(x, { $0 * s }, derivative: { _, _ in s }) }

import Foundation

/// x + c for a constant c.
public func shift(_ x: Tensor, _ c: Float) -> Tensor { unary(x, { $0 + c }, derivative: { _, _ in 1 }) }
