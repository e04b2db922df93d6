import CIFAR
import Cluster
import Foundation
import Training
import Transport

/// The decoders that read untrusted bytes, as fuzz targets: libFuzzer drives them from
/// `Fuzz/` (scripts/fuzz), and a test replays the committed corpus in `Fuzz/Corpus` on every CI
/// run. Each input must be refused with the decoder's own error type or accepted consistently;
/// anything else (a trap, another error type, a broken invariant) is a finding.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// ZeroMQ frames: header, length and checksum, then the payload as the control message its
    /// kind names.
    case wire
    /// Control payloads (JSON) of every message kind, and the field checks each side applies.
    case control
    /// Checkpoint files: the header JSON and the payload sizes it implies.
    case checkpoint
    /// CIFAR-10 binary records.
    case cifar
    /// safetensors weight files and the import of a model state from them.
    case safetensors

    /// Whether `input` was accepted. Throws a `FuzzFinding` when an input breaks an invariant.
    @discardableResult
    public func run(_ input: [UInt8]) throws -> Bool {
        switch self {
        case .wire: try WireTarget.run(input)
        case .control: try ControlTarget.run(input)
        case .checkpoint: try CheckpointTarget.run(input)
        case .cifar: try CIFARTarget.run(input)
        case .safetensors: try SafeTensorsTarget.run(input)
        }
    }

    /// Valid inputs to start from (the committed corpus is written from these by `scripts/fuzz --seeds`).
    public func seeds() throws -> [[UInt8]] {
        switch self {
        case .wire: try WireTarget.seeds()
        case .control: try ControlTarget.seeds()
        case .checkpoint: try CheckpointTarget.seeds()
        case .cifar: CIFARTarget.seeds()
        case .safetensors: SafeTensorsTarget.seeds()
        }
    }
}

/// An input that a decoder handled wrongly: what happened, for the crash report.
public struct FuzzFinding: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`, counting an error of `Expected` type as a refusal and any other error as a finding.
func refusing<Expected: Error, Value>(_: Expected.Type, _ body: () throws -> Value) throws -> Value? {
    do {
        return try body()
    } catch is Expected {
        return nil
    } catch {
        throw FuzzFinding("expected \(Expected.self), got \(type(of: error)): \(error)")
    }
}

enum WireTarget {
    /// Byte 0 odd: the rest is a frame whose length and checksum fields are made right first, so
    /// mutations reach the payload; even: the rest is the raw frame.
    static func run(_ input: [UInt8]) throws -> Bool {
        guard let mode = input.first else { return false }
        var frame = Array(input.dropFirst())
        if mode & 1 == 1, frame.count >= WireHeader.size {
            let payload = Array(frame[WireHeader.size...])
            withUnsafeBytes(of: UInt64(payload.count).littleEndian) { frame.replaceSubrange(40..<48, with: $0) }
            let checksum = frame.withUnsafeBytes { bytes in
                payload.withUnsafeBytes { WireHeader.frameChecksum(headerBytes: UnsafeRawBufferPointer(rebasing: bytes[..<48]), payload: $0) }
            }
            withUnsafeBytes(of: checksum.littleEndian) { frame.replaceSubrange(48..<56, with: $0) }
        }
        guard let message = try refusing(TransportError.self, { try WireMessage.decode(frame, from: "fuzz") }) else { return false }
        guard message.encoded() == frame else { throw FuzzFinding("an accepted \(message.header.kind) frame re-encodes differently") }
        if let kind = ControlTarget.Kind(message.header.kind) { _ = try ControlTarget.check(kind, payload: message.payload) }
        return true
    }

    static func seeds() throws -> [[UInt8]] {
        ControlTarget.Kind.allCases.map { kind in
            let header = WireHeader(kind: kind.messageKind, runID: 0x1234_5678_9ABC_DEF0, epoch: 2, sequence: 7, step: 40, sender: 1)
            return [1] + WireMessage(header, payload: ControlTarget.payload(kind.sample)).encoded()
        } + [[0] + WireMessage(WireHeader(kind: .ringChunk, runID: 1, sender: 0), payload: Array(repeating: 7, count: 64)).encoded()]
    }
}

enum CIFARTarget {
    /// Byte 0 mod 3 is the number of records the rest must hold.
    static func run(_ input: [UInt8]) throws -> Bool {
        guard let first = input.first else { return false }
        let records = Int(first % 3)
        var pixels = [UInt8](), labels = [UInt8]()
        let decoded: Void? = try refusing(CIFARError.self) {
            try LabeledImages.decode(Data(input.dropFirst()), source: "fuzz", records: records, pixels: &pixels, labels: &labels)
        }
        guard decoded != nil else { return false }
        guard labels.count == records, pixels.count == records * CIFARFormat.pixelsPerImage, labels.allSatisfy({ $0 < 10 }) else {
            throw FuzzFinding("\(records) records decoded to \(labels.count) labels and \(pixels.count) pixels")
        }
        return true
    }

    static func seeds() -> [[UInt8]] {
        let record = [UInt8(3)] + (0..<CIFARFormat.pixelsPerImage).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        return [[1] + record, [0]]
    }
}
