import CTun
import Foundation
import SimulatedNetwork

/// The forwarding loop: every device is one host's network interface; a packet a host sends goes
/// through that host's outgoing link schedule and is written to the device that owns its destination
/// address when it arrives. One thread; it sleeps in ppoll until the next packet is due or readable.
struct Wire {
    struct Device {
        let name: String
        let address: UInt32
        let descriptor: Int32
        var link: LinkSchedule
    }

    var devices: [Device]
    private var owner: [UInt32: Int] = [:]
    private var queues: [PacketQueue]
    private var random = SystemRandomNumberGenerator()
    private(set) var forwarded = 0
    private(set) var dropped = 0
    private(set) var unroutable = 0

    init(devices: [Device]) {
        self.devices = devices
        queues = Array(repeating: PacketQueue(), count: devices.count)
        for (index, device) in devices.enumerated() { owner[device.address] = index }
    }

    mutating func reshape(_ shape: LinkShape) {
        for index in devices.indices { devices[index].link.shape = shape }
    }

    static func nowNanoseconds() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    /// Runs until `control` (standard input) ends; `command` handles each line it delivers.
    mutating func run(control: Int32, command: (inout Wire, String) -> Void) {
        var pending = ""
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var descriptors = devices.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        descriptors.append(pollfd(fd: control, events: Int16(POLLIN), revents: 0))
        while true {
            let now = Self.nowNanoseconds()
            deliver(upTo: now)
            let next = queues.compactMap { $0.first?.arrival }.min()
            let ready = rddp_poll(&descriptors, UInt(descriptors.count), next.map { max(0, $0 - now) } ?? -1)
            if ready == -EINTR { continue }
            if ready < 0 { fatal("ppoll failed: \(String(cString: strerror(-ready)))") }
            for index in devices.indices where descriptors[index].revents & Int16(POLLIN) != 0 {
                receive(from: index, buffer: &buffer)
            }
            let controlEvents = descriptors[devices.count].revents
            if controlEvents & Int16(POLLIN | POLLHUP) != 0 {
                let count = read(control, &buffer, buffer.count)
                if count <= 0 { return }  // our parent went away: so do the devices
                pending += String(decoding: buffer[0..<count], as: UTF8.self)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = String(pending[..<newline])
                    pending.removeSubrange(...newline)
                    command(&self, line)
                }
            }
        }
    }

    private mutating func receive(from source: Int, buffer: inout [UInt8]) {
        while true {
            let count = buffer.withUnsafeMutableBytes { read(devices[source].descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { return }  // EAGAIN: drained
            let destination = buffer.withUnsafeBytes { ipv4Destination(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            guard let destination, let target = owner[destination], target != source else {
                unroutable += 1
                continue
            }
            let draw = Double(random.next() >> 11) / Double(1 << 53)
            guard let arrival = devices[source].link.accept(bytes: count, at: Self.nowNanoseconds(), jitterDraw: draw) else {
                dropped += 1
                continue
            }
            queues[source].append(.init(arrival: arrival, destination: target, bytes: Array(buffer[0..<count])))
        }
    }

    private mutating func deliver(upTo now: Int64) {
        for source in queues.indices {
            while let entry = queues[source].first, entry.arrival <= now {
                _ = queues[source].removeFirst()
                // A full receive queue drops the packet, as a network would; TCP resends it.
                if entry.bytes.withUnsafeBytes({ write(devices[entry.destination].descriptor, $0.baseAddress, $0.count) }) > 0 {
                    forwarded += 1
                } else {
                    dropped += 1
                }
            }
        }
    }
}

func fatal(_ message: String) -> Never {
    FileHandle.standardError.write(Data("netwire: \(message)\n".utf8))
    exit(1)
}
