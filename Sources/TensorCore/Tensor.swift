/// Float32 storage aligned to 64 bytes (one AVX-512 register), zero-filled.
/// A reference type so that layers can keep and reuse their buffers across steps.
public final class FloatStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        precondition(count >= 0, "negative storage size")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// A dense Float32 tensor. Activations are NHWC: `[batch, height, width, channels]`,
/// so one pixel's channels are contiguous and a 16-channel block is one SIMD16 vector.
public struct Tensor: Sendable {
    public let shape: [Int]
    public let storage: FloatStorage

    public init(shape: [Int]) {
        self.shape = shape
        storage = FloatStorage(count: shape.reduce(1, *))
    }

    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    public var count: Int { shape.reduce(1, *) }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: storage.pointer, count: count) }
    public func toArray() -> [Float] { Array(buffer) }

    /// Batch, height, width, channels of an NHWC tensor.
    public var nhwc: (n: Int, h: Int, w: Int, c: Int) {
        precondition(shape.count == 4, "expected an NHWC tensor, got shape \(shape)")
        return (shape[0], shape[1], shape[2], shape[3])
    }

    public func fill(_ value: Float) { storage.pointer.update(repeating: value, count: count) }

    /// Returns `existing` when it already has `shape`, else a new zeroed tensor:
    /// layers call this so that steady-state training allocates nothing.
    public static func reusing(_ existing: Tensor?, shape: [Int]) -> Tensor {
        if let existing, existing.shape == shape { return existing }
        return Tensor(shape: shape)
    }
}
