import ArgumentParser
import CTun
import Foundation
import SimulatedNetwork

/// A user-space network between network namespaces, for kernels without `tc netem`: each simulated
/// host gets a TUN device, and this process carries packets between them with netem's delay,
/// jitter, rate and queue on every host's outgoing link.
struct Netwire: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A delaying, rate-limiting wire between network namespaces (netem in user space).",
        subcommands: [Run.self, Echo.self, Ping.self])
}

struct ShapeOptions: ParsableArguments {
    @Option(help: "One-way delay of every host's outgoing link, microseconds.") var delayUs = "0"
    @Option(help: "Uniform jitter around the delay, microseconds (order is kept).") var jitterUs = "0"
    @Option(help: "Rate of every outgoing link: 10gbit, 1gbit, 500mbit, ... or unlimited.") var rate = "unlimited"
    @Option(help: "Longest wait for a busy link before a packet is dropped, microseconds.") var queueUs = "5000"

    func shape() throws -> LinkShape {
        do {
            return LinkShape(
                delayNanoseconds: try LinkShape.parse(microseconds: delayUs, what: "--delay-us"),
                jitterNanoseconds: try LinkShape.parse(microseconds: jitterUs, what: "--jitter-us"),
                bitsPerSecond: try LinkShape.parse(rate: rate),
                queueNanoseconds: try LinkShape.parse(microseconds: queueUs, what: "--queue-us"))
        } catch { throw ValidationError(error.description) }
    }
}

extension Netwire {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the devices and carry packets until standard input ends.",
            discussion: """
                Prints {"ready": [...]} once the devices exist; move each into its namespace, give it its \
                address and bring it up there (ip link set NAME netns NS). Each line on standard input \
                'shape DELAY_US JITTER_US RATE' reshapes every link and is answered with a JSON line; \
                'stats' prints the counters. The devices go when standard input ends.
                """)

        @Option(name: .customLong("device"), help: "NAME=IPV4: a device and the address its host will have (repeat).")
        var devices: [String] = []
        @Option(help: "MTU of every device (9000: jumbo frames, as on a cluster network).") var mtu = 9000
        @OptionGroup var shapeOptions: ShapeOptions

        func validate() throws {
            guard devices.count >= 2 else { throw ValidationError("give at least two --device NAME=IPV4") }
            guard (576...65_535).contains(mtu) else { throw ValidationError("--mtu must be 576...65535") }
            for device in devices {
                let parts = device.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count < 16, parseIPv4(parts[1]) != nil else {
                    throw ValidationError("--device '\(device)' is not NAME=IPV4 with a name of at most 15 characters")
                }
            }
            guard Set(devices.map { $0.split(separator: "=")[1] }).count == devices.count else {
                throw ValidationError("two --device entries share an address")
            }
            _ = try shapeOptions.shape()
        }

        func run() throws {
            let shape = try shapeOptions.shape()
            _ = rddp_set_timer_slack(1000)
            var opened: [Wire.Device] = []
            for device in devices {
                let parts = device.split(separator: "=", maxSplits: 1).map(String.init)
                let descriptor = rddp_tun_open(parts[0], Int32(mtu))
                guard descriptor >= 0 else { fatal("cannot create TUN device \(parts[0]): \(String(cString: strerror(-descriptor)))") }
                opened.append(.init(name: parts[0], address: parseIPv4(parts[1])!, descriptor: descriptor, link: LinkSchedule(shape: shape)))
            }
            var wire = Wire(devices: opened)
            say(["ready": opened.map(\.name), "shape": "\(shape)"])
            wire.run(control: STDIN_FILENO) { wire, line in
                let words = line.split(separator: " ").map(String.init)
                switch words.first {
                case "shape" where words.count == 4:
                    do {
                        let shape = LinkShape(
                            delayNanoseconds: try LinkShape.parse(microseconds: words[1], what: "delay"),
                            jitterNanoseconds: try LinkShape.parse(microseconds: words[2], what: "jitter"),
                            bitsPerSecond: try LinkShape.parse(rate: words[3]),
                            queueNanoseconds: wire.devices[0].link.shape.queueNanoseconds)
                        wire.reshape(shape)
                        say(["shape": "\(shape)"])
                    } catch { say(["error": "\(error)"]) }
                case "stats":
                    say(["forwarded": "\(wire.forwarded)", "dropped": "\(wire.dropped)", "unroutable": "\(wire.unroutable)"])
                default:
                    say(["error": "unknown command '\(line)': use 'shape DELAY_US JITTER_US RATE' or 'stats'"])
                }
            }
        }
    }
}

/// One JSON line on standard output, flushed: the controlling script waits for it.
func say(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

Netwire.main()
