import Foundation

/// A value written in an experiment file for an override.
public enum ConfigValue: Sendable, Equatable, Hashable, CustomStringConvertible {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([ConfigValue])

    public var description: String {
        switch self {
        case let .bool(b): return String(b)
        case let .int(i): return String(i)
        case let .double(d): return String(d)
        case let .string(s): return s
        case let .list(l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
        }
    }

    /// Equal as values: `1` and `1.0` are the same number.
    public func sameValue(as other: ConfigValue) -> Bool {
        if let a = number, let b = other.number { return a == b }
        return self == other
    }

    /// A Float setting as the decimal it was written as (0.0005, not 0.0005000000237).
    static func float(_ x: Float) -> ConfigValue { .double(Double(x.description) ?? Double(x)) }

    var positiveInt: Int? { int(in: 1...Int.max) }
    func int(in range: ClosedRange<Int>) -> Int? { if case let .int(i) = self, range.contains(i) { return i } else { return nil } }
    public var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
}

/// JSON as the value itself: `true`, `3`, `0.99`, `"mlp"`, `[16, 32]`.
extension ConfigValue: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .list(try c.decode([ConfigValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .bool(b): try c.encode(b)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .list(l): try c.encode(l)
        }
    }
}

/// An override that does not fit the typed configuration.
public struct ConfigKeyError: Error, CustomStringConvertible, Equatable {
    public var key: String
    public var message: String
    public var description: String { "\(key): \(message)" }
}

/// A dotted key an experiment row may override, with its type, the methods that have it, how it
/// changes the `TrainingConfig` and how to read it back (the run's stored params).
///
/// The key table `ConfigKey.all` joins the keys every method shares (below) with the keys each
/// method declares next to its config (`MethodDescriptor.keys`). It is the single source of truth:
/// the registry validates against it and `ablate list --keys` prints it.
public struct ConfigKey: Sendable {
    public let name: String
    /// What the value must be, for error messages ("a boolean", "one of mlp, none, fixed-random").
    public let expected: String
    public let help: String
    /// The methods that have this key; nil for every method.
    public let methods: [String]?
    let apply: @Sendable (inout TrainingConfig, ConfigValue) -> Bool
    let read: @Sendable (TrainingConfig) -> ConfigValue

    public init(name: String, expected: String, help: String, methods: [String]? = nil,
                read: @escaping @Sendable (TrainingConfig) -> ConfigValue,
                apply: @escaping @Sendable (inout TrainingConfig, ConfigValue) -> Bool) {
        self.name = name; self.expected = expected; self.help = help; self.methods = methods
        self.read = read; self.apply = apply
    }

    /// A method's own setting, kept in `TrainingConfig.options` (and left out while it has its
    /// default, so it does not change the ids of runs that never set it).
    public static func option(_ name: String, method: String, expected: String, help: String, default value: ConfigValue,
                              valid: @escaping @Sendable (ConfigValue) -> Bool) -> ConfigKey {
        ConfigKey(name: name, expected: expected, help: help, methods: [method],
                  read: { $0.options[name] ?? value },
                  apply: { c, v in
                      guard valid(v) else { return false }
                      c.options[name] = v.sameValue(as: value) ? nil : v
                      return true
                  })
    }

    /// Whether a run of `method` may set this key.
    public func applies(to method: String) -> Bool { methods?.contains(method) ?? true }

    /// The key that chooses the method; applied before every other key of a row.
    public static let method = ConfigKey(
        name: "method", expected: "one of \(Methods.names.joined(separator: ", "))",
        help: "the self-supervised method (default simsiam)", read: { .string($0.method) }) { c, v in
        guard case let .string(name) = v, Methods.named(name) != nil else { return false }
        c.method = name; return true
    }

    /// Keys every method has (the backbone, the optimiser), and the architecture keys of the
    /// methods built on the Siamese heads.
    public static let shared: [ConfigKey] = [
        method,
        ConfigKey(name: "model.widths", expected: "a list of 4 integers in 1...\(Limits.width)", help: "convnet widths (c1, c2, c3, c4)",
                  read: { .list($0.model.widths.map(ConfigValue.int)) }) { c, v in
            guard case let .list(l) = v, l.count == 4 else { return false }
            let w = l.compactMap { if case let .int(i) = $0, (1...Limits.width).contains(i) { return i } else { return nil } }
            guard w.count == 4 else { return false }
            c.model.widths = w; return true
        },
        ConfigKey(name: "model.projector_dim", expected: "an integer in 1...\(Limits.headWidth)", help: "width of the projector's layers (d)",
                  methods: ["simsiam", "byol", "simclr", "moco", "swav"], read: { .int($0.model.projectorDim) }) { c, v in
            guard let i = v.int(in: 1...Limits.headWidth) else { return false }; c.model.projectorDim = i; return true
        },
        ConfigKey(name: "model.projector_output_bn", expected: "a boolean", help: "BN on the projector output (SimSiam Table 3 row c)",
                  methods: ["simsiam", "byol", "simclr", "moco", "swav"], read: { .bool($0.model.projectorOutputBN) }) { c, v in
            guard case let .bool(b) = v else { return false }; c.model.projectorOutputBN = b; return true
        },
        ConfigKey(name: "model.predictor_hidden", expected: "an integer in 1...\(Limits.headWidth)", help: "predictor bottleneck width",
                  methods: ["simsiam", "byol", "simclr", "swav"], read: { $0.model.predictorHidden.map(ConfigValue.int) ?? .string("none") }) { c, v in
            guard let i = v.int(in: 1...Limits.headWidth) else { return false }; c.model.predictorHidden = i; return true
        },
        ConfigKey(name: "optim.epochs", expected: "an integer in 1...\(Limits.epochs)", help: "training epochs", read: { .int($0.epochs) }) { c, v in
            guard let i = v.int(in: 1...Limits.epochs) else { return false }; c.epochs = i; return true
        },
        ConfigKey(name: "optim.batch", expected: "an integer ≥ 2, at most the protocol's training images (smoke 2048, mini 60000)",
                  help: "batch size; lr scales as base_lr × batch / 256", read: { .int($0.batch) }) { c, v in
            guard let i = v.int(in: 2...Limits.batch) else { return false }; c.batch = i; return true
        },
        ConfigKey(name: "optim.base_lr", expected: "a number in [1e-6, 100]", help: "lr per 256 images", read: { .float($0.baseLR) }) { c, v in
            guard let d = v.number, d >= 1e-6, d <= 100 else { return false }; c.baseLR = Float(d); return true
        },
        ConfigKey(name: "optim.momentum", expected: "a number in [0, 1)", help: "SGD momentum", read: { .float($0.momentum) }) { c, v in
            guard let d = v.number, d >= 0, d < 1 else { return false }; c.momentum = Float(d); return true
        },
        ConfigKey(name: "optim.weight_decay", expected: "a number in [0, 1]", help: "weight decay on all parameters",
                  read: { .float($0.weightDecay) }) { c, v in
            guard let d = v.number, d >= 0, d <= 1 else { return false }; c.weightDecay = Float(d); return true
        },
        ConfigKey(name: "optim.warmup_epochs", expected: "an integer in 0...optim.epochs", help: "linear lr warm-up epochs",
                  read: { .int($0.warmupEpochs) }) { c, v in
            guard let i = v.int(in: 0...Limits.epochs) else { return false }; c.warmupEpochs = i; return true
        },
    ]

    /// What a run measures besides the protocol's metrics (Zhang et al.'s analyses). Like every
    /// key they are part of the run's identity when set, so a row that asks for a measurement
    /// older runs did not record is a run of its own; at their default (off) they are not stored.
    public static let analyses: [ConfigKey] = [
        flag("analysis.cov_every_epoch", methods: nil,
             help: "the monitor also records cov_offdiag (Σ_{i≠j} C_ij²/d of Z on the test set) every epoch (Zhang et al. Fig 6)"),
        flag("analysis.extra_gradient", methods: ["simsiam"],
             help: "after training, the η_p where cos(o_e − η_p·o_p, o_p) = 0 on the final weights, stored as eta_zero (Zhang et al. Fig 5a; needs the predictor)"),
    ]

    /// A boolean setting kept in `TrainingConfig.options`, left out while false.
    static func flag(_ name: String, methods: [String]?, help: String) -> ConfigKey {
        ConfigKey(name: name, expected: "a boolean", help: help, methods: methods,
                  read: { $0.options[name] ?? .bool(false) },
                  apply: { c, v in
                      guard case let .bool(b) = v else { return false }
                      c.options[name] = b ? v : nil
                      return true
                  })
    }

    /// Every key: the shared ones, then each method's own, in `Methods.all` order, then the analyses.
    public static let all: [ConfigKey] = shared + Methods.all.flatMap(\.keys) + analyses

    public static let byName: [String: ConfigKey] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
}

extension TrainingConfig {
    /// Applies overrides: `method` first (it decides which keys exist), then the others in order.
    /// Throws for an unknown key (naming the closest valid one), a key the row's method does not
    /// have (naming the method), a value of the wrong type, or (`checkConflicts`) settings that
    /// contradict each other.
    public func applying(_ overrides: [(key: String, value: ConfigValue)], checkConflicts: Bool = true) throws -> TrainingConfig {
        var config = self
        let ordered = overrides.filter { $0.key == ConfigKey.method.name } + overrides.filter { $0.key != ConfigKey.method.name }
        for (key, value) in ordered {
            guard let k = ConfigKey.byName[key] else {
                let hint = ConfigKey.closest(to: key).map { "; did you mean `\($0)`?" } ?? ""
                throw ConfigKeyError(key: key, message: "unknown key\(hint) Valid keys: \(listed(ConfigKey.all.map(\.name)))")
            }
            guard k.applies(to: config.method) else {
                throw ConfigKeyError(key: key, message: ConfigKey.notOfMethod(key, config.method))
            }
            guard k.apply(&config, value) else {
                throw ConfigKeyError(key: key, message: "expected \(k.expected), got `\(value)`")
            }
        }
        let keys = Set(overrides.map(\.key))
        if keys.contains("model.predictor_hidden"),
           overrides.contains(where: { $0.key == "model.predictor" && $0.value == .string("none") }) {
            throw ConfigKeyError(key: "model.predictor_hidden",
                                 message: "sets the width of a predictor this row removes (`model.predictor: none`); remove one of the two")
        }
        if checkConflicts, let (key, problem) = config.conflict() { throw ConfigKeyError(key: key, message: problem) }
        return config
    }

    /// A setting that another one makes meaningless or a run cannot honour, as (key, what to do), or nil.
    func conflict() -> (String, String)? {
        if batch > trainingImages {
            return ("optim.batch", "is \(batch), larger than protocol `\(protocolName)`'s \(trainingImages) training images; use at most \(trainingImages)")
        }
        if warmupEpochs > epochs {
            return ("optim.warmup_epochs", "is \(warmupEpochs), more than the run's \(epochs) epochs; use at most \(epochs)")
        }
        if !model.projectorOutputAffine && !model.projectorOutputBN {
            return ("model.projector_output_affine", "turns off γ, β of an output BN the projector does not have; also set `model.projector_output_bn: true`")
        }
        if model.predictorOutputBN && (model.predictorHidden == nil || model.predictorKind != .mlp) {
            return ("model.predictor_output_bn", "puts a BN after an MLP predictor this row does not have; remove one of the two")
        }
        let target = model.target
        if target != .z {
            if !model.stopGradient || model.symmetry != .symmetric || model.similarity != .cosine {
                return ("loss.target", "`\(target.rawValue)` is a stop-gradient target of the symmetric cosine loss; remove `loss.stop_gradient`, `loss.symmetry` or `loss.similarity` from this row")
            }
            if target.onlineIsZ && model.predictorHidden != nil {
                return ("loss.target", "`\(target.rawValue)` compares Z_a itself with its target (no predictor); add `model.predictor: none`")
            }
            if !target.onlineIsZ && model.predictorHidden == nil {
                return ("loss.target", "`\(target.rawValue)` needs the predictor (P = h(z)); remove `model.predictor: none`")
            }
        }
        if measuresExtraGradient && model.predictorHidden == nil {
            return ("analysis.extra_gradient", "reads the predictor's output P, and this row removes the predictor; remove one of the two")
        }
        if !model.phases.isEmpty {
            let total = model.phases.reduce(0) { $0 + $1.epochs }
            if total != epochs {
                return ("loss.phases", "add up to \(total) epochs but the run trains \(epochs); make them add up to optim.epochs (e.g. `optim.epochs: \(total)`)")
            }
            if model.target != .z {
                return ("loss.phases", "switch between SimSiam's own loss and the naive and decorrelation losses; remove `loss.target` from this row")
            }
        }
        if options["simclr.stop_gradient"] == .bool(true) && options["simclr.predictor"] != .bool(true) {
            return ("simclr.stop_gradient", "stops the gradient of the branch without the predictor, and this row has none; also set `simclr.predictor: true`")
        }
        return nil
    }

    /// The monitor records cov_offdiag every epoch (`analysis.cov_every_epoch`).
    public var recordsCovarianceEveryEpoch: Bool { options["analysis.cov_every_epoch"] == .bool(true) }
    /// The final metrics include Zhang et al.'s η_p zero crossing (`analysis.extra_gradient`).
    public var measuresExtraGradient: Bool { options["analysis.extra_gradient"] == .bool(true) }

    /// The run's params as experiment-file keys (`optim.weight_decay` = `0.0005`): every key its
    /// method has, with the value this config resolves to.
    public func params() -> [(key: String, value: String)] {
        ConfigKey.all.filter { $0.applies(to: method) }.map { ($0.name, $0.read(self).description) }
    }
}

extension ConfigKey {
    /// "`byol.tau_base` is not a key of method `simsiam`; its keys: …".
    static func notOfMethod(_ key: String, _ method: String) -> String {
        let own = all.filter { $0.applies(to: method) }.map(\.name)
        let owners = byName[key]?.methods?.joined(separator: ", ") ?? "?"
        return "`\(key)` is a key of \(owners), not of method `\(method)`; set `method:` in the same row, or use one of "
            + listed(own)
    }

    /// The valid key with the smallest edit distance, if it is reasonably close.
    public static func closest(to key: String) -> String? {
        guard key.count <= 64 else { return nil }   // edit distance is quadratic in the length
        let limit = max(3, key.count / 3)
        let best = all.map { ($0.name, editDistance($0.name, key, limit: limit)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= limit else { return nil }
        return best.0
    }
}

/// The largest values the keys accept: what a run on this CPU can honour (PROTOCOLS.md sizes are
/// far below them); the memory estimate (`TrainingConfig.estimatedPeakBytes`) checks the rest.
public enum Limits {
    /// Convnet widths: 8× the `mini` widths' largest (128).
    public static let width = 1024
    /// Projector / predictor widths: 4× the paper's d = 2048.
    public static let headWidth = 8192
    /// Training epochs (a `mini` epoch takes about a minute).
    public static let epochs = 10_000
    /// A batch never exceeds the largest training set (Fashion-MNIST's 60,000 images).
    public static let batch = 60_000
}

/// Levenshtein distance (over Unicode scalars). With `limit`, any distance above it may be
/// returned as `limit + 1`: the computation stops once every entry of a row exceeds it.
public func editDistance(_ a: String, _ b: String, limit: Int = .max) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    if abs(a.count - b.count) > limit { return limit + 1 }
    var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        var rowMin = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            rowMin = min(rowMin, cur[j])
        }
        if rowMin > limit { return limit + 1 }
        swap(&prev, &cur)
    }
    return prev[b.count]
}

/// Items for a message, comma-separated: the first `limit`, then "… and N more".
public func listed(_ items: [String], limit: Int = 20) -> String {
    let shown = items.prefix(limit).joined(separator: ", ")
    return items.count > limit ? shown + ", … and \(items.count - limit) more" : shown
}
