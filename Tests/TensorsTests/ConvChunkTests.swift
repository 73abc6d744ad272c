@testable import Tensors
import TestSupport
import XCTest

/// conv2d's GEMM path runs the batch in chunks of images for cache reuse; the output, dx and dW
/// (summed over the chunks) must equal the one-chunk computation within rounding, whatever the chunk size.
final class ConvChunkTests: XCTestCase {
    func testChunkedConvolutionEqualsOneChunkBitForBit() throws {
        // (x, w, stride, padding): the convnet's stride-2 path and the generic im2col path.
        let cases: [([Int], [Int], Int, Int)] = [([7, 6, 9, 9], [5, 6, 3, 3], 2, 1), ([5, 3, 6, 7], [4, 3, 3, 3], 1, 1)]
        for (xs, ws, stride, padding) in cases {
            var rng = RNG(seed: 11)
            let x = randomTensor(xs, &rng), w = randomTensor(ws, &rng)
            let probe = randomTensor([xs[0], ws[0], (xs[2] + 2 * padding - 3) / stride + 1, (xs[3] + 2 * padding - 3) / stride + 1], &rng)
            let k = ws[1] * 9, ohw = probe.shape[2] * probe.shape[3]
            var results: [[[Float]]] = []
            // 0: one chunk; 2·K·OH·OW floats: chunks of 2 images with a shorter last one.
            for chunkFloats in [0, 2 * k * ohw, 1] {
                x.grad = nil; w.grad = nil
                x.setRequiresGrad(true); w.setRequiresGrad(true)
                let y = try conv2d(x, w, stride: stride, padding: padding, chunkFloats: chunkFloats)
                try sum(try mul(y, probe)).backward()
                results.append([y.array, try XCTUnwrap(x.grad).array, try XCTUnwrap(w.grad).array])
            }
            for (chunked, name) in [(results[1], "chunks of 2 images"), (results[2], "chunks of 1 image")] {
                // OpenBLAS may run a chunk's shorter rows through another kernel: one rounding apart.
                assertClose(chunked[0], results[0][0], rtol: 1e-6, atol: 1e-6, "x \(xs) output, \(name)")
                assertClose(chunked[1], results[0][1], rtol: 1e-6, atol: 1e-6, "x \(xs) dx, \(name)")
                assertClose(chunked[2], results[0][2], rtol: 1e-5, atol: 1e-6, "x \(xs) dW (a sum over the chunks), \(name)")
            }
        }
    }

    func testChunksCoverTheBatchInOrder() {
        var g = ConvGeometry(n: 10, c: 2, h: 8, w: 8, o: 3, kh: 3, kw: 3, stride: 2, padding: 1)
        g.chunkFloats = 3 * g.k * g.ohw
        XCTAssertEqual(g.chunks, [0..<3, 3..<6, 6..<9, 9..<10])
        g.chunkFloats = 0
        XCTAssertEqual(g.chunks, [0..<10])
    }
}

/// The width-3, stride-2, padding-1 im2col and col2im (its rows in SIMD over column pairs) against
/// the generic loops, bit for bit, for every input width up to 37 (even and odd, shorter than a
/// vector, rows whose vector loads would pass the end) and a few heights.
final class ConvStride2PathTests: XCTestCase {
    func testSpecialisedStride2PathEqualsGenericLoopsBitForBit() {
        var rng = RNG(seed: 5)
        for (h, kh) in [(1, 3), (2, 3), (3, 3), (8, 3), (5, 1), (6, 2), (9, 5)] {
            for w in 1...37 {
                let g = ConvGeometry(n: 3, c: 2, h: h, w: w, o: 1, kh: kh, kw: 3, stride: 2, padding: 1)
                XCTAssertTrue(g.isWidth3Stride2Pad1)
                let x = randomTensor([g.n, g.c, h, w], &rng)
                let fast = Storage(repeating: .nan, count: g.k * g.cols), slow = Storage(repeating: .nan, count: g.k * g.cols)
                im2col(x.pointer, fast.pointer, g, images: 0..<g.n, ld: g.cols)
                im2col(x.pointer, slow.pointer, g, images: 0..<g.n, ld: g.cols, generic: true)
                XCTAssertEqual(fast.array.map(\.bitPattern), slow.array.map(\.bitPattern), "im2col, input \(h)×\(w), kernel \(kh)×3")
                // A chunk of images (the GEMM path's buffer): ld = its columns.
                let chunk = 1..<3, ld = chunk.count * g.ohw
                let fastChunk = Storage(repeating: .nan, count: g.k * ld), slowChunk = Storage(repeating: .nan, count: g.k * ld)
                im2col(x.pointer, fastChunk.pointer, g, images: chunk, ld: ld)
                im2col(x.pointer, slowChunk.pointer, g, images: chunk, ld: ld, generic: true)
                XCTAssertEqual(fastChunk.array.map(\.bitPattern), slowChunk.array.map(\.bitPattern), "im2col chunk, input \(h)×\(w)")

                let dcol = randomTensor([g.k, g.cols], &rng), start = randomTensor([g.n, g.c, h, w], &rng)
                let dxFast = Storage(start.array), dxSlow = Storage(start.array)
                col2im(dcol.pointer, dxFast.pointer, g, images: 0..<g.n, ld: g.cols)
                col2im(dcol.pointer, dxSlow.pointer, g, images: 0..<g.n, ld: g.cols, generic: true)
                XCTAssertEqual(dxFast.array.map(\.bitPattern), dxSlow.array.map(\.bitPattern), "col2im, input \(h)×\(w)")
            }
        }
    }
}
