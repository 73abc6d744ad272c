import Foundation
import SSL

/// One run to execute: a row of a table with one seed, fully resolved. Its `id` is the config
/// hash the store deduplicates on.
public struct Job: Codable, Sendable, Equatable {
    public var id: String
    public var tableId: String
    public var rowName: String
    public var seed: UInt64
    public var config: TrainingConfig
    /// Where the worker keeps its per-epoch checkpoint.
    public var checkpointPath: String
    /// Compute the raw-pixel / random-init baselines for (protocol, seed) too.
    public var baselines: Bool
    /// The training-code version that is part of the run's identity.
    public var protocolVersion: String

    public init(id: String, tableId: String, rowName: String, seed: UInt64, config: TrainingConfig,
                checkpointPath: String, baselines: Bool, protocolVersion: String) {
        self.id = id; self.tableId = tableId; self.rowName = rowName; self.seed = seed
        self.config = config; self.checkpointPath = checkpointPath; self.baselines = baselines
        self.protocolVersion = protocolVersion
    }
}

/// What a worker reports, one JSON object per line on its standard output.
public enum WorkerEvent: Codable, Sendable {
    case started(runId: String, resumedEpochs: Int)
    case progress(runId: String, epoch: Int, epochs: Int, step: Int, steps: Int, loss: Float, secondsRemaining: Double)
    case epoch(runId: String, record: EpochRecord)
    case finished(runId: String, status: RunStatus, metrics: FinalMetrics, baselines: Baselines?)
    case failed(runId: String, message: String)

    public var runId: String {
        switch self {
        case let .started(id, _), let .progress(id, _, _, _, _, _, _), let .epoch(id, _),
             let .finished(id, _, _, _), let .failed(id, _):
            return id
        }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }()

    public func line() -> String {
        (try? String(decoding: WorkerEvent.encoder.encode(self), as: UTF8.self)) ?? #"{"failed":{"runId":"?","message":"unencodable event"}}"#
    }

    public static func parse(_ line: String) -> WorkerEvent? { try? decoder.decode(WorkerEvent.self, from: Data(line.utf8)) }
}
