import CAffinity
import Foundation

/// Binding a worker process to CPUs (`worker --cpus`, `train --bind-workers`), like
/// `mpirun --bind-to core`. Unbound, the scheduler wakes one worker's ZeroMQ I/O thread on the
/// core where the other worker computes, at every batch-norm meeting, and preempts it there
/// (thousands of involuntary context switches a minute); bound, each worker's threads share
/// its own core. Scheduling only: the bits do not change.
public enum CPUAffinity {
    public enum Problem: Error, CustomStringConvertible, Equatable {
        case syntax(String)
        case notAllowed(cpu: Int, allowed: [Int])
        case system(String)

        public var description: String {
            switch self {
            case .syntax(let reason): reason
            case .notAllowed(let cpu, let allowed):
                "CPU \(cpu) is not one this process may use (allowed: \(CPUAffinity.format(allowed)))"
            case .system(let reason): reason
            }
        }
    }

    /// The CPUs this process may run on (its affinity mask: taskset, cgroup cpusets, Slurm), ascending.
    public static func allowedCPUs() throws(Problem) -> [Int] {
        let capacity = Int(rddp_max_cpu_index()) + 1
        var cpus = [Int32](repeating: 0, count: capacity)
        let count = rddp_allowed_cpus(&cpus, Int32(capacity))
        guard count >= 0 else { throw .system("sched_getaffinity failed: \(String(cString: strerror(-count)))") }
        return cpus.prefix(Int(count)).map(Int.init)
    }

    /// Parses a CPU list as taskset and Slurm write it: "0", "0,2", "0-3", "0-1,4".
    public static func parse(_ spec: String) throws(Problem) -> [Int] {
        let maximum = Int(rddp_max_cpu_index())
        var cpus: [Int] = []
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let first = Int(bounds[0]), let last = Int(bounds[bounds.count - 1]),
                first >= 0, last >= 0
            else { throw .syntax("'\(spec)' is not a CPU list (e.g. 0, 0,2 or 0-3)") }
            guard first <= last else { throw .syntax("CPU range \(part) in '\(spec)' runs backwards") }
            guard last <= maximum else { throw .syntax("CPU \(last) in '\(spec)' is above the largest index, \(maximum)") }
            cpus += Array(first...last)
        }
        guard Set(cpus).count == cpus.count else { throw .syntax("'\(spec)' names a CPU twice") }
        return cpus.sorted()
    }

    /// "0-3,6": the list in the form `parse` reads.
    public static func format(_ cpus: [Int]) -> String {
        var ranges: [String] = []
        var index = 0
        let sorted = cpus.sorted()
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            ranges.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return ranges.joined(separator: ",")
    }

    /// Restricts every thread of this process (and so every thread it creates later) to `cpus`,
    /// each of which must be allowed. Returns the CPUs the threads were read back as allowed to use.
    @discardableResult
    public static func bindProcess(to cpus: [Int]) throws(Problem) -> [Int] {
        guard !cpus.isEmpty else { throw .syntax("no CPUs to bind to") }
        let allowed = try allowedCPUs()
        if let outside = cpus.first(where: { !allowed.contains($0) }) { throw .notAllowed(cpu: outside, allowed: allowed) }
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { Int32($0) }) ?? [0]
        let set = cpus.map { Int32($0) }
        for thread in threads {
            let result = rddp_bind_thread(thread, set, Int32(set.count))
            // A thread that ended since the listing (ESRCH) needs no binding.
            guard result == 0 || result == -ESRCH else {
                throw .system("sched_setaffinity(\(thread)) failed: \(String(cString: strerror(-result)))")
            }
        }
        return try allowedCPUs()
    }
}
