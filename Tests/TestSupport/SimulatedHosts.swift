import Foundation

/// `ip` from iproute2, when this process may use it to make network namespaces (root).
public let ipTool: String? = {
    guard getuid() == 0 else { return nil }
    return ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// N hosts on this machine: network namespaces joined by veth pairs to a bridge in this one (or,
/// with a `wire` shape, by `netwire`'s TUN devices: netem's delay, jitter and rate in user space), each
/// with its own address and (for what runs through `command`) its own host name in a UTS
/// namespace; inside them every host's name resolves. This machine is `gateway` on the bridge. Nothing leaves the namespaces the object
/// made; `remove()` kills what still runs inside them and deletes them.
public final class SimulatedHosts: @unchecked Sendable {
    public struct Host: Sendable {
        public let name: String
        public let namespace: String
        public let address: String
        /// This host's end of its link on the bridge (in this namespace), or its TUN device (in its
        /// own namespace) on a wire: down cuts the host off.
        public let link: String
    }

    public let hosts: [Host]
    public let gateway: String
    private let bridge: String
    /// The user-space network carrying the hosts' packets when they are not on a bridge.
    private var wire: Process?
    private var wireControl: FileHandle?
    private var removed = false

    /// `wire`: "DELAY_US JITTER_US RATE" of every host's outgoing link (netwire), instead of a bridge.
    public init(count: Int, wire shape: String? = nil) throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        // A subnet no interface here uses (a namespace left by a killed run would take the route).
        let (_, addresses) = try ToolProcess.run(["-4", "-o", "addr", "show"], executable: ipTool!, seconds: 30)
        let free = (1...250).filter { !addresses.contains(" 10.213.\($0).") }
        guard let third = free.randomElement() else { throw SimulatedHostsError("every subnet 10.213.1-250.0/24 is in use") }
        bridge = "rbr\(tag)"
        gateway = "10.213.\(third).1"
        hosts = (0..<count).map {
            Host(
                name: "host\($0)", namespace: "rddp-\(tag)-\($0)", address: "10.213.\(third).\(10 + $0)",
                link: shape == nil ? "rv\(tag)\($0)" : "rw\(tag)\($0)")
        }
        do {
            if let shape {
                try startWire(shape: shape, tag: tag)
            } else {
                try Self.ip("link", "add", bridge, "type", "bridge")
                try Self.ip("addr", "add", "\(gateway)/24", "dev", bridge)
                try Self.ip("link", "set", bridge, "up")
            }
            for (index, host) in hosts.enumerated() {
                let inside = shape == nil ? "rn\(tag)\(index)" : host.link
                try Self.ip("netns", "add", host.namespace)
                if shape == nil {
                    try Self.ip("link", "add", host.link, "type", "veth", "peer", "name", inside)
                    try Self.ip("link", "set", host.link, "master", bridge)
                    try Self.ip("link", "set", host.link, "up")
                }
                try Self.ip("link", "set", inside, "netns", host.namespace)
                try Self.ip("netns", "exec", host.namespace, "ip", "addr", "add", "\(host.address)/24", "dev", inside)
                try Self.ip("netns", "exec", host.namespace, "ip", "link", "set", inside, "up")
                try Self.ip("netns", "exec", host.namespace, "ip", "link", "set", "lo", "up")
                try Self.ip("netns", "exec", host.namespace, "ip", "route", "add", "default", "via", gateway)
            }
            // `ip netns exec` mounts /etc/netns/NAMESPACE/hosts over /etc/hosts: each host finds
            // the others by name, as on a cluster with DNS.
            let names = "127.0.0.1 localhost\n" + hosts.map { "\($0.address) \($0.name)\n" }.joined()
            for host in hosts {
                try FileManager.default.createDirectory(atPath: "/etc/netns/\(host.namespace)", withIntermediateDirectories: true)
                try names.write(toFile: "/etc/netns/\(host.namespace)/hosts", atomically: true, encoding: .utf8)
            }
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// netwire with one device for this machine (the gateway) and one per host; the hosts' devices
    /// move into their namespaces. It exits, and its devices go, when its standard input closes.
    private func startWire(shape: String, tag: String) throws {
        guard let netwire = netwireExecutable, FileManager.default.isExecutableFile(atPath: netwire) else {
            throw SimulatedHostsError("no netwire executable next to resnet-ddp (swift build -c release)")
        }
        let words = shape.split(separator: " ").map(String.init)
        guard words.count == 3 else { throw SimulatedHostsError("wire shape '\(shape)' is not 'DELAY_US JITTER_US RATE'") }
        let gatewayDevice = "rw\(tag)g"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: netwire)
        process.arguments =
            ["run", "--device", "\(gatewayDevice)=\(gateway)"] + hosts.flatMap { ["--device", "\($0.link)=\($0.address)"] }
            + ["--delay-us", words[0], "--jitter-us", words[1], "--rate", words[2]]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        wire = process
        wireControl = input.fileHandleForWriting
        // The first line says the devices exist (or the process ends with its error on stderr).
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw SimulatedHostsError("netwire ended before its devices were ready") }
            line += chunk
        }
        guard String(decoding: line, as: UTF8.self).hasPrefix("{\"ready\"") else {
            throw SimulatedHostsError("netwire: \(String(decoding: line, as: UTF8.self))")
        }
        try Self.ip("addr", "add", "\(gateway)/24", "dev", gatewayDevice)
        try Self.ip("link", "set", gatewayDevice, "up")
    }

    /// The command line that runs `arguments` on `host` (in its namespace, under its host name).
    public func command(on host: Host, _ arguments: [String]) -> (executable: String, arguments: [String]) {
        (
            ipTool!,
            ["netns", "exec", host.namespace, "unshare", "--uts", "/bin/sh", "-c", "hostname \(host.name) && exec \"$0\" \"$@\""]
                + arguments
        )
    }

    /// Starts `arguments` on `host`.
    public func start(on host: Host, _ arguments: [String], environment: [String: String] = [:]) throws -> ToolProcess {
        let (executable, line) = command(on: host, arguments)
        return try ToolProcess(line, executable: executable, environment: environment)
    }

    /// Cuts `host` off the network (link down) or reconnects it.
    public func setLink(of host: Host, up: Bool) throws {
        if wire == nil {
            try Self.ip("link", "set", host.link, up ? "up" : "down")
        } else {
            try Self.ip("-n", host.namespace, "link", "set", host.link, up ? "up" : "down")
        }
    }

    /// The PIDs of every process in `host`'s network namespace.
    public func pids(on host: Host) -> [Int32] {
        let output = (try? ToolProcess.run(["netns", "pids", host.namespace], executable: ipTool!, seconds: 30).output) ?? ""
        return output.split(separator: "\n").compactMap { Int32($0) }
    }

    /// The `resnet-ddp` processes running on any of the hosts.
    public func resnetDDPProcesses() -> [(host: String, pid: Int32, command: String)] {
        hosts.flatMap { host in
            pids(on: host).compactMap { pid in
                let line = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0")
                return line.first?.hasSuffix("/resnet-ddp") == true ? (host.name, pid, line.joined(separator: " ")) : nil
            }
        }
    }

    /// Kills what runs in the namespaces and deletes them and the bridge. Call it where the test
    /// is done (a deinit alone may run as soon as the object's last use).
    public func remove() {
        guard !removed else { return }
        removed = true
        for host in hosts {
            for pid in pids(on: host) { kill(pid, SIGKILL) }
            try? Self.ip("netns", "del", host.namespace)  // takes the namespace's veth end, and so the pair
            try? FileManager.default.removeItem(atPath: "/etc/netns/\(host.namespace)")
        }
        if let wire {
            try? wireControl?.close()  // netwire ends, and its devices with it
            wire.waitUntilExit()
        } else {
            try? Self.ip("link", "del", bridge)
        }
    }

    private static func ip(_ arguments: String...) throws {
        let (status, output) = try ToolProcess.run(arguments, executable: ipTool!, seconds: 30)
        guard status == 0 else { throw SimulatedHostsError("ip \(arguments.joined(separator: " ")): \(output)") }
    }
}

public struct SimulatedHostsError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
