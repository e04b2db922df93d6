import Foundation

/// An in-memory group for tests: `LoopbackWorld(size:)` hands out one communicator per rank; each
/// rank runs on its own thread. A receive takes the oldest message of its peer and tag and waits at most
/// `timeout` seconds.
public final class LoopbackWorld: @unchecked Sendable {
    public let size: Int
    public let timeout: Double
    private let condition = NSCondition()
    private var mailboxes: [[(from: Int, tag: UInt32, bytes: [UInt8])]]

    public init(size: Int, timeout: Double = 10) {
        self.size = size
        self.timeout = timeout
        mailboxes = Array(repeating: [], count: size)
    }

    public func communicator(rank: Int) -> LoopbackCommunicator { LoopbackCommunicator(world: self, rank: rank) }

    func post(to rank: Int, from sender: Int, tag: UInt32, bytes: [UInt8]) {
        condition.lock()
        mailboxes[rank].append((sender, tag, bytes))
        condition.broadcast()
        condition.unlock()
    }

    /// The oldest message from `peer` with `tag` (others wait, as in the ZeroMQ stash); nil
    /// unless `waiting` if there is none yet.
    func take(rank: Int, from peer: Int, tag: UInt32, waiting: Bool) throws -> [UInt8]? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let index = mailboxes[rank].firstIndex(where: { $0.from == peer && $0.tag == tag }) {
                return mailboxes[rank].remove(at: index).bytes
            }
            if !waiting { return nil }
            if !condition.wait(until: deadline) { throw CollectiveError.timeout(peer: peer, tag: tag) }
        }
    }
}

public final class LoopbackCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public var size: Int { world.size }
    private let world: LoopbackWorld

    init(world: LoopbackWorld, rank: Int) {
        self.world = world
        self.rank = rank
    }

    public func send(_ bytes: UnsafeRawBufferPointer, to peer: Int, tag: UInt32) throws {
        precondition(peer != rank && (0..<size).contains(peer), "rank \(rank) sends to rank \(peer) of \(size)")
        world.post(to: peer, from: rank, tag: tag, bytes: Array(bytes))
    }

    public func receive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        _ = try receive(from: peer, tag: tag, expectedBytes: expectedBytes, waiting: true, consume)
    }

    public func tryReceive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        try receive(from: peer, tag: tag, expectedBytes: expectedBytes, waiting: false, consume)
    }

    private func receive(
        from peer: Int, tag: UInt32, expectedBytes: Int, waiting: Bool, _ consume: (UnsafeRawBufferPointer) -> Void
    ) throws -> Bool {
        guard let bytes = try world.take(rank: rank, from: peer, tag: tag, waiting: waiting) else { return false }
        guard bytes.count == expectedBytes else {
            throw CollectiveError.mismatch("rank \(rank) expected \(expectedBytes) bytes from rank \(peer), got \(bytes.count)")
        }
        bytes.withUnsafeBytes(consume)
        return true
    }
}
