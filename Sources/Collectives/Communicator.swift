/// A member of a ring of `size` ranks: it can send to the next rank and receive from the previous
/// one. Every message carries a tag; a receive that gets another tag, or nothing within the
/// communicator's deadline, throws (naming the peer) instead of waiting forever.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    func sendToNext(_ bytes: UnsafeRawBufferPointer, tag: UInt32) throws
    /// Receives the next message from the previous rank, checks its tag and size, and lends its
    /// bytes to `consume` (valid only during the call).
    func receiveFromPrevious(tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws
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
}
