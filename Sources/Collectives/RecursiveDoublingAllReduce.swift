/// The recursive-doubling all-reduce (latency-optimal for small vectors). With p the largest
/// power of two <= size and e = size - p: first each even rank below 2e hands its vector to the
/// odd rank above it and sits out; the p remaining ranks, renumbered 0..<p, exchange whole
/// vectors with the rank whose number differs in bit k, for k = 0, 1, ..., log2(p) - 1, adding
/// what they receive; last, each odd rank below 2e sends the sum back to its even neighbour.
/// That is log2(p) sequential exchanges (+ 2 when size is not a power of two) against the
/// ring's 2 (size - 1) hops.
struct RecursiveDoublingAllReduce {
    let communicator: any Communicator

    init(_ communicator: any Communicator) { self.communicator = communicator }

    /// This rank's first message of the sum (its peer and round), when it needs none from a peer
    /// before it (all but the odd ranks that fold in an even neighbour): sent by `start`, then
    /// skipped by `sum(firstSendDone:)`.
    private var firstMessage: (peer: Int, round: Int)? {
        let size = communicator.size, rank = communicator.rank
        var powerOfTwo = 1
        while powerOfTwo * 2 <= size { powerOfTwo *= 2 }
        let extra = size - powerOfTwo
        if rank < 2 * extra { return rank % 2 == 0 ? (rank + 1, 0) : nil }
        guard powerOfTwo > 1 else { return nil }
        let partner = (rank - extra) ^ 1
        return (partner < extra ? 2 * partner + 1 : partner + extra, 1)
    }

    /// Sends this rank's first message if it can go before any arrives; returns whether it did.
    func start(_ values: UnsafeBufferPointer<Int64>, sequence: UInt32) throws -> Bool {
        guard let first = firstMessage else { return false }
        try communicator.send(UnsafeRawBufferPointer(values), to: first.peer, tag: collectiveTag(sequence: sequence, round: first.round))
        return true
    }

    func sum(_ values: UnsafeMutableBufferPointer<Int64>, sequence: UInt32, firstSendDone: Bool = false) throws {
        let size = communicator.size, rank = communicator.rank
        var skipsSend = firstSendDone
        var powerOfTwo = 1
        while powerOfTwo * 2 <= size { powerOfTwo *= 2 }
        let extra = size - powerOfTwo
        let bytes = values.count * 8
        var round = 0
        func tag() -> UInt32 { collectiveTag(sequence: sequence, round: round) }
        func send(to peer: Int) throws {
            if skipsSend {
                skipsSend = false
                return
            }
            try communicator.send(UnsafeRawBufferPointer(values), to: peer, tag: tag())
        }
        func add(from peer: Int) throws {
            try communicator.receive(from: peer, tag: tag(), expectedBytes: bytes) { raw in
                for i in 0..<values.count { values[i] &+= Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            }
        }

        // Fold the ranks beyond the power of two into their odd neighbours.
        if rank < 2 * extra {
            if rank % 2 == 0 {
                try send(to: rank + 1)
                round = 1 + powerOfTwo.trailingZeroBitCount
                try communicator.receive(from: rank + 1, tag: tag(), expectedBytes: bytes) { raw in
                    UnsafeMutableRawPointer(values.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
                }
                return
            }
            try add(from: rank - 1)
        }
        let virtualRank = rank < 2 * extra ? rank / 2 : rank - extra
        func realRank(_ virtual: Int) -> Int { virtual < extra ? 2 * virtual + 1 : virtual + extra }
        var mask = 1
        while mask < powerOfTwo {
            round += 1
            let partner = realRank(virtualRank ^ mask)
            try send(to: partner)
            try add(from: partner)
            mask <<= 1
        }
        if rank < 2 * extra {
            round += 1
            try send(to: rank - 1)
        }
    }
}
