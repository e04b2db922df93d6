import Collectives
import Layers
import TensorCore
import Training

/// Numbers the collectives of one step, so that every message of the ring carries a tag that says
/// which collective it belongs to (batch-norm layers in order, then the gradients).
final class CollectiveSequence {
    private(set) var next: UInt32 = 1
    func reset() { next = 1 }
    func take() -> UInt32 {
        defer { next += 1 }
        return next
    }
}

/// Synchronized batch norm: each layer's per-channel sums, in fixed point, summed over the ring.
final class RingStatisticsReducer: StatisticsReducer {
    private let ring: AllReduce
    private let sequence: CollectiveSequence
    private let clock: PhaseClock

    init(_ ring: AllReduce, sequence: CollectiveSequence, clock: PhaseClock) {
        self.ring = ring
        self.sequence = sequence
        self.clock = clock
    }

    func allReduce(_ values: inout [Int64]) throws {
        clock.profile.statisticsCalls += 1
        try clock.time(\.statisticsSeconds) { try ring.sum(&values, sequence: sequence.take()) }
    }

    func startAllReduce(_ values: [Int64]) throws -> StartedReduction {
        let number = sequence.take()
        let sent = try clock.time(\.statisticsSeconds) { try ring.start(values, sequence: number) }
        return StartedReduction(sequence: number, firstSendDone: sent)
    }

    func finishAllReduce(_ started: StartedReduction, _ values: inout [Int64]) throws {
        clock.profile.statisticsCalls += 1
        try clock.time(\.statisticsSeconds) {
            try ring.sum(&values, sequence: started.sequence, firstSendDone: started.firstSendDone)
        }
    }
}

/// Sums the fixed-point gradient accumulators over the ring (exact, the same on every worker).
/// With local batch norm the gradients go in buckets sent while the backward pass computes the
/// rest (`OverlappedAllReduce`), and the running statistics are averaged, in fixed point. With
/// synchronized batch norm the whole gradient goes after the backward pass: there, buckets in
/// flight delay the latency-bound batch-norm exchanges of the backward pass more than they save
/// (measured in docs/performance.md, 2026-12-05).
final class RingGradientSynchronizer: GradientSynchronizer {
    private let ring: AllReduce
    private let buckets: OverlappedAllReduce
    private let sequence: CollectiveSequence
    private let averagesRunningStatistics: Bool
    private let overlapsBackward: Bool
    private let clock: PhaseClock

    /// Every rank of a world must get the same `overlapsBackward` (the buckets take sequence numbers).
    init(_ ring: AllReduce, sequence: CollectiveSequence, averagesRunningStatistics: Bool, overlapsBackward: Bool, clock: PhaseClock) {
        self.ring = ring
        self.sequence = sequence
        self.averagesRunningStatistics = averagesRunningStatistics
        self.overlapsBackward = overlapsBackward
        self.clock = clock
        let bucketMinimum = OverlappedAllReduce.bucketMinimum(worldSize: ring.communicator.size)
        buckets = OverlappedAllReduce(ring.communicator, bucketMinimum: bucketMinimum, nextSequence: sequence.take)
    }

    func beginStep(_ store: ParameterStore) {
        if overlapsBackward { buckets.begin(store.gradientAccumulators) }
    }

    func gradientsFinished(_ store: ParameterStore, from offset: Int) throws {
        guard overlapsBackward else { return }
        try clock.time(\.gradientSeconds) { try buckets.finished(from: offset) }
    }

    func synchronize(_ store: ParameterStore) throws {
        try clock.time(\.gradientSeconds) { try synchronizeUntimed(store) }
    }

    private func synchronizeUntimed(_ store: ParameterStore) throws {
        if overlapsBackward {
            try buckets.finish()
        } else {
            try ring.sum(store.gradientAccumulators, sequence: sequence.take())
        }
        guard averagesRunningStatistics, ring.communicator.size > 1 else { return }
        let state = store.state
        var encoded = state.flatMap { value -> [Int64] in
            let wide = FixedPoint.encodeWide(Double(value), scale: FixedPoint.statisticsScale)
            return [wide.hi, wide.lo]
        }
        try ring.sum(&encoded, sequence: sequence.take())
        let size = Double(ring.communicator.size)
        for i in 0..<state.count {
            state[i] = Float(FixedPoint.decodeWide(hi: encoded[2 * i], lo: encoded[2 * i + 1], scale: FixedPoint.statisticsScale) / size)
        }
    }
}
