/// Sums batch-norm statistics over the replicas of a distributed run (synchronized batch norm).
/// Values are fixed-point integers, so the sum is exact and the same on every replica.
public protocol StatisticsReducer: AnyObject {
    func allReduce(_ values: inout [Int64]) throws
}
