import Collectives
import Testing

/// The collectives of one rank's step share one sequence counter, as in the worker.
final class SequenceCounter {
    private var next: UInt32 = 1
    func take() -> UInt32 {
        defer { next += 1 }
        return next
    }
}

/// Decreasing offsets at which a backward pass would report finished gradients: uneven pieces.
func finishingOffsets(count: Int) -> [Int] {
    var offsets: [Int] = []
    var offset = count
    var piece = 1
    while offset > 0 {
        offset = max(0, offset - piece)
        offsets.append(offset)
        piece = piece * 3 + 1
    }
    return offsets
}

@Suite struct OverlappedAllReduceTests {
    /// The trainer's buckets grow with the world (and never shrink), so that beyond a few ranks
    /// the latency-bound ring passes of many buckets do not cost more than they hide.
    @Test func bucketMinimumGrowsWithTheWorld() {
        let minimums = (1...128).map { OverlappedAllReduce.bucketMinimum(worldSize: $0) }
        #expect(minimums.prefix(4).allSatisfy { $0 == 1 << 16 })
        #expect(zip(minimums, minimums.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(minimums[15] == 16 * minimums[3] / 4)
    }

    /// Every bucket has at least `bucketMinimum` values: a short remainder joins the last bucket
    /// instead of paying a ring pass of its own; ResNet-20's gradient at 16 ranks is one bucket.
    @Test(arguments: [(10_000, 500), (10_000, 4096), (10_000, 9000), (269_722, OverlappedAllReduce.bucketMinimum(worldSize: 16))])
    func noBucketIsShorterThanTheMinimum(count: Int, bucketMinimum: Int) throws {
        let world = LoopbackWorld(size: 2)
        let sizes = try onThreads(2) { rank in
            let buckets = OverlappedAllReduce(world.communicator(rank: rank), bucketMinimum: bucketMinimum, nextSequence: SequenceCounter().take)
            var values = inputs(rank: rank, count: count)
            try values.withUnsafeMutableBufferPointer { buffer in
                buckets.begin(buffer)
                for offset in stride(from: count - 100, through: 0, by: -100) { try buckets.finished(from: offset) }
                try buckets.finish()
            }
            #expect(values == expectedSum(size: 2, count: count))
            return buckets.bucketSizes
        }
        #expect(sizes[0] == sizes[1])
        #expect(sizes[0].reduce(0, +) == count)
        #expect(sizes[0].allSatisfy { $0 >= bucketMinimum }, "buckets \(sizes[0])")
        if count == 269_722 { #expect(sizes[0] == [count]) }
    }

    /// Buckets sent while the vector is still being "computed", interleaved with other blocking
    /// collectives (as batch-norm sums are in the backward pass), give bitwise the exact sum on
    /// every rank, for every rank count 1-8, whatever the bucket size.
    @Test(arguments: 1...8, [0, 5, 1000, 20_000])
    func bucketedSumIsExact(size: Int, count: Int) throws {
        let expected = expectedSum(size: size, count: count)
        let side = expectedSum(size: size, count: 3)
        for bucketMinimum in [1, 37, 4096] {
            let world = LoopbackWorld(size: size)
            let results = try onThreads(size) { rank in
                let communicator = world.communicator(rank: rank)
                let sequence = SequenceCounter()
                let buckets = OverlappedAllReduce(communicator, bucketMinimum: bucketMinimum, nextSequence: sequence.take)
                var values = inputs(rank: rank, count: count)
                var sides: [[Int64]] = []
                try values.withUnsafeMutableBufferPointer { buffer in
                    buckets.begin(buffer)
                    for offset in finishingOffsets(count: count) {
                        try buckets.finished(from: offset)
                        var small = inputs(rank: rank, count: 3)
                        try AllReduce(communicator).sum(&small, sequence: sequence.take())
                        sides.append(small)
                    }
                    try buckets.finish()
                }
                return (values, sides)
            }
            for (rank, result) in results.enumerated() {
                #expect(result.0 == expected, "rank \(rank) of \(size), \(count) values, buckets of \(bucketMinimum)")
                #expect(result.1.allSatisfy { $0 == side }, "rank \(rank): the interleaved collectives")
            }
        }
    }

    /// The overlap is real: driven on one thread by non-blocking progress alone, every rank's sum
    /// completes before any rank calls the waiting `finish`.
    @Test(arguments: [2, 3, 4, 7, 8])
    func progressCompletesWithoutWaiting(size: Int) throws {
        let count = 10_000
        let world = LoopbackWorld(size: size)
        let sequences = (0..<size).map { _ in SequenceCounter() }
        let ranks = (0..<size).map { OverlappedAllReduce(world.communicator(rank: $0), bucketMinimum: 500, nextSequence: sequences[$0].take) }
        let buffers = (0..<size).map { rank in
            let buffer = UnsafeMutableBufferPointer<Int64>.allocate(capacity: count)
            _ = buffer.initialize(from: inputs(rank: rank, count: count))
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        for rank in 0..<size { ranks[rank].begin(buffers[rank]) }
        for offset in finishingOffsets(count: count) {
            for rank in 0..<size { try ranks[rank].finished(from: offset) }
        }
        var rounds = 0
        while !ranks.allSatisfy(\.isComplete) {
            rounds += 1
            try #require(rounds < 10_000, "the buckets stopped advancing")
            for rank in ranks { try rank.progress() }
        }
        for rank in ranks { try rank.finish() }
        let expected = expectedSum(size: size, count: count)
        for rank in 0..<size { #expect(Array(buffers[rank]) == expected, "rank \(rank) of \(size)") }
    }
}
