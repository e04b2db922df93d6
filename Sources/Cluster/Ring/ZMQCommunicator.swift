import Collectives
import Timing
import Training
import Transport

/// The data plane: the workers of one membership epoch over ZeroMQ. Each worker binds one PULL
/// socket (messages from every peer) and connects a PUSH socket to each peer it sends to, at its
/// first send. Every message carries the run id, membership epoch, step, sender and a tag; stale
/// or foreign messages are logged and dropped, and messages that arrive before they are asked for
/// (another peer's, a later collective's, a later step's) wait in a bounded stash.
///
/// Every wait is cancellable: while it waits, it polls the worker's control socket too and calls
/// `interrupt`, which throws when the coordinator has moved to a new membership epoch (a peer
/// died), so no worker sits out a dead neighbour's timeout. `timeout` bounds each wait.
public final class ZMQCommunicator: Communicator {
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
    /// Called before every message is sent (test hook for faults inside the all-reduce).
    public var willSend: () -> Void = {}
    /// Seconds a receive polls without blocking before it sleeps in `zmq_poll`: a vCPU that halts
    /// wakes up slowly and cold, which costs lockstep workers more than the spin (with no more
    /// ranks than cores; with more, the spin takes a core another rank needs).
    public var waitSpinSeconds: Double = 0
    /// Most messages kept for later receives; more (only a misbehaving peer sends them) are dropped.
    public static let stashLimit = 256
    private let context: ZMQContext
    private let incoming: ZMQSocket
    private let control: ZMQSocket?
    private var outgoing: [Int: ZMQSocket] = [:]
    private var endpoints: [String] = []
    private var keys: [String]?
    private var stash: [(header: WireHeader, payload: [UInt8])] = []
    private let faults: FaultInjector?
    private let curve: CurveKeyPair?
    private let log: (String) -> Void

    /// `incoming`: this rank's bound PULL socket; `control`: polled together with it.
    public init(
        context: ZMQContext, runID: UInt64, incoming: ZMQSocket, control: ZMQSocket?, timeout: Double,
        faults: FaultInjector? = nil, curve: CurveKeyPair? = nil, log: @escaping (String) -> Void
    ) {
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

    /// A fixed group (benchmarks, tests): `rank` of `endpoints.count`, epoch 0.
    public convenience init(
        context: ZMQContext, rank: Int, endpoints: [String], runID: UInt64, incoming: ZMQSocket,
        timeout: Double, log: @escaping (String) -> Void
    ) throws {
        self.init(context: context, runID: runID, incoming: incoming, control: nil, timeout: timeout, log: log)
        try configure(rank: rank, epoch: 0, endpoints: endpoints)
    }

    /// Joins the group of membership `epoch`: this worker is `rank` of `endpoints.count`, and
    /// rank r receives at `endpoints[r]` (CURVE: with server key `keys[r]`).
    public func configure(rank: Int, epoch: UInt32, endpoints: [String], keys: [String]? = nil) throws {
        guard (0..<endpoints.count).contains(rank), keys.map({ $0.count == endpoints.count }) ?? true else {
            throw CollectiveError.mismatch("rank \(rank) of \(endpoints.count) endpoints and \(keys?.count ?? 0) keys")
        }
        self.rank = rank
        self.size = endpoints.count
        self.epoch = epoch
        // A peer already in the new epoch may have sent to this rank while it still waited in the
        // old one: those messages were stashed and stay; only older epochs' go.
        stash.removeAll { $0.header.epoch < epoch }
        if endpoints != self.endpoints || keys != self.keys {
            // Messages still queued for the old peers (maybe dead) are discarded. New
            // connections are made at the first send, when every member has been set up (with
            // CURVE, the peer's authenticator knows this worker's key by then).
            for socket in outgoing.values { socket.close() }
            outgoing.removeAll()
            self.endpoints = endpoints
            self.keys = keys
        }
    }

    private func connectedSocket(to peer: Int) throws -> ZMQSocket {
        if let socket = outgoing[peer] { return socket }
        guard peer != rank, (0..<size).contains(peer) else { throw CollectiveError.mismatch("rank \(rank) has no peer \(peer) of \(size)") }
        let socket = try ZMQSocket(context, kind: .push, lingerMilliseconds: 1000)
        socket.faults = faults
        if let curve {
            guard let keys else { throw TransportError.malformed("no CURVE key for rank \(peer)") }
            try socket.makeCurveClient(curve, serverKey: keys[peer])
        }
        try socket.connect(endpoints[peer])
        outgoing[peer] = socket
        return socket
    }

    public func send(_ bytes: UnsafeRawBufferPointer, to peer: Int, tag: UInt32) throws {
        let socket = try connectedSocket(to: peer)
        willSend()
        let header = WireHeader(kind: .ringChunk, runID: runID, epoch: epoch, sequence: tag, step: step, sender: Int32(rank))
        try socket.send(header, payload: bytes, timeout: timeout, to: "rank \(peer)", whileWaiting: interrupt)
    }

    public func receive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        if takeStashed(from: peer, tag: tag, expectedBytes: expectedBytes, consume) { return }
        let start = monotonicSeconds()
        let deadline = start + timeout
        let spinUntil = start + waitSpinSeconds
        waitChanged(true)
        defer { waitChanged(false) }
        while true {
            try interrupt()
            let now = monotonicSeconds()
            let remaining = deadline - now
            guard remaining > 0 else { throw CollectiveError.timeout(peer: peer, tag: tag) }
            let wait = now < spinUntil ? 0 : min(remaining, 0.5)
            let ready = try ZMQSocket.poll([incoming] + (control.map { [$0] } ?? []), timeout: wait)
            guard ready[0] else { continue }
            if try receiveArrived(from: peer, tag: tag, expectedBytes: expectedBytes, consume) == true { return }
        }
    }

    public func tryReceive(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        if takeStashed(from: peer, tag: tag, expectedBytes: expectedBytes, consume) { return true }
        try interrupt()
        // Bounded, so that a flood (or a failing socket) cannot hold the caller here.
        for _ in 0..<Self.stashLimit {
            guard let accepted = try receiveArrived(from: peer, tag: tag, expectedBytes: expectedBytes, consume) else { break }
            if accepted { return true }
        }
        return false
    }

    /// The stashed message of `peer` and `tag`, if there is one of the right size (one of a
    /// wrong size is dropped).
    private func takeStashed(from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void) -> Bool {
        stash.removeAll { isStale($0.header) }
        guard let index = stash.firstIndex(where: { isCurrent($0.header) && $0.header.sender == Int32(peer) && $0.header.sequence == tag })
        else { return false }
        let message = stash.remove(at: index)
        do {
            try checkSize(message.payload.count, expectedBytes)
            message.payload.withUnsafeBytes(consume)
            return true
        } catch {
            log("rank \(rank): dropped a data-plane message: \(error)")
            return false
        }
    }

    /// Reads one message that has already arrived: nil if none has, true if it was the one asked
    /// for (consumed), false if it was kept for later or dropped.
    private func receiveArrived(
        from peer: Int, tag: UInt32, expectedBytes: Int, _ consume: (UnsafeRawBufferPointer) -> Void
    ) throws -> Bool? {
        do {
            return try incoming.receiveFrame(timeout: 0) { frame -> Bool in
                let (h, payload) = try WireHeader.decode(frame, from: "the data plane")
                try check(h)
                guard isCurrent(h) && h.sender == Int32(peer) && h.sequence == tag else {
                    keep(h, payload)
                    return false
                }
                try checkSize(payload.count, expectedBytes)
                consume(payload)
                return true
            }
        } catch let error as TransportError {
            log("rank \(rank): dropped a data-plane message: \(error)")
            return false
        }
    }

    /// Throws (the message is dropped) unless it belongs to this run and to this or a later step.
    private func check(_ h: WireHeader) throws {
        if h.runID != runID { throw TransportError.unexpected("message of another run (\(hex(h.runID)))") }
        if h.kind != .ringChunk { throw TransportError.unexpected("\(h.kind) on the data plane") }
        if isStale(h) { throw TransportError.unexpected("stale message (epoch \(h.epoch), step \(h.step + 1))") }
        let senders = isCurrent(h) ? 0..<Int32(size) : 0..<Int32(AllReduce.maximumRanks)
        if !senders.contains(h.sender) || (isCurrent(h) && h.sender == Int32(rank)) {
            throw TransportError.unexpected(
                "message of epoch \(h.epoch) step \(h.step + 1) from rank \(h.sender); "
                    + "this is rank \(rank) of \(size) at epoch \(epoch) step \(step + 1)")
        }
    }

    private func isStale(_ h: WireHeader) -> Bool { h.epoch < epoch || (h.epoch == epoch && h.step < step) }
    private func isCurrent(_ h: WireHeader) -> Bool { h.epoch == epoch && h.step == step }

    private func checkSize(_ count: Int, _ expectedBytes: Int) throws {
        guard count == expectedBytes else {
            throw TransportError.malformed("message of \(count) bytes, expected \(expectedBytes)")
        }
    }

    /// Keeps a message for a later receive. When the stash is full, a message of a later step (or
    /// epoch) gives way to one of this step: no peer can fill it for good with far-future ones.
    private func keep(_ header: WireHeader, _ payload: UnsafeRawBufferPointer) {
        let same = { (other: WireHeader) in
            other.epoch == header.epoch && other.step == header.step && other.sender == header.sender && other.sequence == header.sequence
        }
        if stash.contains(where: { same($0.header) }) {
            log("rank \(rank): dropped a repeated data-plane message (rank \(header.sender), tag \(header.sequence))")
            return
        }
        if stash.count >= Self.stashLimit {
            guard isCurrent(header), let later = stash.lastIndex(where: { !isCurrent($0.header) }) else {
                log("rank \(rank): dropped a data-plane message from rank \(header.sender): \(Self.stashLimit) already wait")
                return
            }
            let evicted = stash.remove(at: later).header
            log("rank \(rank): dropped a waiting data-plane message of step \(evicted.step + 1) from rank \(evicted.sender): the stash is full")
        }
        stash.append((header, Array(payload)))
    }

    public func close() {
        for socket in outgoing.values { socket.close() }
        outgoing.removeAll()
        incoming.close()
    }
}
