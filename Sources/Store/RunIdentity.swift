import Foundation
import SSL

/// The id of a run: the SHA-256 (lower-case hex, 64 characters) of the canonical JSON of
///
///     {"config": <TrainingConfig.identityJSON()>, "protocol_version": "<v>", "seed": <seed>}
///
/// with object keys sorted and no whitespace (`JSONValue.canonical`) and the seed as its Int64 bit
/// pattern (as stored in `run.seed`). It depends only on these values, so it is the same in every
/// process and on every machine; it changes when any value of the config, the seed or the protocol
/// version changes. A field added to the config with a default is left out of the identity JSON
/// while it has that default (`TrainingConfig.encode`), so adding a key keeps the ids of existing
/// runs; `dataDirectory` is left out too: where the data is read from is not what is trained.
public func runIdentity(config: TrainingConfig, seed: UInt64, protocolVersion: String) throws -> String {
    SHA256.hex(try identityJSON(config: config, seed: seed, protocolVersion: protocolVersion))
}

/// The canonical text hashed by `runIdentity` (exposed for debugging and tests).
public func identityJSON(config: TrainingConfig, seed: UInt64, protocolVersion: String) throws -> String {
    let payload = JSONValue.object([
        "config": try JSONValue.decoding(try config.identityJSON()),
        "protocol_version": .string(protocolVersion),
        "seed": .int(Int64(bitPattern: seed)),
    ])
    return payload.canonical
}

/// The `param` rows of a run: every experiment-file key its method has (`optim.weight_decay` =
/// `0.0005`, `model.widths` = `[16, 32, 64, 128]`), plus `config_json` (the whole config,
/// canonical JSON, `dataDirectory` included), `seed` and `protocol_version`.
func runParams(_ spec: RunSpec) throws -> [(key: String, value: String)] {
    spec.config.params() + [
        (ParamKey.configJSON, try JSONValue.decoding(try spec.config.json()).canonical),
        (ParamKey.seed, String(spec.seed)),
        (ParamKey.protocolVersion, spec.protocolVersion),
    ]
}

/// Param keys that are not config keys.
public enum ParamKey {
    public static let configJSON = "config_json", seed = "seed", protocolVersion = "protocol_version"
}
