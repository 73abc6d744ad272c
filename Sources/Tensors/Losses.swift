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
