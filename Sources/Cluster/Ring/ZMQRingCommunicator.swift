import Collectives
import Training
import Transport

/// The data plane: a ring of workers over ZeroMQ. Each worker binds a PULL socket (messages from
/// the previous rank) and connects a PUSH socket to the next rank's. Every chunk carries the run
/// id, membership epoch, step and a tag; stale or foreign messages are logged and dropped.
///
/// Every wait is cancellable: while it waits, the ring polls the worker's control socket too and
/// calls `interrupt`, which throws when the coordinator has moved to a new membership epoch (a
/// peer died), so no worker sits out a dead neighbour's timeout. `timeout` bounds each wait.
public final class ZMQRingCommunicator: Communicator {
    public private(set) var rank: Int
    public private(set) var size: Int
    public let runID: UInt64
    public private(set) var epoch: UInt32 = 0
    /// The step the collectives belong to; set before each step.
    public var step: UInt64 = 0
    public let timeout: Double
    /// Called while waiting and whenever `control` has a message; throws to abandon the wait.
    public var interrupt: () throws -> Void = {}
    /// Told when a receive starts (true) and ends (false): the worker reports it in heartbeats.
    public var waitChanged: (Bool) -> Void = { _ in }
    /// Called before every chunk is sent (test hook for faults inside the all-reduce).
    public var willSend: () -> Void = {}
    private let context: ZMQContext
    private let incoming: ZMQSocket
    private let control: ZMQSocket?
    private var outgoing: ZMQSocket?
    private var nextEndpoint = ""
    private var nextKey: String?
    private let faults: FaultInjector?
    private let curve: CurveKeyPair?
    private let log: (String) -> Void

    /// `incoming`: this rank's bound PULL socket; `control`: polled together with it.
    public init(context: ZMQContext, runID: UInt64, incoming: ZMQSocket, control: ZMQSocket?, timeout: Double,
                faults: FaultInjector? = nil, curve: CurveKeyPair? = nil, log: @escaping (String) -> Void) {
        self.curve = curve
        self.context = context
        self.runID = runID
        self.timeout = timeout
        self.incoming = incoming
        self.control = control
        self.faults = faults
        self.log = log
        rank = 0
        size = 1
    }

    /// A fixed ring (benchmarks, tests): `rank` of `size`, epoch 0.
    public convenience init(context: ZMQContext, rank: Int, size: Int, runID: UInt64, incoming: ZMQSocket, nextEndpoint: String,
                            timeout: Double, log: @escaping (String) -> Void) throws {
        self.init(context: context, runID: runID, incoming: incoming, control: nil, timeout: timeout, log: log)
        try configure(rank: rank, size: size, epoch: 0, nextEndpoint: nextEndpoint)
    }

    /// Joins the ring of membership `epoch`: this worker is `rank` of `size` and sends to `nextEndpoint`.
    public func configure(rank: Int, size: Int, epoch: UInt32, nextEndpoint: String, nextKey: String? = nil) throws {
        self.rank = rank
        self.size = size
        self.epoch = epoch
        guard size > 1 else {
            outgoing?.close()
            outgoing = nil
            return
        }
        if nextEndpoint != self.nextEndpoint || nextKey != self.nextKey {
            // Chunks still queued for the old neighbour (maybe dead) are discarded. The new
            // connection is made at the first send, when every member has been set up (with
            // CURVE, the neighbour's authenticator knows this worker's key by then).
            outgoing?.close()
            outgoing = nil
            self.nextEndpoint = nextEndpoint
            self.nextKey = nextKey
        }
    }

    private func connectedSocket() throws -> ZMQSocket {
        if let outgoing { return outgoing }
        guard size > 1 else { throw CollectiveError.mismatch("rank \(rank) has no ring neighbour") }
        let socket = try ZMQSocket(context, kind: .push, lingerMilliseconds: 1000)
        socket.faults = faults
        if let curve {
            guard let nextKey else { throw TransportError.malformed("no CURVE key for the next rank") }
            try socket.makeCurveClient(curve, serverKey: nextKey)
        }
        try socket.connect(nextEndpoint)
        outgoing = socket
        return socket
    }

    public func sendToNext(_ bytes: UnsafeRawBufferPointer, tag: UInt32) throws {
        let outgoing = try connectedSocket()
        willSend()
        let header = WireHeader(kind: .ringChunk, runID: runID, epoch: epoch, sequence: tag, step: step, sender: Int32(rank))
        try outgoing.send(header, payload: bytes, timeout: timeout, to: "rank \(next)", whileWaiting: interrupt)
    }

    public func receiveFromPrevious(tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        let deadline = monotonicSeconds() + timeout
        waitChanged(true)
        defer { waitChanged(false) }
        while true {
            try interrupt()
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else { throw CollectiveError.timeout(peer: previous, tag: tag) }
            let ready = try ZMQSocket.poll([incoming] + (control.map { [$0] } ?? []), timeout: min(remaining, 0.5))
            guard ready[0] else { continue }
            do {
                let accepted = try incoming.receiveFrame(timeout: 0) { frame -> Bool in
                    let (h, payload) = try WireHeader.decode(frame, from: "ring (rank \(previous))")
                    if h.runID != runID { throw TransportError.unexpected("ring message of another run (\(hex(h.runID)))") }
                    if h.kind != .ringChunk { throw TransportError.unexpected("\(h.kind) on the ring") }
                    if h.epoch < epoch || (h.epoch == epoch && h.step < step) {
                        throw TransportError.unexpected("stale ring message (epoch \(h.epoch), step \(h.step + 1))")
                    }
                    if h.epoch != epoch || h.step != step || h.sender != Int32(previous) || h.sequence != tag {
                        throw TransportError.unexpected("ring message epoch \(h.epoch) step \(h.step + 1) from rank \(h.sender) "
                            + "tag \(h.sequence); expected epoch \(epoch) step \(step + 1) from rank \(previous) tag \(tag)")
                    }
                    guard payload.count == expectedBytes else {
                        throw TransportError.malformed("ring chunk of \(payload.count) bytes, expected \(expectedBytes)")
                    }
                    consume(payload)
                    return true
                }
                if accepted != nil { return }
            } catch let error as TransportError {
                log("rank \(rank): dropped a ring message: \(error)")
            }
        }
    }

    public func close() {
        outgoing?.close()
        incoming.close()
    }
}
