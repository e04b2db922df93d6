import Foundation
import Timing
import Training
import Transport

/// How often workers beat, and the shortest `--heartbeat-timeout` that can work with that.
public enum HeartbeatTiming {
    public static let interval = 0.5
    /// Two beats: a shorter timeout would declare healthy workers (or coordinators) lost.
    public static let minimumTimeout = 2 * interval
}

/// The worker's heartbeat: a thread with its own DEALER socket (ZeroMQ sockets belong to one
/// thread) that sends a `heartbeat` every `interval` and watches the coordinator's answers. Once
/// the coordinator has answered, `timeout` seconds of silence mean it is gone: the thread says so
/// and ends the process (exit status 3), wherever the main thread is waiting.
final class HeartbeatSender: @unchecked Sendable {
    static let coordinatorLostStatus: Int32 = 3

    private let context: ZMQContext
    private let endpoint: String
    private let workerID: String
    private let token: String
    private let interval: Double
    private let timeout: Double
    private let curve: (keys: CurveKeyPair, coordinatorKey: String)?
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var waitingFlag = true
    private var runIDValue: UInt64 = 0
    private var stopped = false
    private var lastHeard: Double?
    private var contact = false

    init(
        context: ZMQContext, endpoint: String, workerID: String, token: String, interval: Double, timeout: Double,
        curve: (keys: CurveKeyPair, coordinatorKey: String)?, log: @escaping @Sendable (String) -> Void
    ) {
        self.curve = curve
        self.context = context
        self.endpoint = endpoint
        self.workerID = workerID
        self.token = token
        self.interval = interval
        self.timeout = timeout
        self.log = log
    }

    /// Whether the main thread is waiting (for a command or on the ring) rather than computing.
    var waiting: Bool {
        get { lock.withLock { waitingFlag } }
        set { lock.withLock { waitingFlag = newValue } }
    }

    var runID: UInt64 {
        get { lock.withLock { runIDValue } }
        set { lock.withLock { runIDValue = newValue } }
    }

    func start() {
        let thread = Thread { [self] in
            do { try loop() } catch { log("worker \(workerID.prefix(8)): heartbeat stopped: \(error)") }
        }
        thread.name = "heartbeat"
        thread.start()
    }

    func stop() { lock.withLock { stopped = true } }

    /// Whether the coordinator has ever answered (from then on this thread watches it).
    var hasContact: Bool { lock.withLock { contact } }

    /// The main thread heard from the coordinator (any message counts as an answer).
    func heard() { lock.withLock { lastHeard = monotonicSeconds() } }

    private func loop() throws {
        let socket = try ZMQSocket(context, kind: .dealer, lingerMilliseconds: 0)
        try socket.setRoutingID(Array((workerID + "/hb").utf8))
        if let curve { try socket.makeCurveClient(curve.keys, serverKey: curve.coordinatorKey) }
        try socket.connect(endpoint)
        var lastAnswer: Double?
        var nextBeat = monotonicSeconds()
        var lastTick = nextBeat
        while !lock.withLock({ stopped }) {
            let now = monotonicSeconds()
            if let heard = lock.withLock({ lastHeard }), heard > (lastAnswer ?? 0) { lastAnswer = heard }
            if lastAnswer != nil && now - lastTick > timeout / 2 {
                // This process was not running (SIGSTOP, a suspended VM): the silence is ours,
                // so give the coordinator a full timeout to answer again.
                lastAnswer = now
            }
            lastTick = now
            if let lastAnswer, now - lastAnswer > timeout {
                log(
                    "worker \(workerID.prefix(8)): the coordinator \(endpoint) has not answered for "
                        + "\(String(format: "%.1f", now - lastAnswer)) s (--heartbeat-timeout \(timeout)); "
                        + "it is gone, exiting (status \(Self.coordinatorLostStatus))")
                _exit(Self.coordinatorLostStatus)
            }
            if now >= nextBeat {
                let beat = ControlMessage.Heartbeat(workerID: workerID, token: token, waiting: waiting)
                let frame = WireMessage(
                    WireHeader(kind: .heartbeat, runID: runID, sender: -1),
                    payload: try ControlPayload.encode(beat)
                ).encoded()
                // Never blocks: a beat that finds no room is simply not sent.
                _ = try? socket.send([frame], timeout: 0, to: "coordinator")
                nextBeat = now + interval
            }
            // Passes stay well under timeout / 2, so that only a real stall looks like one above.
            if let frames = try socket.receive(timeout: max(0, min(nextBeat - monotonicSeconds(), interval, timeout / 4))),
                frames.count == 1, (try? WireMessage.decode(frames[0], from: "coordinator"))?.header.kind == .heartbeat
            {
                lastAnswer = monotonicSeconds()
                lock.withLock { contact = true }
            }
        }
        socket.close()
    }
}
