import Foundation
import Tensors

/// How a parameter group's learning rate moves over the run.
public struct LRSchedule: Sendable, Equatable {
    public var base: Float
    public var totalSteps: Int
    public var warmupSteps: Int
    /// The lr stays at `base` (SimSiam §4.2: the predictor's lr is not decayed).
    public var fixed: Bool

    public init(base: Float, totalSteps: Int, warmupSteps: Int = 0, fixed: Bool = false) {
        self.base = base; self.totalSteps = totalSteps; self.warmupSteps = warmupSteps; self.fixed = fixed
    }

    /// lr for step t (0-based): linear warm-up base·(t+1)/W for t < W, then cosine decay
    /// base·½(1 + cos(π·(t−W)/(T−W))) reaching 0 only after the last step.
    public func lr(at step: Int) -> Float {
        if fixed { return base }
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        let span = max(totalSteps - warmupSteps, 1)
        let progress = Double(step - warmupSteps) / Double(span)
        return base * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}

/// A set of parameters sharing one schedule and weight decay.
public struct ParamGroup {
    public var name: String
    public var parameters: [Tensor]
    public var schedule: LRSchedule
    public var weightDecay: Float

    public init(name: String, parameters: [Tensor], schedule: LRSchedule, weightDecay: Float) {
        self.name = name; self.parameters = parameters; self.schedule = schedule; self.weightDecay = weightDecay
    }
}

/// SGD with momentum and weight decay, PyTorch semantics:
/// d = g + wd·p; buf = m·buf + d (buf = d on the first step); p −= lr·buf.
public final class SGD {
    public var groups: [ParamGroup]
    public let momentum: Float
    public private(set) var step = 0
    /// One buffer per parameter, in group order; nil until the parameter's first update.
    public private(set) var buffers: [[Tensor?]]

    public init(groups: [ParamGroup], momentum: Float) {
        self.groups = groups
        self.momentum = momentum
        buffers = groups.map { Array(repeating: nil, count: $0.parameters.count) }
    }

    /// The learning rate each group uses on the next step.
    public var currentLRs: [Float] { groups.map { $0.schedule.lr(at: step) } }

    /// Applies one update with the current gradients, then advances the schedule.
    /// Parameters without a gradient are skipped (as PyTorch does).
    public func update() {
        for (gi, group) in groups.enumerated() {
            let lr = group.schedule.lr(at: step), wd = group.weightDecay
            for (pi, p) in group.parameters.enumerated() {
                guard let g = p.grad else { continue }
                let n = p.count
                let pp = p.pointer, gp = g.pointer
                if let buf = buffers[gi][pi] {
                    let b = buf.pointer
                    for i in 0..<n {
                        b[i] = momentum * b[i] + (gp[i] + wd * pp[i])
                        pp[i] -= lr * b[i]
                    }
                } else {
                    let buf = Tensor.zeros(p.shape)
                    let b = buf.pointer
                    for i in 0..<n {
                        b[i] = gp[i] + wd * pp[i]
                        pp[i] -= lr * b[i]
                    }
                    buffers[gi][pi] = buf
                }
            }
        }
        step += 1
    }

    public func zeroGrad() { for g in groups { g.parameters.forEach { $0.zeroGrad() } } }

    /// Restores the step counter and momentum buffers (resuming from a checkpoint).
    public func restore(step: Int, buffers: [[Tensor?]]) {
        self.step = step
        self.buffers = buffers
    }
}
