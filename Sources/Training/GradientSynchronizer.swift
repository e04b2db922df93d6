import Layers

/// Makes the gradients (and batch-norm state) of all replicas equal before the SGD update: it
/// sums `store.gradientAccumulators` (fixed point, so the sum is exact) over the replicas.
/// A single process is a world of one: `LocalSynchronizer` does nothing. The distributed trainer
/// plugs in an all-reduce here, so the training loop has no `if distributed` branch.
///
/// A step calls `beginStep`, then `gradientsFinished` as the backward pass finishes gradients
/// (from the end of the buffer towards its start, so a synchronizer may start sending them while
/// the rest is computed), then `synchronize`.
public protocol GradientSynchronizer {
    func beginStep(_ store: ParameterStore)
    /// `store.gradientAccumulators[offset...]` will not change again this step.
    func gradientsFinished(_ store: ParameterStore, from offset: Int) throws
    func synchronize(_ store: ParameterStore) throws
}

extension GradientSynchronizer {
    public func beginStep(_ store: ParameterStore) {}
    public func gradientsFinished(_ store: ParameterStore, from offset: Int) throws {}
}

public struct LocalSynchronizer: GradientSynchronizer {
    public init() {}
    public func synchronize(_ store: ParameterStore) throws {}
}
