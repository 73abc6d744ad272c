import Foundation
import Registry
import Scheduler
import SSL
import XCTest

/// Rows that would fail in a worker are refused when the jobs are planned (issue 17 item 2).
final class PlanTests: XCTestCase {
    func table(overrides: String) throws -> ExperimentTable {
        try ExperimentTable.parse(yaml: """
            id: t
            title: T
            paper: P
            source: Fig 1
            protocol: mini
            metrics: [knn]
            rows:
              - name: big
                overrides: \(overrides)
                paper: 1
                paper_source: x
            """, file: "t.yaml")
    }

    func testARowOverTheMachinesMemoryIsRefusedAtTheRowWithTheEstimate() throws {
        let t = try table(overrides: "{optim.batch: 60000, model.widths: [512, 512, 512, 512]}")
        var notes: [String] = []
        XCTAssertThrowsError(try Plan.jobs(for: t, checkpointDirectory: "/tmp", memoryLimit: 8 * 1_073_741_824, notes: &notes)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("t.yaml:8:5: error: row `big` cannot be resolved: memory: the run would need about "), text)
            XCTAssertTrue(text.contains("more than this machine's 8192 MiB"), text)
        }
    }

    func testCommandLineEpochsBelowTheWarmupAreRefused() throws {
        let t = try table(overrides: "{optim.warmup_epochs: 5}")
        var notes: [String] = []
        XCTAssertThrowsError(try Plan.jobs(for: t, epochs: 2, checkpointDirectory: "/tmp", notes: &notes)) { error in
            XCTAssertEqual("\(error)", "t.yaml:8:5: error: row `big` cannot be resolved: optim.warmup_epochs: is 5, more than the "
                           + "run's 2 epochs; use at most 2 (with the command line's --epochs / --protocol)")
        }
    }

    func testAnotherProtocolStillCutsTheBatchToItsData() throws {
        let t = try table(overrides: "{optim.batch: 4096}")
        var notes: [String] = []
        let jobs = try Plan.jobs(for: t, protocolName: "smoke", checkpointDirectory: "/tmp", notes: &notes)
        XCTAssertEqual(jobs.first?.config.batch, 2048)
        XCTAssertEqual(notes.count, 1)
    }

    func testJobsRunSeedByPassOverEveryRowAndTable() throws {
        let a = try ExperimentTable.parse(yaml: """
            id: a
            title: A
            paper: P
            source: Fig 1
            protocol: smoke
            metrics: [knn]
            rows:
              - {name: r1, overrides: {}, paper: 1, paper_source: x}
              - {name: r2, overrides: {model.projector_dim: 32}, paper: 1, paper_source: x}
            """, file: "a.yaml")
        var notes: [String] = []
        let jobs = try Plan.jobs(for: a, seeds: 3, checkpointDirectory: "/tmp", notes: &notes)
        XCTAssertEqual(jobs.map { "\($0.rowName)/\($0.seed)" }, ["r1/0", "r1/1", "r1/2", "r2/0", "r2/1", "r2/2"])
        XCTAssertEqual(Plan.seedMajor(jobs).map { "\($0.rowName)/\($0.seed)" }, ["r1/0", "r2/0", "r1/1", "r2/1", "r1/2", "r2/2"])
    }

    func testAWorkerThatCrashesIsNotAdvertisedAsResumable() {
        XCTAssertTrue(WorkerExit.message(.signal(SIGKILL)).contains("rerun to resume"))
        XCTAssertFalse(WorkerExit.message(.signal(SIGTRAP)).contains("rerun to resume"))
        XCTAssertTrue(WorkerExit.message(.signal(SIGTRAP)).contains("rerunning will not help"))
        XCTAssertTrue(WorkerExit.message(.status(1)).contains("rerunning will not help"))
    }
}
