import Data
import Foundation
import SSL

/// The body of a worker process: trains one run, resuming from its checkpoint, and reports
/// events through `emit`. The checkpoint is written after every epoch and removed at the end.
public enum Worker {
    public static func run(_ spec: Job, emit: (WorkerEvent) -> Void) {
        do {
            let (train, test, augmentation) = try spec.config.loadData()
            var trainer = try Trainer(config: spec.config, seed: spec.seed, train: train, augmentation: augmentation)
            let monitor = Monitor(train: train, test: test, augmentation: augmentation)
            var previous: [EpochRecord] = []
            if FileManager.default.fileExists(atPath: spec.checkpointPath) {
                do {
                    previous = try trainer.loadCheckpoint(from: spec.checkpointPath, runId: spec.id)
                } catch let error as CheckpointError {
                    // A checkpoint that cannot be used costs the epochs it held, never the run.
                    warn("warning: \(error); starting run \(spec.rowName) seed \(spec.seed) over from epoch 0")
                    try? FileManager.default.removeItem(atPath: spec.checkpointPath)
                    trainer = try Trainer(config: spec.config, seed: spec.seed, train: train, augmentation: augmentation)
                }
            }
            emit(.started(runId: spec.id, resumedEpochs: previous.count))
            // The checkpoint's epochs again, so the database holds every epoch of a resumed run.
            for record in previous { emit(.epoch(runId: spec.id, record: record)) }
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
            var metrics = try monitor.finalMetrics(trainer.model, seed: spec.seed, diverged: result.status == .diverged,
                                                   extraGradient: spec.config.measuresExtraGradient)
            metrics.peakRSSMiB = Double(peakRSSKiB()) / 1024
            metrics.lastEpochLossStd = result.epochs.last?.lossStd
            if !result.epochs.isEmpty { metrics.meanEpochSeconds = result.epochs.map(\.seconds).reduce(0, +) / Double(result.epochs.count) }
            let baselines = spec.baselines ? try monitor.baselines(config: spec.config, seed: spec.seed) : nil
            emit(.finished(runId: spec.id, status: result.status, metrics: metrics, baselines: baselines))
            try? FileManager.default.removeItem(atPath: spec.checkpointPath)
        } catch {
            emit(.failed(runId: spec.id, message: "\(error)"))
        }
    }
}

/// A line on standard error (the scheduler's terminal; events go to standard output).
func warn(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
