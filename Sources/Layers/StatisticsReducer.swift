/// Sums batch-norm statistics over the replicas of a distributed run (synchronized batch norm).
/// Values are fixed-point integers, so the sum is exact and the same on every replica.
///
/// A sum may also be split in two: `startAllReduce` sends what needs no message from a peer, the
/// caller computes something independent (a convolution's weight gradient), and
/// `finishAllReduce` completes it, so a slower peer's part arrives while this replica works.
public protocol StatisticsReducer: AnyObject {
    func allReduce(_ values: inout [Int64]) throws
    func startAllReduce(_ values: [Int64]) throws -> StartedReduction
    func finishAllReduce(_ started: StartedReduction, _ values: inout [Int64]) throws
}

/// A sum begun by `startAllReduce`: the collective's number and whether its first message left.
public struct StartedReduction: Sendable, Equatable {
    public let sequence: UInt32
    public let firstSendDone: Bool

    public init(sequence: UInt32, firstSendDone: Bool) {
        self.sequence = sequence
        self.firstSendDone = firstSendDone
    }
}

extension StatisticsReducer {
    /// Reducers that cannot split a sum do all of it in `finishAllReduce`.
    public func startAllReduce(_ values: [Int64]) throws -> StartedReduction {
        StartedReduction(sequence: 0, firstSendDone: false)
    }

    public func finishAllReduce(_ started: StartedReduction, _ values: inout [Int64]) throws {
        try allReduce(&values)
    }
}
