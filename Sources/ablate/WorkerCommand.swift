import ArgumentParser
import Foundation
import Scheduler
import Tensors

/// Internal: one run in its own process, spec on stdin, events on stdout (used by `ablate run`).
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run one scheduled run (internal; started by `ablate run`).", shouldDisplay: false)

    func run() throws {
        _ = configureThreads()
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let spec: Job
        do { spec = try JSONDecoder().decode(Job.self, from: input) } catch {
            throw ValidationError("worker: the run spec on standard input is not valid JSON (\(error)); this command is started by `ablate run`")
        }
        Worker.run(spec) { event in
            print(event.line())
            fflush(stdout)
        }
    }
}
