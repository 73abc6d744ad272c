import Data
import Foundation
import NN
import Tensors

/// Evaluation of a backbone (kNN monitor, linear probe) and collapse diagnostics on projector
/// outputs, as defined in PROTOCOLS.md.
public enum Evaluation {
    /// Runs `layer` in evaluation mode (BN running stats) over normalised, un-augmented images,
    /// without recording a graph; returns [count, D]. The default batch is the training batch of
    /// `mini`, so the buffers of the training step are reused (the features do not depend on it).
    /// Two batches at a time, each on a lane of its own (`Lanes`) when the process has the threads.
    public static func embed(_ set: ImageSet, range: Range<Int>? = nil, augmentation: Augmentation,
                             batch: Int = 256, _ layer: (Tensor) throws -> Tensor) throws -> Tensor {
        let range = range ?? 0..<set.count
        var parts: [Tensor] = []
        try noGrad {
            var start = range.lowerBound
            while start < range.upperBound {
                let starts = [start, start + batch].filter { $0 < range.upperBound }
                parts += try Lanes.run(starts.count) { i in
                    try layer(augmentation.plain(set, range: starts[i]..<min(starts[i] + batch, range.upperBound)))
                }
                start += batch * starts.count
            }
        }
        return try noGrad { try concat(parts) }
    }

    /// Weighted kNN (Wu et al. 2018, the SimSiam monitor): cosine similarity to the `k` nearest
    /// memory features, votes weighted by exp(sim/τ), top-1 accuracy in %.
    public static func knnAccuracy(memory: Tensor, memoryLabels: [Int], queries: Tensor, queryLabels: [Int],
                                   k: Int = 200, temperature: Float = 0.1, classes: Int = 10) throws -> Double {
        let mem = try noGrad { try l2Normalize(memory) }, q = try noGrad { try l2Normalize(queries) }
        let n = mem.shape[0], d = mem.shape[1], nq = q.shape[0]
        guard q.shape[1] == d, memoryLabels.count == n, queryLabels.count == nq else {
            throw TensorError.shapeMismatch(op: "knnAccuracy", lhs: memory.shape, rhs: queries.shape,
                                            expected: "equal feature widths and one label per row")
        }
        let k = min(k, n)
        let chunk = 256
        let sims = Storage(uninitializedCount: chunk * n)
        var correct = 0
        var start = 0
        while start < nq {
            let rows = min(chunk, nq - start)
            sgemm(transA: false, transB: true, m: rows, n: n, k: d, a: q.pointer + start * d, b: mem.pointer, c: sims.pointer)
            let predictions = UncheckedBox(UnsafeMutablePointer<Int>.allocate(capacity: rows))
            let sp = UncheckedBox(sims.pointer)
            parallelFor(rows, cost: n * 4) { range in
                var heap = TopK(k: k)
                for r in range {
                    heap.reset()
                    let row = sp.value + r * n
                    for j in 0..<n { heap.offer(row[j], j) }
                    var votes = [Double](repeating: 0, count: classes)
                    for (s, j) in heap.items { votes[memoryLabels[j]] += Foundation.exp(Double(s / temperature)) }
                    predictions.value[r] = votes.indices.max { votes[$0] < votes[$1] } ?? 0
                }
            }
            for r in 0..<rows where predictions.value[r] == queryLabels[start + r] { correct += 1 }
            predictions.value.deallocate()
            start += rows
        }
        return 100 * Double(correct) / Double(max(nq, 1))
    }

    /// Linear probe: features standardised with the train-set mean/std, a linear softmax
    /// classifier trained by SGD (momentum 0.9, lr 0.1, batch 256, 20 epochs, cosine, no weight
    /// decay, seeded); returns test top-1 %.
    public static func linearProbe(train: Tensor, trainLabels: [Int], test: Tensor, testLabels: [Int],
                                   classes: Int = 10, epochs: Int = 20, batch: Int = 256, lr: Float = 0.1,
                                   seed: UInt64) throws -> Double {
        let d = train.shape[1], n = train.shape[0]
        var mean = [Float](repeating: 0, count: d), std = [Float](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += train.pointer[i * d + j] } }
        for j in 0..<d { mean[j] /= Float(n) }
        for i in 0..<n { for j in 0..<d { let v = train.pointer[i * d + j] - mean[j]; std[j] += v * v } }
        for j in 0..<d { std[j] = max((std[j] / Float(max(n - 1, 1))).squareRoot(), 1e-6) }
        func standardize(_ x: Tensor) -> Tensor {
            let out = x.detachedCopy()
            for i in 0..<x.shape[0] { for j in 0..<d { out.pointer[i * d + j] = (out.pointer[i * d + j] - mean[j]) / std[j] } }
            return out
        }
        let xs = standardize(train), xt = standardize(test)
        var rng = RNG(seed: seed ^ 0x11_0BE)
        let head = Linear(d, classes, rng: &rng)
        let steps = epochs * max(n / batch, 1)
        let sgd = SGD(groups: [ParamGroup(name: "probe", parameters: head.parameters,
                                          schedule: LRSchedule(base: lr, totalSteps: steps), weightDecay: 0)], momentum: 0.9)
        for _ in 0..<epochs {
            let perm = rng.permutation(n)
            for s in 0..<max(n / batch, 1) {
                let idx = Array(perm[(s * batch)..<min((s + 1) * batch, n)])
                let xb = gatherRows(xs, idx)
                sgd.zeroGrad()
                let loss = try crossEntropy(try head(xb), labels: idx.map { trainLabels[$0] })
                try loss.backward()
                sgd.update()
            }
        }
        let logits = try noGrad { try head(xt) }
        var correct = 0
        for i in 0..<xt.shape[0] {
            let row = logits.pointer + i * classes
            let pred = (0..<classes).max { row[$0] < row[$1] } ?? 0
            if pred == testLabels[i] { correct += 1 }
        }
        return 100 * Double(correct) / Double(max(xt.shape[0], 1))
    }

    /// Rows `indices` of a 2-D tensor, as a new tensor without graph.
    public static func gatherRows(_ x: Tensor, _ indices: [Int]) -> Tensor {
        let d = x.count / max(x.shape[0], 1)
        let out = Storage(uninitializedCount: indices.count * d)
        for (r, i) in indices.enumerated() { (out.pointer + r * d).update(from: x.pointer + i * d, count: d) }
        return Tensor(shape: [indices.count] + x.shape.dropFirst(), storage: out)
    }
}

/// The k largest (value, index) pairs seen, as a min-heap on value.
struct TopK {
    let k: Int
    private(set) var items: [(Float, Int)] = []
    init(k: Int) { self.k = k; items.reserveCapacity(k) }
    mutating func reset() { items.removeAll(keepingCapacity: true) }

    @inline(__always) mutating func offer(_ v: Float, _ i: Int) {
        if items.count < k {
            items.append((v, i))
            var c = items.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                if items[p].0 <= items[c].0 { break }
                items.swapAt(p, c); c = p
            }
        } else if v > items[0].0 {
            items[0] = (v, i)
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < k && items[l].0 < items[m].0 { m = l }
                if r < k && items[r].0 < items[m].0 { m = r }
                if m == p { break }
                items.swapAt(p, m); p = m
            }
        }
    }
}
