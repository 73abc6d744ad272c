import ArgumentParser
import Foundation
import Scheduler
import Tensors

/// Internal: one run in its own process, spec on stdin, events on stdout (used by `ablate run`);
/// as a Slurm array task, spec and events are files in the spool (`--spec`, `--events`).
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run one scheduled run (internal; started by `ablate run`).", shouldDisplay: false)

    @Option(help: "Read the run spec from this file instead of standard input.")
    var spec: String?

    @Option(help: "Write the events to this file (replacing it) instead of standard output.")
    var events: String?

    func run() throws {
        _ = configureThreads()
        let source = spec ?? "standard input"
        let input: Data
        if let spec {
            guard let data = FileManager.default.contents(atPath: spec) else {
                throw ValidationError("worker: cannot read the run spec \(spec); is the spool directory shared with this node?")
            }
            input = data
        } else {
            input = FileHandle.standardInput.readDataToEndOfFile()
        }
        let job: Job
        do { job = try JSONDecoder().decode(Job.self, from: input) } catch {
            throw ValidationError("worker: the run spec on \(source) is not valid JSON (\(error)); this command is started by `ablate run`")
        }
        var out = FileHandle.standardOutput
        if let events {
            guard FileManager.default.createFile(atPath: events, contents: nil), let fh = FileHandle(forWritingAtPath: events) else {
                throw ValidationError("worker: cannot write the event file \(events); is the spool directory writable from this node?")
            }
            out = fh
        }
        Worker.run(job) { event in
            out.write(Data((event.line() + "\n").utf8))
        }
        try? out.synchronize()
    }
}
