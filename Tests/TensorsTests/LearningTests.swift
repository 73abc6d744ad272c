import TestSupport
import NN
import Tensors
import XCTest

/// "It learns": small networks built from NN layers fit small problems with SGD, and SGD and the
/// learning-rate schedules match hand-computed PyTorch semantics.
final class LearningTests: XCTestCase {
    private func argmaxRows(_ logits: Tensor) -> [Int] {
        let c = logits.shape[1], v = logits.array
        return (0..<logits.shape[0]).map { r in
            let row = v[(r * c)..<(r * c + c)]
            return row.firstIndex(of: row.max()!)! - r * c
        }
    }

    func testMLPLearnsXOR() throws {
        var rng = RNG(seed: 42)
        let model = Sequential([Linear(2, 16, rng: &rng), ReLU(), Linear(16, 2, rng: &rng)])
        let x = try Tensor(shape: [4, 2], [0, 0, 0, 1, 1, 0, 1, 1])
        let labels = [0, 1, 1, 0]
        let steps = 200
        let opt = SGD(groups: [ParamGroup(name: "all", parameters: model.parameters,
                                          schedule: LRSchedule(base: 0.1, totalSteps: steps, fixed: true),
                                          weightDecay: 0)],
                      momentum: 0.9)
        var firstPerfect: Int?
        var loss: Float = .infinity
        for step in 0..<steps {
            opt.zeroGrad()
            let logits = try model(x)
            let l = try crossEntropy(logits, labels: labels)
            try l.backward()
            opt.update()
            loss = l.item
            if firstPerfect == nil && argmaxRows(logits) == labels { firstPerfect = step }
        }
        let logits = try noGrad { try model(x) }
        XCTAssertEqual(argmaxRows(logits), labels, "XOR: zero classification error after \(steps) steps")
        XCTAssertLessThan(loss, 0.01, "XOR: training loss")
        // Seeds 1…20 first classify all four points after 2…31 steps.
        XCTAssertLessThanOrEqual(firstPerfect ?? .max, 100)
        XCTAssertNotNil(firstPerfect)
    }

    /// 64 single-channel 8×8 images in 4 classes: horizontal stripes, vertical stripes, a
    /// checkerboard, a bright centre square; random phase and Gaussian noise from the seeded RNG.
    /// With `randomLabels` the labels are drawn independently of the images (pure memorisation).
    private func syntheticImages(_ rng: inout RNG, randomLabels: Bool) throws -> (Tensor, [Int]) {
        let n = 64, side = 8
        var v = [Float](repeating: 0, count: n * side * side)
        var labels: [Int] = []
        let order = rng.permutation(n)
        for i in 0..<n {
            let cls = order[i] % 4
            labels.append(randomLabels ? rng.int(below: 4) : cls)
            let phase = rng.int(below: 2)
            for y in 0..<side {
                for x in 0..<side {
                    let on: Bool
                    switch cls {
                    case 0: on = (y + phase) % 2 == 0
                    case 1: on = (x + phase) % 2 == 0
                    case 2: on = (x + y + phase) % 2 == 0
                    default: on = (2..<6).contains(x) && (2..<6).contains(y)
                    }
                    v[(i * side + y) * side + x] = (on ? 1 : 0) + 0.3 * rng.normal()
                }
            }
        }
        return (try Tensor(shape: [n, 1, side, side], v), labels)
    }

    /// Conv(3×3)–BN–ReLU–Conv(3×3, stride 2)–BN–ReLU–GAP–Linear, full-batch SGD (momentum 0.9,
    /// cosine lr from 0.1, wd 5e-4). Returns the first step whose logits classify every image
    /// correctly (BN in training mode), and the number correct afterwards with BN in eval mode.
    private func fitConvNet(_ images: Tensor, _ labels: [Int], widths: (Int, Int), steps: Int,
                            _ rng: inout RNG) throws -> (firstPerfect: Int?, evalCorrect: Int, loss: Float) {
        let model = Sequential([
            Conv2d(1, widths.0, kernel: 3, padding: 1, rng: &rng), BatchNorm(widths.0), ReLU(),
            Conv2d(widths.0, widths.1, kernel: 3, stride: 2, padding: 1, rng: &rng), BatchNorm(widths.1), ReLU(),
            GlobalAvgPool(), Linear(widths.1, 4, rng: &rng),
        ])
        let opt = SGD(groups: [ParamGroup(name: "all", parameters: model.parameters,
                                          schedule: LRSchedule(base: 0.1, totalSteps: steps),
                                          weightDecay: 5e-4)],
                      momentum: 0.9)
        var firstPerfect: Int?
        var loss: Float = .infinity
        for step in 0..<steps {
            opt.zeroGrad()
            let logits = try model(images)
            let l = try crossEntropy(logits, labels: labels)
            try l.backward()
            opt.update()
            loss = l.item
            if firstPerfect == nil && argmaxRows(logits) == labels { firstPerfect = step }
        }
        model.setTraining(false)
        let logits = try noGrad { try model(images) }
        return (firstPerfect, zip(argmaxRows(logits), labels).filter { $0 == $1 }.count, loss)
    }

    func testConvNetFitsSyntheticImages() throws {
        var rng = RNG(seed: 7)
        let (images, labels) = try syntheticImages(&rng, randomLabels: false)
        let r = try fitConvNet(images, labels, widths: (8, 16), steps: 100, &rng)
        // Seeds 1…12 reach 100 % within 5…21 steps.
        XCTAssertNotNil(r.firstPerfect, "conv net: 100 % train accuracy within 100 steps")
        XCTAssertLessThanOrEqual(r.firstPerfect ?? .max, 60)
        XCTAssertEqual(r.evalCorrect, labels.count, "conv net: train accuracy with BN in eval mode")
        XCTAssertLessThan(r.loss, 0.02)
    }

    func testConvNetMemorisesRandomLabels() throws {
        var rng = RNG(seed: 8)
        let (images, labels) = try syntheticImages(&rng, randomLabels: true)
        let r = try fitConvNet(images, labels, widths: (16, 32), steps: 200, &rng)
        // Seeds 1…12 reach 100 % within 39…66 steps (of 300).
        XCTAssertNotNil(r.firstPerfect, "conv net: random labels memorised within 200 steps")
        XCTAssertLessThanOrEqual(r.firstPerfect ?? .max, 150)
        XCTAssertEqual(r.evalCorrect, labels.count, "conv net: random labels with BN in eval mode")
        XCTAssertLessThan(r.loss, 0.05)
    }

    // MARK: - SGD and schedules, by hand

    func testSGDMatchesPyTorchSemanticsByHand() throws {
        // p0 = [1, −2], loss = Σ c ⊙ p with c = [0.5, 0.25], lr 0.1, momentum 0.9, wd 0.01.
        // step 1: d = c + wd·p0 = [0.51, 0.23];          buf = d;             p1 = p0 − lr·buf = [0.949, −2.023]
        // step 2: d = c + wd·p1 = [0.50949, 0.22977];    buf = 0.9·buf + d = [0.96849, 0.43677]
        //         p2 = p1 − lr·buf = [0.852151, −2.066677]
        let p = try Tensor(shape: [2], [1, -2], requiresGrad: true)
        let c = try Tensor(shape: [2], [0.5, 0.25])
        let frozen = try Tensor(shape: [1], [3], requiresGrad: true)   // never gets a gradient: skipped
        let opt = SGD(groups: [ParamGroup(name: "p", parameters: [p, frozen],
                                          schedule: LRSchedule(base: 0.1, totalSteps: 2, fixed: true), weightDecay: 0.01)],
                      momentum: 0.9)
        try sum(try p * c).backward()
        opt.update()
        assertClose(p.array, [0.949, -2.023], rtol: 1e-6, atol: 1e-6, "after step 1")
        assertClose(opt.buffers[0][0]!.array, [0.51, 0.23], rtol: 1e-6, atol: 1e-6, "momentum buffer after step 1")
        opt.zeroGrad()
        XCTAssertNil(p.grad)
        try sum(try p * c).backward()
        opt.update()
        assertClose(opt.buffers[0][0]!.array, [0.96849, 0.43677], rtol: 1e-6, atol: 1e-6, "momentum buffer after step 2")
        assertClose(p.array, [0.852151, -2.066677], rtol: 1e-6, atol: 1e-6, "after step 2")
        XCTAssertEqual(frozen.array, [3], "a parameter without gradient is not updated (not even by weight decay)")
        XCTAssertNil(opt.buffers[0][1])
        XCTAssertEqual(opt.step, 2)
    }

    func testSGDGroupsUseTheirOwnScheduleAndWeightDecay() throws {
        // Two groups, no momentum: a gets lr 0.5 (fixed) and wd 0; b follows a 2-step cosine from 0.2
        // (0.2 at step 0, 0.1 at step 1) with wd 0.1. Gradients are 1.
        let a = try Tensor(shape: [1], [1], requiresGrad: true), b = try Tensor(shape: [1], [1], requiresGrad: true)
        let opt = SGD(groups: [
            ParamGroup(name: "a", parameters: [a], schedule: LRSchedule(base: 0.5, totalSteps: 2, fixed: true), weightDecay: 0),
            ParamGroup(name: "b", parameters: [b], schedule: LRSchedule(base: 0.2, totalSteps: 2), weightDecay: 0.1),
        ], momentum: 0)
        assertClose(opt.currentLRs, [0.5, 0.2], rtol: 1e-6, atol: 0)
        for _ in 0..<2 {
            opt.zeroGrad()
            try sum(try a + b).backward()
            opt.update()
        }
        // a: 1 − 0.5 − 0.5 = 0.  b: 1 − 0.2·(1 + 0.1) = 0.78, then 0.78 − 0.1·(1 + 0.078) = 0.6722.
        assertClose(a.array, [0], rtol: 0, atol: 1e-6, "group a")
        assertClose(b.array, [0.6722], rtol: 1e-6, atol: 1e-6, "group b")
        assertClose(opt.currentLRs, [0.5, 0], rtol: 0, atol: 1e-7)
    }

    func testLRScheduleValuesByHand() {
        // Cosine, no warm-up, T = 10, base 0.1: 0.05·(1 + cos(π·t/10)).
        let cosine = LRSchedule(base: 0.1, totalSteps: 10)
        assertClose([0, 2, 5, 9].map { cosine.lr(at: $0) }, [0.1, 0.0904508497, 0.05, 0.0024471742],
                    rtol: 1e-6, atol: 1e-8, "cosine per step")
        // Warm-up W = 3 to base 0.3 (0.1, 0.2, 0.3), then cosine over the remaining 10 steps.
        let warm = LRSchedule(base: 0.3, totalSteps: 13, warmupSteps: 3)
        assertClose([0, 1, 2, 3, 8, 12].map { warm.lr(at: $0) }, [0.1, 0.2, 0.3, 0.3, 0.15, 0.0073415226],
                    rtol: 1e-6, atol: 1e-8, "warm-up then cosine")
        // Fixed: base everywhere.
        let fixed = LRSchedule(base: 0.05, totalSteps: 10, warmupSteps: 3, fixed: true)
        XCTAssertEqual([0, 1, 5, 9, 100].map { fixed.lr(at: $0) }, [0.05, 0.05, 0.05, 0.05, 0.05])
        // Monotone decay after warm-up, positive until the last step.
        let lrs = (0..<10).map { cosine.lr(at: $0) }
        XCTAssertTrue(zip(lrs, lrs.dropFirst()).allSatisfy { $0 > $1 })
        XCTAssertGreaterThan(lrs.last!, 0)
    }

    func testSGDFollowsTheScheduleStepByStep() throws {
        // With gradient 1, no momentum and no weight decay, each step moves p by exactly lr(t).
        let p = try Tensor(shape: [1], [0], requiresGrad: true)
        let schedule = LRSchedule(base: 0.3, totalSteps: 13, warmupSteps: 3)
        let opt = SGD(groups: [ParamGroup(name: "p", parameters: [p], schedule: schedule, weightDecay: 0)], momentum: 0)
        var expected: Float = 0
        for t in 0..<13 {
            XCTAssertEqual(opt.currentLRs, [schedule.lr(at: t)])
            opt.zeroGrad()
            try sum(p).backward()
            opt.update()
            expected -= schedule.lr(at: t)
            assertClose(p.array, [expected], rtol: 1e-6, atol: 1e-7, "after step \(t)")
        }
    }
}
