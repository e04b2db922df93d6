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
        let size = communicator.size, rank = communicator.rank
        let n = values.count
        func bounds(_ chunk: Int) -> Range<Int> {
            let c = ((chunk % size) + size) % size
            return (c * n / size)..<((c + 1) * n / size)
        }
        func send(_ chunk: Range<Int>, round: Int) throws {
            try communicator.sendToNext(
                UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(values)[(chunk.lowerBound * 8)..<(chunk.upperBound * 8)]),
                tag: collectiveTag(sequence: sequence, round: round))
        }

        for round in 0..<(size - 1) {
            try send(bounds(rank - round), round: round)
            let target = bounds(rank - round - 1)
            try communicator.receiveFromPrevious(tag: collectiveTag(sequence: sequence, round: round), expectedBytes: target.count * 8) { raw in
                let base = values.baseAddress! + target.lowerBound
                for i in 0..<target.count { base[i] &+= Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            }
        }
        for round in 0..<(size - 1) {
            let phase = size - 1 + round
            try send(bounds(rank + 1 - round), round: phase)
            let target = bounds(rank - round)
            try communicator.receiveFromPrevious(tag: collectiveTag(sequence: sequence, round: phase), expectedBytes: target.count * 8) { raw in
                UnsafeMutableRawPointer(values.baseAddress! + target.lowerBound).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            }
        }
    }
}
