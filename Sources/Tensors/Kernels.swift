/// Small vectorised loops. Swift does not reassociate float sums, so reductions use explicit
/// SIMD16 accumulators to vectorise.

@inline(__always)
func vsum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>.zero
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 16 <= n {
        acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    var s = acc.sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// (Σ a[i], Σ a[i]·(b[i] − c))
@inline(__always)
func vsumAndDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, _ c: Float) -> (Float, Float) {
    var sa = SIMD16<Float>.zero, sab = SIMD16<Float>.zero
    let cv = SIMD16<Float>(repeating: c)
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        let va = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        let vb = rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        sa += va
        sab += va * (vb - cv)
        i += 16
    }
    var s1 = sa.sum(), s2 = sab.sum()
    while i < n { s1 += a[i]; s2 += a[i] * (b[i] - c); i += 1 }
    return (s1, s2)
}

/// Σ a[i]·b[i]
@inline(__always)
func vdot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD16<Float>.zero
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        acc += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// (Σ m·a[i], Σ m·a[i]·(b[i] − c)) with m = (b[i]·scale + shift > 0) when `mask` is given
/// (a fused ReLU's mask, recomputed from BN's input b), else 1.
@inline(__always)
func vmaskedSumAndDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, _ c: Float,
                      mask: (scale: Float, shift: Float)?) -> (Float, Float) {
    guard let mask else { return vsumAndDot(a, b, n, c) }
    var sa = SIMD16<Float>.zero, sab = SIMD16<Float>.zero
    let cv = SIMD16<Float>(repeating: c)
    let sv = SIMD16<Float>(repeating: mask.scale), tv = SIMD16<Float>(repeating: mask.shift)
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        var va = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        let vb = rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        va.replace(with: 0, where: vb * sv + tv .<= 0)
        sa += va
        sab += va * (vb - cv)
        i += 16
    }
    var s1 = sa.sum(), s2 = sab.sum()
    while i < n {
        if b[i] * mask.scale + mask.shift > 0 { s1 += a[i]; s2 += a[i] * (b[i] - c) }
        i += 1
    }
    return (s1, s2)
}

/// (Σ (p[i] − k), Σ (p[i] − k)²): one pass; shifting by k ≈ mean keeps the variance accurate.
@inline(__always)
func vshiftedMoments(_ p: UnsafePointer<Float>, _ n: Int, _ k: Float) -> (Float, Float) {
    var s = SIMD16<Float>.zero, s2 = SIMD16<Float>.zero
    let kv = SIMD16<Float>(repeating: k)
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 16 <= n {
        let d = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - kv
        s += d
        s2 += d * d
        i += 16
    }
    var a = s.sum(), b = s2.sum()
    while i < n { let d = p[i] - k; a += d; b += d * d; i += 1 }
    return (a, b)
}

/// g[i] (=|+=) k·(m·d[i] − a − (x[i] − μ)·b): BN's input gradient, with m = (x[i]·scale + shift > 0)
/// when `mask` is given (a fused ReLU's mask), else 1.
@inline(__always)
func vbatchNormInputGrad(_ d: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                         _ n: Int, k: Float, a: Float, mu: Float, b: Float,
                         mask: (scale: Float, shift: Float)?, overwrite: Bool) {
    let kv = SIMD16<Float>(repeating: k), av = SIMD16<Float>(repeating: a)
    let muv = SIMD16<Float>(repeating: mu), bv = SIMD16<Float>(repeating: b)
    let sv = SIMD16<Float>(repeating: mask?.scale ?? 0), tv = SIMD16<Float>(repeating: mask?.shift ?? 0)
    let rd = UnsafeRawPointer(d), rx = UnsafeRawPointer(x), rg = UnsafeMutableRawPointer(g)
    var i = 0
    while i + 16 <= n {
        var dv = rd.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        let xv = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        if mask != nil { dv.replace(with: 0, where: xv * sv + tv .<= 0) }
        var v = kv * (dv - av - (xv - muv) * bv)
        if !overwrite { v += rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) }
        rg.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < n {
        let dm = mask.map { x[i] * $0.scale + $0.shift > 0 } ?? true ? d[i] : 0
        let v = k * (dm - a - (x[i] - mu) * b)
        g[i] = overwrite ? v : g[i] + v
        i += 1
    }
}

/// dst[p] = Σ_t weight(t)·row(t)[p] for p < count: a few rows combined in one pass, each output
/// vector kept in registers while the terms are added in order t = 0, 1, ….
@inline(__always)
func vcombineRows(count: Int, terms: Int, weight: (Int) -> Float, row: (Int) -> UnsafePointer<Float>,
                  into dst: UnsafeMutablePointer<Float>) {
    let rd = UnsafeMutableRawPointer(dst)
    var p = 0
    while p + 16 <= count {
        var acc = SIMD16<Float>.zero
        for t in 0..<terms {
            acc += weight(t) * UnsafeRawPointer(row(t)).loadUnaligned(fromByteOffset: p * 4, as: SIMD16<Float>.self)
        }
        rd.storeBytes(of: acc, toByteOffset: p * 4, as: SIMD16<Float>.self)
        p += 16
    }
    while p < count {
        var acc: Float = 0
        for t in 0..<terms { acc += weight(t) * row(t)[p] }
        dst[p] = acc
        p += 1
    }
}
