import Data
import Foundation
import SSL

/// The body of a worker process: trains one run, resuming from its checkpoint, and reports
/// events through `emit`. The checkpoint is written after every epoch and removed at the end.
public enum Worker {
    public static func run(_ spec: Job, emit: (WorkerEvent) -> Void) {
        do {
            let (train, test, augmentation) = try spec.config.loadData()
            let trainer = try Trainer(config: spec.config, seed: spec.seed, train: train, augmentation: augmentation)
            let monitor = Monitor(train: train, test: test, augmentation: augmentation)
            var previous: [EpochRecord] = []
            if FileManager.default.fileExists(atPath: spec.checkpointPath) {
                previous = try trainer.loadCheckpoint(from: spec.checkpointPath, runId: spec.id)
            }
            emit(.started(runId: spec.id, resumedEpochs: previous.count))
            var lastEmit = Date.distantPast
            let result = try trainer.run(monitor: monitor, previous: previous, progress: { p in
                let now = Date()
                guard now.timeIntervalSince(lastEmit) > 1 || p.step == p.stepsPerEpoch else { return }
                lastEmit = now
                emit(.progress(runId: spec.id, epoch: p.epoch + 1, epochs: p.epochs, step: p.step, steps: p.stepsPerEpoch,
                               loss: p.loss, secondsRemaining: p.secondsRemaining))
            }, epochEnd: { records in
                try trainer.saveCheckpoint(to: spec.checkpointPath, runId: spec.id, records: records)
                if let last = records.last { emit(.epoch(runId: spec.id, record: last)) }
            })
            let metrics = try monitor.finalMetrics(trainer.model, seed: spec.seed, diverged: result.status == .diverged)
            let baselines = spec.baselines ? try monitor.baselines(config: spec.config.model, seed: spec.seed) : nil
            emit(.finished(runId: spec.id, status: result.status, metrics: metrics, baselines: baselines))
            try? FileManager.default.removeItem(atPath: spec.checkpointPath)
        } catch {
            emit(.failed(runId: spec.id, message: "\(error)"))
        }
    }
}
