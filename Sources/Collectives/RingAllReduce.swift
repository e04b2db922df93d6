/// Sum of an Int64 vector over all ranks of a ring (wrapping addition, so the result is exact,
/// independent of order, and identical on every rank).
///
/// The vector is cut into `size` chunks, chunk c = [c*n/size, (c+1)*n/size) (sizes differ by at
/// most one; some are empty when n < size). Reduce-scatter: in round s each rank sends chunk
/// (rank - s) and adds the incoming chunk (rank - s - 1), so after size-1 rounds rank r holds
/// the full sum of chunk (r + 1). All-gather: in round s each rank passes on chunk (rank + 1 - s)
/// and stores the incoming chunk (rank - s). Each rank sends 2 (size-1)/size of the vector.
///
/// Vectors of at most `smallVectorLimit` elements (batch-norm statistics) skip the chunking: each
/// rank passes whole vectors around the ring and adds up the size-1 it receives, which halves the
/// number of sequential hops, and with it the latency that dominates small collectives.
public struct RingAllReduce {
    public static let smallVectorLimit = 512

    public let communicator: any Communicator

    public init(_ communicator: any Communicator) { self.communicator = communicator }

    /// `sequence` distinguishes collectives within a step; it is carried in every message's tag.
    public func sum(_ values: inout [Int64], sequence: UInt32) throws {
        try values.withUnsafeMutableBufferPointer { try sum($0, sequence: sequence) }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Int64>, sequence: UInt32) throws {
        let size = communicator.size, rank = communicator.rank
        if size == 1 { return }
        precondition(size < 128, "ring larger than the tag space")
        let n = values.count
        func bounds(_ chunk: Int) -> Range<Int> {
            let c = ((chunk % size) + size) % size
            return (c * n / size)..<((c + 1) * n / size)
        }
        func tag(_ round: Int) -> UInt32 { sequence << 8 | UInt32(round) }
        if n <= Self.smallVectorLimit { return try sumSmall(values, tag: tag) }
        func send(_ chunk: Range<Int>, round: Int) throws {
            try communicator.sendToNext(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(values)[(chunk.lowerBound * 8)..<(chunk.upperBound * 8)]),
                                        tag: tag(round))
        }

        for round in 0..<(size - 1) {
            try send(bounds(rank - round), round: round)
            let target = bounds(rank - round - 1)
            try communicator.receiveFromPrevious(tag: tag(round), expectedBytes: target.count * 8) { raw in
                let base = values.baseAddress! + target.lowerBound
                for i in 0..<target.count { base[i] &+= Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            }
        }
        for round in 0..<(size - 1) {
            let phase = size - 1 + round
            try send(bounds(rank + 1 - round), round: phase)
            let target = bounds(rank - round)
            try communicator.receiveFromPrevious(tag: tag(phase), expectedBytes: target.count * 8) { raw in
                UnsafeMutableRawPointer(values.baseAddress! + target.lowerBound).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            }
        }
    }

    /// size-1 rounds; in each, send the vector received last (first: our own) and add the incoming one.
    private func sumSmall(_ values: UnsafeMutableBufferPointer<Int64>, tag: (Int) -> UInt32) throws {
        var forward = Array(values)
        for round in 0..<(communicator.size - 1) {
            try forward.withUnsafeBytes { try communicator.sendToNext($0, tag: tag(round)) }
            try communicator.receiveFromPrevious(tag: tag(round), expectedBytes: values.count * 8) { raw in
                for i in 0..<values.count {
                    let v = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                    forward[i] = v
                    values[i] &+= v
                }
            }
        }
    }
}
