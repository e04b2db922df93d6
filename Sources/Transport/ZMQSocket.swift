import CZMQ
import Foundation
import Timing

/// A libzmq context. Sockets keep their context alive.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() throws {
        guard let handle = zmq_ctx_new() else { throw TransportError.zmq("zmq_ctx_new", lastError()) }
        self.handle = handle
    }

    deinit { zmq_ctx_term(handle) }
}

func lastError() -> String { String(cString: zmq_strerror(zmq_errno())) }

/// One ZeroMQ socket, used from one thread. Options are set deliberately (see `configure`), every
/// receive is bounded, and closing never hangs (linger is bounded).
public final class ZMQSocket {
    public enum Kind: Int32 {
        case router = 6  // ZMQ_ROUTER
        case dealer = 5  // ZMQ_DEALER
        case push = 8  // ZMQ_PUSH
        case pull = 7  // ZMQ_PULL
        case rep = 4  // ZMQ_REP (the ZAP authenticator)
        case pair = 0  // ZMQ_PAIR (socket monitors)
    }

    public let kind: Kind
    /// Test hook: when set, every send passes through it (drop, delay, duplicate, damage).
    public var faults: FaultInjector?
    private let context: ZMQContext
    private var handle: UnsafeMutableRawPointer?
    public private(set) var endpoint = ""

    public init(_ context: ZMQContext, kind: Kind, lingerMilliseconds: Int32 = 1000) throws {
        self.context = context
        self.kind = kind
        guard let handle = zmq_socket(context.handle, kind.rawValue) else {
            throw TransportError.zmq("zmq_socket", lastError())
        }
        self.handle = handle
        try configure(lingerMilliseconds: lingerMilliseconds)
    }

    deinit { close() }

    private func configure(lingerMilliseconds: Int32) throws {
        // A bounded linger: the default (-1) makes zmq_ctx_term wait forever for unsent messages.
        try setOption(ZMQ_LINGER, lingerMilliseconds)
        // ZMTP heartbeats: a dead TCP peer is noticed by libzmq within seconds.
        try setOption(ZMQ_HEARTBEAT_IVL, 1000)
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, 5000)
        try setOption(ZMQ_HEARTBEAT_TTL, 5000)
        // Frames larger than any legitimate message (the largest is a full model state) are
        // refused by libzmq before they are buffered.
        try setOption64(ZMQ_MAXMSGSIZE, 256 << 20)
        switch kind {
        case .router:
            // Report unroutable messages instead of dropping them silently.
            try setOption(ZMQ_ROUTER_MANDATORY, 1)
        case .dealer, .push:
            // Queue only to completed connections, never to half-open peers.
            try setOption(ZMQ_IMMEDIATE, 1)
        case .pull, .rep, .pair:
            break
        }
    }

    public func setOption(_ option: Int32, _ value: Int32) throws {
        var v = value
        guard zmq_setsockopt(try live(), option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw TransportError.zmq("zmq_setsockopt(\(option))", lastError())
        }
    }

    public func setOption64(_ option: Int32, _ value: Int64) throws {
        var v = value
        guard zmq_setsockopt(try live(), option, &v, MemoryLayout<Int64>.size) == 0 else {
            throw TransportError.zmq("zmq_setsockopt(\(option))", lastError())
        }
    }

    public func setOption(_ option: Int32, string: String) throws {
        guard zmq_setsockopt(try live(), option, string, string.utf8.count) == 0 else {
            throw TransportError.zmq("zmq_setsockopt(\(option))", lastError())
        }
    }

    /// The raw handle, for libzmq calls this wrapper does not cover (monitors).
    func rawHandle() throws -> UnsafeMutableRawPointer { try live() }

    public func setRoutingID(_ id: [UInt8]) throws {
        guard zmq_setsockopt(try live(), ZMQ_ROUTING_ID, id, id.count) == 0 else {
            throw TransportError.zmq("zmq_setsockopt(ROUTING_ID)", lastError())
        }
    }

    private func live() throws -> UnsafeMutableRawPointer {
        guard let handle else { throw TransportError.zmq("use", "socket is closed") }
        return handle
    }

    /// Binds and returns the resolved endpoint (with the port chosen for `tcp://host:*`). A host
    /// *name* (libzmq binds only `*`, an address or an interface) binds every interface, and
    /// the endpoint returned names the host again, for peers to connect to.
    @discardableResult
    public func bind(_ address: String) throws -> String {
        let hostName = TCPEndpoint.hostName(in: address)
        let bindAddress = hostName.map { _ in TCPEndpoint.replacingHost(in: address, with: "*") } ?? address
        guard zmq_bind(try live(), bindAddress) == 0 else { throw TransportError.zmq("bind \(bindAddress)", lastError()) }
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        guard zmq_getsockopt(try live(), ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw TransportError.zmq("getsockopt(LAST_ENDPOINT)", lastError())
        }
        endpoint = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if let hostName { endpoint = TCPEndpoint.replacingHost(in: endpoint, with: hostName) }
        return endpoint
    }

    public func connect(_ address: String) throws {
        guard zmq_connect(try live(), address) == 0 else { throw TransportError.zmq("connect \(address)", lastError()) }
        endpoint = address
    }

    /// Sends `frames` as one multipart message, waiting at most `timeout` seconds for room.
    public func send(_ frames: [[UInt8]], timeout: Double, to peer: String) throws {
        if let faults, var last = frames.last {
            let copies = faults.apply(to: &last)
            for _ in 0..<copies { try sendNow(frames.dropLast() + [last], timeout: timeout, to: peer) }
            return
        }
        try sendNow(frames, timeout: timeout, to: peer)
    }

    private func sendNow(_ frames: [[UInt8]], timeout: Double, to peer: String) throws {
        let socket = try live()
        try setOption(ZMQ_SNDTIMEO, Int32(max(0, min(timeout, 2_000_000)) * 1000))
        for (index, frame) in frames.enumerated() {
            let flags = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            let sent = frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
            if sent < 0 {
                let errno = zmq_errno()
                if errno == EAGAIN { throw TransportError.timeout("room to send to \(peer)", seconds: timeout) }
                if errno == EHOSTUNREACH { throw TransportError.peerUnreachable(peer) }
                throw TransportError.zmq("send to \(peer)", lastError())
            }
        }
    }

    /// Sends a `headerSize`-byte header, written by `writeHeader`, and `payload` as one frame, with
    /// one copy. (The header's format belongs to the protocol above: Cluster's `WireHeader`.)
    /// Waits for room at most `timeout` seconds, in slices, calling `whileWaiting` between them
    /// (which may throw to abandon the send).
    public func send(
        headerSize: Int, payload: UnsafeRawBufferPointer, timeout: Double, to peer: String,
        whileWaiting: () throws -> Void = {}, writeHeader: (UnsafeMutableRawBufferPointer) -> Void
    ) throws {
        let socket = try live()
        if let faults {
            var frame = [UInt8](repeating: 0, count: headerSize + payload.count)
            frame.withUnsafeMutableBytes { frame in
                writeHeader(UnsafeMutableRawBufferPointer(rebasing: frame[..<headerSize]))
                if payload.count > 0 { (frame.baseAddress! + headerSize).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
            }
            let copies = faults.apply(to: &frame)
            for _ in 0..<copies { try sendNow([frame], timeout: timeout, to: peer) }
            return
        }
        var message = zmq_msg_t()
        guard zmq_msg_init_size(&message, headerSize + payload.count) == 0 else {
            throw TransportError.zmq("zmq_msg_init_size", lastError())
        }
        let frame = UnsafeMutableRawBufferPointer(start: zmq_msg_data(&message), count: headerSize + payload.count)
        writeHeader(UnsafeMutableRawBufferPointer(rebasing: frame[..<headerSize]))
        if payload.count > 0 { (frame.baseAddress! + headerSize).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
        let deadline = monotonicSeconds() + timeout
        while true {
            let slice = max(0, min(deadline - monotonicSeconds(), 0.1))
            try setOption(ZMQ_SNDTIMEO, Int32(slice * 1000))
            if zmq_msg_send(&message, socket, 0) >= 0 { return }
            let errno = zmq_errno()
            if errno == EAGAIN && monotonicSeconds() < deadline {
                do { try whileWaiting() } catch { zmq_msg_close(&message); throw error }
                continue
            }
            zmq_msg_close(&message)
            if errno == EAGAIN { throw TransportError.timeout("room to send to \(peer)", seconds: timeout) }
            if errno == EHOSTUNREACH { throw TransportError.peerUnreachable(peer) }
            throw TransportError.zmq("send to \(peer)", lastError())
        }
    }

    /// Waits at most `timeout` seconds until one of `sockets` has a message; returns which do.
    public static func poll(_ sockets: [ZMQSocket], timeout: Double) throws -> [Bool] {
        var items = try sockets.map { zmq_pollitem_t(socket: try $0.live(), fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let count = zmq_poll(&items, Int32(items.count), Int(max(0, timeout) * 1000))
        if count < 0 && zmq_errno() != EINTR { throw TransportError.zmq("poll", lastError()) }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }

    /// Receives one single-frame message and lends its bytes to `body` without copying; nil when
    /// nothing arrives within `timeout` seconds. A multipart message is read whole and rejected.
    public func receiveFrame<T>(timeout: Double, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T? {
        let socket = try live()
        try setOption(ZMQ_RCVTIMEO, Int32(max(0, min(timeout, 2_000_000)) * 1000))
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while zmq_msg_recv(&message, socket, 0) < 0 {
            let errno = zmq_errno()
            if errno == EAGAIN { return nil }
            if errno != EINTR { throw TransportError.zmq("receive", lastError()) }
        }
        if zmq_msg_more(&message) != 0 {
            var parts = 1
            repeat {
                zmq_msg_close(&message)
                zmq_msg_init(&message)
                guard zmq_msg_recv(&message, socket, 0) >= 0 else { break }
                parts += 1
            } while zmq_msg_more(&message) != 0
            throw TransportError.malformed("\(parts)-part message where one frame was expected")
        }
        return try body(UnsafeRawBufferPointer(start: zmq_msg_data(&message), count: zmq_msg_size(&message)))
    }

    /// Receives one multipart message, or nil when nothing arrives within `timeout` seconds.
    public func receive(timeout: Double) throws -> [[UInt8]]? {
        let socket = try live()
        try setOption(ZMQ_RCVTIMEO, Int32(max(0, min(timeout, 2_000_000)) * 1000))
        var frames = [[UInt8]]()
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            if zmq_msg_recv(&message, socket, 0) < 0 {
                let errno = zmq_errno()
                if errno == EAGAIN && frames.isEmpty { return nil }
                if errno == EINTR { continue }
                throw TransportError.zmq("receive", lastError())
            }
            let size = zmq_msg_size(&message)
            let data = zmq_msg_data(&message)!
            frames.append([UInt8](UnsafeRawBufferPointer(start: data, count: size)))
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }

    public func close() {
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }
}
