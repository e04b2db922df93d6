/// Packets waiting for their arrival time, oldest first (arrival times never decrease, see
/// `LinkSchedule`).
public struct PacketQueue: Sendable {
    public struct Entry: Sendable {
        public let arrival: Int64
        public let destination: Int
        public let bytes: [UInt8]

        public init(arrival: Int64, destination: Int, bytes: [UInt8]) {
            self.arrival = arrival
            self.destination = destination
            self.bytes = bytes
        }
    }

    private var entries: [Entry] = []
    private var head = 0

    public init() {}

    public var isEmpty: Bool { head == entries.count }
    public var count: Int { entries.count - head }
    public var first: Entry? { isEmpty ? nil : entries[head] }

    public mutating func append(_ entry: Entry) { entries.append(entry) }

    public mutating func removeFirst() -> Entry {
        precondition(!isEmpty, "removeFirst of an empty packet queue")
        let entry = entries[head]
        head += 1
        // Reclaim the delivered prefix once it is half the storage: amortized O(1).
        if head > 64 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return entry
    }
}

/// The destination address of an IPv4 packet (host byte order), or nil for anything else (IPv6
/// router solicitations and the like, which the wire drops).
public func ipv4Destination(_ packet: UnsafeRawBufferPointer) -> UInt32? {
    guard packet.count >= 20, packet[0] >> 4 == 4 else { return nil }
    return UInt32(packet[16]) << 24 | UInt32(packet[17]) << 16 | UInt32(packet[18]) << 8 | UInt32(packet[19])
}

/// Parses a dotted IPv4 address into host byte order.
public func parseIPv4(_ text: String) -> UInt32? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var value: UInt32 = 0
    for part in parts {
        guard part.count <= 3, let byte = UInt8(part) else { return nil }
        value = value << 8 | UInt32(byte)
    }
    return value
}
