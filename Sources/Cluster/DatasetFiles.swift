import CIFAR
import Foundation

/// A worker's local copy of CIFAR-10, with a fingerprint the coordinator compares across workers.
struct DatasetFiles {
    let train: LabeledImages
    let test: LabeledImages
    let info: ControlMessage.DatasetInfo

    static func load(directory: String) throws -> DatasetFiles {
        let all = try CIFAR10.load(directory: directory, validation: 0)
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for set in [all.train, all.test] {
            for bytes in [set.pixels, set.labels] {
                bytes.withUnsafeBytes { raw in
                    let words = raw.count / 8
                    for i in 0..<words {
                        hash = (hash ^ raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x0000_0100_0000_01B3
                    }
                    for i in (words * 8)..<raw.count { hash = (hash ^ UInt64(raw[i])) &* 0x0000_0100_0000_01B3 }
                }
            }
        }
        return DatasetFiles(train: all.train, test: all.test,
                            info: .init(fingerprint: hex(hash), trainImages: all.train.count, testImages: all.test.count))
    }
}
