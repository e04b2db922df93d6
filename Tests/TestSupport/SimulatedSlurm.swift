import Foundation

/// The Slurm daemons a cluster runs, on simulated hosts: munged and slurmctld on the first host
/// (munged's socket is a file, which every namespace sees), one slurmd per host under its name,
/// all configured by a slurm.conf in `directory` (commands get it through `environment`).
public final class SimulatedSlurm: @unchecked Sendable {
    public static let tools = [
        "/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch",
        "/usr/bin/scancel", "/usr/bin/squeue", "/usr/bin/sinfo", "/usr/bin/scontrol",
    ]
    public static var installed: Bool { tools.allSatisfy { FileManager.default.isExecutableFile(atPath: $0) } }

    public let directory: String
    public let hosts: SimulatedHosts
    /// SLURM_CONF for sbatch, squeue, scancel and the jobs they start.
    public let environment: [String: String]
    private var stopped = false

    public init(hosts: SimulatedHosts, directory: String, cpusPerNode: Int = 2) throws {
        self.hosts = hosts
        self.directory = directory
        environment = ["SLURM_CONF": "\(directory)/slurm.conf"]
        let key = "\(directory)/munge.key"
        _ = FileManager.default.createFile(
            atPath: key, contents: Data((0..<128).map { _ in UInt8.random(in: 0...255) }),
            attributes: [.posixPermissions: 0o600])
        let head = hosts.hosts[0]
        // On the first host, so that removing the hosts ends it even if `stop` never runs; its
        // socket is a file, which the other hosts and this machine reach all the same.
        try start(
            on: head, "/usr/sbin/munged", "--force", "--socket=\(directory)/munge.socket", "--key-file=\(key)",
            "--log-file=\(directory)/munged.log", "--pid-file=\(directory)/munged.pid",
            "--seed-file=\(directory)/munged.seed")
        var configuration = """
            ClusterName=resnetddp
            SlurmctldHost=\(head.name)(\(head.address))
            AuthType=auth/munge
            AuthInfo=socket=\(directory)/munge.socket
            CredType=cred/munge
            SlurmUser=root
            SlurmdUser=root
            StateSaveLocation=\(directory)/state
            SlurmdSpoolDir=\(directory)/spool-%n
            SlurmctldPidFile=\(directory)/slurmctld.pid
            SlurmdPidFile=\(directory)/slurmd-%n.pid
            SlurmctldLogFile=\(directory)/slurmctld.log
            SlurmdLogFile=\(directory)/slurmd-%n.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            MpiDefault=none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU
            ReturnToService=2
            KillWait=10
            MinJobAge=600

            """
        for host in hosts.hosts {
            configuration += "NodeName=\(host.name) NodeAddr=\(host.address) CPUs=\(cpusPerNode) State=UNKNOWN\n"
        }
        configuration += "PartitionName=main Nodes=\(hosts.hosts.map(\.name).joined(separator: ",")) Default=YES MaxTime=INFINITE State=UP\n"
        try configuration.write(toFile: "\(directory)/slurm.conf", atomically: true, encoding: .utf8)
        // slurmd needs a cgroup plugin even with proctrack/linuxproc; autodetection fails on a
        // hybrid hierarchy mounted under a tmpfs, as here.
        try "CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\n"
            .write(toFile: "\(directory)/cgroup.conf", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        for host in hosts.hosts {
            try FileManager.default.createDirectory(atPath: "\(directory)/spool-\(host.name)", withIntermediateDirectories: true)
        }
        do {
            // Both daemonize once they are listening.
            try start(on: head, "/usr/sbin/slurmctld")
            for host in hosts.hosts { try start(on: host, "/usr/sbin/slurmd", "-N", host.name) }
            try waitForIdleNodes(seconds: 60)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// Runs a Slurm client command here (this machine reaches the controller over the bridge).
    public func run(_ tool: String, _ arguments: [String], seconds: Double = 60) throws -> (status: Int32, output: String) {
        try ToolProcess.run(arguments, executable: tool, environment: environment, seconds: seconds)
    }

    /// Ends the daemons (removing the hosts ends them too).
    public func stop() {
        guard !stopped else { return }
        stopped = true
        for name in ["munged", "slurmctld"] + hosts.hosts.map({ "slurmd-\($0.name)" }) {
            if let text = try? String(contentsOfFile: "\(directory)/\(name).pid", encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
            {
                kill(pid, SIGTERM)
            }
        }
    }

    /// The log of a daemon ("slurmctld", "slurmd-host1", "munged"), for failure messages.
    public func log(_ name: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(name).log", encoding: .utf8)) ?? "(no \(name).log)"
    }

    private func start(on host: SimulatedHosts.Host, _ arguments: String...) throws {
        let (executable, line) = hosts.command(on: host, withoutInheritedFiles(arguments))
        try Self.require(
            ToolProcess.run(line, executable: executable, environment: environment, seconds: 60),
            "\(arguments[0]) on \(host.name)")
    }

    private func waitForIdleNodes(seconds: Double) throws {
        let deadline = Date(timeIntervalSinceNow: seconds)
        var last = ""
        while Date() < deadline {
            let (status, output) = try run("/usr/bin/sinfo", ["-h", "-N", "-o", "%N %t"], seconds: 30)
            last = output
            let idle = output.split(separator: "\n").filter { $0.hasSuffix(" idle") }.count
            if status == 0 && idle == hosts.hosts.count { return }
            usleep(200_000)
        }
        throw SimulatedHostsError("Slurm nodes did not all become idle in \(Int(seconds)) s: \(last)\n\(log("slurmctld"))")
    }

    private static func require(_ result: (status: Int32, output: String), _ what: String) throws {
        guard result.status == 0 else { throw SimulatedHostsError("\(what) did not start: \(result.output)") }
    }
}
