import Transport

/// Test hook (`worker --fault-plan`): `ACTION@STEP[:POINT]` with ACTION kill (SIGKILL itself),
/// stop (SIGSTOP itself) or hang (stop computing but keep sending heartbeats), STEP the 1-based
/// step, POINT `compute` (before the forward pass, the default), `ring:N` (before its N-th ring
/// send of that step, i.e. inside batch-norm or gradient all-reduces) or `result` (after sending
/// the result).
public struct FaultPlan: Sendable, CustomStringConvertible {
    public enum Action: String, Sendable { case kill, stop, hang }
    public enum Point: Sendable, Equatable { case compute, ringSend, afterResult }

    public var action: Action
    public var step: Int
    public var point: Point
    public var ringSend = 0

    public init(parsing text: String) throws {
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        guard parts.count == 2, let action = Action(rawValue: parts[0]) else {
            throw TransportError.malformed("fault plan '\(text)' is not ACTION@STEP[:POINT] with ACTION kill, stop or hang")
        }
        self.action = action
        let place = parts[1].split(separator: ":").map(String.init)
        guard let step = Int(place[0]), step >= 1 else { throw TransportError.malformed("fault plan '\(text)': bad step") }
        self.step = step
        switch place.count == 1 ? "compute" : place[1] {
        case "compute": point = .compute
        case "result": point = .afterResult
        case "ring":
            guard place.count == 3, let n = Int(place[2]), n >= 1 else { throw TransportError.malformed("fault plan '\(text)': ring:N") }
            point = .ringSend
            ringSend = n
        default: throw TransportError.malformed("fault plan '\(text)': point must be compute, ring:N or result")
        }
    }

    public var description: String {
        switch point {
        case .compute: "before the forward pass"
        case .ringSend: "before ring send \(ringSend)"
        case .afterResult: "after sending its result"
        }
    }
}

public enum WorkerError: Error, CustomStringConvertible {
    case parentGone(Int32)
    case refused(String)
    public var description: String {
        switch self {
        case .parentGone(let pid): "the launching process \(pid) is gone; exiting"
        case .refused(let reason): "cannot join: \(reason)"
        }
    }
}
