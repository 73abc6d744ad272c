import Foundation

/// A value written in an experiment file for an override.
public enum ConfigValue: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
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
}

/// An override that does not fit the typed configuration.
public struct ConfigKeyError: Error, CustomStringConvertible, Equatable {
    public var key: String
    public var message: String
    public var description: String { "\(key): \(message)" }
}

/// The dotted keys an experiment row may override, each with its type and how it changes the
/// `TrainingConfig`. This table is the single source of truth: the registry validates against it
/// and `ablate list --keys` prints it.
public struct ConfigKey: Sendable {
    public let name: String
    /// What the value must be, for error messages ("a boolean", "one of mlp, none, fixed-random").
    public let expected: String
    public let help: String
    let apply: @Sendable (inout TrainingConfig, ConfigValue) -> Bool

    public static let all: [ConfigKey] = [
        ConfigKey(name: "model.widths", expected: "a list of 4 positive integers", help: "convnet widths (c1, c2, c3, c4)") { c, v in
            guard case let .list(l) = v, l.count == 4 else { return false }
            let w = l.compactMap { if case let .int(i) = $0, i > 0 { return i } else { return nil } }
            guard w.count == 4 else { return false }
            c.model.widths = w; return true
        },
        ConfigKey(name: "model.projector_dim", expected: "a positive integer", help: "width of the projector's layers (d)") { c, v in
            guard let i = v.positiveInt else { return false }; c.model.projectorDim = i; return true
        },
        ConfigKey(name: "model.projector_output_bn", expected: "a boolean", help: "BN on the projector output (SimSiam Table 3 row c)") { c, v in
            guard case let .bool(b) = v else { return false }; c.model.projectorOutputBN = b; return true
        },
        ConfigKey(name: "model.predictor", expected: "one of mlp, none, fixed-random",
                  help: "the predictor h: trained MLP, removed (SimSiam Table 1a), or kept at its random init (Table 1b)") { c, v in
            switch v {
            case .string("mlp"): c.model.predictorHidden = c.model.predictorHidden ?? c.model.projectorDim / 4; c.model.predictorFixedRandom = false
            case .string("none"): c.model.predictorHidden = nil; c.model.predictorFixedRandom = false
            case .string("fixed-random"): c.model.predictorHidden = c.model.predictorHidden ?? c.model.projectorDim / 4; c.model.predictorFixedRandom = true
            default: return false
            }
            return true
        },
        ConfigKey(name: "model.predictor_hidden", expected: "a positive integer", help: "predictor bottleneck width") { c, v in
            guard let i = v.positiveInt else { return false }; c.model.predictorHidden = i; return true
        },
        ConfigKey(name: "loss.stop_gradient", expected: "a boolean", help: "stop-gradient on the target branch (SimSiam Fig 2)") { c, v in
            guard case let .bool(b) = v else { return false }; c.model.stopGradient = b; return true
        },
        ConfigKey(name: "optim.epochs", expected: "a positive integer", help: "training epochs") { c, v in
            guard let i = v.positiveInt else { return false }; c.epochs = i; return true
        },
        ConfigKey(name: "optim.batch", expected: "an integer ≥ 2", help: "batch size; lr scales as base_lr × batch / 256") { c, v in
            guard case let .int(i) = v, i >= 2 else { return false }; c.batch = i; return true
        },
        ConfigKey(name: "optim.base_lr", expected: "a positive number", help: "lr per 256 images") { c, v in
            guard let d = v.number, d > 0 else { return false }; c.baseLR = Float(d); return true
        },
        ConfigKey(name: "optim.momentum", expected: "a number in [0, 1)", help: "SGD momentum") { c, v in
            guard let d = v.number, d >= 0, d < 1 else { return false }; c.momentum = Float(d); return true
        },
        ConfigKey(name: "optim.weight_decay", expected: "a number ≥ 0", help: "weight decay on all parameters") { c, v in
            guard let d = v.number, d >= 0 else { return false }; c.weightDecay = Float(d); return true
        },
        ConfigKey(name: "optim.predictor_lr", expected: "one of fixed, decayed",
                  help: "predictor lr constant (SimSiam §4.2 default, Table 1 row c) or cosine-decayed like the encoder (Table 1 baseline)") { c, v in
            switch v {
            case .string("fixed"): c.predictorLRDecayed = false
            case .string("decayed"): c.predictorLRDecayed = true
            default: return false
            }
            return true
        },
        ConfigKey(name: "optim.warmup_epochs", expected: "an integer ≥ 0", help: "linear lr warm-up epochs") { c, v in
            guard case let .int(i) = v, i >= 0 else { return false }; c.warmupEpochs = i; return true
        },
    ]

    public static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}

extension ConfigValue {
    var positiveInt: Int? { if case let .int(i) = self, i > 0 { return i } else { return nil } }
    var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
}

extension TrainingConfig {
    /// Applies overrides in order; throws for an unknown key (naming the closest valid one) or
    /// a value of the wrong type.
    public func applying(_ overrides: [(key: String, value: ConfigValue)]) throws -> TrainingConfig {
        var config = self
        for (key, value) in overrides {
            guard let k = ConfigKey.byName[key] else {
                let hint = ConfigKey.closest(to: key).map { "; did you mean `\($0)`?" } ?? ""
                throw ConfigKeyError(key: key, message: "unknown key\(hint) Valid keys: \(ConfigKey.all.map(\.name).joined(separator: ", "))")
            }
            guard k.apply(&config, value) else {
                throw ConfigKeyError(key: key, message: "expected \(k.expected), got `\(value)`")
            }
        }
        return config
    }
}

extension ConfigKey {
    /// The valid key with the smallest edit distance, if it is reasonably close.
    public static func closest(to key: String) -> String? {
        let best = all.map { ($0.name, editDistance($0.name, key)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= max(3, key.count / 3) else { return nil }
        return best.0
    }
}

/// Levenshtein distance.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var prev = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var cur = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return a.isEmpty ? b.count : prev[b.count]
}
