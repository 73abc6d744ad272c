import CZlib
import Data
import Foundation
import Tensors
import XCTest

final class LoaderTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "ablate-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// An IDX unsigned-byte file: magic 0 0 8 rank, big-endian dims, payload.
    func idx(_ dims: [Int], _ payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { b += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return b + payload
    }

    func writeGzip(_ name: String, _ bytes: [UInt8]) -> String {
        let path = dir + "/" + name
        let f = gzopen(path, "wb")!
        _ = bytes.withUnsafeBytes { gzwrite(f, $0.baseAddress, UInt32($0.count)) }
        gzclose(f)
        return path
    }

    func writeFashion(images: [UInt8], labels: [UInt8], count: Int) {
        for split in ["train", "t10k"] {
            _ = writeGzip("\(split)-images-idx3-ubyte.gz", idx([count, 2, 3], images))
            _ = writeGzip("\(split)-labels-idx1-ubyte.gz", idx([count], labels))
        }
    }

    func testFashionMNISTReadsGzippedIDX() throws {
        writeFashion(images: (0..<12).map { UInt8($0 * 20) }, labels: [3, 7], count: 2)
        let (train, test) = try FashionMNIST.load(directory: dir)
        XCTAssertEqual(train.count, 2)
        XCTAssertEqual([train.height, train.width, train.channels], [2, 3, 1])
        XCTAssertEqual(train.labels, [3, 7])
        XCTAssertEqual(train.images[1], 20 / 255, accuracy: 1e-7)
        XCTAssertEqual(test.images.count, 12)
    }

    func testMissingFileNamesPathAndPackage() {
        XCTAssertThrowsError(try FashionMNIST.load(directory: dir + "/nowhere")) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains(dir + "/nowhere/train-images-idx3-ubyte.gz"), m)
            XCTAssertTrue(m.contains("dataset-fashion-mnist"), m)
        }
    }

    func testTruncatedIDXIsReported() {
        writeFashion(images: Array(repeating: 1, count: 7), labels: [1, 2], count: 2)   // 7 of 12 bytes
        XCTAssertThrowsError(try FashionMNIST.load(directory: dir)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("train-images-idx3-ubyte.gz"), m)
            XCTAssertTrue(m.contains("truncated: 7 of 12"), m)
        }
    }

    func testBadMagicAndLabelCountAreReported() throws {
        _ = writeGzip("train-images-idx3-ubyte.gz", [1, 2, 3, 4, 5])
        _ = writeGzip("train-labels-idx1-ubyte.gz", idx([1], [0]))
        XCTAssertThrowsError(try FashionMNIST.load(directory: dir)) { e in XCTAssertTrue("\(e)".contains("bad magic"), "\(e)") }
        _ = writeGzip("train-images-idx3-ubyte.gz", idx([2, 1, 1], [0, 0]))
        XCTAssertThrowsError(try FashionMNIST.load(directory: dir)) { e in XCTAssertTrue("\(e)".contains("1 labels for 2 images"), "\(e)") }
    }

    /// The message of the error `FashionMNIST.load` throws for the files in `dir`.
    func loadError(file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try FashionMNIST.load(directory: dir)
            XCTFail("loaded hostile files", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    /// Asserts `m` names `path`, contains each of `parts`, and gives the reinstall advice.
    func assertNamesFileAndFix(_ m: String, _ path: String, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(m.contains(dir + "/" + path), m, file: file, line: line)
        for part in parts { XCTAssertTrue(m.contains(part), "missing «\(part)» in: \(m)", file: file, line: line) }
        XCTAssertTrue(m.contains("apt-get install --reinstall dataset-fashion-mnist"), m, file: file, line: line)
        XCTAssertTrue(m.contains("--data"), m, file: file, line: line)
    }

    func testLabelOutsideTheClassesNamesFileIndexAndFix() {
        writeFashion(images: Array(repeating: 0, count: 18), labels: [3, 9, 12], count: 3)
        assertNamesFileAndFix(loadError(), "train-labels-idx1-ubyte.gz",
                              ["label 12 at index 2 is outside 0..<10", "not Fashion-MNIST labels or is corrupt"])
    }

    func testLabelCountDifferentFromImageCount() {
        writeFashion(images: Array(repeating: 0, count: 12), labels: [], count: 2)
        _ = writeGzip("train-labels-idx1-ubyte.gz", idx([3], [1, 2, 3]))
        assertNamesFileAndFix(loadError(), "train-labels-idx1-ubyte.gz",
                              ["3 labels for 2 images in \(dir!)/train-images-idx3-ubyte.gz", "not a matching pair"])
    }

    func testTruncatedGzipStreamIsReported() throws {
        writeFashion(images: (0..<6000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }, labels: Array(repeating: 1, count: 1000), count: 1000)
        let path = dir + "/train-images-idx3-ubyte.gz"
        let whole = try XCTUnwrap(FileManager.default.contents(atPath: path))
        for keep in [whole.count / 2, whole.count - 4] {   // half the stream; all the data but the gzip trailer
            try whole.prefix(keep).write(to: URL(fileURLWithPath: path))
            assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["truncated"])
        }
    }

    func testTruncatedHeaderAndEmptyFile() {
        writeFashion(images: [], labels: [], count: 0)
        _ = writeGzip("train-images-idx3-ubyte.gz", [0, 0, 8, 3, 0, 0, 0])
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["truncated header: 3 of 12 dimension bytes"])
        _ = writeGzip("train-images-idx3-ubyte.gz", [])
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["bad magic number"])
    }

    func testWrongElementTypeAndRank() {
        writeFashion(images: Array(repeating: 0, count: 12), labels: [1, 2], count: 2)
        _ = writeGzip("train-images-idx3-ubyte.gz", [0, 0, 0x0D, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0])
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["element type 0xd is not unsigned byte"])
        writeFashion(images: Array(repeating: 0, count: 12), labels: [1, 2], count: 2)
        _ = writeGzip("train-labels-idx1-ubyte.gz", idx([2, 1, 1], [1, 2]))
        assertNamesFileAndFix(loadError(), "train-labels-idx1-ubyte.gz", ["rank 3, expected 1"])
    }

    /// Declared sizes are checked against the bytes actually in the file before anything of
    /// that size is allocated: neither an overflowing product nor 784 GB is attempted.
    func testHugeDeclaredDimensionsAreReportedWithoutAllocating() {
        writeFashion(images: [], labels: [1], count: 1)
        let max = 0xFFFF_FFFF
        _ = writeGzip("train-images-idx3-ubyte.gz", idx([max, max, max], Array(repeating: 0, count: 10)))
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz",
                              ["header declares dimensions 4294967295×4294967295×4294967295, more data than any file holds"])
        _ = writeGzip("train-images-idx3-ubyte.gz", idx([1_000_000_000, 28, 28], Array(repeating: 0, count: 10)))
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["truncated: 10 of 784000000000 data bytes"])
        _ = writeGzip("train-labels-idx1-ubyte.gz", idx([max], [1, 2]))
        _ = writeGzip("train-images-idx3-ubyte.gz", idx([1, 1, 1], [0]))
        assertNamesFileAndFix(loadError(), "train-labels-idx1-ubyte.gz", ["truncated: 2 of 4294967295 data bytes"])
    }

    func testEmptyImageSetAndZeroSizedImagesAreRejected() {
        writeFashion(images: [], labels: [], count: 0)
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["empty image set (dimensions 0×2×3)"])
        _ = writeGzip("train-images-idx3-ubyte.gz", idx([2, 0, 3], []))
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["empty image set (dimensions 2×0×3)"])
    }

    func testDataBeyondTheDeclaredDimensionsIsReported() {
        writeFashion(images: Array(repeating: 0, count: 13), labels: [1, 2], count: 2)
        assertNamesFileAndFix(loadError(), "train-images-idx3-ubyte.gz", ["more data than the header's dimensions 2×2×3 declare"])
    }

    func testDirectoryInPlaceOfAFileIsReported() throws {
        writeFashion(images: Array(repeating: 0, count: 12), labels: [1, 2], count: 2)
        let path = dir + "/train-labels-idx1-ubyte.gz"
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        assertNamesFileAndFix(loadError(), "train-labels-idx1-ubyte.gz", ["is a directory"])
    }

    func testUncompressedIDXIsReadToo() throws {
        writeFashion(images: Array(repeating: 51, count: 12), labels: [0, 9], count: 2)
        FileManager.default.createFile(atPath: dir + "/train-labels-idx1-ubyte.gz", contents: Data(idx([2], [4, 5])))
        let (train, _) = try FashionMNIST.load(directory: dir)
        XCTAssertEqual(train.labels, [4, 5])
        XCTAssertEqual(train.images[0], 0.2, accuracy: 1e-6)
    }

    func testCIFARBinaryRecords() throws {
        var rec = [UInt8](repeating: 0, count: 2 * CIFAR10.recordSize)
        rec[0] = 4; rec[1] = 255; rec[CIFAR10.recordSize] = 9; rec[CIFAR10.recordSize + 3072] = 51
        FileManager.default.createFile(atPath: dir + "/b.bin", contents: Data(rec))
        let set = try CIFAR10.load(directory: dir, files: ["b.bin"])
        XCTAssertEqual(set.labels, [4, 9])
        XCTAssertEqual([set.channels, set.height, set.width], [3, 32, 32])
        XCTAssertEqual(set.images[0], 1)
        XCTAssertEqual(set.images[2 * 3072 - 1], 0.2, accuracy: 1e-6)
    }

    func testCIFARTruncatedAndMissing() {
        FileManager.default.createFile(atPath: dir + "/data_batch_1.bin", contents: Data(count: CIFAR10.recordSize + 5))
        XCTAssertThrowsError(try CIFAR10.load(directory: dir, files: ["data_batch_1.bin"])) { e in
            XCTAssertTrue("\(e)".contains("data_batch_1.bin") && "\(e)".contains("truncated"), "\(e)")
        }
        XCTAssertThrowsError(try CIFAR10.load(directory: dir)) { e in
            XCTAssertTrue("\(e)".contains("data_batch_2.bin") || "\(e)".contains("data_batch_1.bin"), "\(e)")
            XCTAssertTrue("\(e)".contains("cifar-10-binary"), "\(e)")
        }
    }
}
