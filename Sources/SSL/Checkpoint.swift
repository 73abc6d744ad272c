import Foundation
import NN
import Tensors

/// A run's state at the end of an epoch: enough to continue bit-identically (data order and
/// augmentations are derived from (seed, epoch), so no generator state is needed).
///
/// File layout: 8-byte magic `ABLCKPT1`, UInt64 little-endian length of a JSON header, the header
/// (tensor names, shapes and offsets, optimizer step, epoch records), then float32 little-endian
/// data. Written to `path.tmp` then renamed, so a crash never leaves a half-written checkpoint.
public struct Checkpoint: Codable {
    public var runId: String
    public var epochsDone: Int
    public var optimizerStep: Int
    public var records: [EpochRecord]
    var tensors: [Entry]

    struct Entry: Codable { var name: String; var shape: [Int]; var offset: Int }

    static let magic = Array("ABLCKPT1".utf8)
}

public enum CheckpointError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "checkpoint \(path) cannot be used (\(reason)); delete it to restart the run from epoch 0"
        }
    }
}

extension Trainer {
    /// Every tensor the checkpoint holds, in a fixed order: parameters, BN buffers, momentum buffers.
    func checkpointTensors() -> [(String, Tensor)] {
        var out = model.namedParameters.map { ("param." + $0.0, $0.1) } + model.namedBuffers.map { ("buffer." + $0.0, $0.1) }
        for (gi, group) in optimizer.groups.enumerated() {
            for (pi, _) in group.parameters.enumerated() {
                if let b = optimizer.buffers[gi][pi] { out.append(("momentum.\(group.name).\(pi)", b)) }
            }
        }
        return out
    }

    public func saveCheckpoint(to path: String, runId: String, records: [EpochRecord]) throws {
        let tensors = checkpointTensors()
        var entries: [Checkpoint.Entry] = []
        var offset = 0
        for (name, t) in tensors { entries.append(.init(name: name, shape: t.shape, offset: offset)); offset += t.count }
        let header = Checkpoint(runId: runId, epochsDone: records.count, optimizerStep: optimizer.step,
                                records: records, tensors: entries)
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let json = try encoder.encode(header)
        var data = Data(Checkpoint.magic)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, t) in tensors { data.append(UnsafeBufferPointer(start: t.pointer, count: t.count)) }
        let tmp = path + ".tmp"
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: tmp))
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: tmp, toPath: path)
    }

    /// Restores parameters, buffers and optimizer state; returns the epoch records so far.
    public func loadCheckpoint(from path: String, runId: String) throws -> [EpochRecord] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError.unreadable(path: path, reason: "cannot read the file")
        }
        guard data.count >= 16, Array(data.prefix(8)) == Checkpoint.magic else {
            throw CheckpointError.unreadable(path: path, reason: "not an ablate checkpoint")
        }
        let rawLength = data.subdata(in: 8..<16).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard rawLength > 0, rawLength <= UInt64(data.count - 16), let length = Int(exactly: rawLength) else {
            throw CheckpointError.unreadable(path: path, reason: "its header length \(rawLength) does not fit the file's \(data.count) bytes (truncated or overwritten)")
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let header: Checkpoint
        do {
            header = try decoder.decode(Checkpoint.self, from: data.subdata(in: 16..<(16 + length)))
        } catch {
            throw CheckpointError.unreadable(path: path, reason: "its header is not valid JSON of a checkpoint (\(error))")
        }
        guard header.runId == runId else {
            throw CheckpointError.unreadable(path: path, reason: "it belongs to run \(header.runId), not \(runId)")
        }
        guard header.records.count <= config.epochs, header.optimizerStep == header.records.count * stepsPerEpoch else {
            throw CheckpointError.unreadable(path: path, reason: "it holds \(header.records.count) epochs and \(header.optimizerStep) steps, which a run of \(config.epochs) epochs of \(stepsPerEpoch) steps cannot have reached")
        }
        let base = 16 + length
        let byName = Dictionary(header.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let floats = (data.count - base) / 4
        func read(_ name: String, into t: Tensor) throws {
            guard let e = byName[name], e.shape == t.shape, e.offset >= 0, e.offset <= floats - t.count else {
                throw CheckpointError.unreadable(path: path, reason: "tensor \(name) is missing or has another shape")
            }
            data.withUnsafeBytes { raw in
                let src = raw.baseAddress!.advanced(by: base + e.offset * 4)   // NOTE: bounds checked above
                memcpy(t.pointer, src, t.count * 4)
            }
        }
        for (name, t) in model.namedParameters { try read("param." + name, into: t) }
        for (name, t) in model.namedBuffers { try read("buffer." + name, into: t) }
        var buffers: [[Tensor?]] = []
        for group in optimizer.groups {
            var row: [Tensor?] = []
            for (pi, p) in group.parameters.enumerated() {
                let name = "momentum.\(group.name).\(pi)"
                if byName[name] != nil {
                    let b = Tensor.zeros(p.shape)
                    try read(name, into: b)
                    row.append(b)
                } else {
                    row.append(nil)
                }
            }
            buffers.append(row)
        }
        optimizer.restore(step: header.optimizerStep, buffers: buffers)
        return header.records
    }
}
