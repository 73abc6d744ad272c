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
