import CIFAR
import Foundation
import Training

/// A worker's local copy of CIFAR-10, with a fingerprint the coordinator compares across workers.
struct DatasetFiles {
    let train: LabeledImages
    let test: LabeledImages
    let info: ControlMessage.DatasetInfo

    static func load(directory: String) throws -> DatasetFiles {
        let all = try CIFAR10.load(directory: directory, validation: 0)
        var hash = FNV1a64()
        for set in [all.train, all.test] {
            for bytes in [set.pixels, set.labels] { bytes.withUnsafeBytes { hash.combineWords($0) } }
        }
        return DatasetFiles(
            train: all.train, test: all.test,
            info: .init(fingerprint: hex(hash.value), trainImages: all.train.count, testImages: all.test.count))
    }
}
