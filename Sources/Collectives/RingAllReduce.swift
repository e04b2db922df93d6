/// The ring all-reduce (bandwidth-optimal). The vector is cut into `size` chunks, chunk c =
/// [c*n/size, (c+1)*n/size) (sizes differ by at most one; some are empty when n < size).
/// Reduce-scatter: in round s each rank sends chunk (rank - s) to the next rank and adds the
/// incoming chunk (rank - s - 1), so after size-1 rounds rank r holds the full sum of chunk
/// (r + 1). All-gather: in round s each rank passes on chunk (rank + 1 - s) and stores the
/// incoming chunk (rank - s). Each rank sends 2 (size-1)/size of the vector.
struct RingAllReduce {
    let communicator: any Communicator

    init(_ communicator: any Communicator) { self.communicator = communicator }

    func sum(_ values: UnsafeMutableBufferPointer<Int64>, sequence: UInt32) throws {
        var reduction = RingReduction(values, sequence: sequence, communicator: communicator)
        _ = try reduction.advance(communicator, waiting: true)
    }
}

/// One ring all-reduce that advances as far as its messages have arrived, so that several can be
/// in flight while the caller computes (the gradient buckets of `OverlappedAllReduce`). The
/// rounds, chunks and tags are exactly those of `RingAllReduce`, which runs one to the end.
struct RingReduction {
    let values: UnsafeMutableBufferPointer<Int64>
    let sequence: UInt32
    private let rank: Int
    private let size: Int
    /// The round whose message is awaited; 2 (size - 1) when done.
    private var round = 0
    private var sentRound = -1

    init(_ values: UnsafeMutableBufferPointer<Int64>, sequence: UInt32, communicator: any Communicator) {
        self.values = values
        self.sequence = sequence
        rank = communicator.rank
        size = communicator.size
    }

    var isComplete: Bool { round >= 2 * (size - 1) }

    private func bounds(_ chunk: Int) -> Range<Int> {
        let c = ((chunk % size) + size) % size
        return (c * values.count / size)..<((c + 1) * values.count / size)
    }

    /// Sends and receives until the sum is complete (true) or, unless `waiting`, until the next
    /// message has not arrived yet (false).
    mutating func advance(_ communicator: any Communicator, waiting: Bool) throws -> Bool {
        while !isComplete {
            let reducing = round < size - 1
            let step = reducing ? round : round - (size - 1)
            let tag = collectiveTag(sequence: sequence, round: round)
            if sentRound < round {
                let chunk = bounds(reducing ? rank - step : rank + 1 - step)
                try communicator.sendToNext(
                    UnsafeRawBufferPointer(
                        rebasing: UnsafeMutableRawBufferPointer(values)[(chunk.lowerBound * 8)..<(chunk.upperBound * 8)]),
                    tag: tag)
                sentRound = round
            }
            let target = bounds(reducing ? rank - step - 1 : rank - step)
            let base = values.baseAddress.map { $0 + target.lowerBound }
            let apply = { (raw: UnsafeRawBufferPointer) in
                guard let base, target.count > 0 else { return }
                if reducing {
                    for i in 0..<target.count { base[i] &+= Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
                } else {
                    UnsafeMutableRawPointer(base).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
                }
            }
            if waiting {
                try communicator.receiveFromPrevious(tag: tag, expectedBytes: target.count * 8, apply)
            } else if !(try communicator.tryReceive(from: communicator.previous, tag: tag, expectedBytes: target.count * 8, apply)) {
                return false
            }
            round += 1
        }
        return true
    }
}
