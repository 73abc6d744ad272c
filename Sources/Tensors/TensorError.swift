/// Errors raised by tensor operations. Each message names the operation and the shapes involved.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// Two operands whose shapes do not fit together.
    case shapeMismatch(op: String, lhs: [Int], rhs: [Int], expected: String)
    /// An operand with the wrong shape on its own (rank, a size, an element count).
    case badShape(op: String, shape: [Int], expected: String)
    /// An argument out of range (axis, index, stride, ...).
    case invalidArgument(op: String, message: String)
    /// `backward()` called on something that is not a scalar, or that does not need gradients.
    case notDifferentiable(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, lhs, rhs, expected):
            return "\(op): shapes \(lhs) and \(rhs) do not fit: \(expected)"
        case let .badShape(op, shape, expected):
            return "\(op): got shape \(shape), expected \(expected)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        case let .notDifferentiable(message):
            return "backward: \(message)"
        }
    }
}
