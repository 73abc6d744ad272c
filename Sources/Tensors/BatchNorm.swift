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
    let m = n * hw
    if training && m < 2 {
        throw TensorError.badShape(op: "batchNorm", shape: x.shape,
                                   expected: "more than one value per channel in training mode")
    }
    let mean = Storage(uninitializedCount: c), rstd = Storage(uninitializedCount: c)
    let out = Storage(uninitializedCount: x.count)
    let xp = UncheckedBox(x.pointer), yp = UncheckedBox(out.pointer)
    let mp = UncheckedBox(mean.pointer), rp = UncheckedBox(rstd.pointer)
    let gp = UncheckedBox(gamma?.pointer), bp = UncheckedBox(beta?.pointer)
    let rmp = UncheckedBox(runningMean.pointer), rvp = UncheckedBox(runningVar.pointer)

    parallelFor(c, cost: 3 * m) { channels in
        let x = xp.value, y = yp.value
        for ch in channels {
            var mu: Float, r: Float
            if training {
                // One pass: moments shifted by the channel's first value (≈ its mean), summed
                // per block in Float and across blocks in Double.
                let k = x[ch * hw]
                var s = 0.0, s2 = 0.0
                for b in 0..<n {
                    let (a, q) = vshiftedMoments(x + (b * c + ch) * hw, hw, k)
                    s += Double(a); s2 += Double(q)
                }
                let meanShift = s / Double(m)
                mu = k + Float(meanShift)
                let v = max(s2 - s * meanShift, 0)   // Σ (x − μ)²
                let biased = Float(v / Double(m))
                r = 1 / (biased + eps).squareRoot()
                do {  // running stats move in training mode, with or without grad recording
                    let unbiased = Float(v / Double(m - 1))
                    rmp.value[ch] = (1 - momentum) * rmp.value[ch] + momentum * mu
                    rvp.value[ch] = (1 - momentum) * rvp.value[ch] + momentum * unbiased
                }
            } else {
                mu = rmp.value[ch]
                r = 1 / (rvp.value[ch] + eps).squareRoot()
            }
            mp.value[ch] = mu
            rp.value[ch] = r
            let scale = r * (gp.value?[ch] ?? 1)
            let shift = (bp.value?[ch] ?? 0) - mu * scale
            for b in 0..<n {
                let src = x + (b * c + ch) * hw, dst = y + (b * c + ch) * hw
                if fuseReLU {
                    for i in 0..<hw { dst[i] = max(src[i] * scale + shift, 0) }
                } else {
                    for i in 0..<hw { dst[i] = src[i] * scale + shift }
                }
            }
        }
    }

    let parents = [x] + [gamma, beta].compactMap { $0 }
    return Tensor.result(x.shape, out, parents: parents) { dy in
        // With fused ReLU the incoming gradient is masked by (y > 0) on the fly.
        let maskBox = UncheckedBox(fuseReLU ? UnsafePointer(yp.value) : nil)
        let sumDy = Storage(uninitializedCount: c), sumDyXhat = Storage(uninitializedCount: c)
        let dyb = UncheckedBox(dy), sdp = UncheckedBox(sumDy.pointer), sxp = UncheckedBox(sumDyXhat.pointer)
        parallelFor(c, cost: 2 * m) { channels in
            for ch in channels {
                var s: Float = 0, sx: Float = 0
                for b in 0..<n {
                    let o = (b * c + ch) * hw
                    let (a, d) = vmaskedSumAndDot(dyb.value + o, maskBox.value.map { $0 + o }, xp.value + o, hw, mp.value[ch])
                    s += a; sx += d
                }
                sdp.value[ch] = s
                sxp.value[ch] = sx * rp.value[ch]
            }
        }
        if let gamma, gamma.requiresGrad {
            gamma.accumulateGrad { g, overwrite in
                for ch in 0..<c { g[ch] = (overwrite ? 0 : g[ch]) + sumDyXhat.pointer[ch] }
            }
        }
        if let beta, beta.requiresGrad {
            beta.accumulateGrad { g, overwrite in
                for ch in 0..<c { g[ch] = (overwrite ? 0 : g[ch]) + sumDy.pointer[ch] }
            }
        }
        if x.requiresGrad {
            x.accumulateGrad { gx, overwrite in
                let gxp = UncheckedBox(gx)
                parallelFor(c, cost: 2 * m) { channels in
                    for ch in channels {
                        let r = rp.value[ch], mu = mp.value[ch]
                        let k = r * (gp.value?[ch] ?? 1)
                        let a: Float, bcoef: Float
                        if training {
                            a = sdp.value[ch] / Float(m)
                            bcoef = sxp.value[ch] / Float(m) * r   // multiplies (x − μ)
                        } else {
                            a = 0; bcoef = 0
                        }
                        for b in 0..<n {
                            let o = (b * c + ch) * hw
                            vbatchNormInputGrad(dyb.value + o, maskBox.value.map { $0 + o }, xp.value + o, gxp.value + o, hw,
                                                k: k, a: a, mu: mu, b: bcoef, overwrite: overwrite)
                        }
                    }
                }
            }
        }
        withExtendedLifetime((mean, rstd, out)) {}
    }
}
