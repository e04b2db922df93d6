import Foundation

/// Images as bytes in HWC order (32 x 32 x RGB), with their labels 0-9.
public struct LabeledImages: Sendable {
    public let pixels: [UInt8]  // [count][32][32][3]
    public let labels: [UInt8]

    public var count: Int { labels.count }

    public init(pixels: [UInt8], labels: [UInt8]) {
        precondition(pixels.count == labels.count * CIFARFormat.pixelsPerImage, "pixels do not match labels")
        self.pixels = pixels
        self.labels = labels
    }

    /// Reads CIFAR-10 binary files, validating size and labels, and converts planes to HWC.
    public static func read(files paths: [String]) throws -> LabeledImages {
        var pixels = [UInt8](), labels = [UInt8]()
        pixels.reserveCapacity(paths.count * CIFARFormat.recordsPerFile * CIFARFormat.pixelsPerImage)
        for path in paths {
            try decode(readFile(path), source: path, records: CIFARFormat.recordsPerFile, pixels: &pixels, labels: &labels)
        }
        return LabeledImages(pixels: pixels, labels: labels)
    }

    /// Decodes one file's bytes, which must hold exactly `records` records (label byte, then the
    /// red, green and blue 32 x 32 planes), appending HWC pixels and labels.
    public static func decode(
        _ data: Data, source: String, records: Int,
        pixels: inout [UInt8], labels: inout [UInt8]
    ) throws {
        guard data.count == records * CIFARFormat.recordBytes else {
            throw CIFARError.wrongSize(source, bytes: data.count)
        }
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            let plane = CIFARFormat.side * CIFARFormat.side
            for record in 0..<records {
                let base = record * CIFARFormat.recordBytes
                let label = bytes[base]
                guard label < 10 else { throw CIFARError.labelOutOfRange(source, record: record, label: Int(label)) }
                labels.append(label)
                for p in 0..<plane {
                    pixels.append(bytes[base + 1 + p])
                    pixels.append(bytes[base + 1 + plane + p])
                    pixels.append(bytes[base + 1 + 2 * plane + p])
                }
            }
        }
    }

    private static func readFile(_ path: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw CIFARError.fileMissing(path)
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CIFARError.unreadable(path, error.localizedDescription)
        }
    }

    /// Images `range` as a new set.
    public func slice(_ range: Range<Int>) -> LabeledImages {
        let n = CIFARFormat.pixelsPerImage
        return LabeledImages(
            pixels: Array(pixels[(range.lowerBound * n)..<(range.upperBound * n)]),
            labels: Array(labels[range]))
    }
}
