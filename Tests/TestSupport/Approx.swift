import Tensors
import XCTest

/// The one approximate-equality check of every test target (the fixture tests pass rtol 1e-4 / atol 1e-5): shape first, then |a − e| ≤ atol + rtol·|e| everywhere;
/// on failure it reports the max |diff| and the first failing index.
public func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                 _ what: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(what()): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var maxDiff: Float = 0, firstBad: Int?
    for i in 0..<actual.count {
        let d = abs(actual[i] - expected[i])
        if !(d <= maxDiff) { maxDiff = d.isNaN ? .nan : max(maxDiff, d) }
        if firstBad == nil && !(d <= atol + rtol * abs(expected[i])) { firstBad = i }
    }
    if let i = firstBad {
        XCTFail("\(what()): max |diff| \(maxDiff); first failing index \(i): \(actual[i]) vs expected \(expected[i]) (rtol \(rtol), atol \(atol))",
                file: file, line: line)
    }
}

public func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6,
                 _ what: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard actual.shape == expected.shape else {
        XCTFail("\(what()): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
        return
    }
    assertClose(actual.array, expected.array, rtol: rtol, atol: atol, what(), file: file, line: line)
}
