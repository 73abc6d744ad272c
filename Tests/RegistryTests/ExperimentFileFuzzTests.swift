import Data
import Foundation
import Registry
import SSL
import XCTest

/// Seeded mutations of the committed experiment files (issue 17): the checker never crashes or
/// hangs, answers every file within a second, reports every problem at `path:line:column`, and
/// every file it accepts trains one `smoke` step. Prints the figures it measured.
final class ExperimentFileFuzzTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// SplitMix64: the same files on every run.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func pick<T>(_ xs: [T]) -> T { xs[below(xs.count)] }
    }

    static let edgeNumbers = ["0", "-1", "1", "2", "1e-7", "1e-6", "100", "100.5", "1e9", "1e309", "-1e309", ".nan", ".inf", "2047",
                              "2048", "2049", "10000", "10001", "1024", "1025", "8192", "8193", "60000", "60001",
                              "9223372036854775807", "9223372036854775808", "0x10", "0o17", "1_000"]
    static let oddValues = ["true", "no", "~", "null", "\"\"", "[]", "{}", "[1, 2]", "{a: 1}", "'x'", "\"with: colon\"", "- x",
                            "\"\\u0000\"", "|\n  block", ">-\n  folded", "é", "🙂", "!!binary aGVsbG8=", "? x"]

    /// One mutation of the text's lines.
    static func mutate(_ lines: inout [String], _ rng: inout RNG) {
        guard !lines.isEmpty else { return }
        let i = rng.below(lines.count)
        let line = lines[i]
        let colon = line.firstIndex(of: ":")
        func replaceValue(_ value: String) {
            if let colon { lines[i] = String(line[...colon]) + " " + value }
        }
        switch rng.below(14) {
        case 0:  // a key renamed, misspelt or moved to another method
            if let colon {
                let keys = ConfigKey.all.map(\.name) + ["name", "overrides", "paper", "claim", "seeds", "rows", "nmae", "optim.epoch",
                                                        "loss.stop_gradient ", "byol.tau_base", "model.predictor_hidden"]
                let indent = line.prefix { $0 == " " || $0 == "-" }
                lines[i] = indent + rng.pick(keys) + String(line[colon...])
            }
        case 1: replaceValue(rng.pick(edgeNumbers))
        case 2: replaceValue(rng.pick(oddValues))
        case 3:  // indentation
            lines[i] = rng.below(2) == 0 ? String(repeating: " ", count: 1 + rng.below(5)) + line
                : rng.below(2) == 0 ? "\t" + line : String(line.drop { $0 == " " })
        case 4:  // anchors and aliases, up to a billion laughs
            if rng.below(3) == 0 {
                lines.append("a0: &a0 [x, x, x, x, x, x, x, x, x, x]")
                for k in 1...8 { lines.append("a\(k): &a\(k) [" + Array(repeating: "*a\(k - 1)", count: 10).joined(separator: ", ") + "]") }
            } else {
                replaceValue("&v 3")
                lines.insert(String(line.prefix { $0 == " " }) + "other: *v", at: min(lines.count, i + 1))
            }
        case 5: replaceValue(rng.pick(["!foo ", "!!str ", "!!int ", "!<tag:x> ", "! ", "!!python/object "]) + (colon.map { String(line[line.index(after: $0)...]).trimmingCharacters(in: .whitespaces) } ?? "x"))
        case 6:  // very long names and values
            let n = rng.pick([65, 201, 5_000, 200_000])
            replaceValue(rng.below(2) == 0 ? String(repeating: "n", count: n) : "\"" + String(repeating: "é ", count: n / 2) + "\"")
        case 7: lines.remove(at: i)
        case 8: lines.insert(line, at: i)
        case 9:  // an override with an edge value, so that some accepted files train unusual configs
            let key = rng.pick(ConfigKey.all).name
            let value = rng.below(3) == 0 ? rng.pick(["true", "false", "mlp", "none", "fixed-random", "decayed", "asymmetric-2x",
                                                      "cross-entropy", "byol", "[1, 1, 1, 1]", "[1024, 8, 8, 8]"])
                : rng.pick(edgeNumbers)
            if let j = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("overrides:") }) {
                let indent = lines[j].prefix { $0 == " " }
                if lines[j].hasSuffix("{}") { lines[j] = indent + "overrides:" }
                lines.insert(indent + "  " + key + ": " + value, at: j + 1)
            }
        case 10: lines[i] = String(repeating: "[", count: rng.pick([10, 40, 5_000])) + line
        case 11: lines[i] = line + rng.pick([" # comment", " ]", " }", ":", " :", "\"", "'", " - x", "\u{0}", "\u{7}", "\u{FEFF}"])
        case 12: replaceValue(rng.pick(["\" baseline \"", "\"a\\nb\"", "\"\"", "below baseline", "within 1 of  baseline ", "above",
                                        "within -1 of baseline", "within 1e400 of baseline", "collapses "]))
        default:  // whole-file edits: duplicate rows, truncate
            if rng.below(2) == 0, let r = lines.firstIndex(of: "rows:") {
                lines += Array(lines[(r + 1)...])
            } else {
                lines = Array(lines.prefix(rng.below(lines.count)))
            }
        }
    }

    /// The bytes of a mutated file, sometimes in another encoding.
    static func encode(_ text: String, _ rng: inout RNG) -> Data {
        switch rng.below(12) {
        case 0: return Data([0xEF, 0xBB, 0xBF]) + Data(text.utf8)           // UTF-8 BOM
        case 1: return text.data(using: .utf16) ?? Data()                    // UTF-16 with BOM
        case 2: return Data(text.utf8) + Data([0xC3, 0x28, 0xFF])            // invalid UTF-8
        case 3: return Data(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        case 4: return text.data(using: .isoLatin1, allowLossyConversion: true) ?? Data()
        default: return Data(text.utf8)
        }
    }

    func testMutatedExperimentFilesNeverCrashHangOrSlipThrough() throws {
        let directory = ExperimentFileFuzzTests.root.appendingPathComponent("experiments/simsiam")
        let bases = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
            .map { try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }
        XCTAssertGreaterThanOrEqual(bases.count, 7)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }

        // A hang fails loudly (the test process would otherwise wait for ever).
        let current = Watchdog()
        current.start(seconds: 120)
        defer { current.stop() }

        let files = 1_200, trainedAtMost = 40
        var rng = RNG(state: 17)
        var rejected = 0, accepted = 0, trained = 0, refusedByPlan = 0, errors = 0
        var slowest = (seconds: 0.0, file: "")
        let location = try NSRegularExpression(pattern: #"^\S+\.yaml:\d+:\d+: error: \S"#)
        let start = Date()
        for n in 0..<files {
            var lines = bases[n % bases.count].components(separatedBy: "\n")
            for _ in 0..<(1 + rng.below(3)) { ExperimentFileFuzzTests.mutate(&lines, &rng) }
            let path = tmp.appendingPathComponent("f\(n).yaml").path
            try ExperimentFileFuzzTests.encode(lines.joined(separator: "\n"), &rng).write(to: URL(fileURLWithPath: path))
            current.file = path
            let t0 = Date()
            let result = Result { try ExperimentTable.load(path: path) }
            let seconds = Date().timeIntervalSince(t0)
            if seconds > slowest.seconds { slowest = (seconds, path) }
            XCTAssertLessThan(seconds, 1, "checking \(path) took \(seconds) s")
            switch result {
            case let .failure(RegistryError.invalid(diagnostics)):
                rejected += 1
                errors += diagnostics.count
                XCTAssertFalse(diagnostics.isEmpty, path)
                for d in diagnostics {
                    let text = d.description
                    XCTAssertTrue(text.hasPrefix(path + ":"), text)
                    XCTAssertNotNil(location.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), text)
                }
            case let .failure(error):
                XCTFail("\(path): an error without a location: \(error)")
            case let .success(table):
                accepted += 1
                guard trained < trainedAtMost else { continue }
                // One `smoke` step of a random row, as `ablate run --protocol smoke` would plan it.
                let row = table.rows[rng.below(table.rows.count)]
                var config = try TrainingConfig.named("smoke").applying(row.overrides, checkConflicts: false).fittedToData().config
                config.epochs = max(config.epochs, config.warmupEpochs)
                do {
                    try config.validate(memoryLimit: 2 * 1_073_741_824)   // what the plan refuses is never trained
                } catch {
                    refusedByPlan += 1
                    continue
                }
                let (train, _) = SyntheticData.make(train: config.batch, test: 16)
                let trainer = try Trainer(config: config, seed: 0, train: train, augmentation: Augmentation(outputSize: 16, mean: 0.5, std: 0.5))
                XCTAssertEqual(trainer.stepsPerEpoch, 1)
                _ = try trainer.runEpoch(0) { _ in }
                trained += 1
            }
        }
        let total = Date().timeIntervalSince(start)
        XCTAssertEqual(rejected + accepted, files)
        XCTAssertLessThan(total, 300)   // a hang guard, not a speed goal: ~30 s alone, 60+ s beside training runs
        print(String(format: "fuzz: %d files from %d committed tables, %d rejected (%d errors, all at path:line:column), %d accepted "
                     + "(%d trained one smoke step, %d refused by the plan's checks), 0 crashes, 0 hangs; slowest check %.3f s (%@); "
                     + "whole test %.1f s", files, bases.count, rejected, errors, accepted, trained, refusedByPlan, slowest.seconds,
                     (slowest.file as NSString).lastPathComponent, total))
    }
}

/// Ends the test process with the file being checked if the fuzz loop stops moving.
final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var _file = "", running = true
    var file: String {
        get { lock.lock(); defer { lock.unlock() }; return _file }
        set { lock.lock(); _file = newValue; lock.unlock() }
    }

    func start(seconds: Double) {
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in
            lock.lock(); let hung = running; let file = _file; lock.unlock()
            guard hung else { return }
            FileHandle.standardError.write(Data("fuzz: still running after \(seconds) s, at \(file): a hang\n".utf8))
            exit(1)
        }
    }

    func stop() { lock.lock(); running = false; lock.unlock() }
}
