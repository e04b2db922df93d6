import Foundation

/// CIFAR-10 as the trainer uses it: the training images (optionally minus a validation split
/// taken from the end of the 50,000: the last `validation` images, as in the paper's 45k/5k),
/// the test images, and the per-pixel mean of the training images.
public struct CIFAR10: Sendable {
    public let train: LabeledImages
    public let validation: LabeledImages?
    public let test: LabeledImages
    /// Per-pixel mean of `train`, HWC, in [0, 1] units (pixel / 255).
    public let meanImage: [Float]

    public init(train: LabeledImages, validation: LabeledImages?, test: LabeledImages) {
        self.train = train
        self.validation = validation
        self.test = test
        meanImage = Self.mean(of: train)
    }

    /// Loads the five training files and the test file from `directory`.
    public static func load(directory: String, validation: Int = 0) throws -> CIFAR10 {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CIFARError.directoryMissing(directory)
        }
        let path = { (name: String) in URL(fileURLWithPath: directory).appendingPathComponent(name).path }
        let all = try LabeledImages.read(files: CIFARFormat.trainingFiles.map(path))
        let test = try LabeledImages.read(files: [path(CIFARFormat.testFile)])
        return try split(all, validation: validation, test: test)
    }

    /// Holds out the last `validation` training images.
    public static func split(_ all: LabeledImages, validation: Int, test: LabeledImages) throws -> CIFAR10 {
        guard validation >= 0, validation < all.count else {
            throw CIFARError.invalidSplit("--validation \(validation) must be between 0 and \(all.count - 1)")
        }
        if validation == 0 { return CIFAR10(train: all, validation: nil, test: test) }
        return CIFAR10(
            train: all.slice(0..<(all.count - validation)),
            validation: all.slice((all.count - validation)..<all.count), test: test)
    }

    static func mean(of images: LabeledImages) -> [Float] {
        let n = CIFARFormat.pixelsPerImage
        var sums = [Int](repeating: 0, count: n)
        images.pixels.withUnsafeBufferPointer { p in
            for image in 0..<images.count {
                for i in 0..<n { sums[i] += Int(p[image * n + i]) }
            }
        }
        let scale = 1 / (255 * Double(max(images.count, 1)))
        return sums.map { Float(Double($0) * scale) }
    }
}
