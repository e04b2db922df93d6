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
    /// so that no step is logged twice.
    public func truncate(afterStep step: Int) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let kept = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let lineStep = object["step"] as? Double
            else { return false }
            return Int(lineStep) <= step
        }
        try atomicWrite(Data(kept.map { $0 + "\n" }.joined().utf8), to: path)
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
