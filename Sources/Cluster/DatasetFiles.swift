import CIFAR
import Foundation
import Training

/// A worker's local copy of CIFAR-10, with a fingerprint the coordinator compares across workers.
public struct DatasetFiles {
    public let train: LabeledImages
    public let test: LabeledImages
    /// What the worker's hello says of it: the fingerprint (FNV-1a of pixels and labels) and sizes.
    public let info: ControlMessage.DatasetInfo

    public static func load(directory: String) throws -> DatasetFiles {
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
