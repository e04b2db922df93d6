import TensorCore

/// How a parameter starts. He initialization is the paper's (He et al. 2015, fan-in).
public enum ParameterInitializer: Sendable, Equatable {
    case he(fanIn: Int)
    case constant(Float)
}

/// A named slice of the parameter buffer (trainable) or of the state buffer
/// (batch-norm running statistics: saved and synchronized, never trained).
public struct ParameterView: Sendable, Equatable {
    public enum Kind: Sendable { case parameter, state }
    public let name: String
    public let kind: Kind
    public let offset: Int
    public let count: Int
    public let initializer: ParameterInitializer
}

/// All parameters in one contiguous buffer, all gradients in another of the same layout, and
/// all running statistics in a third, so that one step all-reduces and updates one buffer.
///
/// Backward passes add their per-image contributions to `gradientAccumulators` in fixed point
/// (`FixedPoint.gradientScale`); that integer buffer is what replicas all-reduce, exactly, before
/// `resolveGradients()` turns it into the Float `gradients` the optimizer reads.
///
/// Layers `reserve` their slices while the model is built; `finalize` then allocates.
public final class ParameterStore {
    /// The model's shared gradient tensors (see `TensorArena`).
    public let gradientBuffers = TensorArena()
    public private(set) var views: [ParameterView] = []
    public private(set) var parameterCount = 0
    public private(set) var stateCount = 0
    private var allocated: (values: FloatStorage, gradients: FloatStorage, state: FloatStorage)?
    private var accumulators: UnsafeMutablePointer<Int64>?

    public init() {}

    deinit { accumulators?.deallocate() }

    public func reserve(
        _ name: String, count: Int, kind: ParameterView.Kind = .parameter,
        initializer: ParameterInitializer
    ) -> ParameterView {
        precondition(allocated == nil, "reserve after finalize")
        let offset = kind == .parameter ? parameterCount : stateCount
        let view = ParameterView(name: name, kind: kind, offset: offset, count: count, initializer: initializer)
        views.append(view)
        if kind == .parameter { parameterCount += count } else { stateCount += count }
        return view
    }

    /// Allocates the buffers and initializes every slice from `seed`.
    public func finalize(seed: UInt64) {
        precondition(allocated == nil, "finalize called twice")
        allocated = (FloatStorage(count: parameterCount), FloatStorage(count: parameterCount), FloatStorage(count: stateCount))
        accumulators = .allocate(capacity: max(parameterCount, 1))
        accumulators!.initialize(repeating: 0, count: max(parameterCount, 1))
        for (index, view) in views.enumerated() {
            let target = pointer(view)
            switch view.initializer {
            case .constant(let value):
                target.update(repeating: value, count: view.count)
            case .he(let fanIn):
                var rng = SplitMix64.stream(seed, UInt64(index))
                let std = (2.0 / Double(fanIn)).squareRoot()
                for i in 0..<view.count { target[i] = Float(rng.nextNormal() * std) }
            }
        }
    }

    private var buffers: (values: FloatStorage, gradients: FloatStorage, state: FloatStorage) {
        guard let allocated else { preconditionFailure("ParameterStore used before finalize") }
        return allocated
    }

    public var values: UnsafeMutableBufferPointer<Float> { .init(start: buffers.values.pointer, count: parameterCount) }
    public var gradients: UnsafeMutableBufferPointer<Float> { .init(start: buffers.gradients.pointer, count: parameterCount) }
    public var state: UnsafeMutableBufferPointer<Float> { .init(start: buffers.state.pointer, count: stateCount) }

    /// Values of a slice (parameters or state, by its kind).
    public func pointer(_ view: ParameterView) -> UnsafeMutablePointer<Float> {
        (view.kind == .parameter ? buffers.values.pointer : buffers.state.pointer) + view.offset
    }

    /// Gradient of a parameter slice (valid after `resolveGradients()`).
    public func gradient(_ view: ParameterView) -> UnsafeMutablePointer<Float> {
        precondition(view.kind == .parameter, "state has no gradient")
        return buffers.gradients.pointer + view.offset
    }

    /// The fixed-point gradient accumulator of a parameter slice, which backward passes add to.
    public func accumulator(_ view: ParameterView) -> UnsafeMutablePointer<Int64> {
        precondition(view.kind == .parameter, "state has no gradient")
        return gradientAccumulators.baseAddress! + view.offset
    }

    public var gradientAccumulators: UnsafeMutableBufferPointer<Int64> {
        guard let accumulators else { preconditionFailure("ParameterStore used before finalize") }
        return .init(start: accumulators, count: parameterCount)
    }

    /// Starts a step: clears the accumulators.
    public func zeroGradients() { gradientAccumulators.update(repeating: 0) }

    /// gradients = accumulators / gradientScale.
    public func resolveGradients() {
        let scale = 1 / FixedPoint.gradientScale
        let g = buffers.gradients.pointer, a = gradientAccumulators
        for i in 0..<parameterCount { g[i] = Float(Double(a[i]) * scale) }
    }
}
