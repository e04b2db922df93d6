/// A member of a group of `size` ranks that can send to and receive from any other rank, as
/// gloo's algorithms get any pair from their context. Every message carries a tag; a receive
/// takes the message of that peer and tag (others may arrive first and wait), and throws, naming
/// the peer, when it gets none within the communicator's deadline instead of waiting forever.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    func send(_ bytes: UnsafeRawBufferPointer, to peer: Int, tag: UInt32) throws
    /// Receives the message of `peer` with `tag`, checks its size, and lends its bytes to
    /// `consume` (valid only during the call).
    func receive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws
    /// `receive` without waiting: consumes the message and returns true if it has arrived,
    /// returns false at once if not (collectives that progress between pieces of computation).
    func tryReceive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool
}

public enum CollectiveError: Error, CustomStringConvertible, Equatable {
    case timeout(peer: Int, tag: UInt32)
    case mismatch(String)

    public var description: String {
        switch self {
        case .timeout(let peer, let tag): "no message from rank \(peer) (tag \(tag)) before the deadline"
        case .mismatch(let reason): reason
        }
    }
}

extension Communicator {
    public var next: Int { (rank + 1) % size }
    public var previous: Int { (rank + size - 1) % size }

    public func sendToNext(_ bytes: UnsafeRawBufferPointer, tag: UInt32) throws { try send(bytes, to: next, tag: tag) }

    public func receiveFromPrevious(tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        try receive(from: previous, tag: tag, expectedBytes: expectedBytes, consume)
    }
}

/// The tag of one message of a collective: the collective's `sequence` within the step and the
/// algorithm's round.
func collectiveTag(sequence: UInt32, round: Int) -> UInt32 { sequence << 8 | UInt32(round) }
