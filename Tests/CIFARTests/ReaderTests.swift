import CIFAR
import Foundation
import TestSupport
import Testing

@Suite struct ReaderTests {
    private func temporaryDirectory() throws -> URL { URL(fileURLWithPath: TestSupport.temporaryDirectory()) }

    /// A well-formed batch file whose record i has label i % 10 and pixels (i + p) % 256.
    private func syntheticFile(records: Int = CIFARFormat.recordsPerFile) -> Data {
        var bytes = [UInt8](repeating: 0, count: records * CIFARFormat.recordBytes)
        for r in 0..<records {
            bytes[r * CIFARFormat.recordBytes] = UInt8(r % 10)
            for p in 0..<CIFARFormat.pixelsPerImage { bytes[r * CIFARFormat.recordBytes + 1 + p] = UInt8((r + p) % 256) }
        }
        return Data(bytes)
    }

    @Test func readsPlanesIntoHWC() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.bin").path
        try syntheticFile().write(to: URL(fileURLWithPath: path))
        let images = try LabeledImages.read(files: [path])
        #expect(images.count == 10_000)
        #expect(images.labels[13] == 3)
        // Record 2, pixel 5: R at plane offset 5, G at 1024 + 5, B at 2048 + 5.
        let base = 2 * CIFARFormat.pixelsPerImage + 5 * 3
        #expect(Array(images.pixels[base..<base + 3]) == [UInt8((2 + 5) % 256), UInt8((2 + 1029) % 256), UInt8((2 + 2053) % 256)])
    }

    @Test func missingFileIsNamed() {
        #expect(throws: CIFARError.fileMissing("/nonexistent/data_batch_1.bin")) {
            try LabeledImages.read(files: ["/nonexistent/data_batch_1.bin"])
        }
        #expect(throws: CIFARError.directoryMissing("/nonexistent")) { try CIFAR10.load(directory: "/nonexistent") }
    }

    @Test func truncatedFileIsRejected() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("short.bin").path
        try syntheticFile().prefix(3073 * 10_000 - 100).write(to: URL(fileURLWithPath: path))
        #expect(throws: CIFARError.wrongSize(path, bytes: 3073 * 10_000 - 100)) { try LabeledImages.read(files: [path]) }
        let error = CIFARError.wrongSize(path, bytes: 5)
        #expect(error.description.contains(path) && error.description.contains("30730000"))
    }

    @Test func labelOutsideRangeIsRejected() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.bin").path
        var data = syntheticFile()
        data[7 * CIFARFormat.recordBytes] = 11
        try data.write(to: URL(fileURLWithPath: path))
        #expect(throws: CIFARError.labelOutOfRange(path, record: 7, label: 11)) { try LabeledImages.read(files: [path]) }
    }

    @Test func directoryWithoutTestFileIsNamed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in CIFARFormat.trainingFiles { try syntheticFile().write(to: dir.appendingPathComponent(name)) }
        #expect(throws: CIFARError.fileMissing(dir.appendingPathComponent("test_batch.bin").path)) {
            try CIFAR10.load(directory: dir.path)
        }
        try syntheticFile().write(to: dir.appendingPathComponent("test_batch.bin"))
        let data = try CIFAR10.load(directory: dir.path, validation: 5000)
        #expect(data.train.count == 45_000 && data.validation?.count == 5000 && data.test.count == 10_000)
        // The validation split is the last 5,000 training images.
        #expect(data.validation!.labels.first == UInt8(45_000 % 10_000 % 10))
        #expect(throws: CIFARError.self) { try CIFAR10.load(directory: dir.path, validation: 50_000) }
    }

    @Test(.enabled(if: realDataDirectory != nil, "real CIFAR-10 not found (run scripts/fetch-cifar10)"))
    func realFilesMatchProvenance() throws {
        let train = try LabeledImages.read(files: [realDataFile("data_batch_1.bin")])
        #expect(Array(train.labels.prefix(10)) == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3])
        var counts = [Int](repeating: 0, count: 10)
        for label in train.labels { counts[Int(label)] += 1 }
        #expect(counts == [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981])
        // Red channel of the first row of image 0 (HWC: every third byte).
        #expect((0..<10).map { train.pixels[$0 * 3] } == [59, 43, 50, 68, 98, 119, 139, 145, 149, 149])
        let test = try LabeledImages.read(files: [realDataFile("test_batch.bin")])
        #expect(Array(test.labels.prefix(10)) == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])
        #expect((0..<10).map { test.pixels[$0 * 3] } == [158, 159, 165, 166, 160, 156, 162, 159, 158, 159])
    }
}
