import Foundation

/// The real CIFAR-10 directory for tests: $CIFAR10_DIR, else the repository's
/// data/cifar-10-batches-bin (put there by scripts/fetch-cifar10); nil when neither has the files.
public let realDataDirectory: String? = {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let candidates: [String?] = [ProcessInfo.processInfo.environment["CIFAR10_DIR"],
                                 repository.appendingPathComponent("data/cifar-10-batches-bin").path]
    return candidates.compactMap { $0 }.first {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: $0).appendingPathComponent("data_batch_1.bin").path)
    }
}()

/// `name` inside the real CIFAR-10 directory (only when `realDataDirectory` is set).
public func realDataFile(_ name: String) -> String {
    URL(fileURLWithPath: realDataDirectory!).appendingPathComponent(name).path
}

/// A new empty directory under the system's temporary directory.
public func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("resnet-ddp-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
