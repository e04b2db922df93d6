import Layers

/// Makes the gradients (and batch-norm state) of all replicas equal before the SGD update: it
/// sums `store.gradientAccumulators` (fixed point, so the sum is exact) over the replicas.
/// A single process is a world of one: `LocalSynchronizer` does nothing. The distributed trainer
/// plugs in an all-reduce here, so the training loop has no `if distributed` branch.
public protocol GradientSynchronizer {
    func synchronize(_ store: ParameterStore) throws
}

public struct LocalSynchronizer: GradientSynchronizer {
    public init() {}
    public func synchronize(_ store: ParameterStore) throws {}
}
