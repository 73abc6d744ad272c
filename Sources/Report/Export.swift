import Foundation
import Store

public enum ExportFormat: String, Sendable, CaseIterable {
    case csv, json
}

extension TableReport {
    /// Every run listed under the table (not only the ones the markdown shows) with its metrics.
    ///
    /// - CSV: long format, one line per metric point, header
    ///   `table_id,row_name,seed,run_id,protocol,protocol_version,status,verdict,git_revision,git_dirty,started_at,resumed_at,attempts,key,step,value,kind`;
    ///   a run without metrics has one line with the metric fields empty. `started_at` is the first
    ///   start (kept when the run is resumed), `resumed_at` the last resume (empty if none),
    ///   `attempts` how many times it was claimed to be trained; times in ISO 8601 (UTC). NaN/±Inf: `value` empty,
    ///   `kind` says which. Numbers in Swift's shortest round-trip form.
    /// - JSON: `{"table": id, "runs": [{…run fields…, "params": {…}, "metrics": [{key, step, value, kind}]}]}`,
    ///   keys sorted, `value` null for NaN/±Inf, times in ISO 8601 (UTC); `attempts` and `resumed_at` as in CSV.
    public func export(format: ExportFormat) throws -> String {
        switch format {
        case .csv: return csv()
        case .json: return try json()
        }
    }

    private func csv() -> String {
        var lines = ["table_id,row_name,seed,run_id,protocol,protocol_version,status,verdict,git_revision,git_dirty,"
                     + "started_at,resumed_at,attempts,key,step,value,kind"]
        for run in runs {
            let r = run.record
            let head = [table.id, r.rowName, String(r.seed), r.id, r.protocolName, r.protocolVersion, r.status.rawValue,
                        r.verdict ?? "", r.gitRevision ?? "", r.gitDirty ? "1" : "0",
                        r.startedAt.map(iso8601) ?? "", r.resumedAt.map(iso8601) ?? "", String(r.attempts)]
            let points: [[String]] = run.metrics.isEmpty ? [["", "", "", ""]] : run.metrics.map { p in
                [p.key, String(p.step), p.kind == .finite ? String(p.value) : "", p.kind.rawValue]
            }
            for point in points { lines.append((head + point).map(csvField).joined(separator: ",")) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(ExportedTable(table: table.id, runs: runs.map(ExportedRun.init)))
            return (String(data: data, encoding: .utf8) ?? "") + "\n"
        } catch {
            throw ReportError.cannotEncode(format: "JSON", reason: "\(error)")
        }
    }
}

/// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

private struct ExportedTable: Encodable {
    var table: String
    var runs: [ExportedRun]
}

/// A run in the JSON export; absent values are written as null so every run has the same keys.
private struct ExportedRun: Encodable {
    let data: RunData

    init(_ data: RunData) { self.data = data }

    enum Keys: String, CodingKey {
        case id, row, seed, protocolName = "protocol", protocolVersion = "protocol_version", status, verdict
        case gitRevision = "git_revision", gitDirty = "git_dirty", host, pid, createdAt = "created_at"
        case heartbeatAt = "heartbeat_at", startedAt = "started_at", endedAt = "ended_at", error, params, metrics
        case attempts, resumedAt = "resumed_at"
    }

    func encode(to encoder: Encoder) throws {
        let r = data.record
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(r.id, forKey: .id)
        try c.encode(r.rowName, forKey: .row)
        try c.encode(r.seed, forKey: .seed)
        try c.encode(r.protocolName, forKey: .protocolName)
        try c.encode(r.protocolVersion, forKey: .protocolVersion)
        try c.encode(r.status.rawValue, forKey: .status)
        try c.encode(r.verdict, forKey: .verdict)
        try c.encode(r.gitRevision, forKey: .gitRevision)
        try c.encode(r.gitDirty, forKey: .gitDirty)
        try c.encode(r.host, forKey: .host)
        try c.encode(r.pid, forKey: .pid)
        try c.encode(iso8601(r.createdAt), forKey: .createdAt)
        try c.encode(r.heartbeatAt.map(iso8601), forKey: .heartbeatAt)
        try c.encode(r.startedAt.map(iso8601), forKey: .startedAt)
        try c.encode(r.resumedAt.map(iso8601), forKey: .resumedAt)
        try c.encode(r.attempts, forKey: .attempts)
        try c.encode(r.endedAt.map(iso8601), forKey: .endedAt)
        try c.encode(r.error, forKey: .error)
        try c.encode(data.params, forKey: .params)
        try c.encode(data.metrics.map(ExportedPoint.init), forKey: .metrics)
    }
}

/// A time in ISO 8601, UTC, with fractional seconds.
private func iso8601(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}

private struct ExportedPoint: Encodable {
    let point: MetricPoint
    init(_ point: MetricPoint) { self.point = point }

    enum Keys: String, CodingKey { case key, step, value, kind }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(point.key, forKey: .key)
        try c.encode(point.step, forKey: .step)
        try c.encode(point.kind == .finite ? point.value : nil, forKey: .value)
        try c.encode(point.kind.rawValue, forKey: .kind)
    }
}
