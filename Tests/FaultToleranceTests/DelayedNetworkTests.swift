import Foundation
import TestSupport
import Testing
import Training

/// Hosts joined by `netwire` (netem's delay, jitter and rate in user space, for kernels without
/// netem): the delay is really there, and a distributed run across a delayed, jittery,
/// rate-limited network still ends with the single-process run's parameters, bit for bit.
@Suite(.serialized, .enabled(if: (canRunFaultSuite && ipTool != nil) || requiredByCI, "needs root, iproute2, real CIFAR-10 and the release build"))
struct DelayedNetworkTests {
    /// A round trip crosses two links: it cannot take less than twice the one-way delay.
    @Test func everyRoundTripPaysTheDelayBothWays() throws {
        let network = try SimulatedHosts(count: 2, wire: "1500 0 unlimited")
        defer { network.remove() }
        let port = Int.random(in: 20_000..<60_000)
        let echo = try network.start(on: network.hosts[1], [netwireExecutable!, "echo", "--port", String(port)])
        defer { kill(echo.process.processIdentifier, SIGKILL) }
        try #require(waitUntil(seconds: 30) { echo.output.contains("listening") }, "echo: \(echo.output)")
        for sender in [network.hosts[0].namespace, nil] {  // host to host, and this machine (the gateway) to a host
            let ping = [netwireExecutable!, "ping", network.hosts[1].address, String(port), "--count", "5"]
            let (status, output) = try ToolProcess.run(
                sender.map { ["netns", "exec", $0] + ping } ?? Array(ping.dropFirst()),
                executable: sender == nil ? netwireExecutable! : ipTool!, seconds: 60)
            try #require(status == 0, "ping: \(output)")
            let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") })
            let result = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let fastest = try #require(result["min_us"] as? Double)
            #expect(fastest >= 3000, "fastest round trip \(fastest) us over two 1500 us links (from \(sender ?? "the gateway"))")
        }
    }

    /// 200 +- 100 us each way at 1 Gbit/s: the ring's and the coordinator's messages arrive late
    /// and unevenly, never reordered within a link; the bits do not change.
    @Test func trainingOverADelayedJitteryWireMatchesTheReference() throws {
        let network = try SimulatedHosts(count: 2, wire: "200 100 1gbit")
        defer { network.remove() }
        let run = FaultRun(iterations: 40)
        run.endpoint = "tcp://\(network.gateway):\(Int.random(in: 20_000..<60_000))"
        try run.startCoordinator(workers: 2)
        for host in network.hosts {
            try run.startWorker(["--ring-host", host.address], namespace: host.namespace)
        }
        try run.expectCompletesLikeReference()
    }
}
