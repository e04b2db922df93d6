import Foundation
import Layers
import Models
import TensorCore
import Testing

/// Compares one training step of ResNet-8 with PyTorch on 4 real CIFAR-10 images: logits, loss,
/// every parameter gradient and the batch-norm running statistics. The fixture comes from
/// `scripts/make-reference-fixture.py`.
@Suite struct PyTorchReferenceTests {
    static func loadFixture() throws -> [String: [Float]] {
        let url = try #require(Bundle.module.url(forResource: "resnet8-reference", withExtension: "bin", subdirectory: "Fixtures"))
        let data = try Data(contentsOf: url)
        var offset = 0
        func uint32() throws -> Int {
            guard offset + 4 <= data.count else { throw CocoaError(.fileReadCorruptFile) }
            defer { offset += 4 }
            return Int(data[offset..<offset + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
        }
        guard data.prefix(4) == Data("RDFX".utf8) else { throw CocoaError(.fileReadCorruptFile) }
        offset = 4
        var entries: [String: [Float]] = [:]
        for _ in 0..<(try uint32()) {
            let nameLength = try uint32()
            let name = String(decoding: data[offset..<offset + nameLength], as: UTF8.self)
            offset += nameLength
            let count = try uint32()
            entries[name] = data[offset..<offset + 4 * count].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            offset += 4 * count
        }
        return entries
    }

    /// Largest |a - b| / (atol + rtol * |b|) and where; <= 1 passes.
    static func compare(_ a: [Float], _ b: [Float], rtol: Float, atol: Float) -> (worst: Float, maxDiff: Float) {
        var worst: Float = 0, maxDiff: Float = 0
        for i in a.indices {
            let diff = abs(a[i] - b[i])
            maxDiff = max(maxDiff, diff)
            worst = max(worst, diff / (atol + rtol * abs(b[i])))
        }
        return (worst, maxDiff)
    }

    @Test(arguments: [1, 2])
    func trainingStepMatchesPyTorch(threads: Int) throws {
        let fixture = try Self.loadFixture()
        let model = ResNet(try Architecture(depth: 8), seed: 0, pool: ComputePool(threads: threads))
        for view in model.store.views {
            let values = try #require(fixture[view.name], "fixture lacks \(view.name)")
            try #require(values.count == view.count, "\(view.name): \(values.count) values for \(view.count)")
            model.store.pointer(view).update(from: values, count: values.count)
        }
        // PyTorch starts running statistics at mean 0, var 1; the fixture holds them after the step.
        for view in model.store.views where view.kind == .state {
            model.store.pointer(view).update(repeating: view.name.hasSuffix("running_var") ? 1 : 0, count: view.count)
        }
        let input = try #require(fixture["input"]), labels = try #require(fixture["labels"]).map { Int($0) }
        model.store.zeroGradients()
        let logits = try model.forward(Tensor(shape: [4, 32, 32, 3], values: input), mode: .training)
        var criterion = SoftmaxCrossEntropy()
        let (result, dLogits) = criterion.evaluate(logits: logits, labels: labels, computeGradient: true)
        try model.backward(dLogits!)
        model.store.resolveGradients()

        let logitCheck = Self.compare(logits.toArray(), try #require(fixture["logits"]), rtol: 1e-4, atol: 1e-4)
        #expect(logitCheck.worst <= 1, "logits max diff \(logitCheck.maxDiff)")
        #expect(abs(result.loss - Double(try #require(fixture["loss"])[0])) < 1e-5)
        for view in model.store.views {
            let name = view.kind == .parameter ? "grad:\(view.name)" : view.name
            let expected = try #require(fixture[name])
            let actual =
                view.kind == .parameter
                ? Array(UnsafeBufferPointer(start: model.store.gradient(view), count: view.count))
                : Array(UnsafeBufferPointer(start: model.store.pointer(view), count: view.count))
            let check = Self.compare(actual, expected, rtol: 1e-3, atol: 1e-5)
            #expect(check.worst <= 1, "\(name): max diff \(check.maxDiff), worst relative \(check.worst)")
        }
    }
}
