import TensorCore

/// Gradient buffers shared by the layers of one model. A layer's backward takes its input
/// gradient from here, and whoever consumes that gradient gives it back when done, so a deep
/// net holds a few gradient tensors per shape instead of one per layer (ResNet-110 at batch 128:
/// about half its training memory). Used from the thread that runs backward only.
public final class TensorArena {
    private var free: [[Int]: [Tensor]] = [:]
    private var owned = Set<ObjectIdentifier>()
    private var available = Set<ObjectIdentifier>()

    public init() {}

    /// A tensor of `shape` with unspecified contents, the caller's until it gives it back.
    public func take(shape: [Int]) -> Tensor {
        if let tensor = free[shape]?.popLast() {
            available.remove(ObjectIdentifier(tensor.storage))
            return tensor
        }
        let tensor = Tensor(shape: shape)
        owned.insert(ObjectIdentifier(tensor.storage))
        return tensor
    }

    /// Returns a tensor taken from this arena; tensors from elsewhere and repeated gives are ignored.
    public func give(_ tensor: Tensor) {
        let id = ObjectIdentifier(tensor.storage)
        guard owned.contains(id), !available.contains(id) else { return }
        available.insert(id)
        free[tensor.shape, default: []].append(tensor)
    }

    /// Tensors this arena has allocated (for tests and memory accounting).
    public var allocatedCount: Int { owned.count }
}
