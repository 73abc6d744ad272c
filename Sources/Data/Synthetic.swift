import Tensors

/// A labelled image set in memory: images [count, channels, height, width] in [0, 1], labels.
public struct ImageSet: Sendable {
    public let images: [Float]
    public let labels: [Int]
    public let channels: Int, height: Int, width: Int
    public var count: Int { labels.count }
    public var imageSize: Int { channels * height * width }

    public init(images: [Float], labels: [Int], channels: Int, height: Int, width: Int) {
        self.images = images; self.labels = labels
        self.channels = channels; self.height = height; self.width = width
    }
}

/// The `smoke` protocol's data: 10 classes of 1×16×16 prototype patterns (random blobs,
/// fixed by the seed) plus per-image shift and Gaussian noise.
public enum SyntheticData {
    /// Training images of the `smoke` set.
    public static let trainCount = 2048

    public static func make(train: Int = trainCount, test: Int = 512, size: Int = 16, classes: Int = 10,
                            seed: UInt64 = 1234) -> (train: ImageSet, test: ImageSet) {
        var rng = RNG(seed: seed)
        var prototypes: [[Float]] = []
        for _ in 0..<classes {
            var p = [Float](repeating: 0, count: size * size)
            for _ in 0..<3 {   // three Gaussian blobs per class
                let cy = rng.uniform(3, Float(size - 3)), cx = rng.uniform(3, Float(size - 3))
                let r = rng.uniform(1.5, 4)
                for y in 0..<size {
                    for x in 0..<size {
                        let d2 = (Float(y) - cy) * (Float(y) - cy) + (Float(x) - cx) * (Float(x) - cx)
                        p[y * size + x] += Float(Foundation_exp(Double(-d2 / (2 * r * r))))
                    }
                }
            }
            prototypes.append(p)
        }
        func sample(_ n: Int) -> ImageSet {
            var images = [Float](repeating: 0, count: n * size * size), labels = [Int]()
            for i in 0..<n {
                let label = rng.int(below: classes)
                labels.append(label)
                let dy = rng.int(below: 3) - 1, dx = rng.int(below: 3) - 1
                for y in 0..<size {
                    for x in 0..<size {
                        let sy = min(max(y + dy, 0), size - 1), sx = min(max(x + dx, 0), size - 1)
                        let v = prototypes[label][sy * size + sx] + 0.15 * rng.normal()
                        images[i * size * size + y * size + x] = min(max(v, 0), 1)
                    }
                }
            }
            return ImageSet(images: images, labels: labels, channels: 1, height: size, width: size)
        }
        return (sample(train), sample(test))
    }
}

import Foundation
@inline(__always) private func Foundation_exp(_ x: Double) -> Double { Foundation.exp(x) }
