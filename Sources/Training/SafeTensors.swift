import Foundation

/// The safetensors format (what PyTorch and most of the ecosystem read): an 8-byte little-endian
/// header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw
/// little-endian data. Only what our weights need: F32 tensors, and I64 scalars (PyTorch's
/// `num_batches_tracked`). Files are untrusted input: every field is checked before use.
public enum SafeTensors {
    public enum Values: Sendable, Equatable {
        case float32([Float])
        case int64([Int64])

        var dtype: String {
            switch self {
            case .float32: "F32"
            case .int64: "I64"
            }
        }
        var width: Int {
            switch self {
            case .float32: 4
            case .int64: 8
            }
        }
        var count: Int {
            switch self {
            case .float32(let values): values.count
            case .int64(let values): values.count
            }
        }
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var values: Values

        public init(name: String, shape: [Int], values: Values) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// A header larger than this is refused before it is read (ours are a few KB).
    public static let maximumHeaderBytes = 16 << 20

    /// The file's bytes: tensors in the order given, the header's keys sorted, padded with spaces
    /// to a multiple of 8 bytes, so that the same tensors always give the same bytes.
    public static func encode(_ tensors: [Tensor], metadata: [String: String]) -> Data {
        var entries: [(String, String)] = []
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.values.count * tensor.values.width
            entries.append(
                (
                    tensor.name,
                    #"{"dtype":"\#(tensor.values.dtype)","shape":[\#(tensor.shape.map(String.init).joined(separator: ","))],"#
                        + #""data_offsets":[\#(offset),\#(offset + bytes)]}"#
                ))
            offset += bytes
        }
        if !metadata.isEmpty {
            let fields = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            entries.append(("__metadata__", "{" + fields.joined(separator: ",") + "}"))
        }
        var header = Array(("{" + entries.sorted { $0.0 < $1.0 }.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var data = Data()
        data.appendLittleEndian(UInt64(header.count))
        data.append(contentsOf: header)
        for tensor in tensors {
            switch tensor.values {
            case .float32(let values): for value in values { data.appendLittleEndian(value.bitPattern) }
            case .int64(let values): for value in values { data.appendLittleEndian(value) }
            }
        }
        return data
    }

    /// Reads a file's tensors (in the order of their data) and metadata; throws naming the problem.
    public static func decode(_ data: Data, source: String) throws -> (tensors: [Tensor], metadata: [String: String]) {
        func fail(_ message: String) -> SafeTensorsError { .malformed("\(source): \(message)") }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw fail("\(bytes.count) bytes: too short for the 8-byte header length") }
        let declared = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard declared <= UInt64(min(maximumHeaderBytes, bytes.count - 8)) else {
            throw fail("the header length \(declared) exceeds the file (\(bytes.count) bytes) or \(maximumHeaderBytes) bytes")
        }
        let headerEnd = 8 + Int(declared)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])), let header = object as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let raw = header["__metadata__"] {
            guard let fields = raw as? [String: Any], let strings = fields as? [String: String] else {
                throw fail("__metadata__ must map strings to strings")
            }
            metadata = strings
        }
        let buffer = bytes[headerEnd...]
        var located: [(range: Range<Int>, tensor: Tensor)] = []
        for (name, raw) in header where name != "__metadata__" {
            guard let entry = raw as? [String: Any], let dtype = entry["dtype"] as? String,
                let shapeNumbers = entry["shape"] as? [NSNumber], let offsets = entry["data_offsets"] as? [NSNumber], offsets.count == 2
            else {
                throw fail("tensor '\(name)' needs dtype, shape and two data_offsets")
            }
            guard (shapeNumbers + offsets).allSatisfy({ $0.doubleValue == Double($0.intValue) }) else {
                throw fail("tensor '\(name)': shape and data_offsets must be integers")
            }
            let shape = shapeNumbers.map(\.intValue), begin = offsets[0].intValue, end = offsets[1].intValue
            guard shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 30 }), begin >= 0, begin <= end, end <= buffer.count else {
                throw fail("tensor '\(name)': shape \(shape) or data_offsets [\(begin), \(end)] outside the \(buffer.count) data bytes")
            }
            let (count, overflow) = shape.reduce((1, false)) { result, dimension in
                let product = result.0.multipliedReportingOverflow(by: dimension)
                return (product.partialValue, result.1 || product.overflow)
            }
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "I64": width = 8
            default: throw fail("tensor '\(name)' has dtype \(dtype); only F32 (and I64 for num_batches_tracked) are read")
            }
            guard !overflow, count <= (end - begin) / width, count * width == end - begin else {
                throw fail(
                    "tensor '\(name)' of shape \(shape) needs \(overflow ? "too many" : String(count * width)) bytes, "
                        + "its data_offsets give \(end - begin)")
            }
            let slice = buffer[(headerEnd + begin)..<(headerEnd + end)]
            let values: Values = slice.withUnsafeBytes { raw in
                width == 4
                    ? .float32(
                        (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) })
                    : .int64((0..<count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) })
            }
            located.append((begin..<end, Tensor(name: name, shape: shape, values: values)))
        }
        // The data must be covered exactly, without overlaps or holes (as the format requires).
        located.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var covered = 0
        for (range, tensor) in located {
            guard range.lowerBound == covered else {
                throw fail("tensor '\(tensor.name)' starts at byte \(range.lowerBound) of the data, expected \(covered) (overlap or hole)")
            }
            covered = range.upperBound
        }
        guard covered == buffer.count else { throw fail("\(buffer.count - covered) data bytes belong to no tensor") }
        return (located.map(\.tensor), metadata)
    }

    private static func jsonString(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    case mismatch(String)

    public var description: String {
        switch self {
        case .malformed(let message): "not a valid safetensors file: \(message)"
        case .mismatch(let message): "the weights do not fit: \(message)"
        }
    }
}
