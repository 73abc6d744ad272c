import NN
import Tensors

/// A self-supervised method, as the training loop, the monitor, checkpoints and the step
/// benchmark see it. SimSiam, BYOL, SimCLR, MoCo v2 and SwAV implement it; nothing outside a method's own file knows
/// which method it is.
public protocol SSLMethod: AnyObject {
    /// Augmented views drawn per image for one step.
    var viewCount: Int { get }
    /// The encoder's backbone: what kNN and the linear probe evaluate.
    var backbone: Convnet { get }
    /// The embedding the collapse diagnostics read (the projector output z) of backbone features.
    func project(_ features: Tensor) throws -> Tensor
    /// The predictor's output p = h(z) for projections z, or nil for a method without one (the
    /// analyses of Zhang et al. Fig 5a read it).
    func prediction(of z: Tensor) throws -> Tensor?
    /// The loss of one batch, given `viewCount` views [N, C, H, W], and the projections z of each
    /// view (the diagnostics read the first).
    func loss(_ views: [Tensor]) throws -> MethodLoss
    /// The same with the batch's context (which images, more views of them); methods that keep
    /// per-image state implement it, the others get `loss(views)`.
    func loss(_ views: [Tensor], context: BatchContext) throws -> MethodLoss
    /// The optimiser's parameter groups; `schedule` is the protocol's encoder schedule.
    func parameterGroups(schedule: LRSchedule, weightDecay: Float) -> [ParamGroup]
    /// Runs after each optimiser update (a momentum encoder, a queue, prototypes); `step` is the
    /// 0-based index of the update just made, of `totalSteps`.
    func afterUpdate(step: Int, totalSteps: Int)
    /// Trainable tensors by name, in a fixed order (checkpoints, fixtures).
    var namedParameters: [(String, Tensor)] { get }
    /// Every other tensor of the method's state (BN statistics, a target network, a queue).
    var namedBuffers: [(String, Tensor)] { get }
    /// Training mode (batch statistics in BN) or evaluation mode.
    func setTraining(_ on: Bool)
    /// Seconds spent so far in forward passes made only to compute targets (targets kept as state).
    var targetSeconds: Double { get }
}

extension SSLMethod {
    public func afterUpdate(step: Int, totalSteps: Int) {}
    public var targetSeconds: Double { 0 }
    public func prediction(of z: Tensor) throws -> Tensor? { nil }
    public func loss(_ views: [Tensor], context: BatchContext) throws -> MethodLoss { try loss(views) }
}

/// What a method's loss returns.
public struct MethodLoss {
    public var loss: Tensor
    /// The projector output z of each view (values only; the diagnostics read them).
    public var projections: [Tensor]

    public init(loss: Tensor, projections: [Tensor]) { self.loss = loss; self.projections = projections }
}

/// How to build a method and which experiment-file keys it has.
public struct MethodDescriptor: Sendable {
    public let name: String
    /// One line for `ablate list --keys`.
    public let summary: String
    /// The method's own keys (shared keys name the method in their `methods`).
    public let keys: [ConfigKey]
    let make: @Sendable (TrainingConfig, _ inChannels: Int, _ seed: UInt64) -> SSLMethod

    public init(name: String, summary: String, keys: [ConfigKey],
                make: @escaping @Sendable (TrainingConfig, Int, UInt64) -> SSLMethod) {
        self.name = name; self.summary = summary; self.keys = keys; self.make = make
    }
}

/// The methods an experiment row may name with `method:`. To add one: its file in Sources/SSL
/// (config keys, descriptor, `SSLMethod` conformance), then one line here.
public enum Methods {
    public static let defaultName = "simsiam"
    public static let all: [MethodDescriptor] = [SimSiam.descriptor, BYOL.descriptor, SimCLR.descriptor, MoCo.descriptor, SwAV.descriptor]
    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) -> MethodDescriptor? { all.first { $0.name == name } }

    /// The method of `config`, initialised from `seed` (the backbone always first, so every
    /// method starts from the same backbone for a seed).
    public static func make(_ config: TrainingConfig, inChannels: Int, seed: UInt64) throws -> SSLMethod {
        guard let descriptor = named(config.method) else {
            throw TrainingError.badConfig("unknown method `\(config.method)`; choose one of \(names.joined(separator: ", "))")
        }
        return descriptor.make(config, inChannels, seed)
    }
}

/// The optimiser of a run: SGD with the config's momentum and weight decay and the method's
/// parameter groups, the encoder schedule being lr = base_lr·batch/256 with warm-up and cosine
/// decay over `totalSteps`.
public func makeOptimizer(for method: SSLMethod, config: TrainingConfig, totalSteps: Int, warmupSteps: Int = 0) -> SGD {
    let schedule = LRSchedule(base: config.learningRate, totalSteps: totalSteps, warmupSteps: warmupSteps)
    return SGD(groups: method.parameterGroups(schedule: schedule, weightDecay: config.weightDecay), momentum: config.momentum)
}

/// What one step produced.
public struct StepOutcome {
    public var loss: Float
    public var projections: [Tensor]
}

/// One training step, for training and the benchmark alike: zero the gradients, the method's
/// loss over the views, backward, SGD update, the method's after-update hook. A non-finite loss
/// stops before the backward pass (the caller reports `diverged`).
public func trainingStep(_ method: SSLMethod, _ optimizer: SGD, views: [Tensor], totalSteps: Int,
                         context: BatchContext? = nil) throws -> StepOutcome {
    optimizer.zeroGrad()
    let out = try context.map { try method.loss(views, context: $0) } ?? method.loss(views)
    let value = out.loss.item
    guard value.isFinite else { return StepOutcome(loss: value, projections: out.projections) }
    try out.loss.backward()
    let step = optimizer.step
    optimizer.update()
    method.afterUpdate(step: step, totalSteps: totalSteps)
    return StepOutcome(loss: value, projections: out.projections)
}
