/// Sums a vector over all ranks while it is still being computed, as PyTorch DDP's buckets do:
/// the backward pass finishes gradients from the end of the buffer towards its start, and each
/// time at least `bucketMinimum` more values are final they go out as one ring all-reduce
/// (`RingReduction`), which then advances whenever the caller reports progress. `finish` sends
/// the rest and waits for every bucket. A bucket is not started while fewer than `bucketMinimum`
/// values would remain: a short remainder joins the last bucket rather than paying a ring pass
/// of its own, so every bucket has at least `bucketMinimum` values (unless the whole vector has fewer).
///
/// Wrapping integer sums are exact, so the result is bitwise that of one `AllReduce` of the whole
/// vector, whatever the buckets. Every rank must report the same offsets in the same order (the
/// buckets and their sequence numbers must agree); the model's layer boundaries guarantee it.
public final class OverlappedAllReduce {
    public let communicator: any Communicator
    /// Fewest values in a bucket (the last one may have fewer).
    public let bucketMinimum: Int
    private let nextSequence: () -> UInt32
    private var values: UnsafeMutableBufferPointer<Int64>?
    /// values[unsent...] are in buckets; values[finalFrom..<unsent] are final, waiting for more.
    private var unsent = 0
    private var finalFrom = 0
    private var buckets: [RingReduction] = []
    /// The values in each bucket of the current (or last) sum, in the order they were sent.
    public private(set) var bucketSizes: [Int] = []

    /// The trainer's fewest values per bucket for a world of `worldSize` ranks: 64 Ki values
    /// (512 KiB) up to 4 ranks, 16 Ki per rank beyond. A bucket is its own ring pass of
    /// 2 (W - 1) latency-bound hops, each carrying 8 n / W bytes; growing n with W keeps each hop
    /// at 128 KiB or more, about one hop's latency at 10 Gbit/s, so that from 16 ranks on the
    /// buckets do not cost more than one pass after the backward pass (scripts/predict-scaling.py
    /// --overlap, docs/performance.md). Any bucketing gives bitwise the same sum.
    public static func bucketMinimum(worldSize: Int) -> Int {
        max(1 << 16, (1 << 14) * max(worldSize, 1))
    }

    /// `nextSequence` numbers each bucket's collective (shared with the step's other collectives).
    public init(_ communicator: any Communicator, bucketMinimum: Int, nextSequence: @escaping () -> UInt32) {
        precondition(bucketMinimum > 0, "empty buckets")
        self.communicator = communicator
        self.bucketMinimum = bucketMinimum
        self.nextSequence = nextSequence
    }

    /// Starts a sum of `values` (kept until `finish`); forgets any sum left unfinished by an error.
    public func begin(_ values: UnsafeMutableBufferPointer<Int64>) {
        self.values = values
        unsent = values.count
        finalFrom = values.count
        buckets = []
        bucketSizes = []
    }

    /// `values[offset...]` are final: sends a bucket if enough are waiting and enough remain (or
    /// all of them at offset 0), and advances the buckets in flight without waiting.
    public func finished(from offset: Int) throws {
        guard let values, communicator.size > 1 else { return }
        precondition((0...finalFrom).contains(offset), "offsets must decrease")
        finalFrom = offset
        let ready = offset == 0 ? unsent > 0 : unsent - offset >= bucketMinimum && offset >= bucketMinimum
        if ready { startBucket(values, from: offset) }
        try progress()
    }

    /// Advances every bucket in flight as far as its messages have arrived, without waiting.
    public func progress() throws {
        for index in buckets.indices where !buckets[index].isComplete {
            _ = try buckets[index].advance(communicator, waiting: false)
        }
    }

    /// True when every value is final and every bucket summed (`finish` would not wait).
    public var isComplete: Bool { unsent == 0 && buckets.allSatisfy(\.isComplete) }

    /// All values are final: sends the rest and waits until every bucket is summed.
    public func finish() throws {
        guard let values else { preconditionFailure("finish without begin") }
        defer { self.values = nil }
        guard communicator.size > 1 else { return }
        finalFrom = 0
        if unsent > 0 { startBucket(values, from: 0) }
        for index in buckets.indices { _ = try buckets[index].advance(communicator, waiting: true) }
    }

    private func startBucket(_ values: UnsafeMutableBufferPointer<Int64>, from offset: Int) {
        let bucket = UnsafeMutableBufferPointer(rebasing: values[offset..<unsent])
        buckets.append(RingReduction(bucket, sequence: nextSequence(), communicator: communicator))
        bucketSizes.append(bucket.count)
        unsent = offset
    }
}
