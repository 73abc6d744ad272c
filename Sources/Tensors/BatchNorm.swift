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
/// Layout: for [N, C, H, W] each channel's values are N contiguous planes and the loops run per
/// channel; for [N, C] a channel's values are strided by C, so the loops run over rows with the
/// channels inner (contiguous, vectorised). Both compute, per channel, the same sums in the same
/// order, so they agree bit for bit.
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
    // Per channel: mean, rstd, scale = rstd·γ, shift = β − mean·scale, Σ dy, Σ dy·x̂.
    let stats = Storage(uninitializedCount: 6 * c)
    let out = Storage(uninitializedCount: x.count)
    let bn = BatchNormPass(n: n, c: c, hw: hw, training: training, relu: fuseReLU, x: x.pointer, y: out.pointer,
                           stats: stats.pointer, gamma: gamma?.pointer, beta: beta?.pointer,
                           runningMean: runningMean.pointer, runningVar: runningVar.pointer)
    parallelFor(c, cost: 3 * bn.m) { channels in
        bn.statistics(channels, momentum: momentum, eps: eps)
        if hw == 1 { bn.rowsNormalize(channels) } else { bn.planesNormalize(channels) }
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
    let mean, rstd, scale, shift, sumDy, sumDyXhat: UnsafeMutablePointer<Float>
    let gamma, beta: UnsafeMutablePointer<Float>?
    let runningMean, runningVar: UnsafeMutablePointer<Float>
    var m: Int { n * hw }

    init(n: Int, c: Int, hw: Int, training: Bool, relu: Bool, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
         stats: UnsafeMutablePointer<Float>, gamma: UnsafeMutablePointer<Float>?, beta: UnsafeMutablePointer<Float>?,
         runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>) {
        (self.n, self.c, self.hw, self.training, self.relu, self.x, self.y) = (n, c, hw, training, relu, x, y)
        (mean, rstd, scale, shift, sumDy, sumDyXhat) = (stats, stats + c, stats + 2 * c, stats + 3 * c, stats + 4 * c, stats + 5 * c)
        (self.gamma, self.beta, self.runningMean, self.runningVar) = (gamma, beta, runningMean, runningVar)
    }

    /// mean, rstd, scale, shift of the channels; in training also moves the running stats.
    /// One pass: moments shifted by the channel's first value (≈ its mean), summed per plane in
    /// Float and across planes in Double ([N, C]: a plane is one value).
    func statistics(_ channels: Range<Int>, momentum: Float, eps: Float) {
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
                for j in 0..<w {
                    let ch = lo + j
                    for i in 0..<n {
                        let (a, q) = vshiftedMoments(x + (i * c + ch) * hw, hw, x[ch * hw])
                        s[j] += Double(a); s2[j] += Double(q)
                    }
                }
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
                // Running stats move in training mode, with or without grad recording.
                runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mu
                runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * Float(v / Double(m - 1))
            } else {
                mean[ch] = runningMean[ch]
                rstd[ch] = 1 / (runningVar[ch] + eps).squareRoot()
            }
            scale[ch] = rstd[ch] * (gamma?[ch] ?? 1)
            shift[ch] = (beta?[ch] ?? 0) - mean[ch] * scale[ch]
        }
    }

    // MARK: [N, C, H, W]: per channel, N planes of H·W.

    func planesNormalize(_ channels: Range<Int>) {
        for ch in channels {
            let a = scale[ch], b = shift[ch]
            for i in 0..<n {
                let src = x + (i * c + ch) * hw, dst = y + (i * c + ch) * hw
                if relu {
                    for p in 0..<hw { dst[p] = max(src[p] * a + b, 0) }
                } else {
                    for p in 0..<hw { dst[p] = src[p] * a + b }
                }
            }
        }
    }

    func planesGradSums(_ dy: UnsafePointer<Float>, _ channels: Range<Int>) {
        for ch in channels {
            var s: Float = 0, sx: Float = 0
            for i in 0..<n {
                let o = (i * c + ch) * hw
                let (a, d) = vmaskedSumAndDot(dy + o, x + o, hw, mean[ch], mask: relu ? (scale[ch], shift[ch]) : nil)
                s += a; sx += d
            }
            sumDy[ch] = s
            sumDyXhat[ch] = sx * rstd[ch]
        }
    }

    func planesInputGrad(_ dy: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>, _ channels: Range<Int>,
                         overwrite: Bool) {
        for ch in channels {
            let (k, a, b) = inputGradCoefficients(ch)
            for i in 0..<n {
                let o = (i * c + ch) * hw
                vbatchNormInputGrad(dy + o, x + o, gx + o, hw, k: k, a: a, mu: mean[ch], b: b,
                                    mask: relu ? (scale[ch], shift[ch]) : nil, overwrite: overwrite)
            }
        }
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
        let lo = channels.lowerBound, w = channels.count
        let coef = UnsafeMutablePointer<Float>.allocate(capacity: 3 * w)
        defer { coef.deallocate() }
        let kk = coef, aa = coef + w, bb = coef + 2 * w, mu = mean + lo, sa = scale + lo, sb = shift + lo
        for j in 0..<w { (kk[j], aa[j], bb[j]) = inputGradCoefficients(lo + j) }
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
