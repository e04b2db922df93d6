import ArgumentParser
import Foundation
import SimulatedNetwork

/// TCP round trips across the wire: what a delay costs a small message, measured, not assumed.
extension Netwire {
    struct Echo: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Echo TCP connections on a port (one at a time) until killed.")
        @Option(help: "Port to listen on (all addresses).") var port: Int

        func validate() throws {
            guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1...65535") }
        }

        func run() throws {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard listener >= 0 else { fatal("socket: \(String(cString: strerror(errno)))") }
            var yes: Int32 = 1
            setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(listener, 8) == 0 else { fatal("cannot listen on port \(port): \(String(cString: strerror(errno)))") }
            say(["listening": port])
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 { continue }
                setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
                while true {
                    let count = read(connection, &buffer, buffer.count)
                    if count <= 0 || !writeAll(connection, buffer[0..<count]) { break }
                }
                close(connection)
            }
        }
    }

    struct Ping: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Round trips of a message to an echo: prints {\"min_us\", \"median_us\", \"max_us\"} as JSON.")
        @Argument(help: "IPv4 address of the echo.") var address: String
        @Argument(help: "Its port.") var port: Int
        @Option(help: "Round trips to time (after one untimed).") var count = 20
        @Option(help: "Bytes per message.") var bytes = 64

        func validate() throws {
            guard parseIPv4(address) != nil else { throw ValidationError("'\(address)' is not an IPv4 address") }
            guard (1...65_535).contains(port) else { throw ValidationError("the port must be 1...65535") }
            guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1...100000") }
            guard (1...(64 << 20)).contains(bytes) else { throw ValidationError("--bytes must be 1...67108864") }
        }

        func run() throws {
            let connection = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var yes: Int32 = 1
            setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
            var target = sockaddr_in()
            target.sin_family = sa_family_t(AF_INET)
            target.sin_port = in_port_t(UInt16(port).bigEndian)
            target.sin_addr.s_addr = parseIPv4(address)!.bigEndian
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connection, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw ValidationError("cannot connect to \(address):\(port): \(String(cString: strerror(errno)))") }
            let message = [UInt8](repeating: 7, count: bytes)
            var reply = [UInt8](repeating: 0, count: bytes)
            var rounds: [Double] = []
            for round in 0...count {
                let start = Wire.nowNanoseconds()
                guard writeAll(connection, message[...]) else { throw ValidationError("the echo closed the connection") }
                var received = 0
                while received < bytes {
                    let got = reply.withUnsafeMutableBytes { read(connection, $0.baseAddress! + received, bytes - received) }
                    guard got > 0 else { throw ValidationError("the echo closed the connection") }
                    received += got
                }
                if round > 0 { rounds.append(Double(Wire.nowNanoseconds() - start) / 1000) }
            }
            close(connection)
            rounds.sort()
            say(["min_us": rounds[0], "median_us": rounds[rounds.count / 2], "max_us": rounds[rounds.count - 1], "bytes": bytes, "count": count])
        }
    }
}

func writeAll(_ descriptor: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
    var offset = bytes.startIndex
    while offset < bytes.endIndex {
        let sent = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if sent <= 0 { return false }
        offset += sent
    }
    return true
}
