import Training
import Transport

/// Typed sends and receives of control messages over one socket, with the run's header fields.
struct ControlChannel {
    let socket: ZMQSocket
    var runID: UInt64
    var sender: Int32
    let peerName: String

    func send<T: Encodable>(
        _ kind: MessageKind, _ body: T, binary: [UInt8] = [], step: Int = 0, epoch: UInt32 = 0,
        sequence: UInt32 = 0, identity: [UInt8]? = nil, timeout: Double = 30
    ) throws {
        let header = WireHeader(
            kind: kind, runID: runID, epoch: epoch, sequence: sequence, step: UInt64(max(step, 0)),
            sender: sender)
        let frame = WireMessage(header, payload: try ControlPayload.encode(body, binary: binary)).encoded()
        try socket.send((identity.map { [$0] } ?? []) + [frame], timeout: timeout, to: peerName)
    }
}

/// A decoded control message and, on a ROUTER, who sent it.
struct Received {
    let identity: [UInt8]
    let message: WireMessage
    var header: WireHeader { message.header }
    func body<T: Decodable>(_ type: T.Type, source: String) throws -> (T, [UInt8]) {
        try ControlPayload.decode(type, from: message.payload, source: source)
    }
    /// Why this payload is no valid `T` (undecodable, or what `check` says of it), or nil.
    func problem<T: Decodable>(_ type: T.Type, _ check: (T, [UInt8]) -> String?) -> String? {
        do {
            let (body, binary) = try body(type, source: "the member")
            return check(body, binary)
        } catch {
            return "\(error)"
        }
    }
}
