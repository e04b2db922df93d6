import Foundation
import TestSupport
import Testing
import Training

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
private let sshd = "/usr/sbin/sshd"
private let canRun =
    (ipTool != nil && FileManager.default.isExecutableFile(atPath: sshd)
        && realDataDirectory != nil && resnetDDPExecutable != nil) || requiredByCI

/// cluster/launch and cluster/stop with real OpenSSH: one sshd per simulated host (its own
/// network namespace, address and host name; keys made here, no password), workers started
/// over ssh on those hosts, the coordinator on this one.
@Suite(.serialized, .enabled(if: canRun, "needs root, iproute2, openssh-server, real CIFAR-10 and the release build"))
final class RealSSHTests {
    let directory = temporaryDirectory()
    let hosts: SimulatedHosts
    let ssh: String

    init() throws {
        hosts = try SimulatedHosts(count: 3)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)  // privilege separation
        for key in ["host_key", "user_key"] {
            let (status, output) = try ToolProcess.run(
                ["-q", "-t", "ed25519", "-N", "", "-f", "\(directory)/\(key)"],
                executable: "/usr/bin/ssh-keygen", seconds: 30)
            try #require(status == 0, "\(output)")
        }
        try FileManager.default.copyItem(atPath: "\(directory)/user_key.pub", toPath: "\(directory)/authorized_keys")
        ssh =
            "ssh -i \(directory)/user_key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            + "-o ConnectTimeout=5 -o LogLevel=ERROR"
        // Hosts 0 and 1 run sshd; host 2 runs none (it refuses connections).
        for host in hosts.hosts.prefix(2) {
            let config = "\(directory)/sshd-\(host.name).conf"
            try """
            ListenAddress \(host.address)
            HostKey \(directory)/host_key
            AuthorizedKeysFile \(directory)/authorized_keys
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            StrictModes no
            UsePAM no
            PidFile \(directory)/sshd-\(host.name).pid

            """.write(toFile: config, atomically: true, encoding: .utf8)
            // Daemonized (not -D): Foundation's Process on Linux stopped reaping other children
            // while a child that never exits was being waited for.
            let (executable, line) = hosts.command(on: host, [sshd, "-f", config, "-E", "\(directory)/sshd-\(host.name).log"])
            let (status, output) = try ToolProcess.run(line, executable: executable, seconds: 30)
            try #require(status == 0, "sshd on \(host.name): \(output)")
        }
        for host in hosts.hosts.prefix(2) {
            let deadline = Date(timeIntervalSinceNow: 30)
            var answer = ""
            while Date() < deadline {
                let (status, output) = try shell("\(ssh) \(host.address) hostname")
                answer = output
                if status == 0 { break }
            }
            try #require(answer.contains(host.name), "sshd on \(host.name) did not answer: \(answer)")
        }
    }

    deinit { hosts.remove() }  // kills the sshds and whatever else runs on the hosts

    func shell(_ command: String, seconds: Double = 240) throws -> (Int32, String) {
        try ToolProcess.run(["-c", command], executable: "/bin/bash", seconds: seconds)
    }

    /// `cluster/launch` for `hosts` (by address) with CURVE keys, as a started process.
    func launch(_ hostIndices: [Int], iterations: Int, name: String) throws -> (ToolProcess, state: String, run: String) {
        let file = "\(directory)/hosts-\(name)"
        try hostIndices.map { "\(hosts.hosts[$0].address)\n" }.joined().write(toFile: file, atomically: true, encoding: .utf8)
        let state = "\(directory)/state-\(name)", run = "\(directory)/run-\(name)"
        let line =
            "exec \(repository)/cluster/launch --hosts \(file) --listen-host \(hosts.gateway) --port \(Int.random(in: 20_000..<60_000)) "
            + "--ssh '\(ssh)' --state \(state) --keys \(directory)/keys --data \(realDataDirectory!) -- --depth 8 "
            + "--iterations \(iterations) --eval-every \(iterations) --log-every 5 --out \(run)"
        return (try ToolProcess(["-c", line], executable: "/bin/bash"), state, run)
    }

    /// resnet-ddp processes still running on the simulated hosts.
    func leftovers() -> [String] { hosts.resnetDDPProcesses().map { "\($0.host): \($0.pid) \($0.command)" } }

    @Test func launchOverRealSSHMatchesSingleProcess() throws {
        let (launcher, state, run) = try launch([0, 1], iterations: 10, name: "short")
        let status = launcher.wait(seconds: 300)
        try #require(
            status == 0,
            "\(launcher.output)\nworkers: \((0..<2).map { (try? String(contentsOfFile: "\(state)/worker-\($0).log", encoding: .utf8)) ?? "" })")
        // Workers ran on the simulated hosts, under their names, with CURVE keys.
        #expect(launcher.output.contains("(host0 pid") && launcher.output.contains("(host1 pid"), "\(launcher.output)")
        #expect(launcher.output.contains("CURVE: 2 authorized worker key(s)"), "\(launcher.output)")
        let pids = try String(contentsOfFile: "\(state)/pids", encoding: .utf8).split(separator: "\n")
        #expect(pids.count == 3 && pids[0].hasSuffix("coordinator") && pids[2].hasPrefix(hosts.hosts[1].address), "\(pids)")
        let single = "\(directory)/single"
        let (singleStatus, singleOutput) = try ToolProcess.run([
            "train", "--data", realDataDirectory!, "--out", single, "--depth", "8",
            "--iterations", "10", "--eval-every", "10", "--log-every", "5",
        ])
        try #require(singleStatus == 0, "\(singleOutput)")
        let distributed = try CheckpointDirectory(runDirectory: run).latestValid().checkpoint
        #expect(distributed.step == 10)
        #expect(distributed.modelState == (try CheckpointDirectory(runDirectory: single).latestValid().checkpoint.modelState))
        #expect(waitUntil(seconds: 30) { leftovers().isEmpty }, "\(leftovers())")
    }

    @Test func stopLeavesNoProcessBehind() throws {
        for (name, end) in [("stop", "cluster/stop"), ("terminate", "SIGTERM"), ("interrupt", "SIGINT")] {
            let (launcher, state, run) = try launch([0, 1], iterations: 5000, name: name)
            // Whatever fails below, end this run's processes (the coordinator runs outside the
            // simulated hosts) so that a failure does not slow or skew the next case.
            defer { _ = try? shell("\(repository)/cluster/stop \(state) --ssh '\(ssh)'", seconds: 60) }
            let joined = waitUntil(seconds: 120) {
                ((try? String(contentsOfFile: "\(run)/events.jsonl", encoding: .utf8)) ?? "").contains(#""event":"membership""#)
            }
            try #require(joined, "\(launcher.output)")
            #expect(leftovers().count == 2, "\(leftovers())")
            if end == "SIGTERM" || end == "SIGINT" {
                kill(launcher.process.processIdentifier, end == "SIGTERM" ? SIGTERM : SIGINT)
            } else {
                let (status, output) = try shell("\(repository)/cluster/stop \(state) --ssh '\(ssh)'")
                // The coordinator goes first, and a worker may leave by itself before its own signal.
                let worker = "worker on \(hosts.hosts[1].address)"
                // "ended worker on H (pid P)" or "worker on H (pid P) had already ended"; exit 0 says none survived.
                #expect(status == 0 && output.contains("\(worker) (pid"), "\(output)")
            }
            try #require(launcher.wait(seconds: 60) != -1, "\(name): the launcher did not end")
            #expect(waitUntil(seconds: 30) { leftovers().isEmpty }, "\(name): \(leftovers())")
        }
    }

    @Test func aHostThatRefusesSSHIsNamed() throws {
        let (launcher, _, _) = try launch([0, 2], iterations: 10, name: "refused")
        let status = launcher.wait(seconds: 120)
        #expect(status != 0)
        #expect(launcher.output.contains("could not start a worker on \(hosts.hosts[2].address)"), "\(launcher.output)")
        #expect(waitUntil(seconds: 30) { leftovers().isEmpty }, "\(leftovers())")
    }
}
