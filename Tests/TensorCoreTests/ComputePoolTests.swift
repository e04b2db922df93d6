import Dispatch
import Synchronization
import TensorCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `ComputePool.forEach` runs on persistent helper threads that claim items: every item must run
/// exactly once per loop, whatever the thread count, however loops follow each other, and when
/// several pools or nested loops compete for the helpers (they fall back to Dispatch).
/// Serialized: `twoItemsRunAtTheSameTimeOnTwoThreads` needs a second thread to pick up its item,
/// and this suite's other loops, run beside it, kept the helpers and Dispatch's threads busy (once
/// for 60 s, in CI).
@Suite(.serialized) struct ComputePoolTests {
    /// Counts how often each item ran; locked because items run on different threads.
    final class Tally: Sendable {
        let runs: Mutex<[Int]>
        init(_ count: Int) { runs = Mutex([Int](repeating: 0, count: count)) }
        func mark(_ i: Int) { runs.withLock { $0[i] += 1 } }
        var counts: [Int] { runs.withLock { $0 } }
    }

    @Test(arguments: [2, 3, 4])
    func everyItemRunsOncePerLoop(threads: Int) {
        let pool = ComputePool(threads: threads)
        // Many short loops in a row exercise the hand-over between generations.
        for count in [1, 2, 3, 7, 64, 128, 1000] {
            for _ in 0..<50 {
                let tally = Tally(count)
                pool.forEach(count) { tally.mark($0) }
                #expect(tally.counts == [Int](repeating: 1, count: count))
            }
        }
    }

    /// Per-worker buffers rely on this: a worker index below min(threads, count), and never two
    /// items of one worker at the same time (each item marks its worker busy while it runs).
    @Test(arguments: [2, 3, 4])
    func workersAreInRangeAndRunOneItemAtATime(threads: Int) {
        let pool = ComputePool(threads: threads)
        for count in [1, 2, 3, 7, 128] {
            for _ in 0..<30 {
                let workers = min(threads, count)
                let busy = Mutex([Bool](repeating: false, count: workers))
                let tally = Tally(count), overlaps = Tally(1), outOfRange = Tally(1)
                pool.forEachOnWorkers(count) { item, worker in
                    guard worker >= 0 && worker < workers else {
                        outOfRange.mark(0)
                        return
                    }
                    let wasBusy = busy.withLock { flags in
                        defer { flags[worker] = true }
                        return flags[worker]
                    }
                    if wasBusy { overlaps.mark(0) }
                    tally.mark(item)
                    for _ in 0..<200 { rddpTestSpin() }
                    busy.withLock { $0[worker] = false }
                }
                #expect(tally.counts == [Int](repeating: 1, count: count))
                #expect(overlaps.counts == [0])
                #expect(outOfRange.counts == [0])
            }
        }
    }

    @Test func twoItemsRunAtTheSameTimeOnTwoThreads() {
        // Item 0 waits (up to 60 s, to stay finite under a loaded machine) for item 1 to start:
        // that only happens if another thread runs it meanwhile, as helper or Dispatch fallback.
        let pool = ComputePool(threads: 2)
        let threads = Mutex<[Int: pthread_t]>([:])
        // Either item may start first (helpers claim from the end): each waits for the other.
        let started = Tally(2)
        pool.forEach(2) { i in
            threads.withLock { $0[i] = pthread_self() }
            started.mark(i)
            let deadline = DispatchTime.now().uptimeNanoseconds + 60_000_000_000
            while started.counts[1 - i] == 0 && DispatchTime.now().uptimeNanoseconds < deadline { sched_yield() }
        }
        let seen = threads.withLock { $0 }
        #expect(started.counts == [1, 1])
        if let first = seen[0], let second = seen[1] { #expect(pthread_equal(first, second) == 0) }
    }

    @Test func concurrentPoolsAndNestedLoopsRunEveryItemOnce() {
        let outer = 8, inner = 33, rounds = 30
        let tally = Tally(outer * inner * rounds)
        // Four callers at once: one gets the helpers, the others fall back to Dispatch; the
        // loops inside each item are nested and fall back too.
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            let pool = ComputePool(threads: 2)
            for round in 0..<rounds where round % 4 == caller {
                pool.forEach(outer) { i in
                    pool.forEach(inner) { j in tally.mark((round * outer + i) * inner + j) }
                }
            }
        }
        #expect(tally.counts == [Int](repeating: 1, count: outer * inner * rounds))
    }

    @Test func loopsLargerThanATicketStillRunOnce() {
        let count = 70_000  // more items than a ticket can count: falls back to Dispatch
        let tally = Tally(count)
        ComputePool(threads: 2).forEach(count) { tally.mark($0) }
        #expect(tally.counts.allSatisfy { $0 == 1 })
    }
}

/// A little work the optimizer cannot remove, so that items overlap in time.
@inline(never) func rddpTestSpin() { _ = DispatchTime.now() }
