import Foundation
import Tensors

/// The augmentation of PROTOCOLS.md (`mini`, and `smoke` at its own size), drawn independently
/// per image and view from a generator seeded by (seed, epoch, image, view): the same seed gives
/// the same views whatever the thread count.
public struct Augmentation: Sendable, Equatable {
    public var outputSize: Int
    public var scale: ClosedRange<Double> = 0.2...1.0
    public var ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0)
    public var flipProbability: Float = 0.5
    public var jitterProbability: Float = 0.8
    public var brightness: ClosedRange<Float> = 0.6...1.4
    public var contrast: ClosedRange<Float> = 0.6...1.4
    public var mean: Float
    public var std: Float

    public init(outputSize: Int, mean: Float, std: Float) {
        self.outputSize = outputSize; self.mean = mean; self.std = std
    }

    /// A crop rectangle in the source image: top, left, height, width.
    public struct Crop: Equatable, Sendable {
        public var top, left, height, width: Int
        public init(top: Int, left: Int, height: Int, width: Int) {
            self.top = top; self.left = left; self.height = height; self.width = width
        }
    }

    /// torchvision's RandomResizedCrop.get_params: 10 tries of (area scale, log-uniform aspect
    /// ratio), then a center crop clamped to the ratio range.
    public func sampleCrop(height: Int, width: Int, rng: inout RNG) -> Crop {
        let area = Double(height * width)
        let logLo = Foundation.log(ratio.lowerBound), logHi = Foundation.log(ratio.upperBound)
        for _ in 0..<10 {
            let target = area * (scale.lowerBound + (scale.upperBound - scale.lowerBound) * rng.uniformDouble())
            let aspect = Foundation.exp(logLo + (logHi - logLo) * rng.uniformDouble())
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = rng.int(below: height - h + 1), left = rng.int(below: width - w + 1)
                return Crop(top: top, left: left, height: h, width: w)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return Crop(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }

    /// One augmented view of a single-channel image `src` [height × width] written to `dst`
    /// [outputSize²], normalised.
    public func apply(_ src: UnsafePointer<Float>, height: Int, width: Int,
                      to dst: UnsafeMutablePointer<Float>, rng: inout RNG) {
        let crop = sampleCrop(height: height, width: width, rng: &rng)
        let flip = rng.uniform() < flipProbability
        let s = outputSize
        // Bilinear resize of the crop (align_corners=False, as torchvision), flipped if drawn.
        let sy = Double(crop.height) / Double(s), sx = Double(crop.width) / Double(s)
        for oy in 0..<s {
            let fy = max((Double(oy) + 0.5) * sy - 0.5, 0)
            let y0 = min(Int(fy), crop.height - 1), y1 = min(y0 + 1, crop.height - 1)
            let wy = Float(fy - Double(y0))
            for ox in 0..<s {
                let fx = max((Double(ox) + 0.5) * sx - 0.5, 0)
                let x0 = min(Int(fx), crop.width - 1), x1 = min(x0 + 1, crop.width - 1)
                let wx = Float(fx - Double(x0))
                let r0 = src + (crop.top + y0) * width + crop.left, r1 = src + (crop.top + y1) * width + crop.left
                let top = r0[x0] * (1 - wx) + r0[x1] * wx
                let bottom = r1[x0] * (1 - wx) + r1[x1] * wx
                dst[oy * s + (flip ? s - 1 - ox : ox)] = top * (1 - wy) + bottom * wy
            }
        }
        let n = s * s
        if rng.uniform() < jitterProbability {
            let b = rng.uniform(brightness.lowerBound, brightness.upperBound)
            let c = rng.uniform(contrast.lowerBound, contrast.upperBound)
            var total: Float = 0
            for i in 0..<n { dst[i] = min(max(dst[i] * b, 0), 1); total += dst[i] }
            let m = total / Float(n)
            for i in 0..<n { dst[i] = min(max(m + (dst[i] - m) * c, 0), 1) }
        }
        let inv = 1 / std
        for i in 0..<n { dst[i] = (dst[i] - mean) * inv }
    }

    /// Views `first ..< first + count` of the images `indices` of `set`, each a [B, 1, s, s] tensor.
    /// Parallel over images; image k of epoch e uses the generator (seed, e, indices[k], view).
    public func views(of set: ImageSet, indices: [Int], epoch: Int, seed: UInt64, first: Int = 0, count: Int = 2) -> [Tensor] {
        let b = indices.count, n = outputSize * outputSize
        let storages = (0..<count).map { _ in Storage(uninitializedCount: b * n) }
        let destinations = storages.map { UncheckedBox($0.pointer) }
        set.images.withUnsafeBufferPointer { images in
            guard let start = images.baseAddress else { return }   // no images: nothing to draw
            let base = UncheckedBox(start)
            parallelFor(b, cost: 2 * count * n) { range in
                for k in range {
                    let src = base.value + indices[k] * set.imageSize
                    for (offset, dst) in destinations.enumerated() {
                        var rng = RNG(seed: Augmentation.seed(seed, epoch: epoch, image: indices[k], view: first + offset))
                        apply(src, height: set.height, width: set.width, to: dst.value + k * n, rng: &rng)
                    }
                }
            }
        }
        let shape = [b, 1, outputSize, outputSize]
        return storages.map { Tensor(shape: shape, storage: $0) }
    }

    /// Un-augmented, normalised images (evaluation).
    public func plain(_ set: ImageSet, range: Range<Int>) -> Tensor {
        let n = set.imageSize
        let out = Storage(uninitializedCount: range.count * n)
        let inv = 1 / std
        set.images.withUnsafeBufferPointer { images in
            for i in 0..<(range.count * n) { out.pointer[i] = (images[range.lowerBound * n + i] - mean) * inv }
        }
        return Tensor(shape: [range.count, set.channels, set.height, set.width], storage: out)
    }

    static func seed(_ seed: UInt64, epoch: Int, image: Int, view: Int) -> UInt64 {
        var h = seed &* 0x9E37_79B9_7F4A_7C15
        for v in [UInt64(epoch), UInt64(image), UInt64(view)] { h = (h ^ v) &* 0xBF58_476D_1CE4_E5B9; h ^= h >> 31 }
        return h
    }
}
