import CBLAS
import Foundation
import Synchronization

/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C, with op(A) m×k, op(B) k×n.
/// `lda`, `ldb`, `ldc` default to the packed row lengths. Counts its 2·m·n·k FLOPs (`FLOPs`)
/// unless the caller counts them itself (conv2d counts a whole convolution once).
@inline(__always)
public func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil, countFLOPs: Bool = true
) {
    let lda = lda ?? (transA ? m : k)
    let ldb = ldb ?? (transB ? k : n)
    let ldc = ldc ?? n
    if countFLOPs { FLOPs.add(2 * m * n * k) }
    if beta == 1 {
        // C + op(A)·op(B) with the product computed whole and then added. OpenBLAS with β = 1
        // adds it block by block along k, so the bits would depend on what C held before: a
        // gradient that lanes (`Lanes`) add later would differ from the serial order's.
        let product = Storage(uninitializedCount: m * n), p = product.pointer
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
              c: p, ldc: n, countFLOPs: false)
        for i in 0..<m {
            let row = c + i * ldc, src = p + i * n
            for j in 0..<n { row[j] += src[j] }
        }
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// The floating-point operations (2 per multiply-add) of every GEMM and direct convolution loop
/// this process has run: convolutions and linear layers, forward and backward, counted once, where
/// they are computed. `ablate bench` divides a step's count by its time and by `sgemmPeakGFLOPS`.
public enum FLOPs {
    private static let counter = Atomic<Int>(0)

    /// FLOPs counted since the process started.
    public static var total: Int { counter.load(ordering: .relaxed) }

    @inline(__always)
    static func add(_ flops: Int) { counter.add(flops, ordering: .relaxed) }
}

/// The machine's single-precision GEMM rate in GFLOP/s with the current thread count: the best of
/// `repeats` products of two `size`×`size` matrices (after one warm-up), the ceiling a training
/// step made of GEMMs could reach.
public func sgemmPeakGFLOPS(size: Int = 2048, repeats: Int = 5) -> Double {
    let a = Storage(repeating: 0.5, count: size * size), b = Storage(repeating: 0.25, count: size * size)
    let c = Storage(repeating: 0, count: size * size)
    var best = Double.infinity
    for r in 0...repeats {
        let t0 = DispatchTime.now().uptimeNanoseconds
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(size), blasint(size), blasint(size),
                    1, a.pointer, blasint(size), b.pointer, blasint(size), 0, c.pointer, blasint(size))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if r > 0 { best = min(best, seconds) }
    }
    return 2 * Double(size) * Double(size) * Double(size) / best / 1e9
}

/// The kernel family OpenBLAS picked for this CPU at load time (e.g. "Haswell", "SkylakeX").
public var blasCoreName: String {
    guard let name = openblas_get_corename() else { return "unknown" }
    return String(cString: name)
}
