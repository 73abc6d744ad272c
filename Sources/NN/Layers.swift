import Tensors

/// A layer: a forward function and an explicit list of its parameters (micrograd's `parameters()`).
public protocol Layer: AnyObject {
    func forward(_ x: Tensor) throws -> Tensor
    /// Trainable tensors, in a fixed order (the order checkpoints and fixtures use).
    var parameters: [Tensor] { get }
    /// Non-trainable state saved with the model (BN running statistics).
    var buffers: [Tensor] { get }
    /// Training mode (batch statistics in BN) or evaluation mode.
    func setTraining(_ on: Bool)
}

extension Layer {
    public var buffers: [Tensor] { [] }
    public func setTraining(_ on: Bool) {}
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try forward(x) }
}

/// PyTorch's default initialisation. NOTE: kaiming_uniform_(a=√5) gives U(±1/√fan_in) for
/// weights, and biases are U(±1/√fan_in) too.
public enum Init {
    public static func kaimingUniform(_ shape: [Int], fanIn: Int, rng: inout RNG) -> Tensor {
        let bound = 1 / Float(fanIn).squareRoot()
        return Tensor.uniform(shape, -bound, bound, rng: &rng, requiresGrad: true)
    }
}

/// y = x·Wᵀ + b with W [out, in].
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout RNG) {
        weight = Init.kaimingUniform([outFeatures, inFeatures], fanIn: inFeatures, rng: &rng)
        self.bias = bias ? Init.kaimingUniform([outFeatures], fanIn: inFeatures, rng: &rng) : nil
    }

    public func forward(_ x: Tensor) throws -> Tensor { try linear(x, weight, bias) }
    public var parameters: [Tensor] { [weight] + (bias.map { [$0] } ?? []) }
}

/// 2-D convolution without bias (every conv in the protocols is followed by BN).
public final class Conv2d: Layer {
    public let weight: Tensor
    public let stride: Int, padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, rng: inout RNG) {
        weight = Init.kaimingUniform([outChannels, inChannels, kernel, kernel], fanIn: inChannels * kernel * kernel, rng: &rng)
        self.stride = stride
        self.padding = padding
    }

    public func forward(_ x: Tensor) throws -> Tensor { try conv2d(x, weight, stride: stride, padding: padding) }
    public var parameters: [Tensor] { [weight] }
}

/// BatchNorm1d / BatchNorm2d (the input's rank decides), optionally fused with the ReLU after it.
public final class BatchNorm: Layer {
    public let gamma: Tensor?, beta: Tensor?
    public let runningMean: Tensor, runningVar: Tensor
    public let fuseReLU: Bool
    public private(set) var training = true

    public init(_ channels: Int, affine: Bool = true, fuseReLU: Bool = false) {
        gamma = affine ? Tensor.full([channels], 1, requiresGrad: true) : nil
        beta = affine ? Tensor.zeros([channels], requiresGrad: true) : nil
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.full([channels], 1)
        self.fuseReLU = fuseReLU
    }

    public func forward(_ x: Tensor) throws -> Tensor {
        try batchNorm(x, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                      training: training, fuseReLU: fuseReLU)
    }
    public var parameters: [Tensor] { [gamma, beta].compactMap { $0 } }
    public var buffers: [Tensor] { [runningMean, runningVar] }
    public func setTraining(_ on: Bool) { training = on }
}

public final class ReLU: Layer {
    public init() {}
    public func forward(_ x: Tensor) throws -> Tensor { relu(x) }
    public var parameters: [Tensor] { [] }
}

public final class GlobalAvgPool: Layer {
    public init() {}
    public func forward(_ x: Tensor) throws -> Tensor { try globalAvgPool(x) }
    public var parameters: [Tensor] { [] }
}

/// Layers applied in order.
public final class Sequential: Layer {
    public let layers: [Layer]
    public init(_ layers: [Layer]) { self.layers = layers }
    public func forward(_ x: Tensor) throws -> Tensor { try layers.reduce(x) { try $1.forward($0) } }
    public var parameters: [Tensor] { layers.flatMap(\.parameters) }
    public var buffers: [Tensor] { layers.flatMap(\.buffers) }
    public func setTraining(_ on: Bool) { layers.forEach { $0.setTraining(on) } }
}
