import CZlib
import Foundation

/// Errors reading datasets; each names the file and what provides it.
public enum DataError: Error, CustomStringConvertible {
    case missingFile(path: String, fix: String)
    case corrupt(path: String, reason: String, fix: String)

    public var description: String {
        switch self {
        case let .missingFile(path, fix): return "dataset file not found: \(path)\n  fix: \(fix)"
        case let .corrupt(path, reason, fix): return "dataset file \(path) is not usable: \(reason)\n  fix: \(fix)"
        }
    }
}

/// What a loader needs to know about the dataset a pair of IDX files should hold: its name and
/// number of classes to check the labels, and what to tell the user when a file is missing or bad.
public struct IDXDataset: Sendable {
    public var name: String
    public var classes: Int
    /// Advice when a file is missing.
    public var installFix: String
    /// Advice when a file is damaged or holds something else.
    public var repairFix: String

    public init(name: String, classes: Int, installFix: String, repairFix: String) {
        self.name = name; self.classes = classes; self.installFix = installFix; self.repairFix = repairFix
    }
}

/// IDX files (LeCun's MNIST format), plain or gzip-compressed.
public enum IDX {
    /// Reads an IDX unsigned-byte tensor of rank `rank`, decompressing gzip transparently (zlib's
    /// gzread passes plain files through). The header is checked before the payload is read, and
    /// the payload grows only with the bytes actually in the file, so a header declaring huge
    /// dimensions costs nothing; reading stops at the declared size.
    static func read(_ path: String, rank expectedRank: Int, dataset: IDXDataset) throws -> (dims: [Int], payload: [UInt8]) {
        func corrupt(_ reason: String) -> DataError { .corrupt(path: path, reason: reason, fix: dataset.repairFix) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError.missingFile(path: path, fix: dataset.installFix)
        }
        guard !isDirectory.boolValue else { throw corrupt("it is a directory, not an IDX file") }
        guard let f = gzopen(path, "rb") else { throw corrupt("cannot open") }
        defer { gzclose(f) }

        /// Up to `count` bytes; fewer only at the end of the data.
        func bytes(_ count: Int) throws -> [UInt8] {
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: min(count, 1 << 20))
            while out.count < count {
                let want = min(chunk.count, count - out.count)
                let n = chunk.withUnsafeMutableBytes { gzread(f, $0.baseAddress, UInt32(want)) }
                if n < 0 { throw corrupt("gzip stream is damaged") }
                if n == 0 { break }
                out.append(contentsOf: chunk[0..<Int(n)])
            }
            var status: Int32 = Z_OK
            _ = gzerror(f, &status)
            if status == Z_BUF_ERROR { throw corrupt("gzip stream ends early (the file is truncated)") }
            return out
        }

        let magic = try bytes(4)
        guard magic.count == 4, magic[0] == 0, magic[1] == 0 else {
            throw corrupt("not an IDX file (bad magic number)")
        }
        guard magic[2] == 0x08 else {
            throw corrupt("element type 0x\(String(magic[2], radix: 16)) is not unsigned byte")
        }
        let rank = Int(magic[3])
        guard rank == expectedRank else { throw corrupt("rank \(rank), expected \(expectedRank)") }
        let header = try bytes(4 * rank)
        guard header.count == 4 * rank else {
            throw corrupt("truncated header: \(header.count) of \(4 * rank) dimension bytes")
        }
        let dims = (0..<rank).map { d in
            header[4 * d..<4 * d + 4].reduce(0) { $0 << 8 | Int($1) }
        }
        let shape = dims.map(String.init).joined(separator: "×")
        var need = 1
        for d in dims {
            let (product, overflow) = need.multipliedReportingOverflow(by: d)
            guard !overflow else { throw corrupt("header declares dimensions \(shape), more data than any file holds") }
            need = product
        }
        let payload = try bytes(need)
        guard payload.count == need else {
            throw corrupt("truncated: \(payload.count) of \(need) data bytes (dimensions \(shape))")
        }
        guard try bytes(1).isEmpty else {
            throw corrupt("more data than the header's dimensions \(shape) declare; the header is damaged")
        }
        return (dims, payload)
    }

    /// An image file and its label file as an `ImageSet` with pixels scaled to [0, 1].
    public static func load(images: String, labels: String, dataset: IDXDataset) throws -> ImageSet {
        func unusable(_ path: String, _ reason: String) -> DataError { .corrupt(path: path, reason: reason, fix: dataset.repairFix) }
        let (idims, pixels) = try read(images, rank: 3, dataset: dataset)
        guard idims.allSatisfy({ $0 > 0 }) else {
            throw unusable(images, "header declares an empty image set (dimensions \(idims.map(String.init).joined(separator: "×")))")
        }
        let (ldims, labelBytes) = try read(labels, rank: 1, dataset: dataset)
        guard idims[0] == ldims[0] else {
            throw unusable(labels, "\(ldims[0]) labels for \(idims[0]) images in \(images); the two files are not a matching pair")
        }
        if let i = labelBytes.firstIndex(where: { Int($0) >= dataset.classes }) {
            throw unusable(labels, "label \(labelBytes[i]) at index \(i) is outside 0..<\(dataset.classes); "
                               + "the file is not \(dataset.name) labels or is corrupt")
        }
        return ImageSet(images: pixels.map { Float($0) / 255 }, labels: labelBytes.map { Int($0) },
                        channels: 1, height: idims[1], width: idims[2])
    }
}

/// Fashion-MNIST from the Debian package `dataset-fashion-mnist`.
public enum FashionMNIST {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let mean: Float = 0.2860, std: Float = 0.3530
    /// Images in the training file (the Debian package's, as PROTOCOLS.md `mini` states).
    public static let trainCount = 60_000

    static let dataset = IDXDataset(
        name: "Fashion-MNIST", classes: 10,
        installFix: "install it with `apt-get install dataset-fashion-mnist` (or `make deps`), or pass the directory holding the four *-ubyte.gz files",
        repairFix: "reinstall dataset-fashion-mnist (`apt-get install --reinstall dataset-fashion-mnist`) or point --data at the directory holding the real files")
    static let files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    /// Throws the loader's "file not found" error if any of the four files is missing, without reading them.
    public static func checkPresent(directory: String = defaultDirectory) throws {
        for name in files {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { throw DataError.missingFile(path: path, fix: dataset.installFix) }
        }
    }

    public static func load(directory: String = defaultDirectory) throws -> (train: ImageSet, test: ImageSet) {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let train = try IDX.load(images: path("train-images-idx3-ubyte.gz"), labels: path("train-labels-idx1-ubyte.gz"), dataset: dataset)
        let test = try IDX.load(images: path("t10k-images-idx3-ubyte.gz"), labels: path("t10k-labels-idx1-ubyte.gz"), dataset: dataset)
        return (train, test)
    }
}
