import Foundation

/// `RUN_DIR/metrics.jsonl`: one JSON object per line, keys sorted, numbers only.
public struct MetricsLog {
    public let path: String

    public init(runDirectory: String) {
        path = URL(fileURLWithPath: runDirectory).appendingPathComponent("metrics.jsonl").path
    }

    public func append(_ record: [String: Double]) throws {
        let line = Self.format(record) + "\n"
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError.io(path, "cannot open metrics file for writing")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.utf8))
    }

    /// Drops lines of steps after `step`, for a run resumed from the checkpoint of `step`,
    /// so that no step is logged twice. Returns the records kept (numbers only; nulls and other
    /// values left out), so that a resumed run continues from its history (e.g. its best test error).
    @discardableResult
    public func truncate(afterStep step: Int) throws -> [[String: Double]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        var kept: [Substring] = [], records: [[String: Double]] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let lineStep = object["step"] as? Double, lineStep.isFinite, lineStep <= Double(step)
            else { continue }
            kept.append(line)
            records.append(object.compactMapValues { ($0 as? NSNumber)?.doubleValue })
        }
        try atomicWrite(Data(kept.map { $0 + "\n" }.joined().utf8), to: path)
        return records
    }

    static func format(_ record: [String: Double]) -> String {
        let fields = record.keys.sorted().map { key -> String in
            let value = record[key]!
            let text = value.isFinite ? (value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)) : "null"
            return "\"\(key)\":\(text)"
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
}
