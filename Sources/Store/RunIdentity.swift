import Foundation

/// The id of a run: the SHA-256 (lower-case hex, 64 characters) of the canonical JSON of
///
///     {"config": <identity JSON>, "protocol_version": "<v>", "seed": <seed>}
///
/// with object keys sorted and no whitespace (`JSONValue.canonical`) and the seed as its Int64 bit
/// pattern (as stored in `run.seed`). It depends only on these values, so it is the same in every
/// process and on every machine. The identity JSON is the typed config's (`TrainingConfig.identityJSON()`,
/// which leaves out `dataDirectory` and keys added later while at their default); the store only
/// hashes it.
public func runIdentity(identityJSON: Data, seed: UInt64, protocolVersion: String) throws -> String {
    SHA256.hex(try identityText(identityJSON: identityJSON, seed: seed, protocolVersion: protocolVersion))
}

/// The canonical text hashed by `runIdentity` (exposed for debugging and tests).
public func identityText(identityJSON: Data, seed: UInt64, protocolVersion: String) throws -> String {
    let payload = JSONValue.object([
        "config": try JSONValue.decoding(identityJSON),
        "protocol_version": .string(protocolVersion),
        "seed": .int(Int64(bitPattern: seed)),
    ])
    return payload.canonical
}

/// The `param` rows of a run: the spec's params (every experiment-file key its method has:
/// `optim.weight_decay` = `0.0005`, `model.widths` = `[16, 32, 64, 128]`), plus `config_json`
/// (the whole config, canonical JSON, `dataDirectory` included), `seed` and `protocol_version`.
func runParams(_ spec: RunSpec) throws -> [(key: String, value: String)] {
    spec.params + [
        (ParamKey.configJSON, try JSONValue.decoding(spec.configJSON).canonical),
        (ParamKey.seed, String(spec.seed)),
        (ParamKey.protocolVersion, spec.protocolVersion),
    ]
}

/// Param keys that are not config keys.
public enum ParamKey {
    public static let configJSON = "config_json", seed = "seed", protocolVersion = "protocol_version"
}
