import Foundation
import TensorCore
import TestSupport
import Testing
import Training

/// The chaos soak (scripts/soak --chaos, not CI: it trains for many minutes): three workers
/// train a ResNet for a few thousand steps while, every few seconds, a random worker is
/// SIGKILLed, SIGSTOPped or cut off from the network, and a replacement takes its place. The run
/// must end bitwise equal to the unfaulted single-process run. Writes its figures (faults
/// survived, detection and recovery p50/p99) to $RESNET_DDP_CHAOS_REPORT.
struct ChaosSoakTests {
    static let environment = ProcessInfo.processInfo.environment
    static let steps = Int(environment["RESNET_DDP_CHAOS_STEPS"] ?? "")

    enum Fault: String, CaseIterable { case kill = "SIGKILL", stop = "SIGSTOP", cut = "network cut" }

    struct Record {
        let fault: Fault
        let step: Int
        let detection: Double
        var recovery: Double?
    }

    @Test(.enabled(if: canRunFaultSuite && steps != nil, "set RESNET_DDP_CHAOS_STEPS (scripts/soak --chaos)"))
    func randomFaultsEndBitwiseEqual() throws {
        let depth = Int(Self.environment["RESNET_DDP_CHAOS_DEPTH"] ?? "") ?? 20
        let interval = Double(Self.environment["RESNET_DDP_CHAOS_INTERVAL"] ?? "") ?? 20
        let seed = UInt64(Self.environment["RESNET_DDP_CHAOS_SEED"] ?? "") ?? 1
        var rng = SplitMix64(seed: seed)
        let run = FaultRun(iterations: Self.steps!, depth: depth)
        // Slot 0 runs in its own network namespace when this may make one (root): it can be cut off.
        let network = ipTool != nil ? try SimulatedHosts(count: 1) : nil
        defer { network?.remove() }
        if let network { run.endpoint = "tcp://\(network.gateway):\(Int.random(in: 20_000..<60_000))" }
        func start(slot: Int) throws -> ToolProcess {
            guard let network else { return try run.startWorker() }
            return slot == 0
                ? try run.startWorker(["--ring-host", network.hosts[0].address], namespace: network.hosts[0].namespace)
                : try run.startWorker(["--ring-host", network.gateway])
        }
        let coordinator = try run.startCoordinator(workers: 3, extra: ["--step-timeout", "30"], checkpointEvery: 500)
        var slots = try (0..<3).map { try start(slot: $0) }
        func fullMembership(after time: Double) -> Bool {
            run.events("membership").contains { $0["workers"] as? Int == 3 && ($0["time"] as? Double ?? 0) > time }
        }
        try #require(run.waitUntil(seconds: 120) { fullMembership(after: 0) }, "three workers did not join: \(run.events)")

        var records: [Record] = []
        var lastFault = 0.0  // the first full membership counts as repaired
        while coordinator.process.isRunning {
            // The schedule: a fault every `interval` seconds, once the last one is repaired.
            _ = run.waitUntil(seconds: interval) { !coordinator.process.isRunning }
            let repaired = run.waitUntil(seconds: 180) { fullMembership(after: lastFault) || !coordinator.process.isRunning }
            guard coordinator.process.isRunning else { break }
            try #require(repaired, "membership not back to 3 workers after the fault at \(lastFault): \(run.events.suffix(5))")
            if var last = records.popLast() {
                last.recovery = run.events("recovered").compactMap { $0["time"] as? Double }.first { $0 > lastFault }.map { $0 - lastFault }
                records.append(last)
            }
            let fault = Fault.allCases.filter { $0 != .cut || network != nil }.randomElement(using: &rng)!
            let slot = fault == .cut ? 0 : Int.random(in: 0..<3, using: &rng)
            let victim = slots[slot]
            let pid = victim.process.processIdentifier
            let step = run.events.last?["step"] as? Int ?? 0
            lastFault = Date().timeIntervalSince1970
            switch fault {
            case .kill: kill(pid, SIGKILL)
            case .stop: kill(pid, SIGSTOP)
            case .cut: try network!.setLink(of: network!.hosts[0], up: false)
            }
            let lost = run.waitUntil(seconds: 120) {
                run.events("lost").contains { $0["pid"] as? Int == Int(pid) && ($0["time"] as? Double ?? 0) > lastFault }
                    || !coordinator.process.isRunning
            }
            guard coordinator.process.isRunning else {
                if fault == .stop { kill(pid, SIGCONT) }
                if fault == .cut { try network!.setLink(of: network!.hosts[0], up: true) }
                break
            }
            try #require(lost, "\(fault.rawValue) of worker pid \(pid) at step \(step) was not detected: \(run.events.suffix(5))")
            let lostTime = run.events("lost").compactMap { $0["time"] as? Double }.first { $0 > lastFault }!
            records.append(Record(fault: fault, step: step, detection: lostTime - lastFault))
            switch fault {
            case .kill:
                slots[slot] = try start(slot: slot)
            case .stop:
                kill(pid, SIGCONT)  // it finds itself removed and joins again
            case .cut:
                #expect(victim.wait(seconds: 30) == 3, "a cut-off worker exits with status 3: \(victim.output)")
                try network!.setLink(of: network!.hosts[0], up: true)
                slots[slot] = try start(slot: slot)
            }
        }
        try run.expectCompletesLikeReference(seconds: 600)
        #expect(records.count >= 3, "only \(records.count) faults: lengthen the run or shorten RESNET_DDP_CHAOS_INTERVAL")
        try report(records, depth: depth, interval: interval, seed: seed, wall: -run.started.timeIntervalSinceNow)
    }

    func report(_ records: [Record], depth: Int, interval: Double, seed: UInt64, wall: Double) throws {
        func percentiles(_ values: [Double]) -> String {
            guard !values.isEmpty else { return "-" }
            let sorted = values.sorted()
            func at(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))] }
            return String(format: "%.2f / %.2f", at(0.5), at(0.99))
        }
        var lines = ["| fault | survived | detection p50 / p99 (s) | recovery p50 / p99 (s) |", "|---|---:|---:|---:|"]
        for fault in Fault.allCases + [nil] {
            let chosen = records.filter { fault == nil || $0.fault == fault }
            guard !chosen.isEmpty else { continue }
            lines.append(
                "| \(fault?.rawValue ?? "all") | \(chosen.count) | \(percentiles(chosen.map(\.detection))) | "
                    + "\(percentiles(chosen.compactMap(\.recovery))) |")
        }
        let summary =
            "ResNet-\(depth), \(Self.steps!) steps, 3 workers, a fault every \(Int(interval)) s (seed \(seed)): "
            + "\(records.count) faults survived in \(Int(wall)) s; final parameters bitwise equal to the unfaulted run."
        print("chaos soak: \(summary)\n" + lines.joined(separator: "\n"))
        guard let path = Self.environment["RESNET_DDP_CHAOS_REPORT"] else { return }
        try
            ([
                "\(summary) Detection: fault to the coordinator's `lost` event; recovery: fault to the first step completed "
                    + "after it (`recovered`).", "",
            ] + lines + [""]).joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
