/// Batch normalisation over the channel axis 1 of x [N, C] or [N, C, H, W].
///
/// NOTE: PyTorch conventions. Training: normalise with the batch mean and the *biased* variance;
/// update running stats with momentum 0.1 using the *unbiased* variance (× M/(M−1), M = N·H·W).
/// Evaluation: normalise with the running stats. ε = 1e-5 inside the square root.
/// `gamma`/`beta` nil means affine off. `fuseReLU` applies ReLU to the output in the same pass
/// (one read and one write of the activation saved, forward and backward).
///
/// Backward (training), per channel with x̂ = (x − μ)·rstd:
/// dβ = Σ dy, dγ = Σ dy·x̂, dx = γ·rstd·(dy − dβ/M − x̂·dγ/M).
/// Backward (evaluation): dx = dy·γ·rstd, with the statistics constant.
/// With the fused ReLU, dy is masked by (x·scale + shift > 0), recomputed from x with the very
/// operations of the forward pass (so the mask equals y > 0 bit for bit) instead of reading y.
///
/// Layout: every pass runs over images (rows) outer and a chunk of channels inner, so it streams
/// through memory. For [N, C, H, W] a channel's plane of an image is contiguous and vectorised
/// along H·W; for [N, C] the channels of a row are (vectorised across channels). Both compute,
/// per channel, the same sums in the same order, so they agree bit for bit.
public func batchNorm(
    _ x: Tensor, gamma: Tensor?, beta: Tensor?, runningMean: Tensor, runningVar: Tensor,
    training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, fuseReLU: Bool = false
) throws -> Tensor {
    guard x.rank == 2 || x.rank == 4 else {
        throw TensorError.badShape(op: "batchNorm", shape: x.shape, expected: "[N, C] or [N, C, H, W]")
    }
    let n = x.shape[0], c = x.shape[1], hw = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    for (name, t) in [("gamma", gamma), ("beta", beta), ("runningMean", runningMean), ("runningVar", runningVar)] {
        if let t, t.shape != [c] {
            throw TensorError.shapeMismatch(op: "batchNorm (\(name))", lhs: x.shape, rhs: t.shape, expected: "[\(c)] per channel")
        }
    }
    if training && n * hw < 2 {
        throw TensorError.badShape(op: "batchNorm", shape: x.shape,
                                   expected: "more than one value per channel in training mode")
    }
    // Per channel: mean, rstd, scale = rstd·γ, shift = β − mean·scale, Σ dy, Σ dy·x̂, unbiased variance.
    let stats = Storage(uninitializedCount: 7 * c)
    let out = Storage(uninitializedCount: x.count)
    let bn = BatchNormPass(n: n, c: c, hw: hw, training: training, relu: fuseReLU, x: x.pointer, y: out.pointer,
                           stats: stats.pointer, gamma: gamma?.pointer, beta: beta?.pointer,
                           runningMean: runningMean.pointer, runningVar: runningVar.pointer)
    parallelFor(c, cost: 3 * bn.m) { channels in
        bn.statistics(channels, eps: eps)
        if hw == 1 { bn.rowsNormalize(channels) } else { bn.planesNormalize(channels) }
    }
    if training {
        // Running stats move in training mode, with or without grad recording; inside a lane
        // (one view of a step) after the join, so the views move them in order.
        Lanes.afterJoin {
            for ch in 0..<c {
                runningMean.pointer[ch] = (1 - momentum) * runningMean.pointer[ch] + momentum * bn.mean[ch]
                runningVar.pointer[ch] = (1 - momentum) * runningVar.pointer[ch] + momentum * bn.unbiasedVar[ch]
            }
            withExtendedLifetime(stats) {}
        }
    }

    let parents = [x] + [gamma, beta].compactMap { $0 }
    return Tensor.result(x.shape, out, parents: parents) { dy in
        parallelFor(c, cost: 2 * bn.m) { channels in
            if hw == 1 { bn.rowsGradSums(dy, channels) } else { bn.planesGradSums(dy, channels) }
        }
        if let gamma, gamma.requiresGrad {
            gamma.accumulateGrad { g, overwrite in
                for ch in 0..<c { g[ch] = (overwrite ? 0 : g[ch]) + bn.sumDyXhat[ch] }
            }
        }
        if let beta, beta.requiresGrad {
            beta.accumulateGrad { g, overwrite in
                for ch in 0..<c { g[ch] = (overwrite ? 0 : g[ch]) + bn.sumDy[ch] }
            }
        }
        if x.requiresGrad {
            x.accumulateGrad { gx, overwrite in
                let gxBox = UncheckedBox(gx)
                parallelFor(c, cost: 2 * bn.m) { channels in
                    if hw == 1 {
                        bn.rowsInputGrad(dy, gxBox.value, channels, overwrite: overwrite)
                    } else {
                        bn.planesInputGrad(dy, gxBox.value, channels, overwrite: overwrite)
                    }
                }
            }
        }
        withExtendedLifetime((stats, out)) {}
    }
}

/// The pointers and sizes of one batch-norm call, shared by its forward and backward loops.
/// NOTE: @unchecked Sendable because every parallel chunk touches only its own channels.
private struct BatchNormPass: @unchecked Sendable {
    let n, c, hw: Int
    let training, relu: Bool
    let x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    let mean, rstd, scale, shift, sumDy, sumDyXhat, unbiasedVar: UnsafeMutablePointer<Float>
    let gamma, beta: UnsafeMutablePointer<Float>?
    let runningMean, runningVar: UnsafeMutablePointer<Float>
    var m: Int { n * hw }

    init(n: Int, c: Int, hw: Int, training: Bool, relu: Bool, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
         stats: UnsafeMutablePointer<Float>, gamma: UnsafeMutablePointer<Float>?, beta: UnsafeMutablePointer<Float>?,
         runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>) {
        (self.n, self.c, self.hw, self.training, self.relu, self.x, self.y) = (n, c, hw, training, relu, x, y)
        (mean, rstd, scale, shift, sumDy, sumDyXhat) = (stats, stats + c, stats + 2 * c, stats + 3 * c, stats + 4 * c, stats + 5 * c)
        unbiasedVar = stats + 6 * c
        (self.gamma, self.beta, self.runningMean, self.runningVar) = (gamma, beta, runningMean, runningVar)
    }

    /// mean, rstd, scale, shift of the channels; in training also the unbiased variance.
    /// One pass: moments shifted by the channel's first value (≈ its mean), summed per plane in
    /// Float and across planes in Double ([N, C]: a plane is one value).
    func statistics(_ channels: Range<Int>, eps: Float) {
        let lo = channels.lowerBound, w = channels.count
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * w), s = sums, s2 = sums + w
        defer { sums.deallocate() }
        if training {
            sums.initialize(repeating: 0, count: 2 * w)
            if hw == 1 {
                let k = x + lo
                for i in 0..<n {
                    let row = x + i * c + lo
                    for j in 0..<w { let d = row[j] - k[j]; s[j] += Double(d); s2[j] += Double(d * d) }
                }
            } else {
                planeSums(channels, s, s2) { i, ch in vshiftedMoments(x + (i * c + ch) * hw, hw, x[ch * hw]) }
            }
        }
        for j in 0..<w {
            let ch = lo + j
            if training {
                let meanShift = s[j] / Double(m)
                let mu = x[ch * hw] + Float(meanShift)
                let v = max(s2[j] - s[j] * meanShift, 0)   // Σ (x − μ)²
                mean[ch] = mu
                rstd[ch] = 1 / (Float(v / Double(m)) + eps).squareRoot()
                unbiasedVar[ch] = Float(v / Double(m - 1))
            } else {
                mean[ch] = runningMean[ch]
                rstd[ch] = 1 / (runningVar[ch] + eps).squareRoot()
            }
            scale[ch] = rstd[ch] * (gamma?[ch] ?? 1)
            shift[ch] = (beta?[ch] ?? 0) - mean[ch] * scale[ch]
        }
    }

    // MARK: [N, C, H, W]: images outer, the chunk's channels inner, so each pass streams through
    // memory once (channel-major loops would stride by C·H·W between an image's planes). A
    // channel's sums still add one plane at a time in image order, so the results do not depend
    // on the loop order or the number of threads.

    /// Over images in order, per channel of the chunk: (s[j], s2[j]) += `plane(i, lo + j)`,
    /// converted to T (Double for the statistics, Float for the gradient sums).
    @inline(__always)
    func planeSums<T: BinaryFloatingPoint>(_ channels: Range<Int>, _ s: UnsafeMutablePointer<T>,
                                           _ s2: UnsafeMutablePointer<T>, _ plane: (Int, Int) -> (Float, Float)) {
        let lo = channels.lowerBound, w = channels.count
        s.initialize(repeating: 0, count: w)
        s2.initialize(repeating: 0, count: w)
        for i in 0..<n {
            for j in 0..<w {
                let (a, q) = plane(i, lo + j)
                s[j] += T(a); s2[j] += T(q)
            }
        }
    }

    func planesNormalize(_ channels: Range<Int>) {
        let vecs = hw / 16
        for i in 0..<n {
            for ch in channels {
                let a = scale[ch], b = shift[ch], av = SIMD16<Float>(repeating: a), bv = SIMD16<Float>(repeating: b)
                let o = (i * c + ch) * hw, src = UnsafeRawPointer(x + o), dst = UnsafeMutableRawPointer(y + o)
                for v in 0..<vecs {
                    var r = src.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self) * av + bv
                    if relu { r.replace(with: 0, where: r .<= 0) }   // as max(r, 0): −0 and 0 give 0
                    dst.storeBytes(of: r, toByteOffset: v * 64, as: SIMD16<Float>.self)
                }
                for t in vecs * 16..<hw {
                    let r = x[o + t] * a + b
                    y[o + t] = relu ? max(r, 0) : r
                }
            }
        }
    }

    func planesGradSums(_ dy: UnsafePointer<Float>, _ channels: Range<Int>) {
        let lo = channels.lowerBound
        planeSums(channels, sumDy + lo, sumDyXhat + lo) { i, ch in
            let o = (i * c + ch) * hw
            return vmaskedSumAndDot(dy + o, x + o, hw, mean[ch], mask: relu ? (scale[ch], shift[ch]) : nil)
        }
        for ch in channels { sumDyXhat[ch] *= rstd[ch] }
    }

    func planesInputGrad(_ dy: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>, _ channels: Range<Int>,
                         overwrite: Bool) {
        withInputGradCoefficients(channels) { kk, aa, bb in
            let lo = channels.lowerBound
            for i in 0..<n {
                for j in 0..<channels.count {
                    let ch = lo + j, o = (i * c + ch) * hw
                    vbatchNormInputGrad(dy + o, x + o, gx + o, hw, k: kk[j], a: aa[j], mu: mean[ch], b: bb[j],
                                        mask: relu ? (scale[ch], shift[ch]) : nil, overwrite: overwrite)
                }
            }
        }
    }

    /// The coefficients k, a, b of `inputGradCoefficients` for each channel of the chunk.
    @inline(__always)
    func withInputGradCoefficients(_ channels: Range<Int>,
                                   _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
        let w = channels.count
        let coef = UnsafeMutablePointer<Float>.allocate(capacity: 3 * w)
        defer { coef.deallocate() }
        for j in 0..<w { (coef[j], coef[w + j], coef[2 * w + j]) = inputGradCoefficients(channels.lowerBound + j) }
        body(coef, coef + w, coef + 2 * w)
    }

    /// gx = k·(m·dy − a − (x − μ)·b) per channel.
    func inputGradCoefficients(_ ch: Int) -> (k: Float, a: Float, b: Float) {
        let k = rstd[ch] * (gamma?[ch] ?? 1)
        guard training else { return (k, 0, 0) }
        return (k, sumDy[ch] / Float(m), sumDyXhat[ch] / Float(m) * rstd[ch])
    }

    // MARK: [N, C]: rows outer, the chunk's channels inner.

    func rowsNormalize(_ channels: Range<Int>) {
        let lo = channels.lowerBound, w = channels.count
        let a = scale + lo, b = shift + lo
        for i in 0..<n {
            let src = x + i * c + lo, dst = y + i * c + lo
            if relu {
                for j in 0..<w { dst[j] = max(src[j] * a[j] + b[j], 0) }
            } else {
                for j in 0..<w { dst[j] = src[j] * a[j] + b[j] }
            }
        }
    }

    func rowsGradSums(_ dy: UnsafePointer<Float>, _ channels: Range<Int>) {
        let lo = channels.lowerBound, w = channels.count
        let s = sumDy + lo, sx = sumDyXhat + lo, mu = mean + lo, a = scale + lo, b = shift + lo
        s.initialize(repeating: 0, count: w)
        sx.initialize(repeating: 0, count: w)
        for i in 0..<n {
            let d = dy + i * c + lo, xr = x + i * c + lo
            if relu {
                for j in 0..<w {   // adding +0 where masked leaves the sums as the planes path's
                    let dm = xr[j] * a[j] + b[j] > 0 ? d[j] : 0
                    s[j] += dm; sx[j] += dm * (xr[j] - mu[j])
                }
            } else {
                for j in 0..<w { s[j] += d[j]; sx[j] += d[j] * (xr[j] - mu[j]) }
            }
        }
        for j in 0..<w { sx[j] *= rstd[lo + j] }
    }

    func rowsInputGrad(_ dy: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>, _ channels: Range<Int>,
                       overwrite: Bool) {
        let lo = channels.lowerBound, w = channels.count, mu = mean + lo, sa = scale + lo, sb = shift + lo
        withInputGradCoefficients(channels) { kk, aa, bb in
            for i in 0..<n {
                let d = dy + i * c + lo, xr = x + i * c + lo, g = gx + i * c + lo
                for j in 0..<w {
                    let dm = !relu || xr[j] * sa[j] + sb[j] > 0 ? d[j] : 0
                    let v = kk[j] * (dm - aa[j] - (xr[j] - mu[j]) * bb[j])
                    if overwrite { g[j] = v } else { g[j] += v }
                }
            }
        }
    }
}
