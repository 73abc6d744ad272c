import Foundation
import SSL

/// The id of a run: the SHA-256 (lower-case hex, 64 characters) of the canonical JSON of
///
///     {"config": <TrainingConfig without dataDirectory>, "protocol_version": "<v>", "seed": <seed>}
///
/// with object keys sorted and no whitespace (`JSONValue.canonical`), the config encoded by its
/// `Codable` conformance and the seed as its Int64 bit pattern (as stored in `run.seed`).
/// It depends only on these values, so it is the same in every process and on every machine;
/// it changes when any field of the config, the seed or the protocol version changes, and when
/// a field is added to `TrainingConfig` (new code, new runs — intended).
///
/// `dataDirectory` is left out: it says where the data is read from, not what is trained, so the
/// same run found through another path is the same run.
public func runIdentity(config: TrainingConfig, seed: UInt64, protocolVersion: String) throws -> String {
    SHA256.hex(try identityJSON(config: config, seed: seed, protocolVersion: protocolVersion))
}

/// The canonical text hashed by `runIdentity` (exposed for debugging and tests).
public func identityJSON(config: TrainingConfig, seed: UInt64, protocolVersion: String) throws -> String {
    var configValue = try JSONValue.of(config)
    if case var .object(fields) = configValue {
        fields["dataDirectory"] = nil
        configValue = .object(fields)
    }
    let payload = JSONValue.object([
        "config": configValue,
        "protocol_version": .string(protocolVersion),
        "seed": .int(Int64(bitPattern: seed)),
    ])
    return payload.canonical
}

/// The `param` rows of a run: every leaf of the resolved config as a dotted key
/// (`model.projectorDim` = `512`, `model.widths` = `[16,32,64,128]`), plus `config_json` (the whole
/// config, canonical JSON, `dataDirectory` included), `seed` and `protocol_version`.
func runParams(_ spec: RunSpec) throws -> [(key: String, value: String)] {
    let config = try JSONValue.of(spec.config)
    return config.flattened() + [
        (ParamKey.configJSON, config.canonical),
        (ParamKey.seed, String(spec.seed)),
        (ParamKey.protocolVersion, spec.protocolVersion),
    ]
}

/// Param keys that are not config fields.
public enum ParamKey {
    public static let configJSON = "config_json", seed = "seed", protocolVersion = "protocol_version"
}
