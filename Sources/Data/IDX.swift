import CZlib
import Foundation

/// Errors reading datasets; each names the file and what provides it.
public enum DataError: Error, CustomStringConvertible {
    case missingFile(path: String, fix: String)
    case corrupt(path: String, reason: String, fix: String)

    public var description: String {
        switch self {
        case let .missingFile(path, fix): return "dataset file not found: \(path)\n  fix: \(fix)"
        case let .corrupt(path, reason, fix): return "dataset file \(path) is unreadable: \(reason)\n  fix: \(fix)"
        }
    }
}

/// IDX files (LeCun's MNIST format), plain or gzip-compressed.
public enum IDX {
    /// Reads the whole file, decompressing gzip transparently (zlib's gzread passes plain files through).
    static func readAll(_ path: String, fix: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError.missingFile(path: path, fix: fix) }
        guard let f = gzopen(path, "rb") else { throw DataError.corrupt(path: path, reason: "cannot open", fix: fix) }
        defer { gzclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(f, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw DataError.corrupt(path: path, reason: "gzip stream is damaged", fix: fix) }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        return out
    }

    /// Parses an IDX unsigned-byte tensor: returns its dimensions and the payload.
    static func parse(_ bytes: [UInt8], path: String, expectedRank: Int, fix: String) throws -> (dims: [Int], payload: ArraySlice<UInt8>) {
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw DataError.corrupt(path: path, reason: "not an IDX file (bad magic number)", fix: fix)
        }
        guard bytes[2] == 0x08 else {
            throw DataError.corrupt(path: path, reason: "element type 0x\(String(bytes[2], radix: 16)) is not unsigned byte", fix: fix)
        }
        let rank = Int(bytes[3])
        guard rank == expectedRank, bytes.count >= 4 + 4 * rank else {
            throw DataError.corrupt(path: path, reason: "rank \(rank), expected \(expectedRank)", fix: fix)
        }
        var dims: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            dims.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let start = 4 + 4 * rank, need = dims.reduce(1, *)
        guard bytes.count - start >= need else {
            throw DataError.corrupt(path: path, reason: "truncated: \(bytes.count - start) of \(need) data bytes", fix: fix)
        }
        return (dims, bytes[start..<start + need])
    }

    /// An image file and its label file as an `ImageSet` with pixels scaled to [0, 1].
    public static func load(images: String, labels: String, fix: String) throws -> ImageSet {
        let (idims, pixels) = try parse(try readAll(images, fix: fix), path: images, expectedRank: 3, fix: fix)
        let (ldims, labelBytes) = try parse(try readAll(labels, fix: fix), path: labels, expectedRank: 1, fix: fix)
        guard idims[0] == ldims[0] else {
            throw DataError.corrupt(path: labels, reason: "\(ldims[0]) labels for \(idims[0]) images in \(images)", fix: fix)
        }
        return ImageSet(images: pixels.map { Float($0) / 255 }, labels: labelBytes.map { Int($0) },
                        channels: 1, height: idims[1], width: idims[2])
    }
}

/// Fashion-MNIST from the Debian package `dataset-fashion-mnist`.
public enum FashionMNIST {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let mean: Float = 0.2860, std: Float = 0.3530

    static let fix = "install it with `apt-get install dataset-fashion-mnist` (or `make deps`), or pass the directory holding the four *-ubyte.gz files"
    static let files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    /// Throws the loader's "file not found" error if any of the four files is missing, without reading them.
    public static func checkPresent(directory: String = defaultDirectory) throws {
        for name in files {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { throw DataError.missingFile(path: path, fix: fix) }
        }
    }

    public static func load(directory: String = defaultDirectory) throws -> (train: ImageSet, test: ImageSet) {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let train = try IDX.load(images: path("train-images-idx3-ubyte.gz"), labels: path("train-labels-idx1-ubyte.gz"), fix: fix)
        let test = try IDX.load(images: path("t10k-images-idx3-ubyte.gz"), labels: path("t10k-labels-idx1-ubyte.gz"), fix: fix)
        return (train, test)
    }
}
