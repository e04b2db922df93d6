import Foundation
import Transport

/// What a message is. Unknown values are rejected by the decoder.
public enum MessageKind: UInt16, Sendable, CaseIterable {
    case hello = 1, setup, ready, step, result, evaluate, evaluation, stateRequest, state, stop, ringChunk, failure
    /// worker -> coordinator every interval from its own socket; the coordinator answers each.
    case heartbeat
    /// coordinator -> worker: "you are not a member (any more): say hello again".
    case rejoin
}

/// The fixed 56-byte header in front of every message, little-endian:
///
///     magic u32 "RDDP" | version u16 | kind u16 | run id u64 | membership epoch u32 | sequence u32 |
///     step u64 | sender rank i32 | reserved u32 | payload length u64 | frame checksum u64 (over the payload and header bytes 0-47)
public struct WireHeader: Sendable, Equatable {
    public static let magic: UInt32 = 0x5044_4452
    public static let version: UInt16 = 4
    public static let size = 56
    /// No legitimate payload is larger (a ResNet-110 state is about 21 MB).
    public static let maxPayload: UInt64 = 128 << 20

    public var kind: MessageKind
    public var runID: UInt64
    public var epoch: UInt32
    public var sequence: UInt32
    public var step: UInt64
    public var sender: Int32
    public var payloadLength: UInt64 = 0
    public var checksum: UInt64 = 0

    public init(kind: MessageKind, runID: UInt64, epoch: UInt32 = 0, sequence: UInt32 = 0, step: UInt64 = 0, sender: Int32) {
        self.kind = kind
        self.runID = runID
        self.epoch = epoch
        self.sequence = sequence
        self.step = step
        self.sender = sender
    }
}

/// A header and its payload as one ZeroMQ frame.
public struct WireMessage: Sendable, Equatable {
    public var header: WireHeader
    public var payload: [UInt8]

    public init(_ header: WireHeader, payload: [UInt8] = []) {
        self.header = header
        self.payload = payload
        self.header.payloadLength = UInt64(payload.count)
        self.header.checksum = payload.withUnsafeBytes { self.header.frameChecksum(payload: $0) }
    }

    public func encoded() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: WireHeader.size + payload.count)
        out.withUnsafeMutableBytes { header.write(to: $0) }
        out.replaceSubrange(WireHeader.size..., with: payload)
        return out
    }

    /// Validates everything: size, magic, version, kind, length, checksum. `source` names the peer.
    public static func decode(_ frame: [UInt8], from source: String) throws -> WireMessage {
        try frame.withUnsafeBytes { raw in
            let (header, payload) = try WireHeader.decode(raw, from: source)
            var message = WireMessage(header, payload: Array(payload))
            message.header.checksum = header.checksum
            return message
        }
    }
}

extension WireHeader {
    /// Writes the 56 header bytes at the start of `buffer` (which must be large enough).
    public func write(to buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        func put<T: FixedWidthInteger>(_ v: T) {
            buffer.storeBytes(of: v.littleEndian, toByteOffset: offset, as: T.self)
            offset += MemoryLayout<T>.size
        }
        put(WireHeader.magic); put(WireHeader.version); put(kind.rawValue); put(runID)
        put(epoch); put(sequence); put(step); put(sender); put(UInt32(0))
        put(payloadLength); put(checksum)
    }

    /// The checksum field's value: it covers the payload and every header byte before the field
    /// (48), so a frame damaged anywhere fails it. Set `payloadLength` first.
    public func frameChecksum(payload: UnsafeRawBufferPointer) -> UInt64 {
        withUnsafeTemporaryAllocation(byteCount: WireHeader.size, alignment: 8) { bytes in
            write(to: bytes)
            return Self.frameChecksum(headerBytes: UnsafeRawBufferPointer(rebasing: bytes[..<48]), payload: payload)
        }
    }

    /// The same from the encoded header bytes 0..<48.
    public static func frameChecksum(headerBytes: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> UInt64 {
        wireChecksum(payload) ^ (wireChecksum(headerBytes) &* 0x9E37_79B9_7F4A_7C15)  // odd factor: a bijection
    }

    /// Decodes and validates a frame in place; the payload view is valid as long as `frame`.
    public static func decode(_ frame: UnsafeRawBufferPointer, from source: String) throws -> (WireHeader, UnsafeRawBufferPointer) {
        guard frame.count >= WireHeader.size else {
            throw TransportError.malformed("\(frame.count)-byte frame from \(source) is shorter than a header")
        }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: frame.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        guard get(0, UInt32.self) == WireHeader.magic else {
            throw TransportError.malformed("bad magic number from \(source) (not a resnet-ddp peer?)")
        }
        let version = get(4, UInt16.self)
        guard version == WireHeader.version else {
            throw TransportError.malformed("protocol version \(version) from \(source); this build speaks \(WireHeader.version)")
        }
        guard let kind = MessageKind(rawValue: get(6, UInt16.self)) else {
            throw TransportError.malformed("unknown message kind \(get(6, UInt16.self)) from \(source)")
        }
        guard get(36, UInt32.self) == 0 else {
            throw TransportError.malformed("\(kind) from \(source) has a non-zero reserved field")
        }
        var header = WireHeader(
            kind: kind, runID: get(8, UInt64.self), epoch: get(16, UInt32.self),
            sequence: get(20, UInt32.self), step: get(24, UInt64.self), sender: get(32, Int32.self))
        header.payloadLength = get(40, UInt64.self)
        header.checksum = get(48, UInt64.self)
        guard header.payloadLength <= WireHeader.maxPayload,
            header.payloadLength == UInt64(frame.count - WireHeader.size)
        else {
            throw TransportError.malformed(
                "\(kind) from \(source) declares \(header.payloadLength) payload bytes "
                    + "but carries \(frame.count - WireHeader.size)")
        }
        let payload = UnsafeRawBufferPointer(rebasing: frame[WireHeader.size...])
        guard WireHeader.frameChecksum(headerBytes: UnsafeRawBufferPointer(rebasing: frame[..<48]), payload: payload) == header.checksum else {
            throw TransportError.malformed("\(kind) from \(source) fails its checksum (corrupted in transit?)")
        }
        return (header, payload)
    }
}

/// Control payloads: a JSON document plus an optional binary blob:
/// `json length u32 | JSON | binary`.
public enum ControlPayload {
    public static func encode<T: Encodable>(_ value: T, binary: [UInt8] = []) throws -> [UInt8] {
        let json = try JSONEncoder().encode(value)
        var out = [UInt8]()
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        out.append(contentsOf: binary)
        return out
    }

    public static func decode<T: Decodable>(_ type: T.Type, from payload: [UInt8], source: String) throws -> (T, [UInt8]) {
        guard payload.count >= 4 else { throw TransportError.malformed("payload from \(source) is too short") }
        let length = Int(payload.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
        guard length <= payload.count - 4 else {
            throw TransportError.malformed("payload from \(source) declares \(length) JSON bytes but has \(payload.count - 4)")
        }
        do {
            let value = try JSONDecoder().decode(T.self, from: Data(payload[4..<(4 + length)]))
            return (value, Array(payload[(4 + length)...]))
        } catch {
            throw TransportError.malformed("undecodable \(T.self) from \(source): \(error)")
        }
    }
}

extension ZMQSocket {
    /// Sends `header` + `payload` as one frame (length and checksum filled in), with one copy.
    public func send(
        _ header: WireHeader, payload: UnsafeRawBufferPointer, timeout: Double, to peer: String,
        whileWaiting: () throws -> Void = {}
    ) throws {
        var header = header
        header.payloadLength = UInt64(payload.count)
        header.checksum = header.frameChecksum(payload: payload)
        try send(headerSize: WireHeader.size, payload: payload, timeout: timeout, to: peer, whileWaiting: whileWaiting) {
            header.write(to: $0)
        }
    }
}
