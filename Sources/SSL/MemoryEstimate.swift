import Foundation

extension TrainingConfig {
    /// A rough upper estimate of a run's peak memory in bytes, so that a row that cannot fit is
    /// refused before it runs rather than killed by the kernel hours in:
    /// - training: the activations of every view × batch through the convnet (conv output, BN
    ///   output, the im2col buffer) and the heads, × 3 for what autograd keeps and the gradients;
    /// - parameters × 4 (weights, gradients, momentum, checkpoint copy), × 2 for BYOL's target;
    /// - the final evaluation: the training set's features (60,000 × c4 in `mini`) twice (kept and
    ///   standardised for the linear probe) and the kNN's 256-query similarity block;
    /// - the data set as floats and 200 MB for the process itself.
    public var estimatedPeakBytes: Double {
        let size = protocolName == "smoke" ? 16.0 : 28.0, channels = 1.0
        let train = Double(trainingImages), test = 10_000.0
        var spatial = size, cin = channels, perImage = 0.0, params = 0.0
        for (i, w) in model.widths.map(Double.init).enumerated() {
            if i > 0 { spatial = ((spatial - 1) / 2).rounded(.down) + 1 }
            perImage += 2 * w * spatial * spatial + cin * 9 * spatial * spatial
            params += 9 * cin * w + 2 * w
            cin = w
        }
        let feature = Double(model.widths.last ?? 0), d = Double(model.projectorDim)
        let hidden = Double(model.predictorHidden ?? 0)
        perImage += 2 * (3 * d + 2 * hidden)
        params += feature * d + 2 * d * d + 2 * d * hidden
        let views = Double(model.symmetry.viewCount)
        let activations = 3 * Double(batch) * views * perImage
        let parameters = 4 * params * (method == "byol" ? 2 : 1)
        let evaluation = 2 * train * feature + test * feature + 256 * train
        let data = (train + test) * size * size * channels
        return 4 * (activations + parameters + evaluation + data) + 200 * 1_048_576
    }

    /// Throws if settings contradict each other, the data set cannot fill a batch, or the run's
    /// estimated peak memory is above `memoryLimit` bytes (the machine's memory by default).
    public func validate(memoryLimit: Double = Double(ProcessInfo.processInfo.physicalMemory)) throws {
        if let (key, problem) = conflict() { throw ConfigKeyError(key: key, message: problem) }
        let estimate = estimatedPeakBytes
        if estimate > memoryLimit {
            throw ConfigKeyError(key: "memory", message: "the run would need about \(mib(estimate)) MiB at its peak "
                + "(batch \(batch) × \(model.symmetry.viewCount) views through widths \(model.widths), heads \(model.projectorDim)), "
                + "more than this machine's \(mib(memoryLimit)) MiB; lower `optim.batch` or the widths")
        }
    }
}

private func mib(_ bytes: Double) -> Int { Int((bytes / 1_048_576).rounded()) }
