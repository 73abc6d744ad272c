import Foundation
import SSL

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

/// What identifies a run and where it belongs: a row of a table, one seed.
public struct RunSpec: Sendable, Equatable {
    public var tableId: String
    public var rowName: String
    /// The seed, config and protocol version make the id; they are fixed once it is computed.
    public let seed: UInt64
    public let config: TrainingConfig
    /// The code version that makes results comparable (bumped when training changes).
    public let protocolVersion: String
    /// `runIdentity(config:seed:protocolVersion:)`.
    public let id: String

    public init(tableId: String, rowName: String, seed: UInt64, config: TrainingConfig, protocolVersion: String) throws {
        self.tableId = tableId; self.rowName = rowName; self.seed = seed
        self.config = config; self.protocolVersion = protocolVersion
        id = try runIdentity(config: config, seed: seed, protocolVersion: protocolVersion)
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
    public var verdict: Verdict?
    public var gitRevision: String?
    public var gitDirty: Bool
    public var host: String?
    public var pid: Int?
    public var createdAt: Date
    public var heartbeatAt: Date?
    public var startedAt: Date?
    public var endedAt: Date?
    public var error: String?
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

/// The final metrics of a run as stored (`final.*` keys): each may be missing (the linear probe
/// is optional; a diverged run may have none) or non-finite.
public struct StoredFinalMetrics: Sendable, Equatable {
    public var knn: Double?
    public var linear: Double?
    public var zStd: Double?
    public var mO: Double?
    public var mR: Double?
    public var covOffdiag: Double?
    public var verdict: Verdict?

    public init(knn: Double? = nil, linear: Double? = nil, zStd: Double? = nil, mO: Double? = nil,
                mR: Double? = nil, covOffdiag: Double? = nil, verdict: Verdict? = nil) {
        self.knn = knn; self.linear = linear; self.zStd = zStd; self.mO = mO; self.mR = mR
        self.covOffdiag = covOffdiag; self.verdict = verdict
    }
}

/// The baselines of one protocol and seed as stored; missing keys are nil.
public struct StoredBaselines: Sendable, Equatable {
    public var protocolName: String
    public var seed: UInt64
    public var rawPixelKNN: Double?
    public var randomInitKNN: Double?

    public init(protocolName: String, seed: UInt64, rawPixelKNN: Double?, randomInitKNN: Double?) {
        self.protocolName = protocolName; self.seed = seed
        self.rawPixelKNN = rawPixelKNN; self.randomInitKNN = randomInitKNN
    }
}

/// Metric keys (PROTOCOLS.md names). Per-epoch keys are stored at step = epoch (1-based); the
/// final metrics use the same names behind the prefix `final.`, at step 0.
public enum MetricKey {
    public static let loss = "loss", knnSubset = "knn_subset", zStd = "z_std", mO = "m_o", mR = "m_r"
    public static let trainZStd = "train_z_std", epochSeconds = "epoch_seconds"
    public static let knn = "knn", linear = "linear", covOffdiag = "cov_offdiag", peakRSSMiB = "peak_rss_mib"
    public static let finalPrefix = "final."
    public static let finalStep = 0
    public static func final(_ key: String) -> String { finalPrefix + key }
}

/// Baseline keys in the `baseline` table.
public enum BaselineKey {
    public static let rawPixelKNN = "raw_pixel_knn", randomInitKNN = "random_init_knn"
}
