import Foundation
import Registry
import Report
import SSL
import Scheduler
import Store
import XCTest

final class ReportTests: XCTestCase {
    let table = TableDescription(
        id: "demo", title: "SimSiam ablations, demo", paper: "Chen & He, CVPR 2021", source: "Fig 2, Tables 1–3",
        protocolName: "smoke", epochs: 3, seeds: [0, 1],
        rows: [
            RowDescription(name: "baseline", paperValue: "67.7", paperSource: "P1 Fig 2", claims: [.doesNotCollapse]),
            RowDescription(name: "no stop-grad", paperValue: "0.1", paperSource: "P1 §4.1", claims: [.collapses]),
            RowDescription(name: "no predictor", paperValue: "0.1", paperSource: "P1 Table 1a", claims: [.collapses]),
            RowDescription(name: "wider", paperValue: "not found", paperSource: "", claims: [.within(points: 1, of: "baseline")]),
            RowDescription(name: "high lr", paperValue: "unstable", paperSource: "P1 Table 3d", claims: [.diverges]),
            RowDescription(name: "batch 64", paperValue: "66.1", paperSource: "P1 Table 2", claims: [.below("baseline")]),
            RowDescription(name: "longer", paperValue: "68.1", paperSource: "P1 Table 2", claims: [.above("baseline")]),
        ])

    /// A fixed in-memory database: finished, collapsed, mixed, failed, diverged, running and
    /// missing runs, an older run of the baseline from a previous protocol version, and baselines.
    func makeStore() throws -> Store {
        let store = try Store.inMemory()
        let clock = TickingClock()
        store.now = clock.next
        let dirty = Provenance(gitRevision: "def5678", gitDirty: true, host: "h", pid: 2)

        func finished(_ row: String, _ seed: UInt64, version: String = "v1", provenance: Provenance = here,
                      edit: @escaping (inout TrainingConfig) -> Void, _ final: FinalMetrics) throws {
            let s = try spec(table: "demo", row: row, seed: seed, version: version, edit: edit)
            let l = try lease(try store.claimRun(s, provenance: provenance, staleAfter: 300))
            try store.recordEpoch(l, try epochRecord(epoch: 1, loss: -0.5, knn: final.knn - 5))
            try store.finishRun(l, status: .finished, final: final)
        }
        let base: (inout TrainingConfig) -> Void = { _ in }
        let noStopGrad: (inout TrainingConfig) -> Void = { $0.model.stopGradient = false }
        let noPredictor: (inout TrainingConfig) -> Void = { $0.model.predictorHidden = nil }
        let wider: (inout TrainingConfig) -> Void = { $0.model.projectorDim = 128 }
        let highLR: (inout TrainingConfig) -> Void = { $0.baseLR = 5 }
        let longer: (inout TrainingConfig) -> Void = { $0.epochs = 6 }

        try finished("baseline", 0, version: "v0", provenance: Provenance(gitRevision: "0000000", gitDirty: false, host: "h", pid: 1),
                     edit: base, try finalMetrics(knn: 50, zStd: 0.9, mO: 0.2, mR: 0.9))
        try finished("baseline", 0, edit: base, try finalMetrics(knn: 70, linear: 72.5, zStd: 0.90, mO: 0.20, mR: 0.95))
        try finished("baseline", 1, edit: base, try finalMetrics(knn: 71, linear: 73.5, zStd: 0.92, mO: 0.22, mR: 0.97))
        try finished("no stop-grad", 0, edit: noStopGrad, try finalMetrics(knn: 10, zStd: 0.01, mO: 0.98, mR: 0.02))
        try finished("no stop-grad", 1, edit: noStopGrad, try finalMetrics(knn: 10, zStd: 0.03, mO: 1.0, mR: 0.0))
        try finished("no predictor", 0, edit: noPredictor, try finalMetrics(knn: 12, zStd: 0.05, mO: 0.9, mR: 0.1))
        try finished("no predictor", 1, edit: noPredictor, try finalMetrics(knn: 40, zStd: 0.5, mO: 0.3, mR: 0.9))
        try finished("wider", 0, provenance: dirty, edit: wider, try finalMetrics(knn: 70.8, linear: 73, zStd: 0.93, mO: 0.21, mR: 0.96))
        let failed = try lease(try store.claimRun(try spec(table: "demo", row: "wider", seed: 1, edit: wider), provenance: here, staleAfter: 300))
        try store.failRun(failed, error: "out of memory\nwhile allocating 2 GB")
        for seed: UInt64 in [0, 1] {
            let l = try lease(try store.claimRun(try spec(table: "demo", row: "high lr", seed: seed, edit: highLR), provenance: here, staleAfter: 300))
            try store.recordEpoch(l, try epochRecord(epoch: 1, loss: .nan))
            try store.finishRun(l, status: .diverged, final: nil)
        }
        try finished("longer", 0, edit: longer, try finalMetrics(knn: 75, linear: 76, zStd: 0.9, mO: 0.2, mR: 0.95))
        let running = try lease(try store.claimRun(try spec(table: "demo", row: "longer", seed: 1, edit: longer), provenance: here, staleAfter: 300))
        try store.recordEpoch(running, try epochRecord(epoch: 1, loss: -0.25))

        try store.putBaselines(try baselines(raw: 80, random: 40, rawLinear: 85, randomLinear: 50), protocolName: "smoke", seed: 0)
        try store.putBaselines(try baselines(raw: 80, random: 42, rawLinear: 86, randomLinear: 52), protocolName: "smoke", seed: 1)
        try store.putBaselines(try baselines(raw: 10, random: 10), protocolName: "smoke", seed: 7)   // not a seed of the table
        return store
    }

    func testMarkdownOfASmallTable() throws {
        let report = try TableReport(table: table, store: try makeStore())
        let expected = """
            ## SimSiam ablations, demo (`demo`)

            Chen & He, CVPR 2021 — Fig 2, Tables 1–3.

            | row | paper | kNN top-1 % | linear % | z_std·√d | m_o | m_r | verdict | claim | holds |
            |---|---|---|---|---|---|---|---|---|---|
            | baseline | 67.7 | 70.5 ± 0.7 (2 of 2 seeds) | 73.0 ± 0.7 | 0.910 ± 0.014 | 0.210 ± 0.014 | 0.960 ± 0.014 | trained | does not collapse | ✓ |
            | no stop-grad | 0.1 | 10.0 ± 0.0 (2 of 2 seeds) | — | 0.020 ± 0.014 | 0.990 ± 0.014 | 0.010 ± 0.014 | collapsed | collapses | ✓ |
            | no predictor | 0.1 | 26.0 ± 19.8 (2 of 2 seeds) | — | 0.275 ± 0.318 | 0.600 ± 0.424 | 0.500 ± 0.566 | 1× trained, 1× collapsed | collapses | ✗ |
            | wider | not found | 70.8 (1 of 2 seeds) | 73.0 | 0.930 | 0.210 | 0.960 | trained | within 1 pt of baseline | inconclusive (Δ 0.3, 95 % CI [-10.7, 11.3] straddles ±1; 1 seed, std of `baseline` assumed) |
            | high lr | unstable | — (0 of 2 seeds) | — | — | — | — | diverged | diverges | ✓ |
            | batch 64 | 66.1 | — (0 of 2 seeds) | — | — | — | — | — | below baseline | inconclusive (no finished seeds) |
            | longer | 68.1 | 75.0 (1 of 2 seeds) | 76.0 | 0.900 | 0.200 | 0.950 | trained | above baseline | inconclusive (Δ 4.5, 95 % CI [-6.5, 15.5] includes 0; 1 seed, std of `baseline` assumed) |

            - Protocol `smoke`, 3 epochs, seeds 0, 1; mean ± sample std over finished seeds.
            - Runs (14 planned): 8 finished, 2 diverged, 1 running, 1 failed, 2 missing.
            - Code: `abc1234`, `def5678` (dirty).
            - Baselines (kNN top-1 %): raw pixels 80.0 ± 0.0 (2 of 2 seeds), random-init backbone 41.0 ± 1.4 (2 of 2 seeds).
            - Baselines (linear %): raw pixels 85.5 ± 0.7 (2 of 2 seeds), random-init backbone 51.0 ± 1.4 (2 of 2 seeds).
            - Failed: `wider` seed 1: out of memory

            Where the paper values come from:

            - baseline: P1 Fig 2
            - no stop-grad: P1 §4.1
            - no predictor: P1 Table 1a
            - high lr: P1 Table 3d
            - batch 64: P1 Table 2
            - longer: P1 Table 2

            """
        let text = report.markdown()
        XCTAssertEqual(text, expected)
        if text != expected {
            for (a, b) in zip(text.split(separator: "\n"), expected.split(separator: "\n")) where a != b {
                XCTFail("first differing line:\n got: \(a)\nwant: \(b)")
                break
            }
        }
        XCTAssertEqual(try TableReport(table: table, store: try makeStore()).markdown(), text, "deterministic")
    }

    func testADescriptionIsBuiltFromARegistryTable() throws {
        let yaml = """
            id: demo
            title: From the registry
            paper: Chen & He, CVPR 2021
            source: Table 1
            protocol: smoke
            metrics: [knn]
            rows:
              - name: baseline
                overrides: {}
                paper: 68
                paper_source: P1 Table 1
                claim: does-not-collapse
              - name: no predictor
                overrides: {model.predictor: none}
                paper: collapse
                paper_source: P1 Table 1a
                claim: collapses
              - name: decayed
                overrides: {optim.predictor_lr: decayed}
                paper: 67.7
                paper_source: P1 Table 1
                claim: within 1 of baseline
              - name: high lr
                overrides: {optim.base_lr: 5}
                paper: NaN
                paper_source: p
                claim: below baseline
              - name: wide
                overrides: {}
                paper: unstable
                paper_source: p
              - name: long
                overrides: {}
                paper: not found
                paper_source: p
                claim: above decayed
            """
        let registryTable = try ExperimentTable.parse(yaml: yaml, file: "demo.yaml")
        let epochs = try registryTable.resolvedConfig(for: registryTable.rows[0]).epochs
        let description = TableDescription(registryTable, epochs: epochs, seeds: [0, 1])
        XCTAssertEqual(description, TableDescription(
            id: "demo", title: "From the registry", paper: "Chen & He, CVPR 2021", source: "Table 1", protocolName: "smoke",
            epochs: epochs, seeds: [0, 1],
            rows: [
                RowDescription(name: "baseline", paperValue: "68", paperSource: "P1 Table 1", claims: [.doesNotCollapse]),
                RowDescription(name: "no predictor", paperValue: "collapse", paperSource: "P1 Table 1a", claims: [.collapses]),
                RowDescription(name: "decayed", paperValue: "67.7", paperSource: "P1 Table 1", claims: [.within(points: 1, of: "baseline")]),
                RowDescription(name: "high lr", paperValue: "NaN", paperSource: "p", claims: [.below("baseline")]),
                RowDescription(name: "wide", paperValue: "unstable", paperSource: "p", claims: []),
                RowDescription(name: "long", paperValue: "not found", paperSource: "p", claims: [.above("decayed")]),
            ],
            metrics: [.knn]))
        XCTAssertEqual(TableDescription(registryTable, epochs: 1, seeds: [], protocolVersion: "v2").protocolVersion, "v2")
        let lines = try TableReport(table: description, store: try Store.inMemory()).markdown().split(separator: "\n")
        // The file's `metrics: [knn]` chooses the metric columns: kNN only.
        XCTAssertEqual(lines[2], "| row | paper | kNN top-1 % | verdict | claim | holds |")
        XCTAssertEqual(lines[4], "| baseline | 68 | — (0 of 2 seeds) | — | does not collapse | inconclusive (no runs) |")
        XCTAssertEqual(lines[6], "| decayed | 67.7 | — (0 of 2 seeds) | — | within 1 pt of baseline | inconclusive (no finished seeds) |")
        XCTAssertTrue(lines.contains("- decayed: P1 Table 1"), "the registry's paper_source is listed under the table")
    }

    func testTheTablesMetricsChooseTheColumnsKNNFirst() throws {
        var chosen = table
        chosen.metrics = [.mR, .covOffdiag, .knn]
        let lines = try TableReport(table: chosen, store: try makeStore()).markdown().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[2], "| row | paper | kNN top-1 % | m_r | cov off-diag | verdict | claim | holds |")
        XCTAssertEqual(lines[3], "|---|---|---|---|---|---|---|---|")
        XCTAssertEqual(lines[4], "| baseline | 67.7 | 70.5 ± 0.7 (2 of 2 seeds) | 0.960 ± 0.014 | 0.0100 ± 0.0000 | trained | does not collapse | ✓ |")
        XCTAssertEqual(lines[8], "| high lr | unstable | — (0 of 2 seeds) | — | — | diverged | diverges | ✓ |")
    }

    /// `target_share` is derived from each run's curves: Σ target s ÷ Σ epoch s over its epochs, in %,
    /// averaged over seeds; a row whose runs made no target passes shows "—".
    func testTargetShareIsDerivedFromTheEpochTimes() throws {
        let store = try Store.inMemory()
        for (seed, epochs) in [(UInt64(0), [(10.0, 2.0), (10.0, 4.0)]), (1, [(20.0, 2.0), (20.0, 6.0)])] {
            let l = try lease(try store.claimRun(try spec(table: "demo", row: "baseline", seed: seed, edit: { _ in }), provenance: here, staleAfter: 300))
            for (i, (seconds, target)) in epochs.enumerated() {
                try store.recordEpoch(l, try epochRecord(epoch: i + 1, loss: -0.5, seconds: seconds, targetSeconds: target))
            }
            try store.finishRun(l, status: .finished, final: try finalMetrics(knn: 70, zStd: 0.9, mO: 0.2, mR: 0.95))
        }
        let plain = try lease(try store.claimRun(try spec(table: "demo", row: "wider", seed: 0, edit: { $0.model.projectorDim = 128 }),
                                                 provenance: here, staleAfter: 300))
        try store.recordEpoch(plain, try epochRecord(epoch: 1, loss: -0.5, seconds: 10))
        try store.finishRun(plain, status: .finished, final: try finalMetrics(knn: 70, zStd: 0.9, mO: 0.2, mR: 0.95))
        var shared = table
        shared.rows = [table.rows[0], table.rows[3]]
        shared.metrics = [.knn, .targetShare]
        let lines = try TableReport(table: shared, store: store).markdown().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[2], "| row | paper | kNN top-1 % | targets % of time | verdict | claim | holds |")
        // Seed 0: 6 of 20 s = 30 %; seed 1: 8 of 40 s = 20 %.
        XCTAssertEqual(lines[4], "| baseline | 67.7 | 70.0 ± 0.0 (2 of 2 seeds) | 25 ± 7 | trained | does not collapse | ✓ |")
        XCTAssertTrue(lines[5].hasPrefix("| wider | not found | 70.0 (1 of 2 seeds) | — |"), lines[5])
    }

    /// Time and memory columns from runs of several builds carry a warning; other columns do not.
    func testCostColumnsFromSeveralBuildsSaySo() throws {
        var timed = table
        timed.metrics = [.epochSeconds, .peakRSSMiB]
        let text = try TableReport(table: timed, store: try makeStore()).markdown()
        XCTAssertTrue(text.contains("- s / epoch and peak RSS MiB come from runs of 2 builds, each beside whatever else ran on the "
                                    + "machine: they compare rows only roughly."), text)
        XCTAssertFalse(try TableReport(table: table, store: try makeStore()).markdown().contains("compare rows only roughly"))
        timed.rows = [table.rows[0]]   // the baseline's chosen runs: one build
        XCTAssertFalse(try TableReport(table: timed, store: try makeStore()).markdown().contains("compare rows only roughly"))
    }

    func testADecidedComparisonPrintsItsIntervalAndMixedSeedsSayWhatEachDid() throws {
        let store = try Store.inMemory()
        store.now = TickingClock().next
        let three = TableDescription(id: "three", title: "Three seeds", paper: "P", source: "S", protocolName: "smoke",
                                     epochs: 3, seeds: [0, 1, 2],
                                     rows: [RowDescription(name: "baseline", paperValue: "1", paperSource: "", claims: []),
                                            RowDescription(name: "lower", paperValue: "1", paperSource: "", claims: [.doesNotCollapse, .below("baseline")]),
                                            RowDescription(name: "mixed", paperValue: "1", paperSource: "", claims: [.collapses])])
        let rows: [(String, [FinalMetrics], (inout TrainingConfig) -> Void)] = [
            ("baseline", [try finalMetrics(knn: 70, zStd: 0.9, mO: 0.2, mR: 0.9), try finalMetrics(knn: 71, zStd: 0.9, mO: 0.2, mR: 0.9),
                          try finalMetrics(knn: 72, zStd: 0.9, mO: 0.2, mR: 0.9)], { _ in }),
            ("lower", [try finalMetrics(knn: 60, zStd: 0.9, mO: 0.2, mR: 0.9), try finalMetrics(knn: 62, zStd: 0.9, mO: 0.2, mR: 0.9),
                       try finalMetrics(knn: 61, zStd: 0.9, mO: 0.2, mR: 0.9)], { $0.epochs = 2 }),
            ("mixed", [try finalMetrics(knn: 10, zStd: 0.01, mO: 1, mR: 0), try finalMetrics(knn: 10, zStd: 0.02, mO: 1, mR: 0),
                       try finalMetrics(knn: 60, zStd: 0.9, mO: 0.2, mR: 0.9)], { $0.model.predictorHidden = nil }),
        ]
        for (name, finals, edit) in rows {
            for (seed, final) in finals.enumerated() {
                let l = try lease(try store.claimRun(try spec(table: "three", row: name, seed: UInt64(seed), edit: edit),
                                                     provenance: here, staleAfter: 300))
                try store.finishRun(l, status: .finished, final: final)
            }
        }
        let lines = try TableReport(table: three, store: store).markdown().split(separator: "\n").map(String.init)
        // Paired over seeds 0–2: differences -10, -9, -11, s_d 1, se 1/√3, ν 2, t 4.303: [-12.5, -7.5]
        // (Welch, ignoring the pairing, would give [-12.3, -7.7]).
        XCTAssertEqual(lines[5], "| lower | 1 | 61.0 ± 1.0 (3 of 3 seeds) | — | 0.900 ± 0.000 | 0.200 ± 0.000 | 0.900 ± 0.000 | trained "
                       + "| does not collapse; below baseline (Δ -10.0, 95 % CI [-12.5, -7.5]; paired over 3 seeds) | ✓; ✓ |")
        XCTAssertEqual(lines[6], "| mixed | 1 | 26.7 ± 28.9 (3 of 3 seeds) | — | 0.310 ± 0.511 | 0.733 ± 0.462 | 0.300 ± 0.520 "
                       + "| 2× collapsed, 1× trained | collapses | ✗ |")
    }

    func testAnEmptyTableSaysWhatIsMissing() throws {
        let empty = TableDescription(id: "none", title: "Nothing yet", paper: "P", source: "S", protocolName: "mini",
                                     epochs: 10, seeds: [0, 1, 2],
                                     rows: [RowDescription(name: "a", paperValue: "1.0", paperSource: "", claims: [])])
        let text = try TableReport(table: empty, store: try Store.inMemory()).markdown()
        XCTAssertEqual(text, """
            ## Nothing yet (`none`)

            P — S.

            | row | paper | kNN top-1 % | linear % | z_std·√d | m_o | m_r | verdict | claim | holds |
            |---|---|---|---|---|---|---|---|---|---|
            | a | 1.0 | — (0 of 3 seeds) | — | — | — | — | — | — | — |

            - Protocol `mini`, 10 epochs, seeds 0, 1, 2; mean ± sample std over finished seeds.
            - Runs (3 planned): 3 missing.
            - Code: —.
            - Baselines (kNN top-1 %): raw pixels — (0 of 3 seeds), random-init backbone — (0 of 3 seeds).
            - Baselines (linear %): raw pixels — (0 of 3 seeds), random-init backbone — (0 of 3 seeds).

            """)
    }

    func testCSVExportIsLongAndKeepsNaNAsKind() throws {
        let report = try TableReport(table: table, store: try makeStore())
        let lines = try report.export(format: .csv).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines.first, "table_id,row_name,seed,run_id,protocol,protocol_version,status,verdict,git_revision,git_dirty,"
                       + "started_at,resumed_at,attempts,key,step,value,kind")
        XCTAssertEqual(lines.last, "")
        let highLR = lines.filter { $0.hasPrefix("demo,high lr,0,") }
        XCTAssertEqual(highLR.count, 2)   // loss and epoch_seconds of epoch 1
        XCTAssertTrue(highLR.contains { $0.contains(",diverged,diverged,abc1234,0,20") && $0.hasSuffix("Z,,1,loss,1,,nan") }, "\(highLR)")
        // The failed run has no metrics: one line with empty metric fields.
        XCTAssertTrue(lines.contains { $0.hasPrefix("demo,wider,1,") && $0.contains(",failed,,abc1234,0,") && $0.hasSuffix("Z,,1,,,,") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("demo,baseline,0,") && $0.hasSuffix(",final.knn,0,70.0,finite") })
        // Older runs are exported too (the markdown shows only the newest).
        XCTAssertTrue(lines.contains { $0.contains(",v0,finished,trained,0000000,0,") && $0.hasSuffix(",1,final.knn,0,50.0,finite") })
    }

    func testJSONExportHasEveryRunWithNullForNonFiniteValues() throws {
        let report = try TableReport(table: table, store: try makeStore())
        let text = try report.export(format: .json)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(root["table"] as? String, "demo")
        let runs = try XCTUnwrap(root["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.count, 13)   // 12 chosen + the older baseline run
        XCTAssertEqual(runs.map { $0["row"] as? String }.first, "baseline")
        let diverged = try XCTUnwrap(runs.first { $0["row"] as? String == "high lr" })
        let loss = try XCTUnwrap((diverged["metrics"] as? [[String: Any]])?.first { $0["key"] as? String == "loss" })
        XCTAssertTrue(loss["value"] is NSNull)
        XCTAssertEqual(loss["kind"] as? String, "nan")
        XCTAssertTrue(diverged["error"] is NSNull, "absent values are explicit nulls")
        XCTAssertEqual(diverged["attempts"] as? Int, 1)
        XCTAssertTrue(diverged["resumed_at"] is NSNull, "never resumed")
        XCTAssertEqual((diverged["params"] as? [String: String])?["optim.base_lr"], "5.0")
        XCTAssertEqual(try report.export(format: .json), text, "deterministic")
    }

    func testExportsShowTheFirstStartTheLastResumeAndTheAttempts() throws {
        let store = try Store.inMemory()
        store.now = { Date(timeIntervalSince1970: 1_700_000_000) }
        let s = try spec(table: "demo", row: "baseline")
        try store.failRun(try lease(try store.claimRun(s, provenance: here, staleAfter: 300)), error: "interrupted")
        store.now = { Date(timeIntervalSince1970: 1_700_000_100.5) }
        let l = try lease(try store.claimRun(s, provenance: here, staleAfter: 300))
        try store.finishRun(l, status: .finished, final: try finalMetrics(knn: 70, zStd: 0.9, mO: 0.2, mR: 0.95))
        let report = try TableReport(table: table, store: store)

        let csv = try report.export(format: .csv).split(separator: "\n").map(String.init)
        XCTAssertTrue(csv.contains { $0.hasSuffix(",2023-11-14T22:13:20.000Z,2023-11-14T22:15:00.500Z,2,final.knn,0,70.0,finite") }, "\(csv)")
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try report.export(format: .json).utf8)) as? [String: Any])
        let run = try XCTUnwrap((root["runs"] as? [[String: Any]])?.first)
        XCTAssertEqual(run["started_at"] as? String, "2023-11-14T22:13:20.000Z")
        XCTAssertEqual(run["resumed_at"] as? String, "2023-11-14T22:15:00.500Z")
        XCTAssertEqual(run["attempts"] as? Int, 2)
    }
}
