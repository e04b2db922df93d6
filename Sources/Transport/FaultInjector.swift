import Foundation

/// A deterministic message-fault injector for tests: each send draws, from a seeded generator,
/// whether the frame is dropped, delayed, duplicated, truncated or corrupted. Enabled with
/// `--inject-faults seed=S,drop=P,delay=P,duplicate=P,truncate=P,corrupt=P` (probabilities per
/// send; a fault kind left out never happens).
public final class FaultInjector: @unchecked Sendable {
    public enum Fault: String, CaseIterable, Sendable {
        case drop, delay, duplicate, truncate, corrupt
    }

    public let seed: UInt64
    public let rates: [Fault: Double]
    /// How long a delayed frame is held back.
    public let delaySeconds: Double
    private var state: UInt64
    private var counts: [Fault: Int] = [:]
    private let lock = NSLock()

    public init(seed: UInt64, rates: [Fault: Double], delaySeconds: Double = 0.05) {
        self.seed = seed
        self.rates = rates
        self.delaySeconds = delaySeconds
        state = seed ^ 0x5DEE_CE66_D1CE_4E5B
    }

    /// Parses `seed=S,drop=P,...`; throws naming the bad part.
    public convenience init(spec: String) throws {
        var seed: UInt64?
        var rates: [Fault: Double] = [:]
        for part in spec.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw TransportError.malformed("fault spec part '\(part)' is not name=value") }
            if pair[0] == "seed" {
                guard let value = UInt64(pair[1]) else { throw TransportError.malformed("fault spec seed '\(pair[1])' is not a number") }
                seed = value
            } else if let fault = Fault(rawValue: pair[0]) {
                guard let p = Double(pair[1]), p >= 0, p <= 1 else {
                    throw TransportError.malformed("fault spec \(pair[0])=\(pair[1]) is not a probability in [0, 1]")
                }
                rates[fault] = p
            } else {
                throw TransportError.malformed("unknown fault '\(pair[0])' (known: seed, \(Fault.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        guard let seed else { throw TransportError.malformed("fault spec '\(spec)' has no seed=") }
        self.init(seed: seed, rates: rates)
    }

    /// How many of each fault were injected so far.
    public var injected: [Fault: Int] { lock.withLock { counts } }

    private func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    /// Decides the fate of one outgoing frame: may damage it in place, may sleep (delay), and
    /// returns how many copies to send (0 = dropped, 2 = duplicated).
    public func apply(to frame: inout [UInt8]) -> Int {
        lock.lock()
        var chosen: Fault?
        var draw = uniform()
        for fault in Fault.allCases {
            let p = rates[fault] ?? 0
            if draw < p { chosen = fault; break }
            draw -= p
        }
        let position = uniform()
        if let chosen { counts[chosen, default: 0] += 1 }
        lock.unlock()
        switch chosen {
        case nil: return 1
        case .drop: return 0
        case .duplicate: return 2
        case .delay:
            usleep(UInt32(delaySeconds * 1_000_000))
            return 1
        case .truncate:
            frame.removeLast(Int(Double(frame.count) * position) / 2 + 1)
            return 1
        case .corrupt:
            if !frame.isEmpty { frame[min(frame.count - 1, Int(Double(frame.count) * position))] ^= 0x5A }
            return 1
        }
    }
}
