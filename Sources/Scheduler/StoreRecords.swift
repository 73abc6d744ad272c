import Foundation
import SSL
import Store

// The glue between SSL's typed config and records and the store's plain data: the store keeps
// runs, JSON configs and metric points; what they mean is decided here and in SSL.

extension RunSpec {
    /// The store's view of a row of a table with one seed: the config's identity JSON (which
    /// makes the run id), its full JSON and its params.
    public init(tableId: String, rowName: String, seed: UInt64, config: TrainingConfig, protocolVersion: String) throws {
        do {
            try self.init(tableId: tableId, rowName: rowName, seed: seed, protocolName: config.protocolName,
                          protocolVersion: protocolVersion, identityJSON: try config.identityJSON(),
                          configJSON: try config.json(), params: config.params())
        } catch let error as EncodingError {
            throw StoreError.cannotEncodeConfig(reason: "\(error)")
        }
    }
}

/// The id of a run of `config`: the store's `runIdentity(identityJSON:…)` of `config.identityJSON()`.
/// A key left at its default and `dataDirectory` do not change it; every other value, the seed
/// and the protocol version do.
public func runIdentity(config: TrainingConfig, seed: UInt64, protocolVersion: String) throws -> String {
    try runIdentity(identityJSON: try config.identityJSON(), seed: seed, protocolVersion: protocolVersion)
}

/// The canonical text `runIdentity(config:seed:protocolVersion:)` hashes.
public func identityJSON(config: TrainingConfig, seed: UInt64, protocolVersion: String) throws -> String {
    try identityText(identityJSON: try config.identityJSON(), seed: seed, protocolVersion: protocolVersion)
}

extension Store {
    /// Stores the metrics of one epoch at step = `record.epoch` (`EpochRecord.metricValues`:
    /// absent values are not stored; NaN/Inf are, as their kind) and refreshes the heartbeat.
    /// The per-step diagnostics go under `step.<key>` at the global step.
    public func recordEpoch(_ lease: RunLease, _ record: EpochRecord) throws {
        try recordMetrics(lease, record.metricValues.map { MetricPoint(key: $0.key, step: record.epoch, value: $0.value) }
            + record.stepMetricValues.map { MetricPoint.perStep($0.key, step: $0.step, $0.value) })
    }

    /// Ends a held run: `finished` with the verdict of `final`, or `diverged` (verdict `diverged`
    /// whatever the metrics say). Final metrics go under `final.<key>` (`FinalMetrics.metricValues`).
    public func finishRun(_ lease: RunLease, status: RunStatus, final: FinalMetrics?) throws {
        let verdict: Verdict? = status == .diverged ? .diverged : final?.verdict
        try finishRun(lease, diverged: status == .diverged, verdict: verdict?.rawValue,
                      final: (final?.metricValues ?? []).map { MetricPoint.final($0.key, $0.value) })
    }

    /// Stores the raw-pixel and random-init kNN and linear probe of a protocol and seed
    /// (replacing earlier values).
    public func putBaselines(_ baselines: Baselines, protocolName: String, seed: UInt64) throws {
        try putBaselines(baselines.metricValues, protocolName: protocolName, seed: seed)
    }

    /// Every baseline metric a (protocol, seed) should have stored.
    static let baselineKeys = Set(Metric.baselines.flatMap { $0.baselines.map(\.key) })

    /// `jobs` with `baselines` left on only where they are needed: every table's first row asks
    /// for the baselines of its (protocol, seed), which cost about a minute each time; they are
    /// computed by the first job of a (protocol, seed) whose stored baselines lack a key.
    public func baselinesOnlyWhereMissing(_ jobs: [Job]) throws -> [Job] {
        let wanted = Store.baselineKeys
        var assigned = Set<String>()
        return try jobs.map { job in
            guard job.baselines else { return job }
            var job = job
            let stored = try baselines(protocolName: job.config.protocolName, seed: job.seed)?.values ?? [:]
            job.baselines = !wanted.isSubset(of: stored.keys) && assigned.insert("\(job.config.protocolName) \(job.seed)").inserted
            return job
        }
    }

    /// Computes and stores, in this process, the baselines of the jobs' (protocol, seed) pairs that
    /// lack one of today's baseline metrics: a table whose runs all finished before a baseline
    /// was added (the linear probes) gets it without retraining. Returns the pairs computed.
    /// Workers compute the baselines of the runs they train; this only fills the gaps.
    @discardableResult
    public func fillMissingBaselines(for jobs: [Job]) throws -> [(protocolName: String, seed: UInt64)] {
        let wanted = Store.baselineKeys
        var done: [(protocolName: String, seed: UInt64)] = []
        for job in jobs where job.baselines && !done.contains(where: { $0 == (job.config.protocolName, job.seed) }) {
            let stored = try baselines(protocolName: job.config.protocolName, seed: job.seed)?.values ?? [:]
            guard !wanted.isSubset(of: stored.keys) else { continue }
            let (train, test, augmentation) = try job.config.loadData()
            let monitor = Monitor(train: train, test: test, augmentation: augmentation)
            try putBaselines(try monitor.baselines(config: job.config, seed: job.seed), protocolName: job.config.protocolName, seed: job.seed)
            done.append((job.config.protocolName, job.seed))
        }
        return done
    }
}
