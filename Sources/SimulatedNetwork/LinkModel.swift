/// What a simulated link does to a packet: the delay, jitter, rate and queue of `tc netem` on each
/// host's outgoing link, for kernels without netem. Times are nanoseconds on any monotonic clock.
public struct LinkShape: Sendable, Equatable, CustomStringConvertible {
    /// One-way delay added to every packet.
    public var delayNanoseconds: Int64
    /// Each packet's delay is drawn uniformly from delay ± jitter (never below zero); packets of one
    /// link still arrive in the order sent, as with netem's rate option (TCP reads reordering as loss).
    public var jitterNanoseconds: Int64
    /// Bits per second a link serializes; nil: unlimited.
    public var bitsPerSecond: Int64?
    /// A packet that would wait longer than this for its link to be free is dropped (a switch
    /// port's buffer; tbf's `latency`).
    public var queueNanoseconds: Int64

    public init(delayNanoseconds: Int64 = 0, jitterNanoseconds: Int64 = 0, bitsPerSecond: Int64? = nil, queueNanoseconds: Int64 = 5_000_000) {
        self.delayNanoseconds = delayNanoseconds
        self.jitterNanoseconds = jitterNanoseconds
        self.bitsPerSecond = bitsPerSecond
        self.queueNanoseconds = queueNanoseconds
    }

    public var description: String {
        let rate = bitsPerSecond.map { LinkShape.format(rate: $0) } ?? "unlimited"
        return "delay \(delayNanoseconds / 1000)us jitter \(jitterNanoseconds / 1000)us rate \(rate) queue \(queueNanoseconds / 1000)us"
    }

    static func format(rate: Int64) -> String {
        if rate % 1_000_000_000 == 0 { return "\(rate / 1_000_000_000)gbit" }
        if rate % 1_000_000 == 0 { return "\(rate / 1_000_000)mbit" }
        return "\(rate)bit"
    }

    /// Parses tc's rate spelling: `10gbit`, `1gbit`, `500mbit`, `64kbit`, `1000000bit`, or `unlimited`.
    public static func parse(rate text: String) throws(LinkShapeError) -> Int64? {
        if text == "unlimited" { return nil }
        let units: [(String, Int64)] = [("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1000), ("bit", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Int64(text.dropLast(suffix.count)), value > 0, value <= Int64.max / scale else { break }
            return value * scale
        }
        throw LinkShapeError("rate '\(text)' is not a positive number of bit, kbit, mbit or gbit per second, nor 'unlimited'")
    }

    /// Parses microseconds between 0 and 10 s.
    public static func parse(microseconds text: String, what: String) throws(LinkShapeError) -> Int64 {
        guard let value = Int64(text), (0...10_000_000).contains(value) else {
            throw LinkShapeError("\(what) '\(text)' is not a whole number of microseconds from 0 to 10000000")
        }
        return value * 1000
    }
}

public struct LinkShapeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The schedule of one outgoing link: when each packet sent on it arrives, or that it is dropped.
public struct LinkSchedule: Sendable {
    public var shape: LinkShape
    /// When the link finishes serializing what it has accepted.
    private var busyUntil: Int64 = .min
    /// Arrival time of the last packet accepted: later packets never arrive before it.
    private var lastArrival: Int64 = .min

    public init(shape: LinkShape) { self.shape = shape }

    /// Arrival time of a packet of `bytes` handed to the link at `now`, or nil when the link's queue
    /// is full. `jitterDraw` is uniform in 0...1 (the caller's random source, so tests are exact).
    public mutating func accept(bytes: Int, at now: Int64, jitterDraw: Double = 0.5) -> Int64? {
        let start = max(now, busyUntil)
        if start - now > shape.queueNanoseconds { return nil }
        var sent = start
        if let rate = shape.bitsPerSecond {
            // Rounded up, so a stream of packets never exceeds the rate.
            sent += (Int64(bytes) * 8 * 1_000_000_000 + rate - 1) / rate
        }
        busyUntil = sent
        let jitter = shape.jitterNanoseconds == 0 ? 0 : Int64((jitterDraw * 2 - 1) * Double(shape.jitterNanoseconds))
        let arrival = max(sent + max(0, shape.delayNanoseconds + jitter), lastArrival)
        lastArrival = arrival
        return arrival
    }
}
