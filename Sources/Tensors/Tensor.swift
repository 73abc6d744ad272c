import Foundation

/// A dense, contiguous float32 tensor (row-major; images are NCHW) that records the
/// operations applied to it so that `backward()` can compute gradients.
///
/// A tensor is a node of the autograd graph: an operation's result keeps its inputs (`parents`)
/// and a closure that turns the result's gradient into gradients of the inputs. Leaves are the
/// tensors created with `requiresGrad: true` (parameters, inputs under test); their `.grad`
/// accumulates across `backward()` calls until `zeroGrad()`.
public final class Tensor {
    public let shape: [Int]
    public let storage: Storage
    /// Whether gradients flow to this tensor.
    public private(set) var requiresGrad: Bool
    /// The accumulated gradient (same shape), or nil before the first backward pass.
    public var grad: Tensor?

    var parents: [Tensor] = []
    var backwardFn: ((UnsafePointer<Float>) -> Void)?
    /// Set when a backward pass has released this result's graph; a second pass through it would
    /// silently miss everything upstream, so `backward()` refuses it.
    var graphReleased = false
    /// The lane (`Lanes`) whose thread computed this result, or −1.
    var lane = -1

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var isLeaf: Bool { backwardFn == nil }

    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false) {
        precondition(shape.reduce(1, *) == storage.count, "NOTE: internal invariant, shape matches storage")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// A tensor holding `values` (row-major); throws if the count does not match the shape.
    public convenience init(shape: [Int], _ values: [Float], requiresGrad: Bool = false) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw TensorError.badShape(op: "Tensor(shape:values:)", shape: shape,
                                       expected: "\(values.count) elements to match the shape")
        }
        self.init(shape: shape, storage: Storage(values), requiresGrad: requiresGrad)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: Storage(repeating: value, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    /// Uniform in [low, high).
    public static func uniform(_ shape: [Int], _ low: Float, _ high: Float, rng: inout RNG,
                               requiresGrad: Bool = false) -> Tensor {
        let s = Storage(uninitializedCount: shape.reduce(1, *))
        for i in 0..<s.count { s.pointer[i] = rng.uniform(low, high) }
        return Tensor(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// Standard normal times `std`.
    public static func randn(_ shape: [Int], std: Float = 1, rng: inout RNG, requiresGrad: Bool = false) -> Tensor {
        let s = Storage(uninitializedCount: shape.reduce(1, *))
        for i in 0..<s.count { s.pointer[i] = rng.normal() * std }
        return Tensor(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// The values, row-major.
    public var array: [Float] { storage.array }

    /// The value of a one-element tensor.
    public var item: Float { storage.pointer[0] }

    /// Marks a leaf as needing gradients (e.g. parameters, inputs of a gradient check).
    public func setRequiresGrad(_ on: Bool) { requiresGrad = on }

    /// Forgets the accumulated gradient.
    public func zeroGrad() { grad = nil }

    /// A copy of the values with no graph and no gradient.
    public func detachedCopy() -> Tensor {
        let s = Storage(uninitializedCount: count)
        s.pointer.update(from: pointer, count: count)
        return Tensor(shape: shape, storage: s)
    }

    /// Overwrites the values (e.g. loading weights). Shapes must match.
    public func assign(from other: Tensor) throws {
        guard other.shape == shape else {
            throw TensorError.shapeMismatch(op: "assign", lhs: shape, rhs: other.shape, expected: "equal shapes")
        }
        pointer.update(from: other.pointer, count: count)
    }
}

// MARK: - Building the graph

/// Whether operations record the graph. Off inside `noGrad { }` (evaluation, optimiser steps).
public enum GradMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording any operation: results have no graph and need no gradient.
public func noGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.$isEnabled.withValue(false) { try body() }
}

extension Tensor {
    /// The result of an operation: records `parents` and `backward` when any parent needs gradients.
    /// `backward` receives the result's gradient and accumulates into the parents' gradients.
    @inline(__always)
    static func result(_ shape: [Int], _ storage: Storage, parents: [Tensor],
                       backward: @escaping (UnsafePointer<Float>) -> Void) -> Tensor {
        let needsGrad = GradMode.isEnabled && parents.contains { $0.requiresGrad }
        let t = Tensor(shape: shape, storage: storage, requiresGrad: needsGrad)
        if needsGrad {
            t.parents = parents
            t.backwardFn = backward
            if let lane = Lanes.current { t.lane = lane }
        }
        return t
    }

    /// Gives the gradient buffer to `body` to accumulate into. `overwrite` is true when the buffer
    /// is freshly allocated: `body` must then *write* every element instead of adding.
    @inline(__always)
    func accumulateGrad(_ body: (_ grad: UnsafeMutablePointer<Float>, _ overwrite: Bool) -> Void) {
        if let sink = Lanes.gradients, lane != sink.lane {
            let (buffer, fresh) = sink.buffer(for: self)
            body(buffer, fresh)
            return
        }
        if let g = grad {
            body(g.pointer, false)
        } else {
            let g = Tensor(shape: shape, storage: Storage(uninitializedCount: count))
            grad = g
            body(g.pointer, true)
        }
    }

    /// `grad` (=|+=) `src`, a whole gradient for this tensor already computed in a buffer.
    func accumulateGrad(from src: UnsafePointer<Float>) {
        accumulateGrad { g, overwrite in writeOrAdd(src, into: g, count: count, overwrite: overwrite) }
    }

    /// Back-propagates from this scalar: every leaf that needs gradients gets `.grad` += d self / d leaf.
    /// The graph is released afterwards (intermediate gradients are not kept).
    public func backward() throws {
        guard count == 1 else {
            throw TensorError.notDifferentiable("called on a tensor of shape \(shape); reduce it to one element first (e.g. mean)")
        }
        guard requiresGrad else {
            throw TensorError.notDifferentiable("this value does not depend on any tensor that requires gradients")
        }
        // Topological order by iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Int)] = [(self, 0)]
        visited.insert(ObjectIdentifier(self))
        while let (node, next) = stack.popLast() {
            if node.graphReleased {
                throw TensorError.notDifferentiable(
                    "part of this graph was already used by an earlier backward() and released; recompute the forward pass")
            }
            if next < node.parents.count {
                stack.append((node, next + 1))
                let p = node.parents[next]
                if p.requiresGrad, visited.insert(ObjectIdentifier(p)).inserted { stack.append((p, 0)) }
            } else {
                order.append(node)
            }
        }
        accumulateGrad { g, overwrite in g[0] = overwrite ? 1 : g[0] + 1 }
        let nodes = order.reversed().filter { $0.backwardFn != nil }
        if nodes.contains(where: { $0.lane >= 0 }) && !Tensor.hasCrossLaneEdge(nodes) {
            Tensor.backwardInStages(nodes)
        } else {
            for node in nodes { node.runBackward() }
        }
    }

    /// Sends this result's gradient to its parents and releases its graph.
    private func runBackward() {
        if let g = grad, let fn = backwardFn { fn(UnsafePointer(g.pointer)) }
        backwardFn = nil
        parents = []
        grad = nil
        graphReleased = true
    }

    /// Whether a lane's node reads another lane's result (then the lanes cannot run back at once).
    private static func hasCrossLaneEdge(_ nodes: [Tensor]) -> Bool {
        nodes.contains { node in
            node.lane >= 0 && node.parents.contains { $0.backwardFn != nil && $0.lane >= 0 && $0.lane != node.lane }
        }
    }

    /// The backward pass over `nodes` (reverse topological order, results only) with the lanes'
    /// nodes run at once: nodes outside lanes run in order while the lanes' nodes are collected,
    /// until one that a collected node feeds; then the collected lanes run, each on its thread, and
    /// the gradients they sent out of their lane are added in lane order. Repeat.
    private static func backwardInStages(_ nodes: [Tensor]) {
        let laneCount = (nodes.map(\.lane).max() ?? -1) + 1
        var pos = 0
        while pos < nodes.count {
            var lanes = [[Tensor]](repeating: [], count: laneCount)
            var fed = Set<ObjectIdentifier>()
            while pos < nodes.count {
                let node = nodes[pos]
                if node.lane >= 0 {
                    lanes[node.lane].append(node)
                    for p in node.parents { fed.insert(ObjectIdentifier(p)) }
                } else if fed.contains(ObjectIdentifier(node)) {
                    break
                } else {
                    node.runBackward()
                }
                pos += 1
            }
            runBackward(lanes: lanes)
        }
    }

    private static func runBackward(lanes: [[Tensor]]) {
        let active = lanes.indices.filter { !lanes[$0].isEmpty }
        guard !active.isEmpty else { return }
        let sinks = active.map { LaneGradients(lane: $0) }
        let box = UncheckedBox(lanes)
        Lanes.singleThreadedBLAS {
            DispatchQueue.concurrentPerform(iterations: active.count) { i in
                Lanes.$current.withValue(active[i]) {
                    Lanes.$gradients.withValue(sinks[i]) { for node in box.value[active[i]] { node.runBackward() } }
                }
            }
        }
        for sink in sinks {
            for t in sink.order {
                t.accumulateGrad(from: sink.storage(for: t).pointer)
            }
        }
    }
}

/// Returns `x` cut out of the graph: same values, but backward never crosses into `x`.
/// (SimSiam's `z.detach()`.)
public func stopGradient(_ x: Tensor) -> Tensor {
    Tensor(shape: x.shape, storage: x.storage, requiresGrad: false)
}

/// dst = src (`overwrite`: dst holds garbage) or dst += src, element by element.
@inline(__always)
func writeOrAdd(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int, overwrite: Bool) {
    if overwrite { dst.update(from: src, count: count) } else { for i in 0..<count { dst[i] += src[i] } }
}
