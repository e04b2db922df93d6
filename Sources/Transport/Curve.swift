import CZMQ
import Foundation

/// A CURVE key pair (libzmq's CurveZMQ, Curve25519 via libsodium), as Z85 text (40 characters).
public struct CurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String

    public static func generate() throws -> CurveKeyPair {
        guard zmq_has("curve") != 0 else { throw TransportError.zmq("CURVE", "this libzmq was built without CURVE (libsodium)") }
        var publicKey = [CChar](repeating: 0, count: 41), secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw TransportError.zmq("zmq_curve_keypair", lastError()) }
        return CurveKeyPair(publicKey: z85Text(publicKey), secretKey: z85Text(secretKey))
    }

    /// The key file `resnet-ddp keygen` writes: `public-key Z85` and `secret-key Z85` lines.
    public var fileText: String {
        "# resnet-ddp CURVE key pair: keep this file secret\npublic-key \(publicKey)\nsecret-key \(secretKey)\n"
    }

    public static func load(_ path: String) throws -> CurveKeyPair {
        let fields = try CurveKeys.fields(path)
        guard let publicKey = fields["public-key"], let secretKey = fields["secret-key"] else {
            throw TransportError.malformed(
                "\(path) is not a key pair file (needs public-key and secret-key lines; "
                    + "make one with resnet-ddp keygen)")
        }
        return CurveKeyPair(publicKey: try CurveKeys.validated(publicKey, in: path), secretKey: try CurveKeys.validated(secretKey, in: path))
    }
}

public enum CurveKeys {
    /// Whether a text is a Z85 Curve25519 key.
    public static func isKey(_ text: String) -> Bool {
        guard text.utf8.count == 40 else { return false }
        var bytes = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&bytes, text) != nil
    }

    static func validated(_ key: String, in path: String) throws -> String {
        guard isKey(key) else { throw TransportError.malformed("\(path): '\(key.prefix(12))...' is not a 40-character Z85 CURVE key") }
        return key
    }

    static func fields(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TransportError.malformed("cannot read key file \(path)")
        }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if parts.count >= 2 && !parts[0].hasPrefix("#") { fields[parts[0]] = parts[1] }
        }
        return fields
    }

    /// A public key given as Z85 text or as a file (`.pub`, a key pair file).
    public static func publicKey(_ textOrPath: String) throws -> String {
        if isKey(textOrPath) { return textOrPath }
        guard let key = try fields(textOrPath)["public-key"] else {
            throw TransportError.malformed("\(textOrPath) holds no public-key line")
        }
        return try validated(key, in: textOrPath)
    }

    /// An authorized-keys file: one public key a line (bare, or `public-key KEY` as in a `.pub`
    /// file, optionally followed by a name); `#` starts a comment.
    public static func authorized(_ path: String) throws -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TransportError.malformed("cannot read authorized keys file \(path)")
        }
        var keys = Set<String>()
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // '#' is also a Z85 character: a comment starts only at a word's start.
            let words = Array(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init).prefix { !$0.hasPrefix("#") })
            guard let key = words.first == "public-key" ? words.dropFirst().first : words.first else { continue }
            guard isKey(key) else { throw TransportError.malformed("\(path) line \(number + 1): '\(key.prefix(12))' is not a Z85 CURVE key") }
            keys.insert(key)
        }
        guard !keys.isEmpty else { throw TransportError.malformed("\(path) lists no keys") }
        return keys
    }
}

extension ZMQSocket {
    /// This socket accepts CURVE clients (authenticated by the context's ZAP handler) and
    /// encrypts everything. Call before bind.
    public func makeCurveServer(_ keys: CurveKeyPair) throws {
        try setOption(ZMQ_CURVE_SERVER, 1)
        try setOption(ZMQ_CURVE_SECRETKEY, string: keys.secretKey)
        try setOption(ZMQ_ZAP_DOMAIN, string: "resnet-ddp")
    }

    /// This socket talks CURVE to a server with public key `serverKey`. Call before connect.
    public func makeCurveClient(_ keys: CurveKeyPair, serverKey: String) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, string: serverKey)
        try setOption(ZMQ_CURVE_PUBLICKEY, string: keys.publicKey)
        try setOption(ZMQ_CURVE_SECRETKEY, string: keys.secretKey)
    }
}

/// The ZAP handler (RFC 27) of one context: a thread that answers libzmq's authentication
/// requests, accepting CURVE clients whose public key is in `authorized` and refusing (and
/// logging) all others, including clients without CURVE.
public final class ZAPAuthenticator: @unchecked Sendable {
    private let context: ZMQContext
    private let lock = NSLock()
    private var keys: Set<String>
    private var stopped = false
    private let log: @Sendable (String) -> Void
    private let ready = DispatchSemaphore(value: 0)

    /// Starts the handler; it must exist before any CURVE server socket binds.
    public init(context: ZMQContext, authorized: Set<String>, log: @escaping @Sendable (String) -> Void) throws {
        self.context = context
        keys = authorized
        self.log = log
        let failure = UnsafeSendableBox<Error?>(nil)
        let thread = Thread { [self] in
            do {
                let socket = try ZMQSocket(context, kind: .rep, lingerMilliseconds: 0)
                try socket.bind("inproc://zeromq.zap.01")
                ready.signal()
                serve(socket)
                socket.close()
            } catch {
                failure.value = error
                ready.signal()
            }
        }
        thread.name = "zap"
        thread.start()
        ready.wait()
        if let error = failure.value { throw error }
    }

    /// Replaces the accepted keys (workers learn their ring peers' keys at each setup).
    public var authorized: Set<String> {
        get { lock.withLock { keys } }
        set { lock.withLock { keys = newValue } }
    }

    public func stop() { lock.withLock { stopped = true } }

    private func serve(_ socket: ZMQSocket) {
        while !lock.withLock({ stopped }) {
            guard let request = try? socket.receive(timeout: 0.2) else { continue }
            // version, request id, domain, address, routing id, mechanism, credentials...
            guard request.count >= 6 else { continue }
            let version = String(decoding: request[0], as: UTF8.self)
            let mechanism = String(decoding: request[5], as: UTF8.self)
            let address = String(decoding: request[3], as: UTF8.self)
            var status = "400", text = "not authorized"
            if version == "1.0", mechanism == "CURVE", request.count >= 7, request[6].count == 32 {
                var encoded = [CChar](repeating: 0, count: 41)
                _ = request[6].withUnsafeBufferPointer { zmq_z85_encode(&encoded, $0.baseAddress, 32) }
                let key = z85Text(encoded)
                if authorized.contains(key) {
                    status = "200"
                    text = "OK"
                } else {
                    log("refused a peer from \(address): its CURVE key \(key) is not authorized")
                }
            } else {
                log("refused a peer from \(address): mechanism \(mechanism), CURVE required")
            }
            _ = try? socket.send(
                [Array(version.utf8), request[1], Array(status.utf8), Array(text.utf8), [], []],
                timeout: 1, to: "ZAP")
        }
    }
}

/// A NUL-terminated C string buffer as a Swift string.
func z85Text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

final class UnsafeSendableBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// Security handshake failures of one socket, from a libzmq socket monitor: lets a worker say
/// "the coordinator refused our key" instead of waiting in silence.
public final class HandshakeMonitor {
    private let pair: ZMQSocket

    public init(_ context: ZMQContext, watching socket: ZMQSocket, name: String) throws {
        let address = "inproc://monitor-\(name)-\(UUID().uuidString)"
        let events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
        guard zmq_socket_monitor(try socket.rawHandle(), address, events) == 0 else {
            throw TransportError.zmq("zmq_socket_monitor", lastError())
        }
        pair = try ZMQSocket(context, kind: .pair, lingerMilliseconds: 0)
        try pair.connect(address)
    }

    /// A description of the next handshake failure seen, if any (`asServer`: worded for the
    /// side that accepts connections; key refusals there are logged by the authenticator).
    public func failure(asServer: Bool = false) -> String? {
        while let frames = try? pair.receive(timeout: 0) {
            guard frames.count == 2, frames[0].count >= 6 else { continue }
            let event = Int32(UInt16(frames[0][0]) | UInt16(frames[0][1]) << 8)
            let value = frames[0][2..<6].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let endpoint = String(decoding: frames[1], as: UTF8.self)
            switch (event, asServer) {
            case (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, true):
                continue
            case (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, false):
                return "\(endpoint) refused this process's CURVE key (status \(value)): it is not in the peer's authorized keys"
            case (_, true):
                return "a peer failed the security handshake on \(endpoint) (error \(String(value, radix: 16))): "
                    + "a client without CURVE, or with the wrong server key"
            default:
                return "security handshake with \(endpoint) failed (error \(String(value, radix: 16))): "
                    + "CURVE on one side only, or a wrong server key?"
            }
        }
        return nil
    }

    public func close() { pair.close() }
}
