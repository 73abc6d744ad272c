/// 2-D convolution (cross-correlation, as PyTorch) of x [N, C, H, W] with w [O, C, KH, KW],
/// any stride and zero padding, no bias.
///
/// Forward: im2col builds col [C·KH·KW, N·OH·OW] once for the whole batch, one GEMM gives
/// [O, N·OH·OW], which is then permuted to NCHW. Backward reuses col:
/// dW = dYᵀ·colᵀ (one GEMM), dcol = Wᵀ·dY (one GEMM), then col2im adds dcol into dx.
public func conv2d(_ x: Tensor, _ w: Tensor, stride: Int = 1, padding: Int = 0) throws -> Tensor {
    guard x.rank == 4, w.rank == 4, x.shape[1] == w.shape[1] else {
        throw TensorError.shapeMismatch(op: "conv2d", lhs: x.shape, rhs: w.shape,
                                        expected: "input [N, C, H, W] and weight [O, C, KH, KW] with the same C")
    }
    guard stride >= 1, padding >= 0 else {
        throw TensorError.invalidArgument(op: "conv2d", message: "stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0")
    }
    let g = ConvGeometry(n: x.shape[0], c: x.shape[1], h: x.shape[2], w: x.shape[3],
                         o: w.shape[0], kh: w.shape[2], kw: w.shape[3], stride: stride, padding: padding)
    guard g.oh > 0, g.ow > 0 else {
        throw TensorError.shapeMismatch(op: "conv2d", lhs: x.shape, rhs: w.shape,
                                        expected: "a kernel no larger than the padded input")
    }
    let col = Storage(uninitializedCount: g.k * g.cols)
    im2col(x.pointer, col.pointer, g)
    let tmp = Storage(uninitializedCount: g.o * g.cols)
    sgemm(transA: false, transB: false, m: g.o, n: g.cols, k: g.k, a: w.pointer, b: col.pointer, c: tmp.pointer)
    let out = Storage(uninitializedCount: g.n * g.o * g.ohw)
    permuteBlocks(tmp.pointer, out.pointer, outer: g.o, inner: g.n, block: g.ohw)   // [O,N,HW] -> [N,O,HW]
    return Tensor.result([g.n, g.o, g.oh, g.ow], out, parents: [x, w]) { dy in
        let dyT = Storage(uninitializedCount: g.o * g.cols)
        permuteBlocks(dy, dyT.pointer, outer: g.n, inner: g.o, block: g.ohw)      // [N,O,HW] -> [O,N,HW]
        if w.requiresGrad {
            w.accumulateGrad { gw, overwrite in
                sgemm(transA: false, transB: true, m: g.o, n: g.k, k: g.cols, a: dyT.pointer, b: col.pointer,
                      beta: overwrite ? 0 : 1, c: gw)
            }
        }
        if x.requiresGrad {
            let dcol = Storage(uninitializedCount: g.k * g.cols)
            sgemm(transA: true, transB: false, m: g.k, n: g.cols, k: g.o, a: w.pointer, b: dyT.pointer, c: dcol.pointer)
            x.accumulateGrad { gx, overwrite in
                if overwrite { gx.initialize(repeating: 0, count: x.count) }
                col2im(dcol.pointer, gx, g)
            }
        }
    }
}

struct ConvGeometry {
    let n, c, h, w, o, kh, kw, stride, padding: Int
    var oh: Int { (h + 2 * padding - kh) / stride + 1 }
    var ow: Int { (w + 2 * padding - kw) / stride + 1 }
    var ohw: Int { oh * ow }
    var k: Int { c * kh * kw }
    var cols: Int { n * ohw }
}

/// col[(c,i,j), (n,oy,ox)] = x[n, c, oy·s − p + i, ox·s − p + j], zero outside the image.
private func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let xp = UncheckedBox(x), cp = UncheckedBox(col)
    parallelFor(g.k, cost: g.cols) { rows in
        let x = xp.value, col = cp.value
        for r in rows {
            let c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw
            let (oxLo, oxHi) = validRange(offset: j - g.padding, stride: g.stride, size: g.w, count: g.ow)
            for n in 0..<g.n {
                let plane = x + (n * g.c + c) * g.h * g.w
                var dst = col + r * g.cols + n * g.ohw
                for oy in 0..<g.oh {
                    let iy = oy * g.stride - g.padding + i
                    if iy < 0 || iy >= g.h {
                        dst.initialize(repeating: 0, count: g.ow)
                    } else {
                        let src = plane + iy * g.w + (j - g.padding)
                        for ox in 0..<oxLo { dst[ox] = 0 }
                        if g.stride == 1 {
                            if oxHi > oxLo { (dst + oxLo).update(from: src + oxLo, count: oxHi - oxLo) }
                        } else {
                            for ox in oxLo..<max(oxLo, oxHi) { dst[ox] = src[ox * g.stride] }
                        }
                        for ox in max(oxLo, oxHi)..<g.ow { dst[ox] = 0 }
                    }
                    dst += g.ow
                }
            }
        }
    }
}

/// dx[n, c, iy, ix] += dcol[(c,i,j), (n,oy,ox)]; parallel over channels, which write disjoint planes.
private func col2im(_ dcol: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let dp = UncheckedBox(dcol), xp = UncheckedBox(dx)
    parallelFor(g.c, cost: g.kh * g.kw * g.cols) { channels in
        let dcol = dp.value, dx = xp.value
        for c in channels {
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    let r = (c * g.kh + i) * g.kw + j
                    let (oxLo, oxHi) = validRange(offset: j - g.padding, stride: g.stride, size: g.w, count: g.ow)
                    guard oxHi > oxLo else { continue }
                    for n in 0..<g.n {
                        let plane = dx + (n * g.c + c) * g.h * g.w
                        var src = dcol + r * g.cols + n * g.ohw
                        for oy in 0..<g.oh {
                            let iy = oy * g.stride - g.padding + i
                            if iy >= 0 && iy < g.h {
                                let dst = plane + iy * g.w + (j - g.padding)
                                for ox in oxLo..<oxHi { dst[ox * g.stride] += src[ox] }
                            }
                            src += g.ow
                        }
                    }
                }
            }
        }
    }
}

/// The output columns ox in [lo, hi) whose input column ox·stride + offset lies inside [0, size).
@inline(__always)
private func validRange(offset: Int, stride: Int, size: Int, count: Int) -> (Int, Int) {
    var lo = 0
    while lo < count && lo * stride + offset < 0 { lo += 1 }
    var hi = count
    while hi > lo && (hi - 1) * stride + offset >= size { hi -= 1 }
    return (lo, hi)
}

/// dst[i, o, :] = src[o, i, :] for blocks of `block` floats: swaps the two outer axes.
func permuteBlocks(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, outer: Int, inner: Int, block: Int) {
    let sp = UncheckedBox(src), dp = UncheckedBox(dst)
    parallelFor(outer, cost: inner * block) { range in
        for o in range {
            for i in 0..<inner {
                (dp.value + (i * outer + o) * block).update(from: sp.value + (o * inner + i) * block, count: block)
            }
        }
    }
}
