import Data
import Foundation
import Tensors
import XCTest

final class AugmentationTests: XCTestCase {
    let aug = Augmentation(outputSize: 28, mean: 0.2860, std: 0.3530)

    func gradientImages(_ n: Int) -> ImageSet {
        var px: [Float] = []
        for i in 0..<n { for y in 0..<28 { for x in 0..<28 { px.append(Float((x + y + i) % 28) / 27) } } }
        return ImageSet(images: px, labels: Array(repeating: 0, count: n), channels: 1, height: 28, width: 28)
    }

    func testSameSeedSameViewsOtherSeedOtherViews() {
        let set = gradientImages(8)
        let (a1, a2) = aug.viewPair(of: set, indices: Array(0..<8), epoch: 3, seed: 42)
        let (b1, b2) = aug.viewPair(of: set, indices: Array(0..<8), epoch: 3, seed: 42)
        XCTAssertEqual(a1.array, b1.array)
        XCTAssertEqual(a2.array, b2.array)
        XCTAssertNotEqual(a1.array, a2.array, "the two views are drawn independently")
        let (c1, _) = aug.viewPair(of: set, indices: Array(0..<8), epoch: 3, seed: 43)
        XCTAssertNotEqual(a1.array, c1.array)
        let (d1, _) = aug.viewPair(of: set, indices: Array(0..<8), epoch: 4, seed: 42)
        XCTAssertNotEqual(a1.array, d1.array, "each epoch draws new views")
    }

    func testCropScaleAndRatioFollowTorchvisionRule() {
        var rng = RNG(seed: 7)
        var minArea = 1.0, maxArea = 0.0, minRatio = 10.0, maxRatio = 0.0
        for _ in 0..<5000 {
            let c = aug.sampleCrop(height: 28, width: 28, rng: &rng)
            XCTAssertTrue(c.top >= 0 && c.left >= 0 && c.top + c.height <= 28 && c.left + c.width <= 28)
            let area = Double(c.height * c.width) / 784, ratio = Double(c.width) / Double(c.height)
            minArea = min(minArea, area); maxArea = max(maxArea, area)
            minRatio = min(minRatio, ratio); maxRatio = max(maxRatio, ratio)
        }
        // Rounding w and h to integers moves the area and ratio slightly past the sampled range.
        XCTAssertGreaterThan(minArea, 0.2 * 0.85); XCTAssertLessThan(minArea, 0.25)
        XCTAssertEqual(maxArea, 1.0, accuracy: 1e-9)
        XCTAssertGreaterThan(minRatio, 0.75 * 0.85); XCTAssertLessThan(maxRatio, 4.0 / 3.0 * 1.15)
    }

    func testCenterCropFallbackForExtremeImages() {
        var a = aug
        a.scale = 0.999...1.0   // a 4×28 image cannot hold a crop of ratio ≤ 4/3 with this area
        var rng = RNG(seed: 1)
        let c = a.sampleCrop(height: 4, width: 28, rng: &rng)
        XCTAssertEqual(c, Augmentation.Crop(top: 0, left: 11, height: 4, width: 5))   // h = 4, w = round(4·4/3)
    }

    func testFlipRateAndJitterRateAndBounds() {
        // A constant image: crops and flips leave it constant, so any change of value is the jitter.
        let constant = ImageSet(images: Array(repeating: 0.5, count: 784 * 400), labels: Array(repeating: 0, count: 400),
                                channels: 1, height: 28, width: 28)
        let (v1, _) = aug.viewPair(of: constant, indices: Array(0..<400), epoch: 0, seed: 5)
        let plain = (0.5 - aug.mean) / aug.std
        var jittered = 0
        for i in 0..<400 where abs(v1.pointer[i * 784] - plain) > 1e-6 { jittered += 1 }
        XCTAssertEqual(Double(jittered) / 400, 0.8, accuracy: 0.06)
        let lo = (0 - aug.mean) / aug.std, hi = (1 - aug.mean) / aug.std
        // Brightness in [0.6, 1.4] of 0.5 stays in [0.3, 0.7].
        for x in v1.array { XCTAssertTrue(x >= lo - 1e-5 && x <= hi + 1e-5); XCTAssertTrue(x >= (0.3 - aug.mean) / aug.std - 1e-5 && x <= (0.7 - aug.mean) / aug.std + 1e-5) }

        // A left-to-right ramp: flipped views decrease along x.
        var ramp: [Float] = []
        for _ in 0..<400 { for _ in 0..<28 { for x in 0..<28 { ramp.append(Float(x) / 27) } } }
        var noJitter = aug
        noJitter.jitterProbability = 0
        let rampSet = ImageSet(images: ramp, labels: Array(repeating: 0, count: 400), channels: 1, height: 28, width: 28)
        let (r1, _) = noJitter.viewPair(of: rampSet, indices: Array(0..<400), epoch: 0, seed: 9)
        var flipped = 0
        for i in 0..<400 where r1.pointer[i * 784] > r1.pointer[i * 784 + 27] { flipped += 1 }
        XCTAssertEqual(Double(flipped) / 400, 0.5, accuracy: 0.08)
    }

    func testSyntheticSmokeSetIsDeterministic() {
        let a = SyntheticData.make(), b = SyntheticData.make()
        XCTAssertEqual(a.train.images, b.train.images)
        XCTAssertEqual(a.train.count, 2048)
        XCTAssertEqual(a.test.count, 512)
        XCTAssertEqual(Set(a.train.labels).count, 10)
    }
}

extension Augmentation {
    /// The first two views, as the tests above compare them.
    func viewPair(of set: ImageSet, indices: [Int], epoch: Int, seed: UInt64) -> (Tensor, Tensor) {
        let v = views(of: set, indices: indices, epoch: epoch, seed: seed)
        return (v[0], v[1])
    }
}
