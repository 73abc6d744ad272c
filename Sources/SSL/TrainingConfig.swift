import Data
import Foundation

/// Everything that fixes a run except the seed: a protocol's defaults plus a row's overrides.
public struct TrainingConfig: Codable, Sendable, Equatable {
    /// `smoke` or `mini` (PROTOCOLS.md); names the data and the defaults.
    public var protocolName: String
    public var model: SimSiamConfig
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

public enum TrainingError: Error, CustomStringConvertible {
    case badConfig(String)
    public var description: String {
        switch self { case let .badConfig(m): return m }
    }
}
