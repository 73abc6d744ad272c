import Foundation
import Registry
import SSL
import Store

/// A line chart of one metric over training: one line per table row (the mean over its seeds)
/// with a band for the spread (mean ± sample std, where a row has two or more seeds), written as
/// a self-contained SVG. No dependency: the format is small and the output is checked as XML in
/// the tests (an SVG library would bring more than it saves).
public struct Figure: Sendable, Equatable {
    public struct Series: Sendable, Equatable {
        public var name: String
        /// x, mean, and the band (lower, upper); the band equals the mean with one seed.
        public var points: [(x: Double, mean: Double, low: Double, high: Double)]

        public static func == (a: Series, b: Series) -> Bool {
            a.name == b.name && a.points.count == b.points.count
                && zip(a.points, b.points).allSatisfy { $0.x == $1.x && $0.mean == $1.mean && $0.low == $1.low && $0.high == $1.high }
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// File name stem: `<table>-<metric>`.
    public var name: String

    /// The SVG text: the chart 640 × 400 by default, with the legend under it (one line per row,
    /// so a long row name is neither cut at the edge nor drawn over the curves).
    public func svg(width: Double = 640, height: Double = 400) -> String {
        let left = 64.0, right = 16.0, top = 36.0, bottom = 48.0
        let legendLine = 16.0, fullHeight = height + 8 + Double(series.count) * legendLine
        let plotW = width - left - right, plotH = height - top - bottom
        let all = series.flatMap(\.points)
        let xs = all.map(\.x), ys = all.flatMap { [$0.low, $0.high, $0.mean] }.filter(\.isFinite)
        let xTicks = niceTicks(xs.min() ?? 0, xs.max() ?? 1), yTicks = niceTicks(ys.min() ?? 0, ys.max() ?? 1)
        let (x0, x1) = (xTicks.first ?? 0, xTicks.last ?? 1), (y0, y1) = (yTicks.first ?? 0, yTicks.last ?? 1)
        func px(_ x: Double) -> Double { left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var out = [
            ##"<?xml version="1.0" encoding="UTF-8"?>"##,
            ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(f(width))" height="\##(f(fullHeight))" viewBox="0 0 \##(f(width)) \##(f(fullHeight))" font-family="sans-serif" font-size="12">"##,
            ##"<rect width="100%" height="100%" fill="white"/>"##,
            ##"<text x="\##(f(width / 2))" y="20" text-anchor="middle" font-size="14">\##(xml(title))</text>"##,
        ]
        for t in yTicks {
            out.append(##"<line x1="\##(f(left))" y1="\##(f(py(t)))" x2="\##(f(left + plotW))" y2="\##(f(py(t)))" stroke="#e5e5e5"/>"##)
            out.append(##"<text x="\##(f(left - 6))" y="\##(f(py(t) + 4))" text-anchor="end">\##(xml(tickLabel(t, yTicks)))</text>"##)
        }
        for t in xTicks {
            out.append(##"<line x1="\##(f(px(t)))" y1="\##(f(top))" x2="\##(f(px(t)))" y2="\##(f(top + plotH))" stroke="#f0f0f0"/>"##)
            out.append(##"<text x="\##(f(px(t)))" y="\##(f(top + plotH + 16))" text-anchor="middle">\##(xml(tickLabel(t, xTicks)))</text>"##)
        }
        out.append(##"<rect x="\##(f(left))" y="\##(f(top))" width="\##(f(plotW))" height="\##(f(plotH))" fill="none" stroke="#333"/>"##)
        out.append(##"<text x="\##(f(left + plotW / 2))" y="\##(f(height - 10))" text-anchor="middle">\##(xml(xLabel))</text>"##)
        out.append(##"<text transform="translate(16 \##(f(top + plotH / 2))) rotate(-90)" text-anchor="middle">\##(xml(yLabel))</text>"##)
        for (i, s) in series.enumerated() {
            let color = Figure.palette[i % Figure.palette.count]
            let finite = s.points.filter { $0.mean.isFinite }
            if finite.contains(where: { $0.high > $0.low }) {
                let upper = finite.map { "\(f(px($0.x))),\(f(py($0.high)))" }
                let lower = finite.reversed().map { "\(f(px($0.x))),\(f(py($0.low)))" }
                out.append(##"<polygon points="\##((upper + lower).joined(separator: " "))" fill="\##(color)" fill-opacity="0.18" stroke="none"/>"##)
            }
            let line = finite.map { "\(f(px($0.x))),\(f(py($0.mean)))" }.joined(separator: " ")
            out.append(##"<polyline points="\##(line)" fill="none" stroke="\##(color)" stroke-width="2"/>"##)
            let ly = height + 4 + Double(i) * legendLine
            out.append(##"<line x1="\##(f(left))" y1="\##(f(ly))" x2="\##(f(left + 18))" y2="\##(f(ly))" stroke="\##(color)" stroke-width="2"/>"##)
            out.append(##"<text x="\##(f(left + 22))" y="\##(f(ly + 4))">\##(xml(s.name))</text>"##)
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// Colour-blind-safe (Okabe–Ito).
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
}

/// About five round tick values covering [lo, hi].
func niceTicks(_ lo: Double, _ hi: Double) -> [Double] {
    guard lo.isFinite, hi.isFinite else { return [0, 1] }
    if hi - lo < 1e-12 { return [lo - 1, lo, lo + 1].map { $0 } }
    let raw = (hi - lo) / 5, magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    let first = floor(lo / step) * step, last = ceil(hi / step) * step
    return stride(from: first, through: last + step / 2, by: step).map { ($0 / step).rounded() * step }
}

func tickLabel(_ v: Double, _ ticks: [Double]) -> String {
    let step = ticks.count > 1 ? abs(ticks[1] - ticks[0]) : 1
    let decimals = max(0, min(6, Int(-floor(log10(step)))))
    return formatFixed(v, decimals)
}

/// Text with XML's five special characters escaped.
func xml(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        .replacingOccurrences(of: "'", with: "&apos;")
}

extension TableReport {
    /// The curves a table shows by default: SimSiam Fig 2's three panels (training loss, z_std·√d
    /// of the training batch, kNN on the monitor subset per epoch), m_o and m_r on the test set,
    /// the loss's spread within each epoch where the table shows it, and every metric a curve claim names.
    public var figureMetrics: [Metric] {
        var metrics: [Metric] = [.loss, .trainZStd, .knnSubset, .mO, .mR]
        if table.columns.contains(.lossStd) { metrics.insert(.lossStd, at: 1) }
        for claim in table.rows.flatMap(\.claims) {
            switch claim {
            case let .rises(key, _), let .falls(key, _):
                if let m = Metric.named(key), !metrics.contains(m) { metrics.append(m) }
            default: break
            }
        }
        return metrics
    }

    /// One metric's curve per row over the chosen runs: per step where the runs stored it
    /// (`step.<key>`), else per epoch. Nil when no run has the curve.
    public func figure(_ metric: Metric) -> Figure? {
        let stepKey = MetricPoint.stepPrefix + metric.key
        let chosen = table.rows.map { selected[$0.name] ?? [] }
        let perStep = chosen.joined().contains { $0.metrics.contains { $0.key == stepKey } }
        let key = perStep ? stepKey : metric.key
        var series: [Figure.Series] = []
        for (row, runs) in zip(table.rows, chosen) {
            var byX: [Int: [Double]] = [:]
            for run in runs { for p in run.metrics where p.key == key && p.value.isFinite { byX[p.step, default: []].append(p.value) } }
            guard !byX.isEmpty else { continue }
            let points = byX.keys.sorted().map { x -> (x: Double, mean: Double, low: Double, high: Double) in
                let s = MeanStd.of(byX[x] ?? [])!   // NOTE: byX only holds non-empty lists
                let spread = s.n > 1 ? s.std : 0
                return (Double(x), s.mean, s.mean - spread, s.mean + spread)
            }
            series.append(Figure.Series(name: row.name, points: points))
        }
        guard !series.isEmpty else { return nil }
        let seeds = table.seeds.count
        let unit = metric.unit.isEmpty ? "" : " (\(metric.unit))"
        return Figure(title: "\(table.paper), \(table.source): \(metric.label)" + (seeds > 1 ? " — mean ± std over seeds" : ""),
                      xLabel: perStep ? "training step" : "epoch", yLabel: metric.label + unit, series: series,
                      name: "\(table.id)-\(metric.key)")
    }

    /// Every default figure that has data.
    public var figures: [Figure] { figureMetrics.compactMap(figure) }
}
