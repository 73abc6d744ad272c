import Data
import Foundation

/// Everything that fixes a run except the seed: a protocol's defaults plus a row's overrides.
///
/// Its JSON form is what a run's identity hashes (`identityJSON`), so the encoding is written out
/// by hand: the fields of the first stored runs are always written; every field added since is
/// left out while it has its default, so adding a key with a default keeps the ids of the runs
/// already in a database (tested in TrainingConfigTests).
public struct TrainingConfig: Sendable, Equatable {
    /// `smoke` or `mini` (PROTOCOLS.md); names the data and the defaults.
    public var protocolName: String
    /// The self-supervised method (`Methods.all`); SimSiam unless a row says otherwise.
    public var method: String = Methods.defaultName
    /// The architecture: backbone widths and the projector / predictor heads.
    public var model: SimSiamConfig
    /// Method-specific settings by experiment-file key (`byol.tau_base`); a key at its default
    /// is not stored (see `ConfigKey.apply`).
    public var options: [String: ConfigValue] = [:]
    public var epochs: Int
    public var batch: Int
    /// Learning rate per 256 images: lr = baseLR × batch / 256.
    public var baseLR: Float = 0.05
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    /// SimSiam §4.2: the predictor keeps a constant lr unless this is set.
    public var predictorLRDecayed = false
    public var warmupEpochs = 0
    /// Where `mini` reads Fashion-MNIST.
    public var dataDirectory: String = FashionMNIST.defaultDirectory

    public static let protocolNames = ["smoke", "mini"]

    /// Part of every run's identity: bump it when a change to the training code changes what is
    /// computed (model, data, augmentation, loss, optimiser, evaluation), so finished runs of the
    /// old code are not reused. A kernel that only sums in another order changes results at the
    /// rounding level, like another BLAS would; it does not bump this, and every run records the
    /// git revision that produced it.
    public static let codeVersion = "1"

    public init(protocolName: String, model: SimSiamConfig, epochs: Int, batch: Int) {
        self.protocolName = protocolName; self.model = model; self.epochs = epochs; self.batch = batch
    }

    /// The defaults of a named protocol; throws for an unknown name.
    public static func named(_ name: String) throws -> TrainingConfig {
        switch name {
        case "smoke": return TrainingConfig(protocolName: name, model: .smoke, epochs: 3, batch: 128)
        case "mini": return TrainingConfig(protocolName: name, model: .mini, epochs: 10, batch: 256)
        case "cifar":
            throw TrainingError.badConfig("protocol `cifar` (CIFAR ResNet-18, 800 epochs) is specified but not implemented yet; use `mini` or `smoke`")
        default:
            throw TrainingError.badConfig("unknown protocol `\(name)`; choose one of \(protocolNames.joined(separator: ", "))")
        }
    }

    /// Training images of the protocol's data set (the largest batch it can fill).
    public var trainingImages: Int { protocolName == "smoke" ? SyntheticData.trainCount : FashionMNIST.trainCount }

    /// The config moved onto another protocol for a quick check (`ablate run --protocol smoke`):
    /// a batch larger than that protocol's training set is cut to the set, with a note saying so.
    public func fittedToData() -> (config: TrainingConfig, note: String?) {
        guard batch > trainingImages else { return (self, nil) }
        var c = self
        c.batch = trainingImages
        return (c, "batch \(batch) is larger than `\(protocolName)`'s \(trainingImages) training images; using \(trainingImages)")
    }

    /// The learning rate the encoder starts from (and the predictor keeps).
    public var learningRate: Float { baseLR * Float(batch) / 256 }

    /// Checks that the protocol's data files exist (cheap; before scheduling many runs).
    public func checkData() throws {
        if protocolName == "mini" { try FashionMNIST.checkPresent(directory: dataDirectory) }
    }

    /// Loads the protocol's data: (train, test, augmentation).
    public func loadData() throws -> (train: ImageSet, test: ImageSet, augmentation: Augmentation) {
        switch protocolName {
        case "smoke":
            let (train, test) = SyntheticData.make()
            return (train, test, Augmentation(outputSize: 16, mean: 0.5, std: 0.5))
        default:
            let (train, test) = try FashionMNIST.load(directory: dataDirectory)
            return (train, test, Augmentation(outputSize: 28, mean: FashionMNIST.mean, std: FashionMNIST.std))
        }
    }
}

// MARK: - JSON form and identity

extension CodingUserInfoKey {
    /// Set to `true` to encode a config for its run identity (without `dataDirectory`).
    public static let runIdentity = CodingUserInfoKey(rawValue: "ablate.runIdentity")!
}

extension TrainingConfig: Codable {
    enum CodingKeys: String, CodingKey {
        case protocolName, method, model, options, epochs, batch, baseLR, momentum, weightDecay
        case predictorLRDecayed, warmupEpochs, dataDirectory
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        protocolName = try c.decode(String.self, forKey: .protocolName)
        method = try c.decodeIfPresent(String.self, forKey: .method) ?? Methods.defaultName
        model = try c.decode(SimSiamConfig.self, forKey: .model)
        options = try c.decodeIfPresent([String: ConfigValue].self, forKey: .options) ?? [:]
        epochs = try c.decode(Int.self, forKey: .epochs)
        batch = try c.decode(Int.self, forKey: .batch)
        baseLR = try c.decode(Float.self, forKey: .baseLR)
        momentum = try c.decode(Float.self, forKey: .momentum)
        weightDecay = try c.decode(Float.self, forKey: .weightDecay)
        predictorLRDecayed = try c.decode(Bool.self, forKey: .predictorLRDecayed)
        warmupEpochs = try c.decode(Int.self, forKey: .warmupEpochs)
        dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory) ?? FashionMNIST.defaultDirectory
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        // The fields of the first stored runs: always written.
        try c.encode(protocolName, forKey: .protocolName)
        try c.encode(model, forKey: .model)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(batch, forKey: .batch)
        try c.encode(baseLR, forKey: .baseLR)
        try c.encode(momentum, forKey: .momentum)
        try c.encode(weightDecay, forKey: .weightDecay)
        try c.encode(predictorLRDecayed, forKey: .predictorLRDecayed)
        try c.encode(warmupEpochs, forKey: .warmupEpochs)
        // Added later: written only when not at their default.
        if method != Methods.defaultName { try c.encode(method, forKey: .method) }
        if !options.isEmpty { try c.encode(options, forKey: .options) }
        // Where the data lives is not part of what is trained.
        if encoder.userInfo[.runIdentity] as? Bool != true { try c.encode(dataDirectory, forKey: .dataDirectory) }
    }

    /// The JSON a run's identity hashes: this encoding without `dataDirectory` (the same run
    /// found through another path is the same run) and without fields at their default that were
    /// added after the first runs were stored.
    public func identityJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.userInfo[.runIdentity] = true
        return try encoder.encode(self)
    }

    /// The whole config as JSON (`dataDirectory` included): what a worker trains.
    public func json() throws -> Data { try JSONEncoder().encode(self) }
}

public enum TrainingError: Error, CustomStringConvertible {
    case badConfig(String)
    public var description: String {
        switch self { case let .badConfig(m): return m }
    }
}
