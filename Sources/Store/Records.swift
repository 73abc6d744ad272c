import Foundation

/// The life of a run in the `run` table.
public enum RunState: String, Sendable, Codable, CaseIterable {
    /// Registered (e.g. a table was planned) but not started.
    case queued
    /// Claimed by a process that sends heartbeats; stale when the heartbeat is old.
    case running
    case finished
    /// The process reported an error; the run may be claimed again.
    case failed
    /// NaN/Inf appeared (PROTOCOLS.md `diverged`): a result, not an error; never retried.
    case diverged

    /// A run that has a result and is never trained again.
    public var isDone: Bool { self == .finished || self == .diverged }
}

/// What identifies a run and where it belongs: a row of a table, one seed, and the run's config
/// as plain data. The typed config lives above the store; the layer that owns it supplies its
/// identity JSON, its full JSON and its params (see Scheduler's `RunSpec(…, config:, …)`).
public struct RunSpec: Sendable, Equatable {
    public var tableId: String
    public var rowName: String
    /// The seed, identity JSON and protocol version make the id; they are fixed once it is computed.
    public let seed: UInt64
    /// The protocol whose data and defaults the run uses (`smoke`, `mini`).
    public let protocolName: String
    /// The code version that makes results comparable (bumped when training changes).
    public let protocolVersion: String
    /// The JSON the run id hashes (any key order; it is made canonical).
    public let identityJSON: Data
    /// The whole config as JSON, stored as the `config_json` param.
    public let configJSON: Data
    /// The `param` rows besides `config_json`, `seed` and `protocol_version`, in order.
    public let params: [(key: String, value: String)]
    /// `runIdentity(identityJSON:seed:protocolVersion:)`.
    public let id: String

    public init(tableId: String, rowName: String, seed: UInt64, protocolName: String, protocolVersion: String,
                identityJSON: Data, configJSON: Data, params: [(key: String, value: String)]) throws {
        self.tableId = tableId; self.rowName = rowName; self.seed = seed
        self.protocolName = protocolName; self.protocolVersion = protocolVersion
        self.identityJSON = identityJSON; self.configJSON = configJSON; self.params = params
        id = try runIdentity(identityJSON: identityJSON, seed: seed, protocolVersion: protocolVersion)
    }

    public static func == (a: RunSpec, b: RunSpec) -> Bool {
        a.tableId == b.tableId && a.rowName == b.rowName && a.seed == b.seed && a.protocolName == b.protocolName
            && a.protocolVersion == b.protocolVersion && a.identityJSON == b.identityJSON && a.configJSON == b.configJSON
            && a.params.map(\.key) == b.params.map(\.key) && a.params.map(\.value) == b.params.map(\.value) && a.id == b.id
    }
}

/// Where and from what code a run is trained.
public struct Provenance: Sendable, Equatable {
    public var gitRevision: String?
    public var gitDirty: Bool
    public var host: String
    public var pid: Int

    public init(gitRevision: String?, gitDirty: Bool, host: String, pid: Int) {
        self.gitRevision = gitRevision; self.gitDirty = gitDirty; self.host = host; self.pid = pid
    }

    /// This process on this host; the caller supplies the git state (the store does not run git).
    public static func current(gitRevision: String?, gitDirty: Bool) -> Provenance {
        Provenance(gitRevision: gitRevision, gitDirty: gitDirty, host: ProcessInfo.processInfo.hostName,
                   pid: Int(ProcessInfo.processInfo.processIdentifier))
    }
}

/// Proof that this process holds a run: `owner` is a random token written by `claimRun`.
/// Every write for the run checks it, so a process whose run was taken over learns it at once.
public struct RunLease: Sendable, Equatable, Hashable {
    public let runId: String
    public let owner: String
}

/// What `claimRun` found.
public enum ClaimResult: Sendable, Equatable {
    /// This process now holds the run and must train it. `previous` is the run as it was when it
    /// was taken over (queued, failed, or running with a stale heartbeat), nil for a new run.
    case claimed(RunLease, previous: RunRecord?)
    /// The run already has a result (finished or diverged): reuse it.
    case done(RunRecord)
    /// Another process holds the run and its heartbeat is fresh.
    case busy(RunRecord)

    public var lease: RunLease? { if case let .claimed(lease, _) = self { return lease } else { return nil } }
}

/// A row of the `run` table. When listed for a table, `tableId`/`rowName` are that table's
/// (a run shared by two tables is listed under each).
public struct RunRecord: Sendable, Equatable, Codable {
    public var id: String
    public var tableId: String
    public var rowName: String
    public var seed: UInt64
    public var protocolName: String
    public var protocolVersion: String
    public var status: RunState
    /// `trained`, `partial-collapse`, `collapsed` or `diverged` (the schema's CHECK lists them);
    /// the layer that computes verdicts reads it as its type.
    public var verdict: String?
    public var gitRevision: String?
    public var gitDirty: Bool
    public var host: String?
    public var pid: Int?
    public var createdAt: Date
    public var heartbeatAt: Date?
    /// When the run was first started; a resumed run keeps it.
    public var startedAt: Date?
    public var endedAt: Date?
    public var error: String?
    /// How many times the run was claimed to be trained (0 while queued, 1 for one uninterrupted attempt).
    public var attempts: Int
    /// When the last attempt took over a run that had been started before (nil if never resumed).
    public var resumedAt: Date?
}

/// How a stored number is to be read: NaN and ±Inf are kept as data with a NULL value.
public enum ValueKind: String, Sendable, Codable, CaseIterable {
    case finite, nan, inf
    case negativeInf = "-inf"

    public init(_ value: Double) {
        if value.isNaN { self = .nan } else if value == .infinity { self = .inf }
        else if value == -.infinity { self = .negativeInf } else { self = .finite }
    }
}

/// One row of the `metric` table; `value` is NaN/±Inf again when `kind` says so.
public struct MetricPoint: Sendable, Equatable, Codable {
    public var key: String
    public var step: Int
    public var value: Double
    public var kind: ValueKind

    public init(key: String, step: Int, value: Double) {
        self.key = key; self.step = step; self.value = value; kind = ValueKind(value)
    }

    public static func == (a: MetricPoint, b: MetricPoint) -> Bool {
        a.key == b.key && a.step == b.step && a.kind == b.kind && (a.kind != .finite || a.value == b.value)
    }
}

/// One point of a per-epoch curve.
public struct CurvePoint: Sendable, Equatable {
    public var epoch: Int
    public var value: Double
}

/// Final metrics are stored under `final.<key>` at step 0; per-epoch ones under `<key>` at
/// step = epoch (1-based). The keys themselves are declared above the store (SSL's `Metric`).
extension MetricPoint {
    public static let finalPrefix = "final."
    public static let finalStep = 0

    /// A final metric: key `final.<key>`, step 0.
    public static func final(_ key: String, _ value: Double) -> MetricPoint {
        MetricPoint(key: finalPrefix + key, step: finalStep, value: value)
    }

    /// True for a `final.` key.
    public var isFinal: Bool { key.hasPrefix(MetricPoint.finalPrefix) }

    /// Per-step points are stored under `step.<key>` at the step (1-based update count).
    public static let stepPrefix = "step."
    public static func perStep(_ key: String, step: Int, _ value: Double) -> MetricPoint {
        MetricPoint(key: stepPrefix + key, step: step, value: value)
    }
    public var isPerStep: Bool { key.hasPrefix(MetricPoint.stepPrefix) }
}

/// The final metrics of a run as stored (`final.*` keys, by key without the prefix): each may be
/// missing (the linear probe is optional; a diverged run may have none) or non-finite.
public struct StoredFinalMetrics: Sendable, Equatable {
    public var values: [String: Double]
    /// The run's stored verdict text.
    public var verdict: String?

    public init(values: [String: Double] = [:], verdict: String? = nil) {
        self.values = values; self.verdict = verdict
    }

    public subscript(key: String) -> Double? { values[key] }

    public static func == (a: StoredFinalMetrics, b: StoredFinalMetrics) -> Bool {
        a.verdict == b.verdict && a.values.keys.sorted() == b.values.keys.sorted()
            && a.values.allSatisfy { key, x in b.values[key].map { y in x == y || (x.isNaN && y.isNaN) } ?? false }
    }
}

/// The baselines of one protocol and seed as stored, by key.
public struct StoredBaselines: Sendable, Equatable {
    public var protocolName: String
    public var seed: UInt64
    public var values: [String: Double]

    public init(protocolName: String, seed: UInt64, values: [String: Double]) {
        self.protocolName = protocolName; self.seed = seed; self.values = values
    }
}
