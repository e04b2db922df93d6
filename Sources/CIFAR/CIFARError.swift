/// What can be wrong with a CIFAR-10 dataset on disk. Every case names the file.
public enum CIFARError: Error, CustomStringConvertible, Equatable {
    case directoryMissing(String)
    case fileMissing(String)
    case unreadable(String, String)
    case wrongSize(String, bytes: Int)
    case labelOutOfRange(String, record: Int, label: Int)
    case invalidSplit(String)

    public var description: String {
        switch self {
        case .directoryMissing(let path):
            "CIFAR-10 directory \(path) does not exist; run scripts/fetch-cifar10 or pass --data DIR"
        case .fileMissing(let path):
            "CIFAR-10 file \(path) is missing; run scripts/fetch-cifar10 or pass --data DIR"
        case .unreadable(let path, let reason):
            "cannot read \(path): \(reason)"
        case .wrongSize(let path, let bytes):
            "\(path) has \(bytes) bytes; a CIFAR-10 batch file has \(CIFARFormat.recordsPerFile) records of "
                + "\(CIFARFormat.recordBytes) bytes = \(CIFARFormat.recordsPerFile * CIFARFormat.recordBytes) bytes "
                + "(truncated or not a CIFAR-10 binary file?)"
        case .labelOutOfRange(let path, let record, let label):
            "\(path), record \(record): label \(label) is outside 0-9 (corrupt file?)"
        case .invalidSplit(let reason):
            reason
        }
    }
}

/// The CIFAR-10 binary layout: per record 1 label byte, then 1024 red, 1024 green, 1024 blue
/// bytes, each plane row-major 32x32.
public enum CIFARFormat {
    public static let side = 32
    public static let channels = 3
    public static let pixelsPerImage = side * side * channels  // 3072
    public static let recordBytes = 1 + pixelsPerImage  // 3073
    public static let recordsPerFile = 10_000
    public static let trainingFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let testFile = "test_batch.bin"
    public static let classNames = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
}
