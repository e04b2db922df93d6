import Cluster
import Collectives
import Foundation
import TensorCore
import Testing
import Transport

/// Runs `body(rank)` on `size` threads and returns the results in rank order.
final class ResultsBox<T>: @unchecked Sendable {
    var results: [Result<T, any Error>?]
    init(size: Int) { results = Array(repeating: nil, count: size) }
}

func onThreads<T: Sendable>(_ size: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let box = ResultsBox<T>(size: size)
    let lock = NSLock()
    let group = DispatchGroup()
    for rank in 0..<size {
        group.enter()
        Thread.detachNewThread {
            let result = Result { try body(rank) }
            lock.lock()
            box.results[rank] = result
            lock.unlock()
            group.leave()
        }
    }
    group.wait()
    return try box.results.map { try $0!.get() }
}

/// Rank-dependent inputs (large, negative, varied) and their exact sums.
func inputs(rank: Int, count: Int) -> [Int64] {
    (0..<count).map { i in Int64(rank + 1) * 1_000_003 * Int64(i) - Int64(rank) << 40 + Int64(i % 7) * (rank % 2 == 0 ? 1 : -1) }
}

func expectedSum(size: Int, count: Int) -> [Int64] {
    let all = (0..<size).map { inputs(rank: $0, count: count) }
    return (0..<count).map { i in all.reduce(Int64(0)) { $0 &+ $1[i] } }
}

@Suite struct AllReduceTests {
    /// Every algorithm gives bitwise the exact sum on every rank, for every rank count 1-8
    /// (powers of two and not) and vector sizes from empty to larger than the rank count.
    @Test(arguments: 1...8, [0, 1, 5, 97, 1000])
    func everyAlgorithmSumsExactly(size: Int, count: Int) throws {
        let expected = expectedSum(size: size, count: count)
        for algorithm in AllReduce.Algorithm.allCases {
            let world = LoopbackWorld(size: size)
            let results = try onThreads(size) { rank in
                var values = inputs(rank: rank, count: count)
                try AllReduce(world.communicator(rank: rank), algorithm: algorithm).sum(&values, sequence: 3)
                return values
            }
            for (rank, result) in results.enumerated() {
                #expect(result == expected, "\(algorithm): rank \(rank) of \(size), \(count) values")
            }
        }
    }

    /// A sum split into `start` and `sum(firstSendDone:)` (synchronized batch norm's backward
    /// exchange, started before the weight gradient) is bitwise the exact sum, for every rank count
    /// 1-8 and every algorithm; recursive doubling sends early on every rank that needs no message
    /// first (all but the odd ranks that fold in an even neighbour), the ring never.
    @Test(arguments: 1...8, [1, 129])
    func splitSumIsTheExactSum(size: Int, count: Int) throws {
        let expected = expectedSum(size: size, count: count)
        var powerOfTwo = 1
        while powerOfTwo * 2 <= size { powerOfTwo *= 2 }
        let folding = 2 * (size - powerOfTwo)
        for algorithm in AllReduce.Algorithm.allCases {
            let world = LoopbackWorld(size: size)
            let results = try onThreads(size) { rank in
                var values = inputs(rank: rank, count: count)
                let reduce = AllReduce(world.communicator(rank: rank), algorithm: algorithm)
                let sent = try reduce.start(values, sequence: 9)
                try reduce.sum(&values, sequence: 9, firstSendDone: sent)
                return (values, sent)
            }
            for (rank, (result, sent)) in results.enumerated() {
                #expect(result == expected, "\(algorithm): rank \(rank) of \(size), \(count) values")
                let early = size > 1 && algorithm != .ring && !(rank < folding && rank % 2 == 1)
                #expect(sent == early, "\(algorithm): rank \(rank) of \(size) sent early: \(sent)")
            }
        }
    }

    /// At two ranks the started message is all a peer needs: both start, then each finishes in
    /// turn on one thread, which would wait forever (until the deadline) had `start` sent nothing.
    @Test func startedSumsFinishWithoutThePeerProgressing() throws {
        let world = LoopbackWorld(size: 2)
        let reduces = (0..<2).map { AllReduce(world.communicator(rank: $0), algorithm: .automatic) }
        var values = (0..<2).map { inputs(rank: $0, count: 129) }
        let sent = try (0..<2).map { try reduces[$0].start(values[$0], sequence: 4) }
        #expect(sent == [true, true])
        for rank in 0..<2 { try reduces[rank].sum(&values[rank], sequence: 4, firstSendDone: true) }
        #expect(values[0] == expectedSum(size: 2, count: 129) && values[1] == values[0])
    }

    /// A rank receives at most ceil(log2 W) messages in recursive doubling, 2 (W-1) in the ring:
    /// at W = 8 (a power of two) and 6 (not).
    @Test(arguments: [(8, 3, 14), (6, 3, 10)])
    func doublingTakesLogarithmicallyManyRounds(size: Int, doublingMost: Int, ringEach: Int) throws {
        for (algorithm, expected) in [(AllReduce.Algorithm.recursiveDoubling, doublingMost), (.ring, ringEach)] {
            let world = LoopbackWorld(size: size)
            let received = try onThreads(size) { rank in
                let counting = CountingCommunicator(world.communicator(rank: rank))
                var values = inputs(rank: rank, count: 64)
                try AllReduce(counting, algorithm: algorithm).sum(&values, sequence: 1)
                return counting.receives
            }
            #expect(received.max() == expected, "\(algorithm) at \(size) ranks: receives per rank \(received)")
        }
    }

    @Test func consecutiveCollectivesDoNotMix() throws {
        let world = LoopbackWorld(size: 3)
        let results = try onThreads(3) { rank in
            var a = inputs(rank: rank, count: 10), b = inputs(rank: rank + 5, count: 4)
            let ring = AllReduce(world.communicator(rank: rank))
            try ring.sum(&a, sequence: 1)
            try ring.sum(&b, sequence: 2)
            return a + b
        }
        let expectedB = (0..<4).map { i in (0..<3).reduce(Int64(0)) { $0 &+ inputs(rank: $1 + 5, count: 4)[i] } }
        for result in results { #expect(result == expectedSum(size: 3, count: 10) + expectedB) }
    }

    @Test func silentPeerTimesOutNamingIt() throws {
        let world = LoopbackWorld(size: 2, timeout: 0.2)
        var values: [Int64] = [1, 2, 3]
        // Rank 1 never takes part: rank 0's receive must fail, naming rank 1.
        #expect(throws: CollectiveError.timeout(peer: 1, tag: 7 << 8 | 1)) {
            try AllReduce(world.communicator(rank: 0)).sum(&values, sequence: 7)
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func zeroMQSumsExactly(size: Int) throws {
        let context = try ZMQContext()
        // Bind every rank's PULL socket first so that each knows the next one's endpoint.
        let sockets = try (0..<size).map { _ in try ZMQSocket(context, kind: .pull, lingerMilliseconds: 0) }
        let endpoints = try sockets.map { try $0.bind("tcp://127.0.0.1:*") }
        let box = UncheckedSendable((context, sockets))
        let count = 269_722  // a ResNet-20 gradient
        let results = try onThreads(size) { rank in
            let (context, sockets) = box.value
            let ring = try ZMQCommunicator(
                context: context, rank: rank, endpoints: endpoints, runID: 42, incoming: sockets[rank],
                timeout: 10, log: { print($0) })
            defer { ring.close() }
            ring.step = 5
            // A gradient by the ring, then many small vectors by recursive doubling, back to back:
            // messages of later collectives and other peers arrive early and must wait their turn.
            var values = inputs(rank: rank, count: count)
            try AllReduce(ring).sum(&values, sequence: 1)
            var small: [[Int64]] = []
            for sequence in 2..<40 {
                var vector = inputs(rank: rank + Int(sequence), count: 129)
                try AllReduce(ring, algorithm: .recursiveDoubling).sum(&vector, sequence: UInt32(sequence))
                small.append(vector)
            }
            return (values, small)
        }
        let expected = expectedSum(size: size, count: count)
        for result in results {
            #expect(result.0 == expected)
            for (index, vector) in result.1.enumerated() {
                let sequence = index + 2
                let sum = (0..<129).map { i in (0..<size).reduce(Int64(0)) { $0 &+ inputs(rank: $1 + sequence, count: 129)[i] } }
                #expect(vector == sum, "collective \(sequence)")
            }
        }
    }
}

/// Counts the messages a rank receives.
final class CountingCommunicator: Communicator {
    let inner: any Communicator
    var receives = 0
    init(_ inner: any Communicator) { self.inner = inner }
    var rank: Int { inner.rank }
    var size: Int { inner.size }
    func send(_ bytes: UnsafeRawBufferPointer, to peer: Int, tag: UInt32) throws { try inner.send(bytes, to: peer, tag: tag) }
    func receive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        receives += 1
        try inner.receive(from: peer, tag: tag, expectedBytes: expectedBytes, consume)
    }
    func tryReceive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        let received = try inner.tryReceive(from: peer, tag: tag, expectedBytes: expectedBytes, consume)
        if received { receives += 1 }
        return received
    }
}

/// Hostile, well-formed data-plane messages (right run, epoch and step) never crash a rank or
/// corrupt a sum: out-of-range or own senders, wrong sizes, repeats and a flood beyond the stash
/// are dropped, and the genuine message is still the one summed.
@Suite struct HostileDataPlaneTests {
    @Test func forgedMessagesAreDroppedAndTheRealOneIsSummed() throws {
        let context = try ZMQContext()
        let incoming = try ZMQSocket(context, kind: .pull, lingerMilliseconds: 0)
        let endpoint = try incoming.bind("tcp://127.0.0.1:*")
        var logged: [String] = []
        let receiver = try ZMQCommunicator(
            context: context, rank: 0, endpoints: [endpoint, "tcp://127.0.0.1:1"], runID: 9,
            incoming: incoming, timeout: 10, log: { logged.append($0) })
        defer { receiver.close() }
        receiver.step = 3
        let forger = try ZMQSocket(context, kind: .push, lingerMilliseconds: 0)
        defer { forger.close() }
        try forger.connect(endpoint)
        let tag = UInt32(5 << 8 | 1)
        func forge(sender: Int32, sequence: UInt32, values: [Int64]) throws {
            let header = WireHeader(kind: .ringChunk, runID: 9, epoch: 0, sequence: sequence, step: 3, sender: sender)
            try values.withUnsafeBytes { try forger.send(header, payload: $0, timeout: 5, to: "rank 0") }
        }
        try forge(sender: 7, sequence: tag, values: [1_000])  // no such rank
        try forge(sender: 0, sequence: tag, values: [1_000])  // the receiver itself
        try forge(sender: 1, sequence: tag, values: [1, 2])  // wrong size
        for sequence in 0..<UInt32(ZMQCommunicator.stashLimit + 20) {  // a flood for later tags
            try forge(sender: 1, sequence: 100 << 8 | sequence, values: [666])
        }
        try forge(sender: 1, sequence: 100 << 8, values: [666])  // a repeat
        try forge(sender: 1, sequence: tag, values: [42])  // the genuine one
        var values: [Int64] = [8]
        try values.withUnsafeMutableBufferPointer { buffer in
            try receiver.receive(from: 1, tag: tag, expectedBytes: 8) { raw in buffer[0] &+= raw.load(as: Int64.self) }
        }
        #expect(values == [50])
        #expect(logged.contains { $0.contains("from rank 7") }, "\(logged.prefix(5))")
        #expect(logged.contains { $0.contains("16 bytes, expected 8") }, "\(logged.prefix(5))")
        #expect(logged.contains { $0.contains("already wait") }, "\(logged.suffix(3))")
        #expect(logged.contains { $0.contains("repeated") }, "\(logged.suffix(3))")
    }

    /// After a membership change a peer that is already in the new epoch can send before this rank
    /// has left its wait in the old one; the message waits in the stash and outlives `configure`
    /// (it used to be cleared with the old epoch's, and the new epoch's first receive timed out).
    @Test func aNewEpochsMessageSurvivesTheChange() throws {
        let context = try ZMQContext()
        let incoming = try ZMQSocket(context, kind: .pull, lingerMilliseconds: 0)
        let endpoint = try incoming.bind("tcp://127.0.0.1:*")
        let endpoints = [endpoint, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]
        let receiver = try ZMQCommunicator(
            context: context, rank: 0, endpoints: endpoints, runID: 9, incoming: incoming, timeout: 2, log: { _ in })
        defer { receiver.close() }
        receiver.step = 3
        let peer = try ZMQSocket(context, kind: .push, lingerMilliseconds: 0)
        defer { peer.close() }
        try peer.connect(endpoint)
        func send(epoch: UInt32, sender: Int32, value: Int64) throws {
            let header = WireHeader(kind: .ringChunk, runID: 9, epoch: epoch, sequence: 1, step: 3, sender: sender)
            try [value].withUnsafeBytes { try peer.send(header, payload: $0, timeout: 5, to: "rank 0") }
        }
        try send(epoch: 1, sender: 1, value: 11)  // rank 1, already in epoch 1
        try send(epoch: 0, sender: 2, value: 22)  // rank 2, still in epoch 0: read after the first
        var value: Int64 = 0
        try receiver.receive(from: 2, tag: 1, expectedBytes: 8) { value = $0.load(as: Int64.self) }
        #expect(value == 22)
        try receiver.configure(rank: 0, epoch: 1, endpoints: endpoints)
        try receiver.receive(from: 1, tag: 1, expectedBytes: 8) { value = $0.load(as: Int64.self) }
        #expect(value == 11)
    }

    /// Without a barrier between steps (as in the benchmark), a peer that is ahead sends the next
    /// step's message while this rank still waits for another peer: it waits in the stash.
    @Test func aLaterStepsMessageWaitsForItsStep() throws {
        let context = try ZMQContext()
        let incoming = try ZMQSocket(context, kind: .pull, lingerMilliseconds: 0)
        let endpoint = try incoming.bind("tcp://127.0.0.1:*")
        let receiver = try ZMQCommunicator(
            context: context, rank: 0, endpoints: [endpoint, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2"],
            runID: 9, incoming: incoming, timeout: 10, log: { _ in })
        defer { receiver.close() }
        let peer = try ZMQSocket(context, kind: .push, lingerMilliseconds: 0)
        defer { peer.close() }
        try peer.connect(endpoint)
        func send(sender: Int32, step: UInt64, value: Int64) throws {
            let header = WireHeader(kind: .ringChunk, runID: 9, epoch: 0, sequence: 1, step: step, sender: sender)
            try [value].withUnsafeBytes { try peer.send(header, payload: $0, timeout: 5, to: "rank 0") }
        }
        try send(sender: 1, step: 4, value: 11)  // rank 1, one step ahead
        try send(sender: 2, step: 3, value: 22)  // rank 2, the step rank 0 is in
        func receive(from rank: Int) throws -> Int64 {
            var value: Int64 = 0
            try receiver.receive(from: rank, tag: 1, expectedBytes: 8) { value = $0.load(as: Int64.self) }
            return value
        }
        receiver.step = 3
        #expect(try receive(from: 2) == 22)
        receiver.step = 4
        #expect(try receive(from: 1) == 11)
    }
}
