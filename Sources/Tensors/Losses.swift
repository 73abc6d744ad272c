/// Composites built from the primitives (their backward comes for free).

/// Cosine similarity of matching rows: [N, D] × [N, D] → [N].
public func cosineSimilarity(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.shape == b.shape, a.rank == 2 else {
        throw TensorError.shapeMismatch(op: "cosineSimilarity", lhs: a.shape, rhs: b.shape, expected: "two equal [N, D] shapes")
    }
    return try sum(try l2Normalize(a) * l2Normalize(b), axis: 1)
}

/// SimSiam's D(p, z) = −mean_rows(p/‖p‖ · z/‖z‖). Pass `stopGradient(z)` for the paper's form.
public func negativeCosine(_ p: Tensor, _ z: Tensor) throws -> Tensor {
    scale(mean(try cosineSimilarity(p, z)), -1)
}

/// SimSiam §4.5's cross-entropy similarity: −mean_rows Σ_c softmax(z)_c · log softmax(p)_c over the
/// channels of [N, D] inputs. Pass `stopGradient(z)` for the paper's form.
public func softCrossEntropy(_ p: Tensor, _ z: Tensor) throws -> Tensor {
    guard p.shape == z.shape, p.rank == 2 else {
        throw TensorError.shapeMismatch(op: "softCrossEntropy", lhs: p.shape, rhs: z.shape, expected: "two equal [N, D] shapes")
    }
    return scale(sum(try logSoftmax(p) * softmax(z)), -1 / Float(p.shape[0]))
}

/// Mean cross-entropy of logits [N, C] against integer labels in 0..<C.
public func crossEntropy(_ logits: Tensor, labels: [Int]) throws -> Tensor {
    guard logits.rank == 2, logits.shape[0] == labels.count else {
        throw TensorError.badShape(op: "crossEntropy", shape: logits.shape, expected: "[\(labels.count), classes] logits")
    }
    let classes = logits.shape[1]
    var onehot = [Float](repeating: 0, count: logits.count)
    for (i, y) in labels.enumerated() {
        guard y >= 0 && y < classes else {
            throw TensorError.invalidArgument(op: "crossEntropy", message: "label \(y) at row \(i) is outside 0..<\(classes)")
        }
        onehot[i * classes + y] = 1
    }
    let target = try Tensor(shape: logits.shape, onehot)
    return scale(sum(try logSoftmax(logits) * target), -1 / Float(labels.count))
}

/// The value that masks a logit out of a softmax: exp(x − 1e9 − max) is exactly 0 in float32.
/// The TF SimCLR reference subtracts the same `LARGE_NUM`.
public let maskedLogit: Float = -1e9

/// SimCLR's NT-Xent (Chen et al. 2020, Eq. 1 and Algorithm 1) over the 2N rows of [a; b]: row i of
/// `a` and row i of `b` are a positive pair, the other 2N − 2 rows are negatives. Logits are cosine
/// similarities over τ, each row's similarity with itself masked out; the loss is the mean of the
/// 2N cross-entropies. Differentiable in both `a` and `b` (pass `stopGradient` for one-sided).
public func ntXent(_ a: Tensor, _ b: Tensor, temperature: Float) throws -> Tensor {
    guard a.shape == b.shape, a.rank == 2, a.shape[0] >= 1 else {
        throw TensorError.shapeMismatch(op: "ntXent", lhs: a.shape, rhs: b.shape, expected: "two equal [N, D] shapes")
    }
    let n = a.shape[0]
    let z = try concat([l2Normalize(a), l2Normalize(b)])                                 // [2N, D]
    let logits = try scale(matmul(z, z, transposeB: true), 1 / temperature)              // [2N, 2N]
    let selfMask = try maskTensor(rows: 2 * n, cols: 2 * n) { i, j in i == j }
    return try crossEntropy(logits + selfMask, labels: (0..<2 * n).map { ($0 + n) % (2 * n) })
}

/// MoCo's InfoNCE (He et al. 2020, Eq. 1): query row i against its key row i (the positive) and
/// every row of `negatives` (MoCo's queue), dot products over τ; the mean cross-entropy with the
/// positive as the class. Rows are used as given (MoCo passes l2-normalised q, k and queue).
/// The logits are computed against [keys; negatives] with the batch's other keys masked out, so
/// that each query's candidates are exactly its own key and the negatives.
public func infoNCE(query q: Tensor, key k: Tensor, negatives: Tensor, temperature: Float) throws -> Tensor {
    guard q.shape == k.shape, q.rank == 2, negatives.rank == 2, negatives.shape[1] == q.shape[1] else {
        throw TensorError.shapeMismatch(op: "infoNCE", lhs: q.shape, rhs: negatives.shape,
                                        expected: "query and key [N, D], negatives [K, D]")
    }
    let n = q.shape[0], candidates = n + negatives.shape[0]
    let logits = try scale(matmul(q, concat([k, negatives]), transposeB: true), 1 / temperature)   // [N, N + K]
    let otherKeys = try maskTensor(rows: n, cols: candidates) { i, j in j < n && j != i }
    return try crossEntropy(logits + otherKeys, labels: Array(0..<n))
}

/// A constant [rows, cols] tensor: `maskedLogit` where `masked(i, j)`, else 0.
private func maskTensor(rows: Int, cols: Int, _ masked: (Int, Int) -> Bool) throws -> Tensor {
    var values = [Float](repeating: 0, count: rows * cols)
    for i in 0..<rows { for j in 0..<cols where masked(i, j) { values[i * cols + j] = maskedLogit } }
    return try Tensor(shape: [rows, cols], values)
}
