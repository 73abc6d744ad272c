/// 2-D convolution (cross-correlation, as PyTorch) of x [N, C, H, W] with w [O, C, KH, KW],
/// any stride and zero padding, no bias.
///
/// im2col builds col [C·KH·KW, N·OH·OW] for the whole batch (kept for the backward pass).
/// Forward, in chunks of images (`ConvGeometry.imagesPerChunk`) so that a chunk's col, its GEMM
/// result and the permute to NCHW stay in cache: im2col of the chunk, one GEMM [O, chunk·OH·OW],
/// permute into the output. Backward: dY permuted to [O, N·OH·OW], dW = dYᵀ·colᵀ in one GEMM
/// (so its sum is the unchunked one), then by chunks dcol = Wᵀ·dY and col2im adds it into dx
/// while it is in cache. dW equals the unchunked computation's bit for bit; the output and dx may
/// differ from it by one rounding where OpenBLAS picks another kernel for a chunk's shorter rows.
/// The chunks depend on the shapes only, so a run is still bit-for-bit reproducible.
/// With K = C·KH·KW ≤ 16 the three products run as direct vectorised loops instead.
public func conv2d(_ x: Tensor, _ w: Tensor, stride: Int = 1, padding: Int = 0) throws -> Tensor {
    try conv2d(x, w, stride: stride, padding: padding, chunkFloats: nil)
}

/// `chunkFloats`: the col floats per chunk (nil: the default, 0: one chunk); tests compare them.
func conv2d(_ x: Tensor, _ w: Tensor, stride: Int, padding: Int, chunkFloats: Int?) throws -> Tensor {
    guard x.rank == 4, w.rank == 4, x.shape[1] == w.shape[1] else {
        throw TensorError.shapeMismatch(op: "conv2d", lhs: x.shape, rhs: w.shape,
                                        expected: "input [N, C, H, W] and weight [O, C, KH, KW] with the same C")
    }
    guard stride >= 1, padding >= 0 else {
        throw TensorError.invalidArgument(op: "conv2d", message: "stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0")
    }
    var g = ConvGeometry(n: x.shape[0], c: x.shape[1], h: x.shape[2], w: x.shape[3],
                         o: w.shape[0], kh: w.shape[2], kw: w.shape[3], stride: stride, padding: padding)
    if let chunkFloats { g.chunkFloats = chunkFloats }
    guard g.oh > 0, g.ow > 0 else {
        throw TensorError.shapeMismatch(op: "conv2d", lhs: x.shape, rhs: w.shape,
                                        expected: "a kernel no larger than the padded input")
    }
    FLOPs.add(g.flops)
    let out = Storage(uninitializedCount: g.n * g.o * g.ohw)
    // NOTE: BLAS runs GEMMs with very few rows (the 1-channel first layer has K = 9) far below
    // its peak, and its [O, N·HW] result needs a permute; direct loops write NCHW instead.
    let direct = g.k <= 16
    // The direct path keeps the whole batch's col for dW. The GEMM path keeps none: each chunk's
    // col is built in a cache-sized buffer, used, and built again in the backward pass (writing
    // and re-reading the whole col went through memory: ~50 MB per view on `mini`).
    let col = Storage(uninitializedCount: direct ? g.k * g.cols : g.k * g.imagesPerChunk * g.ohw)
    if direct {
        im2col(x.pointer, col.pointer, g, images: 0..<g.n, ld: g.cols)
        directForward(w.pointer, col.pointer, out.pointer, g)
    } else {
        let tmp = Storage(uninitializedCount: g.o * g.imagesPerChunk * g.ohw)
        for images in g.chunks {
            let cc = images.count * g.ohw
            im2col(x.pointer, col.pointer, g, images: images, ld: cc)
            sgemm(transA: false, transB: false, m: g.o, n: cc, k: g.k, a: w.pointer, b: col.pointer,
                  c: tmp.pointer, countFLOPs: false)
            permuteBlocks(tmp.pointer, out.pointer + images.lowerBound * g.o * g.ohw,
                          outer: g.o, inner: images.count, block: g.ohw)                // [O,n,HW] -> [n,O,HW]
        }
    }
    return Tensor.result([g.n, g.o, g.oh, g.ow], out, parents: [x, w]) { dy in
        if direct {
            if w.requiresGrad {
                FLOPs.add(g.flops)
                w.accumulateGrad { gw, overwrite in directWeightGrad(dy, col.pointer, gw, g, overwrite: overwrite) }
            }
            if x.requiresGrad {
                FLOPs.add(g.flops)
                let dcol = Storage(uninitializedCount: g.k * g.cols)
                directColGrad(w.pointer, dy, dcol.pointer, g)
                x.accumulateGrad { gx, overwrite in
                    if overwrite { gx.initialize(repeating: 0, count: x.count) }
                    col2im(dcol.pointer, gx, g, images: 0..<g.n, ld: g.cols)
                }
            }
            return
        }
        // dW summed over the chunks, each chunk's col built again; dx by chunks.
        let dyT = Storage(uninitializedCount: g.o * g.cols)
        permuteBlocks(dy, dyT.pointer, outer: g.n, inner: g.o, block: g.ohw)      // [N,O,HW] -> [O,N,HW]
        if w.requiresGrad {
            let dw = Storage(uninitializedCount: g.o * g.k)
            for (i, images) in g.chunks.enumerated() {
                let cc = images.count * g.ohw
                im2col(x.pointer, col.pointer, g, images: images, ld: cc)
                sgemm(transA: false, transB: true, m: g.o, n: g.k, k: cc, a: dyT.pointer + images.lowerBound * g.ohw,
                      lda: g.cols, b: col.pointer, beta: i == 0 ? 0 : 1, c: dw.pointer)
            }
            w.accumulateGrad(from: dw.pointer)
        }
        guard x.requiresGrad else { return }
        FLOPs.add(g.flops)
        let dcol = Storage(uninitializedCount: g.k * g.imagesPerChunk * g.ohw)
        x.accumulateGrad { gx, overwrite in
            for images in g.chunks {
                let cc = images.count * g.ohw
                sgemm(transA: true, transB: false, m: g.k, n: cc, k: g.o, a: w.pointer,
                      b: dyT.pointer + images.lowerBound * g.ohw, ldb: g.cols, c: dcol.pointer, countFLOPs: false)
                if overwrite {
                    (gx + images.lowerBound * g.c * g.h * g.w).initialize(repeating: 0, count: images.count * g.c * g.h * g.w)
                }
                col2im(dcol.pointer, gx, g, images: images, ld: cc)
            }
        }
    }
}

// MARK: - Direct loops for small K (out and dy in NCHW, col in [K, N·HW]).

/// out[n, o, p] = Σ_r w[o, r]·col[r, n·HW + p]
private func directForward(_ w: UnsafePointer<Float>, _ col: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           _ g: ConvGeometry) {
    let wp = UncheckedBox(w), cp = UncheckedBox(col), op = UncheckedBox(out)
    parallelFor(g.n, cost: g.o * g.k * g.ohw) { images in
        for n in images {
            for o in 0..<g.o {
                vcombineRows(count: g.ohw, terms: g.k, weight: { wp.value[o * g.k + $0] },
                             row: { cp.value + $0 * g.cols + n * g.ohw }, into: op.value + (n * g.o + o) * g.ohw)
            }
        }
    }
}

/// dcol[r, n·HW + p] = Σ_o w[o, r]·dy[n, o, p]
private func directColGrad(_ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dcol: UnsafeMutablePointer<Float>,
                           _ g: ConvGeometry) {
    let wp = UncheckedBox(w), dp = UncheckedBox(dy), cp = UncheckedBox(dcol)
    parallelFor(g.n, cost: g.o * g.k * g.ohw) { images in
        for n in images {
            for r in 0..<g.k {
                vcombineRows(count: g.ohw, terms: g.o, weight: { wp.value[$0 * g.k + r] },
                             row: { dp.value + (n * g.o + $0) * g.ohw }, into: cp.value + r * g.cols + n * g.ohw)
            }
        }
    }
}

/// gw[o, r] (=|+=) Σ_n Σ_p dy[n, o, p]·col[r, n·HW + p], summed per block of 16 images (so an
/// image's dy and col stay in cache across o and r), then over blocks in order: the result does
/// not depend on the number of threads.
private func directWeightGrad(_ dy: UnsafePointer<Float>, _ col: UnsafePointer<Float>, _ gw: UnsafeMutablePointer<Float>,
                              _ g: ConvGeometry, overwrite: Bool) {
    let blockSize = 16, blocks = (g.n + blockSize - 1) / blockSize, ok = g.o * g.k
    let partial = Storage(repeating: 0, count: blocks * ok)
    let dp = UncheckedBox(dy), cp = UncheckedBox(col), pp = UncheckedBox(partial.pointer)
    parallelFor(blocks, cost: blockSize * ok * g.ohw) { range in
        for block in range {
            let acc = pp.value + block * ok
            for n in block * blockSize..<min(g.n, (block + 1) * blockSize) {
                for o in 0..<g.o {
                    let d = dp.value + (n * g.o + o) * g.ohw
                    for r in 0..<g.k { acc[o * g.k + r] += vdot(d, cp.value + r * g.cols + n * g.ohw, g.ohw) }
                }
            }
        }
    }
    for i in 0..<ok {
        var s: Float = 0
        for block in 0..<blocks { s += partial.pointer[block * ok + i] }
        gw[i] = overwrite ? s : gw[i] + s
    }
}

struct ConvGeometry {
    let n, c, h, w, o, kh, kw, stride, padding: Int
    /// Floats of col per chunk of images (0: the whole batch in one chunk); see `imagesPerChunk`.
    var chunkFloats = 1 << 18
    var oh: Int { (h + 2 * padding - kh) / stride + 1 }
    var ow: Int { (w + 2 * padding - kw) / stride + 1 }
    var ohw: Int { oh * ow }
    var k: Int { c * kh * kw }
    var cols: Int { n * ohw }
    /// 2·O·K·N·OH·OW: one product of the forward pass, and of each backward one (dW, dx).
    var flops: Int { 2 * o * k * cols }
    /// Images per chunk of the GEMM path: a chunk's col ([K, chunk·OH·OW]) is about 1 MiB, so
    /// it is still in cache when the GEMM reads it.
    var imagesPerChunk: Int { chunkFloats == 0 ? n : max(1, min(n, chunkFloats / max(1, k * ohw))) }
    /// 0..<n in chunks of `imagesPerChunk` images.
    var chunks: [Range<Int>] {
        Swift.stride(from: 0, to: n, by: imagesPerChunk).map { $0..<Swift.min($0 + imagesPerChunk, n) }
    }
    /// The down-sampling convolutions of `convnet`: kernel width 3, stride 2, padding 1.
    var isWidth3Stride2Pad1: Bool { kw == 3 && stride == 2 && padding == 1 }
}

// MARK: - im2col / col2im over a range of images.
// `col` points at the first image's columns: image n's block of row r starts at
// col + r·ld + (n − images.lowerBound)·OH·OW (ld = N·OH·OW for the whole col, chunk·OH·OW for a chunk).

/// col[(c,i,j), (n,oy,ox)] = x[n, c, oy·s − p + i, ox·s − p + j], zero outside the image.
/// `generic`: skip the width-3 stride-2 specialisation (tests compare the two).
func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
            images: Range<Int>, ld: Int, generic: Bool = false) {
    if g.isWidth3Stride2Pad1 && !generic { return im2colWidth3Stride2(x, col, g, images: images, ld: ld) }
    let xp = UncheckedBox(x), cp = UncheckedBox(col)
    parallelFor(g.k, cost: images.count * g.ohw) { rows in
        let x = xp.value, col = cp.value
        for r in rows {
            let c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw
            let (oxLo, oxHi) = validRange(offset: j - g.padding, stride: g.stride, size: g.w, count: g.ow)
            var dst = col + r * ld
            for n in images {
                let plane = x + (n * g.c + c) * g.h * g.w
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
/// `generic`: skip the width-3 stride-2 specialisation (tests compare the two).
func col2im(_ dcol: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
            images: Range<Int>, ld: Int, generic: Bool = false) {
    if g.isWidth3Stride2Pad1 && !generic { return col2imWidth3Stride2(dcol, dx, g, images: images, ld: ld) }
    let dp = UncheckedBox(dcol), xp = UncheckedBox(dx)
    parallelFor(g.c, cost: g.kh * g.kw * images.count * g.ohw) { channels in
        let dcol = dp.value, dx = xp.value
        for c in channels {
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    let r = (c * g.kh + i) * g.kw + j
                    let (oxLo, oxHi) = validRange(offset: j - g.padding, stride: g.stride, size: g.w, count: g.ow)
                    guard oxHi > oxLo else { continue }
                    var src = dcol + r * ld
                    for n in images {
                        let plane = dx + (n * g.c + c) * g.h * g.w
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

// MARK: - Kernel width 3, stride 2, padding 1: the three taps j of a kernel row together.
// Output column ox reads input columns 2·ox − 1 (j = 0), 2·ox (j = 1), 2·ox + 1 (j = 2).
// col2im adds in the order of the generic loop (i, then j = 0 before j = 2; j = 1 touches the
// other columns), so both give bit-identical sums.

private func im2colWidth3Stride2(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                                 images: Range<Int>, ld: Int) {
    // Each input plane is first split into phase planes, one per (row parity a, tap j), each
    // [rows, OW]: phase(a, j)[u, ox] = x[2·u + a − 1, 2·ox − 1 + j], zero outside the image. Tap
    // (i, j) of output row oy reads row u = oy + i/2 of phase (i mod 2, j), so every col row of an
    // image is one contiguous copy of OH·OW floats (the strided reads happen once, in the split).
    let xp = UncheckedBox(x), cp = UncheckedBox(col)
    let ow = g.ow, rows = g.oh + (g.kh - 1) / 2, planeSize = rows * ow
    parallelFor(g.c, cost: 3 * g.kh * images.count * g.ohw) { channels in
        let phases = UnsafeMutablePointer<Float>.allocate(capacity: 6 * planeSize)
        defer { phases.deallocate() }
        for c in channels {
            for n in images {
                let plane = xp.value + (n * g.c + c) * g.h * g.w
                for a in 0..<2 {
                    for u in 0..<rows {
                        let y = 2 * u + a - 1
                        let j0 = phases + 3 * a * planeSize + u * ow, j1 = j0 + planeSize, j2 = j1 + planeSize
                        guard y >= 0 && y < g.h else {
                            j0.initialize(repeating: 0, count: ow); j1.initialize(repeating: 0, count: ow)
                            j2.initialize(repeating: 0, count: ow)
                            continue
                        }
                        splitColumns(plane + y * g.w, width: g.w, ow: ow, j0: j0, j1: j1, j2: j2)
                    }
                }
                let o = (n - images.lowerBound) * g.ohw
                for i in 0..<g.kh {
                    for j in 0..<3 {
                        (cp.value + ((c * g.kh + i) * 3 + j) * ld + o)
                            .update(from: phases + (3 * (i & 1) + j) * planeSize + (i >> 1) * ow, count: g.ohw)
                    }
                }
            }
        }
    }
}

/// One input row's columns by tap: j1[ox] = row[2·ox], j2[ox] = row[2·ox + 1], j0[ox] = row[2·ox − 1],
/// zero outside 0..<width; 16 (then 8) inputs at a time from the even and odd lanes of a vector.
@inline(__always)
private func splitColumns(_ row: UnsafePointer<Float>, width: Int, ow: Int, j0: UnsafeMutablePointer<Float>,
                          j1: UnsafeMutablePointer<Float>, j2: UnsafeMutablePointer<Float>) {
    let rs = UnsafeRawPointer(row)
    var v = 0
    while v + 8 <= ow && 2 * v + 16 <= width {
        let x = rs.loadUnaligned(fromByteOffset: 8 * v, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(j1 + v).storeBytes(of: x.evenHalf, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(j2 + v).storeBytes(of: x.oddHalf, as: SIMD8<Float>.self)
        v += 8
    }
    while v + 4 <= ow && 2 * v + 8 <= width {
        let x = rs.loadUnaligned(fromByteOffset: 8 * v, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(j1 + v).storeBytes(of: x.evenHalf, as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(j2 + v).storeBytes(of: x.oddHalf, as: SIMD4<Float>.self)
        v += 4
    }
    while v < ow {
        j1[v] = 2 * v < width ? row[2 * v] : 0
        j2[v] = 2 * v + 1 < width ? row[2 * v + 1] : 0
        v += 1
    }
    j0[0] = 0
    (j0 + 1).update(from: j2, count: ow - 1)
}

private func col2imWidth3Stride2(_ dcol: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                                 images: Range<Int>, ld: Int) {
    let dp = UncheckedBox(dcol), xp = UncheckedBox(dx)
    let ow = g.ow, odd = min(ow, g.w / 2)
    parallelFor(g.c, cost: 3 * g.kh * images.count * g.ohw) { channels in
        for c in channels {
            for i in 0..<g.kh {
                let s0 = dp.value + 3 * (c * g.kh + i) * ld, s1 = s0 + ld, s2 = s1 + ld
                for n in images {
                    let plane = xp.value + (n * g.c + c) * g.h * g.w
                    for oy in 0..<g.oh {
                        let iy = 2 * oy - 1 + i, o = (n - images.lowerBound) * g.ohw + oy * ow
                        guard iy >= 0 && iy < g.h else { continue }
                        addInterleaved(s0 + o, s1 + o, s2 + o, into: plane + iy * g.w, width: g.w, ow: ow, odd: odd)
                    }
                }
            }
        }
    }
}

/// One row of col2im for kernel width 3, stride 2, padding 1, the taps of one kernel row together:
/// dst[2·ox − 1] += s0[ox] (ox ≥ 1), dst[2·ox] += s1[ox], dst[2·ox + 1] += s2[ox] (ox < odd), each
/// odd column adding s0 before s2, as the generic loop does (j = 0 before j = 2), so the sums are
/// bit-identical to it. Four column pairs at a time (SIMD8 of dst split into even and odd lanes),
/// while every read stays inside the row and the three source rows; then column by column.
@inline(__always)
private func addInterleaved(_ s0: UnsafePointer<Float>, _ s1: UnsafePointer<Float>, _ s2: UnsafePointer<Float>,
                            into dst: UnsafeMutablePointer<Float>, width: Int, ow: Int, odd: Int) {
    let rd = UnsafeMutableRawPointer(dst)
    var k = 0
    while k + 5 <= ow && k + 4 <= odd && 2 * k + 8 <= width {
        var v = rd.loadUnaligned(fromByteOffset: 8 * k, as: SIMD8<Float>.self)
        v.evenHalf += UnsafeRawPointer(s1 + k).loadUnaligned(as: SIMD4<Float>.self)
        v.oddHalf = v.oddHalf + UnsafeRawPointer(s0 + k + 1).loadUnaligned(as: SIMD4<Float>.self)
            + UnsafeRawPointer(s2 + k).loadUnaligned(as: SIMD4<Float>.self)
        rd.storeBytes(of: v, toByteOffset: 8 * k, as: SIMD8<Float>.self)
        k += 4
    }
    while 2 * k < width {
        if k < ow { dst[2 * k] += s1[k] }
        if 2 * k + 1 < width {
            if k + 1 < ow { dst[2 * k + 1] += s0[k + 1] }
            if k < odd { dst[2 * k + 1] += s2[k] }
        }
        k += 1
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
