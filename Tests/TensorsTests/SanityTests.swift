import TestSupport
import Tensors
import XCTest

final class SanityTests: XCTestCase {
    func testMatmulByHand() throws {
        let a = try Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6], requiresGrad: true)
        let b = try Tensor(shape: [3, 2], [1, 0, 0, 1, 1, 1], requiresGrad: true)
        let c = try matmul(a, b)
        assertClose(c.array, [4, 5, 10, 11])
        try sum(c).backward()
        assertClose(a.grad!.array, [1, 1, 2, 1, 1, 2])
        assertClose(b.grad!.array, [5, 5, 7, 7, 9, 9])
    }

    func testShapeErrorNamesBothShapes() throws {
        let a = Tensor.zeros([2, 3]), b = Tensor.zeros([2, 3])
        XCTAssertThrowsError(try matmul(a, b)) { e in
            XCTAssertTrue("\(e)".contains("[2, 3] and [2, 3]"), "\(e)")
        }
    }

    func testStopGradientBlocksBackward() throws {
        let x = try Tensor(shape: [2], [1, 2], requiresGrad: true)
        let y = try sum(x * stopGradient(x))     // d/dx = stopped x only
        try y.backward()
        assertClose(x.grad!.array, [1, 2])
    }
}

final class ReleasedGraphTests: XCTestCase {
    func testSecondBackwardThroughAReleasedGraphThrows() throws {
        let x = try Tensor(shape: [2], [1, 2], requiresGrad: true)
        let z = scale(x, 3)                       // shared intermediate
        let a = sum(z), b = sum(try z * z)
        try a.backward()
        XCTAssertThrowsError(try b.backward()) { e in XCTAssertTrue("\(e)".contains("already used"), "\(e)") }
    }
}
