import Foundation

/// CIFAR-10, binary version: `data_batch_1..5.bin` and `test_batch.bin`, each record one label
/// byte then 3×32×32 pixel bytes (R, G, B planes), 10,000 records per file.
public enum CIFAR10 {
    public static let recordSize = 1 + 3 * 32 * 32
    static let fix = "download the binary version from https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, unpack it, and pass the directory holding data_batch_1.bin … test_batch.bin"

    /// Reads the given files of `directory` into one set (pixels scaled to [0, 1]).
    public static func load(directory: String, files: [String]) throws -> ImageSet {
        var images: [Float] = [], labels: [Int] = []
        for name in files {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DataError.missingFile(path: path, fix: fix)
            }
            guard !data.isEmpty, data.count % recordSize == 0 else {
                throw DataError.corrupt(path: path, reason: "size \(data.count) bytes is not a multiple of the \(recordSize)-byte record (truncated?)", fix: fix)
            }
            let bytes = [UInt8](data)
            images.reserveCapacity(images.count + bytes.count)
            for r in 0..<(bytes.count / recordSize) {
                let o = r * recordSize
                guard bytes[o] < 10 else {
                    throw DataError.corrupt(path: path, reason: "record \(r) has label \(bytes[o]), expected 0…9", fix: fix)
                }
                labels.append(Int(bytes[o]))
                for i in 1..<recordSize { images.append(Float(bytes[o + i]) / 255) }
            }
        }
        return ImageSet(images: images, labels: labels, channels: 3, height: 32, width: 32)
    }

    public static func load(directory: String) throws -> (train: ImageSet, test: ImageSet) {
        (try load(directory: directory, files: (1...5).map { "data_batch_\($0).bin" }),
         try load(directory: directory, files: ["test_batch.bin"]))
    }
}
