import Foundation
import SSL
import XCTest

/// Every key has a range a real run can honour, checked before anything runs (issue 17 item 2).
final class ConfigLimitTests: XCTestCase {
    let mini = try! TrainingConfig.named("mini")

    func refused(_ key: String, _ value: ConfigValue, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try mini.applying([(key, value)])
            XCTFail("\(key): \(value) was accepted", file: file, line: line)
            return ""
        } catch { return "\(error)" }
    }

    func testOutOfRangeValuesAreRefusedWithTheirRange() {
        XCTAssertEqual(refused("optim.base_lr", .double(1e9)), "optim.base_lr: expected a number in [1e-6, 100], got `1000000000.0`")
        XCTAssertEqual(refused("optim.base_lr", .double(1e-9)), "optim.base_lr: expected a number in [1e-6, 100], got `1e-09`")
        XCTAssertEqual(refused("optim.weight_decay", .double(2)), "optim.weight_decay: expected a number in [0, 1], got `2.0`")
        XCTAssertEqual(refused("optim.epochs", .int(10_001)), "optim.epochs: expected an integer in 1...10000, got `10001`")
        XCTAssertEqual(refused("model.widths", .list([.int(16), .int(32), .int(64), .int(1_000_000)])),
                       "model.widths: expected a list of 4 integers in 1...1024, got `[16, 32, 64, 1000000]`")
        XCTAssertEqual(refused("model.projector_dim", .int(1 << 40)), "model.projector_dim: expected an integer in 1...8192, got `1099511627776`")
        XCTAssertEqual(refused("model.predictor_hidden", .int(0)), "model.predictor_hidden: expected an integer in 1...8192, got `0`")
        XCTAssertNoThrow(try mini.applying([("optim.base_lr", .double(100)), ("optim.weight_decay", .int(1)), ("optim.epochs", .int(10_000))]))
    }

    func testSettingsARunCannotHonourTogether() {
        XCTAssertEqual(refused("optim.batch", .int(60_001)), "optim.batch: expected an integer ≥ 2, at most the protocol's training images (smoke 2048, mini 60000), got `60001`")
        XCTAssertThrowsError(try TrainingConfig.named("smoke").applying([("optim.batch", .int(4096))])) { error in
            XCTAssertEqual("\(error)", "optim.batch: is 4096, larger than protocol `smoke`'s 2048 training images; use at most 2048")
        }
        XCTAssertEqual(refused("optim.warmup_epochs", .int(11)), "optim.warmup_epochs: is 11, more than the run's 10 epochs; use at most 10")
        XCTAssertThrowsError(try mini.applying([("model.predictor", .string("none")), ("model.predictor_hidden", .int(64))])) { error in
            XCTAssertEqual("\(error)", "model.predictor_hidden: sets the width of a predictor this row removes (`model.predictor: none`); remove one of the two")
        }
    }

    /// Calibration: `ablate train --protocol smoke --batch 2048 --epochs 1` peaked at 497 MiB RSS
    /// (measured with /usr/bin/time -v); the estimate (1,020 MiB) is an upper bound within about 2×.
    func testPeakMemoryEstimateAndRefusal() throws {
        var smoke = try TrainingConfig.named("smoke").applying([("optim.batch", .int(2048))])
        let mib = smoke.estimatedPeakBytes / 1_048_576
        XCTAssertGreaterThan(mib, 497)
        XCTAssertLessThan(mib, 2.5 * 497)
        smoke.batch = 128
        XCTAssertLessThan(smoke.estimatedPeakBytes, try TrainingConfig.named("smoke").applying([("optim.batch", .int(2048))]).estimatedPeakBytes)
        let huge = try mini.applying([("optim.batch", .int(60_000)), ("model.widths", .list([1024, 1024, 1024, 1024].map(ConfigValue.int)))])
        XCTAssertThrowsError(try huge.validate(memoryLimit: 24 * 1_073_741_824)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("memory: the run would need about "), text)
            XCTAssertTrue(text.hasSuffix("more than this machine's 24576 MiB; lower `optim.batch` or the widths"), text)
        }
        XCTAssertNoThrow(try mini.validate(memoryLimit: 24 * 1_073_741_824))
    }
}
