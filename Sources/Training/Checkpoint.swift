import Foundation

/// A training state on disk:
///
///     "RDDPCKPT" | version u32 | header length u32 | header JSON | parameters f32 | momentum f32 |
///     batch-norm state f32 | FNV-1a 64 checksum of everything before it (u64)
///
/// all little-endian. The header holds the configuration, the step and the three counts, so a
/// file is checked completely (magic, version, lengths, checksum, model shape) before use.
public struct Checkpoint: Sendable, Equatable {
    public static let magic = Array("RDDPCKPT".utf8)
    public static let version: UInt32 = 1

    public struct Header: Codable, Sendable, Equatable {
        public var configuration: TrainingConfiguration
        /// Steps completed.
        public var step: Int
        public var parameterCount: Int
        public var momentumCount: Int
        public var stateCount: Int
    }

    public var configuration: TrainingConfiguration
    public var step: Int
    public var parameters: [Float]
    public var momentum: [Float]
    public var state: [Float]

    public init(configuration: TrainingConfiguration, step: Int, state: ModelState) {
        self.init(
            configuration: configuration, step: step, parameters: state.parameters, momentum: state.momentum,
            state: state.state)
    }

    public var modelState: ModelState { ModelState(parameters: parameters, momentum: momentum, state: state) }

    public init(configuration: TrainingConfiguration, step: Int, parameters: [Float], momentum: [Float], state: [Float]) {
        self.configuration = configuration
        self.step = step
        self.parameters = parameters
        self.momentum = momentum
        self.state = state
    }

    public func encoded() throws -> Data {
        let header = Header(
            configuration: configuration, step: step, parameterCount: parameters.count,
            momentumCount: momentum.count, stateCount: state.count)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(header)
        var data = Data(Self.magic)
        data.appendLittleEndian(Self.version)
        data.appendLittleEndian(UInt32(json.count))
        data.append(json)
        for values in [parameters, momentum, state] {
            values.withUnsafeBufferPointer {
                data.append(
                    UnsafeBufferPointer(
                        start: UnsafeRawPointer($0.baseAddress!)
                            .assumingMemoryBound(to: UInt8.self), count: $0.count * 4))
            }
        }
        data.appendLittleEndian(fnv1a64(data))
        return data
    }

    public static func decode(_ data: Data, source: String) throws -> Checkpoint {
        func fail(_ reason: String) -> CheckpointError { .invalid(source, reason) }
        let prefix = magic.count + 8
        guard data.count >= prefix + 8 else { throw fail("file is too short (\(data.count) bytes) to be a checkpoint") }
        guard Array(data.prefix(magic.count)) == magic else { throw fail("not a resnet-ddp checkpoint (wrong magic number)") }
        let version: UInt32 = data.littleEndian(at: magic.count)
        guard version == Self.version else {
            throw fail("checkpoint format version \(version); this build reads version \(Self.version)")
        }
        let stored: UInt64 = data.littleEndian(at: data.count - 8)
        guard stored == fnv1a64(data.prefix(data.count - 8)) else {
            throw fail("checksum mismatch (the file is corrupt or was truncated)")
        }
        let headerLength = Int(data.littleEndian(at: magic.count + 4) as UInt32)
        guard prefix + headerLength <= data.count - 8 else { throw fail("header length \(headerLength) exceeds the file") }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data.subdata(in: prefix..<(prefix + headerLength)))
        } catch {
            throw fail("unreadable header: \(error)")
        }
        // A checksum proves nothing about intent: every field is checked before it sizes anything.
        let counts = [header.parameterCount, header.momentumCount, header.stateCount]
        guard counts.allSatisfy({ $0 >= 0 && $0 <= data.count / 4 }),
            prefix + headerLength + counts.reduce(0, +) * 4 + 8 == data.count
        else {
            throw fail("payload size does not match the header's counts \(counts)")
        }
        guard header.step >= 0 else { throw fail("negative step \(header.step)") }
        let problems = header.configuration.validationErrors()
        guard problems.isEmpty else { throw fail("stored configuration is invalid: \(problems.joined(separator: "; "))") }
        guard header.step <= header.configuration.iterations else {
            throw fail("step \(header.step) is past the run's \(header.configuration.iterations) iterations")
        }
        let architecture = try header.configuration.architecture()
        guard header.parameterCount == architecture.parameterCount, header.momentumCount == architecture.parameterCount,
            header.stateCount == architecture.stateCount
        else {
            throw fail(
                "counts \(counts) do not fit \(architecture.name) (\(architecture.parameterCount) parameters and "
                    + "momenta, \(architecture.stateCount) batch-norm statistics)")
        }
        var offset = prefix + headerLength
        func floats(_ count: Int) -> [Float] {
            defer { offset += count * 4 }
            return data.subdata(in: offset..<(offset + count * 4)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return Checkpoint(
            configuration: header.configuration, step: header.step, parameters: floats(counts[0]),
            momentum: floats(counts[1]), state: floats(counts[2]))
    }
}

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case invalid(String, String)
    case noneFound(String)
    case mismatch(String, String)
    case io(String, String)

    public var description: String {
        switch self {
        case .invalid(let path, let reason): "checkpoint \(path) is unusable: \(reason)"
        case .noneFound(let directory): "no valid checkpoint in \(directory)"
        case .mismatch(let path, let reason): "checkpoint \(path) does not fit this model: \(reason)"
        case .io(let path, let reason): "cannot write checkpoint \(path): \(reason)"
        }
    }
}

/// FNV-1a, 64 bit: small, dependency-free, and enough to catch corruption and truncation. The
/// one hash of the project: checkpoints, parameter hashes and the dataset fingerprint.
public struct FNV1a64 {
    static let prime: UInt64 = 0x0000_0100_0000_01B3
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    public mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= Self.prime
        }
        value = hash
    }

    /// FNV-1a over 8-byte little-endian words (the tail byte by byte): a different hash from
    /// `combine`, about 8x faster, for fingerprints of large buffers such as the dataset.
    public mutating func combineWords(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        let words = bytes.count / 8
        for index in 0..<words {
            hash ^= UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
            hash &*= Self.prime
        }
        for byte in bytes[(words * 8)...] {
            hash ^= UInt64(byte)
            hash &*= Self.prime
        }
        value = hash
    }
}

public func fnv1a64<D: DataProtocol>(_ data: D) -> UInt64 {
    var hash = FNV1a64()
    for region in data.regions { region.withUnsafeBytes { hash.combine($0) } }
    return hash.value
}

extension Data {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    func littleEndian<T: FixedWidthInteger>(at offset: Int) -> T {
        T(
            littleEndian: subdata(in: (startIndex + offset)..<(startIndex + offset + MemoryLayout<T>.size))
                .withUnsafeBytes { $0.loadUnaligned(as: T.self) })
    }
}
