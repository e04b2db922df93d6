/// Sum of an Int64 vector over all ranks (wrapping addition, so the result is exact, independent
/// of the order of additions, and so bitwise the same whichever algorithm computes it).
///
/// Small vectors (batch-norm statistics: latency-bound) go by recursive doubling, ceil(log2 W)
/// exchanges of the whole vector (plus two for the ranks beyond a power of two); large ones
/// (gradients: bandwidth-bound) by the ring, 2 (W-1) hops of 1/W of the vector each.
public struct AllReduce {
    public enum Algorithm: String, CaseIterable, Sendable {
        case automatic, ring, recursiveDoubling = "doubling"
    }

    /// Most ranks: the tags number rounds in 8 bits, and the ring takes 2 (W-1) - 1 of them.
    public static let maximumRanks = 128

    /// Largest vector sent by recursive doubling under `.automatic`.
    public static let smallVectorLimit = 512

    public let communicator: any Communicator
    public let algorithm: Algorithm

    public init(_ communicator: any Communicator, algorithm: Algorithm = .automatic) {
        self.communicator = communicator
        self.algorithm = algorithm
    }

    /// `sequence` distinguishes collectives within a step; it is carried in every message's tag.
    public func sum(_ values: inout [Int64], sequence: UInt32) throws {
        try values.withUnsafeMutableBufferPointer { try sum($0, sequence: sequence) }
    }

    /// The first half of a split sum: sends this rank's first message when the algorithm allows it
    /// before any arrives (recursive doubling), and returns whether it did; then
    /// `sum(_:sequence:firstSendDone:)` with the same values and sequence does the rest. The result
    /// is the same as `sum` alone.
    public func start(_ values: [Int64], sequence: UInt32) throws -> Bool {
        guard communicator.size > 1, usesDoubling(values.count) else { return false }
        return try values.withUnsafeBufferPointer { try RecursiveDoublingAllReduce(communicator).start($0, sequence: sequence) }
    }

    public func sum(_ values: inout [Int64], sequence: UInt32, firstSendDone: Bool) throws {
        try values.withUnsafeMutableBufferPointer { try sum($0, sequence: sequence, firstSendDone: firstSendDone) }
    }

    private func usesDoubling(_ count: Int) -> Bool {
        switch algorithm {
        case .automatic: count <= Self.smallVectorLimit
        case .ring: false
        case .recursiveDoubling: true
        }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Int64>, sequence: UInt32, firstSendDone: Bool = false) throws {
        if communicator.size == 1 { return }
        precondition(communicator.size <= Self.maximumRanks, "more ranks than the tag space")
        precondition(!firstSendDone || usesDoubling(values.count), "only recursive doubling starts a sum early")
        if usesDoubling(values.count) {
            try RecursiveDoublingAllReduce(communicator).sum(values, sequence: sequence, firstSendDone: firstSendDone)
        } else {
            try RingAllReduce(communicator).sum(values, sequence: sequence)
        }
    }
}
