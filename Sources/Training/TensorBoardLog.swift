import Foundation

/// Scalars in TensorBoard's event-file format (`RUN_DIR/tb/events.out.tfevents.<time>.<host>`),
/// readable by a stock `tensorboard --logdir RUN_DIR/tb`. Each record is
/// `length u64 | masked crc32c(length) u32 | Event protobuf | masked crc32c(data) u32`; the Event
/// holds wall_time (1), step (2) and either file_version (3) or a Summary (5) of
/// Value{tag (1), simple_value (2)}. A new file per sitting, as TensorFlow does.
public final class TensorBoardLog {
    public let path: String
    private let handle: FileHandle

    public init(runDirectory: String) throws {
        let directory = URL(fileURLWithPath: runDirectory).appendingPathComponent("tb").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        path = directory + "/events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(getpid())"
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError.io(path, "cannot create TensorBoard event file")
        }
        self.handle = handle
        var event = Protobuf()
        event.double(1, Date().timeIntervalSince1970)
        event.string(3, "brain.Event:2")
        try write(event.bytes)
    }

    deinit { try? handle.close() }

    /// One event with every scalar of `values` at `step`.
    public func scalars(_ values: [String: Double], step: Int) throws {
        var summary = Protobuf()
        for (tag, value) in values.sorted(by: { $0.key < $1.key }) where value.isFinite {
            var entry = Protobuf()
            entry.string(1, tag)
            entry.float(2, Float(value))
            summary.message(1, entry)
        }
        var event = Protobuf()
        event.double(1, Date().timeIntervalSince1970)
        event.varint(2, UInt64(step))
        event.message(5, summary)
        try write(event.bytes)
    }

    private func write(_ data: [UInt8]) throws {
        var record = [UInt8]()
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        record += length
        record += withUnsafeBytes(of: maskedCRC32C(length).littleEndian) { Array($0) }
        record += data
        record += withUnsafeBytes(of: maskedCRC32C(data).littleEndian) { Array($0) }
        try handle.write(contentsOf: Data(record))
    }
}

/// The few protobuf encodings an Event needs.
struct Protobuf {
    private(set) var bytes: [UInt8] = []

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(_ field: Int, _ value: UInt64) { key(field, 0); rawVarint(value) }
    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func string(_ field: Int, _ value: String) { message(field, Array(value.utf8)) }
    mutating func message(_ field: Int, _ value: Protobuf) { message(field, value.bytes) }
    private mutating func message(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        rawVarint(UInt64(value.count))
        bytes += value
    }
}

/// CRC-32C (Castagnoli), as TFRecord uses it, masked the TFRecord way.
func maskedCRC32C(_ data: [UInt8]) -> UInt32 {
    let crc = crc32c(data)
    return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
}

private let crc32cTable: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
}

func crc32c(_ data: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data { crc = crc32cTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
}

/// The CRC-32C of "123456789" is 0xE3069283 (the standard check value); exposed for tests.
public func crc32cCheckValue() -> UInt32 { crc32c(Array("123456789".utf8)) }
