import CPUFeatures
import Dispatch
import Foundation
import Synchronization

/// How many threads the engine may use. Work is split into items whose partition does not
/// depend on the thread count, so results are the same for 1 or 2 threads.
public struct ComputePool: Sendable {
    public let threads: Int
    /// When set, layers record their time per operation (see `measure`).
    public let profiler: Profiler?

    public init(threads: Int, profiler: Profiler? = nil) {
        precondition(threads >= 1, "threads must be at least 1")
        self.threads = threads
        self.profiler = profiler
    }

    public static let serial = ComputePool(threads: 1)

    /// Runs `body(i)` for i in 0..<count on up to `threads` threads, each thread taking the next
    /// unclaimed item (results must not depend on which thread runs an item).
    /// Never inlined: inlined into a kernel, the one-thread loop got a copy of the body that the
    /// optimizer compiled several times slower than the closure (fused inference: 32 vs 118 GFLOP/s).
    @inline(never)
    public func forEach(_ count: Int, _ body: (Int) -> Void) {
        forEachOnWorkers(count) { item, _ in body(item) }
    }

    /// `forEach`, also telling each item which of the `min(threads, count)` workers runs it: a
    /// worker runs one item at a time, so per-worker buffers need no locks. Which worker runs
    /// which item varies from run to run.
    @inline(never)
    public func forEachOnWorkers(_ count: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        if WorkerTeam.shared.run(count, helpers: workers - 1, body) { return }
        // The team is taken (another pool of this process is running a loop, or this is a loop
        // inside a loop's body): Dispatch's threads, items interleaved.
        withoutActuallyEscaping(body) { escapable in
            let task = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var i = worker
                while i < count {
                    task.value(i, worker)
                    i += workers
                }
            }
        }
    }
}

/// Wraps a value whose concurrent use is made safe by the caller (disjoint writes per item).
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

/// Process-wide engine settings, set once from the command line before any training.
public enum EngineSettings {
    /// Longest helper poll that `setHelperPoll(microseconds:)` takes.
    public static let maximumHelperPollMicroseconds: UInt64 = 10_000_000
    static let helperPollNanoseconds = Atomic<UInt64>(1_000_000)

    /// How long an idle engine helper thread polls for the next loop before it sleeps: 1 ms by
    /// default; 0 sleeps at once (for machines shared with other work).
    public static func setHelperPoll(microseconds: UInt64) {
        precondition(microseconds <= maximumHelperPollMicroseconds, "validated by the command line")
        helperPollNanoseconds.store(microseconds * 1000, ordering: .relaxed)
    }
}

/// Helper threads that keep polling for the next loop for a while after each one, the way
/// OpenMP runtimes do. Why: a training step runs about 150 parallel loops, and on a VM an idle
/// vCPU halts; waking it through the hypervisor made 2 threads 20-30 % slower than two
/// 1-thread processes side by side. The calling thread works on the loop too.
final class WorkerTeam: @unchecked Sendable {
    static let shared = WorkerTeam()

    /// How long an idle helper polls before it sleeps on `wake` (`EngineSettings`).
    private static var pollNanoseconds: UInt64 { EngineSettings.helperPollNanoseconds.load(ordering: .relaxed) }

    /// Generation (31 bits) | end of the unclaimed items (16) | start of the unclaimed items (16),
    /// in one word: claiming an item is a compare-and-swap that fails once the loop a helper saw
    /// is over, so a late helper can never run an item of a loop that has already returned. The
    /// calling thread claims from the start, helpers from the end: consecutive loops then give a
    /// thread mostly the same images, whose tensors its own cache may still hold.
    private let ticket = Atomic<Int>(0)
    /// Address of the running loop's body; valid while its loop has unclaimed or unfinished items.
    private let body = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let helpersWanted = Atomic<Int>(0)
    private let taken = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let wake = NSCondition()
    // Changed only by the thread holding `taken`.
    private var helpers = 0
    private var generation = 0

    private static let itemBits = 16
    private static let itemMask = (1 << itemBits) - 1

    /// Runs the loop with `helpers` helper threads; false (nothing run) when the team is taken
    /// or the loop has too many items for a ticket.
    func run(_ count: Int, helpers wanted: Int, _ loopBody: (Int, Int) -> Void) -> Bool {
        guard count <= Self.itemMask,
            taken.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return false }
        defer { taken.store(false, ordering: .releasing) }
        while helpers < wanted {
            let index = helpers, seen = generation
            let thread = Thread { [self] in helperLoop(index: index, seen: seen) }
            thread.name = "resnet-ddp compute \(index + 1)"
            thread.start()
            helpers += 1
        }
        withoutActuallyEscaping(loopBody) { loopBody in
            withUnsafePointer(to: loopBody) { address in
                body.store(Int(bitPattern: address), ordering: .relaxed)
                helpersWanted.store(wanted, ordering: .relaxed)
                finished.store(0, ordering: .relaxed)
                generation = (generation + 1) & 0x7FFF_FFFF  // keeps the ticket positive
                ticket.store(generation << (2 * Self.itemBits) | count << Self.itemBits, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    wake.lock()
                    wake.broadcast()
                    wake.unlock()
                }
                work(generation: generation, body: address, fromEnd: false, worker: 0)
                var polls = 0
                while finished.load(ordering: .acquiring) < count {
                    rddp_cpu_relax()
                    polls += 1
                    if polls & 0xFFFF == 0 { sched_yield() }  // a helper was descheduled mid-item
                }
            }
        }
        return true
    }

    /// Claims and runs items of loop `generation` until none are left, from the start or the end.
    private func work(generation: Int, body: UnsafePointer<(Int, Int) -> Void>, fromEnd: Bool, worker: Int) {
        var current = ticket.load(ordering: .acquiring)
        while current >> (2 * Self.itemBits) == generation {
            let end = (current >> Self.itemBits) & Self.itemMask, start = current & Self.itemMask
            guard start < end else { return }
            let (item, next) = fromEnd ? (end - 1, current - (1 << Self.itemBits)) : (start, current + 1)
            let (claimed, seen) = ticket.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing)
            guard claimed else {
                current = seen
                continue
            }
            body.pointee(item, worker)
            finished.add(1, ordering: .releasing)
            current = ticket.load(ordering: .acquiring)
        }
    }

    private func helperLoop(index: Int, seen initial: Int) {
        var seen = initial
        while true {
            let current = nextLoop(after: seen)
            seen = current >> (2 * Self.itemBits)
            guard index < helpersWanted.load(ordering: .relaxed) else { continue }
            guard let address = UnsafeRawPointer(bitPattern: body.load(ordering: .relaxed)) else { continue }
            work(generation: seen, body: address.assumingMemoryBound(to: ((Int, Int) -> Void).self), fromEnd: true, worker: index + 1)
        }
    }

    /// The ticket of the first loop after generation `seen`: polled for `pollNanoseconds`, then
    /// slept for (the loop's starter wakes sleepers).
    private func nextLoop(after seen: Int) -> Int {
        let start = DispatchTime.now().uptimeNanoseconds
        var polls = 0
        while true {
            let current = ticket.load(ordering: .acquiring)
            if current >> (2 * Self.itemBits) != seen { return current }
            rddp_cpu_relax()
            polls += 1
            if polls & 127 == 0, DispatchTime.now().uptimeNanoseconds - start > Self.pollNanoseconds { break }
        }
        // Sleep. The starter stores the ticket before it reads `sleepers` and this thread counts
        // itself before it reads the ticket (both sequentially consistent), so one of the two
        // sees the other: no wake-up is lost.
        sleepers.add(1, ordering: .sequentiallyConsistent)
        defer { sleepers.subtract(1, ordering: .sequentiallyConsistent) }
        wake.lock()
        defer { wake.unlock() }
        while true {
            let current = ticket.load(ordering: .sequentiallyConsistent)
            if current >> (2 * Self.itemBits) != seen { return current }
            wake.wait()
        }
    }
}
