import Foundation
import Registry
import SSL
import XCTest

/// The package root, found from this file's path (Tests/RegistryTests/…).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

final class RegistryTests: XCTestCase {
    func testTheRealExperimentFilesParseAndResolve() throws {
        let registry = try Registry(directory: packageRoot + "/experiments")
        XCTAssertEqual(registry.ids.filter { $0.hasPrefix("simsiam-") },
                       ["simsiam-alternation", "simsiam-fig2", "simsiam-fig3", "simsiam-moving-average", "simsiam-output-dim",
                        "simsiam-similarity", "simsiam-symmetry", "simsiam-table1", "simsiam-table2", "simsiam-table3", "simsiam-table4"])
        XCTAssertEqual(registry.ids.filter { $0.hasPrefix("zhang2022-") },
                       ["zhang2022-fig3", "zhang2022-fig4", "zhang2022-fig5a", "zhang2022-fig5b", "zhang2022-fig6",
                        "zhang2022-simplified-predictor", "zhang2022-table1",
                        "zhang2022-table2", "zhang2022-table3", "zhang2022-table4"])
        // Every row of every table resolves; every SimSiam table has the protocol as it is as a row.
        let mini = try TrainingConfig.named("mini")
        for table in registry.tables {
            let configs = try table.rows.map { try table.resolvedConfig(for: $0) }
            if table.id.hasPrefix("simsiam-") && table.id != "simsiam-moving-average" { XCTAssertTrue(configs.contains(mini), "\(table.id) has a row with the protocol unchanged") }
        }

        let fig2 = try registry.table(id: "simsiam-fig2")
        XCTAssertEqual(fig2.protocolName, "mini")
        XCTAssertEqual(fig2.seeds, 3)
        XCTAssertEqual(fig2.source, "Fig 2")
        XCTAssertEqual(fig2.metrics, [.linear, .knn, .zStd, .mO, .mR])
        XCTAssertEqual(fig2.rows.map(\.name), ["baseline", "no stop-grad"])
        XCTAssertEqual(fig2.rows.map(\.paper), [.number(67.7), .number(0.1)])
        XCTAssertEqual(fig2.rows.map(\.claims), [[.doesNotCollapse], [.collapses]])
        XCTAssertEqual(try fig2.resolvedConfig(for: fig2.row(named: "baseline")), mini)
        let noStopGrad = try fig2.resolvedConfig(for: fig2.row(named: "no stop-grad"))
        XCTAssertFalse(noStopGrad.model.stopGradient)
        XCTAssertEqual(noStopGrad.epochs, mini.epochs)

        let table1 = try registry.table(id: "simsiam-table1")
        XCTAssertEqual(table1.rows.map(\.name), ["baseline", "no predictor", "fixed random predictor", "predictor lr decayed"])
        XCTAssertEqual(table1.rows.map(\.paper), [.number(68.1), .number(0.1), .number(1.5), .number(67.7)])
        XCTAssertEqual(table1.rows.map(\.claims),
                       [[.doesNotCollapse], [.collapses], [.doesNotCollapse], [.doesNotCollapse, .within(points: 1, of: "baseline")]])
        XCTAssertEqual(try table1.resolvedConfig(for: table1.rows[0]), mini)
        XCTAssertFalse(mini.predictorLRDecayed)
        XCTAssertNil(try table1.resolvedConfig(for: table1.rows[1]).model.predictorHidden)
        XCTAssertTrue(try table1.resolvedConfig(for: table1.rows[2]).model.predictorFixedRandom)
        XCTAssertTrue(try table1.resolvedConfig(for: table1.rows[3]).predictorLRDecayed)
        for row in fig2.rows + table1.rows {
            XCTAssertFalse(row.paperSource.isEmpty)
            XCTAssertTrue(row.location.file.hasSuffix(".yaml"))
        }
    }

    func testUnknownTableAndRowListWhatExistsAndTheClosest() throws {
        let registry = try Registry(directory: packageRoot + "/experiments")
        XCTAssertThrowsError(try registry.table(id: "simsiam-fig22")) { error in
            XCTAssertTrue("\(error)".hasPrefix("error: unknown table `simsiam-fig22`; known tables: simsiam-alternation, simsiam-fig2, "), "\(error)")
            XCTAssertTrue("\(error)".hasSuffix("; did you mean `simsiam-fig2`?"), "\(error)")
        }
        let table1 = try registry.table(id: "simsiam-table1")
        XCTAssertThrowsError(try table1.row(named: "no predicter")) { error in
            XCTAssertEqual("\(error)", "error: table `simsiam-table1` has no row `no predicter`; its rows: baseline, "
                + "no predictor, fixed random predictor, predictor lr decayed; did you mean `no predictor`?")
        }
    }

    func testTheRegistryCollectsErrorsFromEveryFileAndFindsDuplicateIDs() throws {
        let valid = validLines.joined(separator: "\n")
        let dir = try temporaryDirectory([
            "a/one.yaml": valid,
            "b/two.yaml": valid,
            "c/broken.yaml": valid.replacingOccurrences(of: "protocol: mini", with: "protocol: tiny"),
            "notes.txt": "not an experiment",
            "d/three.yml": valid,
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try Registry(directory: dir)) { error in
            guard case let RegistryError.invalid(found) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(found.map { "\($0.location.file.dropFirst(dir.count)):\($0.location.line):\($0.location.column)" },
                           ["/c/broken.yaml:5:11", "/d/three.yml:1:1", "/b/two.yaml:1:5"])
            XCTAssertEqual(found.last?.problem, "duplicate table id `bad` (also \(dir)/a/one.yaml:1:5)")
        }
        XCTAssertThrowsError(try Registry(directory: dir + "/missing")) { error in
            XCTAssertTrue("\(error)".contains("no such directory"), "\(error)")
        }
    }

    func testACifarTableValidatesButDoesNotResolveUntilTheProtocolExists() throws {
        let yaml = validLines.joined(separator: "\n").replacingOccurrences(of: "protocol: mini", with: "protocol: cifar")
        let table = try ExperimentTable.parse(yaml: yaml, file: "cifar.yaml")
        XCTAssertThrowsError(try table.resolvedConfig(for: table.rows[0])) { error in
            XCTAssertTrue("\(error)".hasPrefix("cifar.yaml:8:5: error: row `baseline` cannot be resolved: protocol `cifar`"), "\(error)")
        }
    }

    func testReadmeKeyListMatchesConfigKeyAll() throws {
        let readme = try String(contentsOfFile: packageRoot + "/experiments/README.md", encoding: .utf8)
        let lines = readme.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix("<!-- generated from ConfigKey.all") }),
              let end = lines.firstIndex(where: { $0.hasPrefix("<!-- end of generated keys") }), start < end else {
            return XCTFail("experiments/README.md lost its generated-keys markers")
        }
        let documented = lines[(start + 1)..<end].joined(separator: "\n")
        XCTAssertEqual(documented, ExperimentFormat.keyTable(),
                       "experiments/README.md's key list differs from ConfigKey.all; replace it with:\n\(ExperimentFormat.keyTable())")
    }
}
