import SimulatedNetwork
import Testing

struct LinkModelTests {
    @Test func aPacketArrivesAfterItsSerializationAndTheDelay() {
        var link = LinkSchedule(shape: LinkShape(delayNanoseconds: 50_000, bitsPerSecond: 1_000_000_000))
        // 9000 bytes at 1 Gbit/s: 72 us on the wire, then 50 us of delay.
        #expect(link.accept(bytes: 9000, at: 1_000_000) == Int64(1_000_000 + 72_000 + 50_000))
        // The next one, handed over at once, waits for the first to leave the link.
        #expect(link.accept(bytes: 9000, at: 1_000_000) == Int64(1_000_000 + 144_000 + 50_000))
        // Long after, the link is idle again.
        #expect(link.accept(bytes: 125, at: 2_000_000) == Int64(2_000_000 + 1000 + 50_000))
    }

    @Test func jitterNeverReordersALink() {
        var link = LinkSchedule(shape: LinkShape(delayNanoseconds: 100_000, jitterNanoseconds: 80_000))
        let early = link.accept(bytes: 100, at: 0, jitterDraw: 1)  // 180 us
        let late = link.accept(bytes: 100, at: 10_000, jitterDraw: 0)  // would be 30 us
        #expect(early == 180_000)
        #expect(late == 180_000)
        #expect(link.accept(bytes: 100, at: 200_000, jitterDraw: 0) == 220_000)
    }

    @Test func aFullQueueDropsAndRecovers() {
        var link = LinkSchedule(
            shape: LinkShape(bitsPerSecond: 8_000_000, queueNanoseconds: 2_000_000))  // 1 byte per us, 2 ms of queue
        var accepted = 0
        while link.accept(bytes: 1000, at: 0) != nil { accepted += 1 }
        #expect(accepted == 3)  // starts at 0, 1 and 2 ms; the fourth would wait 3 ms
        #expect(link.accept(bytes: 1000, at: 1_500_000) != nil)  // waits 1.5 ms
    }

    @Test func ratesAndDelaysParseOrNameTheProblem() throws {
        #expect(try LinkShape.parse(rate: "10gbit") == 10_000_000_000)
        #expect(try LinkShape.parse(rate: "500mbit") == 500_000_000)
        #expect(try LinkShape.parse(rate: "unlimited") == nil)
        for bad in ["", "gbit", "-1gbit", "0mbit", "1.5gbit", "99999999999999999gbit", "10gbps"] {
            #expect(throws: LinkShapeError.self, "\(bad)") { try LinkShape.parse(rate: bad) }
        }
        #expect(try LinkShape.parse(microseconds: "200", what: "delay") == 200_000)
        for bad in ["-5", "x", "10000001", ""] {
            #expect(throws: LinkShapeError.self, "\(bad)") { try LinkShape.parse(microseconds: bad, what: "delay") }
        }
    }

    @Test func onlyIPv4PacketsHaveADestination() {
        var packet = [UInt8](repeating: 0, count: 20)
        packet[0] = 0x45
        packet[16...19] = [10, 213, 7, 11]
        #expect(packet.withUnsafeBytes { ipv4Destination($0) } == parseIPv4("10.213.7.11"))
        packet[0] = 0x60  // IPv6
        #expect(packet.withUnsafeBytes { ipv4Destination($0) } == nil)
        #expect([UInt8](repeating: 0x45, count: 19).withUnsafeBytes { ipv4Destination($0) } == nil)
        #expect(parseIPv4("10.0.0.256") == nil)
        #expect(parseIPv4("10.0.0") == nil)
        #expect(parseIPv4("1.2.3.4") == 0x0102_0304)
    }
}
