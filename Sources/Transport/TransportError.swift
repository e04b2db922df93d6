/// Everything that can go wrong on the wire, each case naming what it concerns.
public enum TransportError: Error, CustomStringConvertible, Equatable {
    /// A libzmq call failed: the call, the endpoint or peer, and zmq_strerror's text.
    case zmq(String, String)
    /// Nothing arrived within the deadline.
    case timeout(String, seconds: Double)
    /// A frame that does not decode: who sent it (if known) and why it was rejected.
    case malformed(String)
    /// A well-formed frame that does not belong here (other run, old epoch, wrong step...).
    case unexpected(String)
    case peerUnreachable(String)

    public var description: String {
        switch self {
        case .zmq(let what, let reason): "ZeroMQ \(what): \(reason)"
        case .timeout(let what, let seconds): "timed out after \(seconds) s waiting for \(what)"
        case .malformed(let reason): "rejected malformed message: \(reason)"
        case .unexpected(let reason): "rejected unexpected message: \(reason)"
        case .peerUnreachable(let peer): "peer \(peer) is unreachable"
        }
    }
}
