import Collectives
import Training
import Transport

/// The data plane: a ring of workers over ZeroMQ. Each worker binds a PULL socket (messages from
/// the previous rank) and connects a PUSH socket to the next rank's. Every chunk carries the run
/// id, membership epoch, step and a sequence number; stale or foreign messages are logged and
/// dropped, and a receive that gets nothing valid before the deadline throws, naming the peer.
public final class ZMQRingCommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let runID: UInt64
    public var epoch: UInt32 = 0
    /// The step the collectives belong to; set before each step.
    public var step: UInt64 = 0
    public let timeout: Double
    private let incoming: ZMQSocket
    private let outgoing: ZMQSocket
    private let log: (String) -> Void

    /// `incoming`: this rank's bound PULL socket; `nextEndpoint`: the next rank's.
    public init(context: ZMQContext, rank: Int, size: Int, runID: UInt64, incoming: ZMQSocket, nextEndpoint: String,
                timeout: Double, log: @escaping (String) -> Void) throws {
        self.rank = rank
        self.size = size
        self.runID = runID
        self.timeout = timeout
        self.incoming = incoming
        self.log = log
        // A bounded linger, so that the last chunk of a collective is delivered even if this rank
        // closes the ring right after sending it.
        outgoing = try ZMQSocket(context, kind: .push, lingerMilliseconds: 1000)
        if size > 1 { try outgoing.connect(nextEndpoint) }
    }

    public func sendToNext(_ bytes: UnsafeRawBufferPointer, tag: UInt32) throws {
        let header = WireHeader(kind: .ringChunk, runID: runID, epoch: epoch, sequence: tag, step: step, sender: Int32(rank))
        try outgoing.send(header, payload: bytes, timeout: timeout, to: "rank \(next)")
    }

    public func receiveFromPrevious(tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        let deadline = monotonicSeconds() + timeout
        while true {
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else { throw CollectiveError.timeout(peer: previous, tag: tag) }
            do {
                let accepted = try incoming.receiveFrame(timeout: remaining) { frame -> Bool in
                    let (h, payload) = try WireHeader.decode(frame, from: "ring (rank \(previous))")
                    if h.runID != runID { throw TransportError.unexpected("ring message of another run (\(hex(h.runID)))") }
                    if h.kind != .ringChunk { throw TransportError.unexpected("\(h.kind) on the ring") }
                    if h.epoch < epoch || (h.epoch == epoch && h.step < step) {
                        throw TransportError.unexpected("stale ring message (epoch \(h.epoch), step \(h.step))")
                    }
                    if h.epoch != epoch || h.step != step || h.sender != Int32(previous) || h.sequence != tag {
                        throw TransportError.unexpected("ring message epoch \(h.epoch) step \(h.step) from rank \(h.sender) "
                            + "tag \(h.sequence); expected epoch \(epoch) step \(step) from rank \(previous) tag \(tag)")
                    }
                    guard payload.count == expectedBytes else {
                        throw TransportError.malformed("ring chunk of \(payload.count) bytes, expected \(expectedBytes)")
                    }
                    consume(payload)
                    return true
                }
                guard accepted != nil else { throw CollectiveError.timeout(peer: previous, tag: tag) }
                return
            } catch let error as TransportError {
                log("rank \(rank): dropped a ring message: \(error)")
            }
        }
    }

    public func close() {
        outgoing.close()
        incoming.close()
    }
}
