import NN
import Tensors

/// The protocols' backbone `convnet(c1, c2, c3, c4)`: four conv3×3–BN–ReLU blocks (strides
/// 1, 2, 2, 2, padding 1, no conv bias) and a global average pool → c4-d features.
public final class Convnet: Layer {
    public let convs: [Conv2d]
    public let bns: [BatchNorm]

    public init(inChannels: Int = 1, widths: [Int], rng: inout RNG) {
        var convs: [Conv2d] = [], bns: [BatchNorm] = []
        var cin = inChannels
        for (i, w) in widths.enumerated() {
            convs.append(Conv2d(cin, w, kernel: 3, stride: i == 0 ? 1 : 2, padding: 1, rng: &rng))
            bns.append(BatchNorm(w, fuseReLU: true))
            cin = w
        }
        self.convs = convs
        self.bns = bns
    }

    public var featureDim: Int { convs.last?.weight.shape[0] ?? 0 }

    /// [N, C, H, W] → [N, c4]
    public func forward(_ x: Tensor) throws -> Tensor {
        var h = x
        for (conv, bn) in zip(convs, bns) { h = try bn(conv(h)) }   // conv – BN – ReLU (fused)
        return try globalAvgPool(h)
    }

    public var namedParameters: [(String, Tensor)] {
        zip(convs, bns).enumerated().flatMap { i, cb in
            [("conv\(i + 1).weight", cb.0.weight)] + bnNamed("bn\(i + 1)", cb.1)
        }
    }
    public var parameters: [Tensor] { namedParameters.map(\.1) }
    public var namedBuffers: [(String, Tensor)] {
        bns.enumerated().flatMap { i, bn in [("bn\(i + 1).running_mean", bn.runningMean), ("bn\(i + 1).running_var", bn.runningVar)] }
    }
    public var buffers: [Tensor] { namedBuffers.map(\.1) }
    public func setTraining(_ on: Bool) { bns.forEach { $0.setTraining(on) } }
}

/// A stack of Linear layers, each hidden one followed by BN + ReLU (SimSiam's projector and
/// predictor shape). Variants (SimSiam Table 3): `hiddenBN` false gives Linear (with bias) + ReLU;
/// `outputBN` adds a BN without ReLU after the last layer, with γ and β unless `outputAffine` is
/// false (facebookresearch/simsiam's `BatchNorm1d(dim, affine=False)`).
public final class MLPHead: HeadLayer {
    public let fcs: [Linear]
    /// The BN after each layer, nil where there is none; hidden ones are fused with their ReLU.
    public let bns: [BatchNorm?]

    /// `dims` = [in, hidden…, out]; a layer followed by BN has no bias.
    public init(dims: [Int], hiddenBN: Bool = true, outputBN: Bool = false, outputAffine: Bool = true, rng: inout RNG) {
        var fcs: [Linear] = [], bns: [BatchNorm?] = []
        for i in 0..<(dims.count - 1) {
            let last = i == dims.count - 2
            let bn = last ? outputBN : hiddenBN
            fcs.append(Linear(dims[i], dims[i + 1], bias: !bn, rng: &rng))
            bns.append(bn ? BatchNorm(dims[i + 1], affine: !last || outputAffine, fuseReLU: !last) : nil)
        }
        self.fcs = fcs
        self.bns = bns
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        var h = x
        for (i, fc) in fcs.enumerated() {
            h = try fc(h)
            if let bn = bns[i] { h = try bn(h) } else if i < fcs.count - 1 { h = relu(h) }
        }
        return h
    }

    public var namedParameters: [(String, Tensor)] {
        fcs.enumerated().flatMap { i, fc in
            [("fc\(i + 1).weight", fc.weight)] + (fc.bias.map { [("fc\(i + 1).bias", $0)] } ?? [])
                + (bns[i].map { bnNamed("bn\(i + 1)", $0) } ?? [])
        }
    }
    public var parameters: [Tensor] { namedParameters.map(\.1) }
    public var namedBuffers: [(String, Tensor)] {
        bns.enumerated().flatMap { i, bn in
            bn.map { [("bn\(i + 1).running_mean", $0.runningMean), ("bn\(i + 1).running_var", $0.runningVar)] } ?? []
        }
    }
    public var buffers: [Tensor] { namedBuffers.map(\.1) }
    public func setTraining(_ on: Bool) { bns.forEach { $0?.setTraining(on) } }
}

private func bnNamed(_ prefix: String, _ bn: BatchNorm) -> [(String, Tensor)] {
    [bn.gamma.map { ("\(prefix).weight", $0) }, bn.beta.map { ("\(prefix).bias", $0) }].compactMap { $0 }
}
