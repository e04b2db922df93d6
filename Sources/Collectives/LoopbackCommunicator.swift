import Foundation

/// An in-memory ring for tests: `LoopbackWorld(size:)` hands out one communicator per rank; each
/// rank runs on its own thread. Receives wait at most `timeout` seconds.
public final class LoopbackWorld: @unchecked Sendable {
    public let size: Int
    public let timeout: Double
    private let condition = NSCondition()
    private var mailboxes: [[(tag: UInt32, bytes: [UInt8])]]

    public init(size: Int, timeout: Double = 10) {
        self.size = size
        self.timeout = timeout
        mailboxes = Array(repeating: [], count: size)
    }

    public func communicator(rank: Int) -> LoopbackCommunicator { LoopbackCommunicator(world: self, rank: rank) }

    func post(to rank: Int, tag: UInt32, bytes: [UInt8]) {
        condition.lock()
        mailboxes[rank].append((tag, bytes))
        condition.broadcast()
        condition.unlock()
    }

    func take(rank: Int, from peer: Int, tag: UInt32) throws -> [UInt8] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while mailboxes[rank].isEmpty {
            if !condition.wait(until: deadline) { throw CollectiveError.timeout(peer: peer, tag: tag) }
        }
        let message = mailboxes[rank].removeFirst()
        guard message.tag == tag else {
            throw CollectiveError.mismatch("rank \(rank) expected tag \(tag) from rank \(peer), got \(message.tag)")
        }
        return message.bytes
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

    public func sendToNext(_ bytes: UnsafeRawBufferPointer, tag: UInt32) throws {
        world.post(to: next, tag: tag, bytes: Array(bytes))
    }

    public func receiveFromPrevious(tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        let bytes = try world.take(rank: rank, from: previous, tag: tag)
        guard bytes.count == expectedBytes else {
            throw CollectiveError.mismatch("rank \(rank) expected \(expectedBytes) bytes from rank \(previous), got \(bytes.count)")
        }
        bytes.withUnsafeBytes(consume)
    }
}
