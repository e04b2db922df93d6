import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import TensorCore

/// `ComputePool.forEach` runs on persistent helper threads that claim items: every item must run
/// exactly once per loop, whatever the thread count, however loops follow each other, and when
/// several pools or nested loops compete for the helpers (they fall back to Dispatch).
@Suite struct ComputePoolTests {
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

    @Test func itemsAreSharedBetweenThreads() {
        // With slow items, a second thread must take some of them (the helpers are alive).
        let pool = ComputePool(threads: 2)
        let caller = pthread_self()
        let others = Tally(1)
        for _ in 0..<20 {
            pool.forEach(16) { _ in
                if pthread_equal(pthread_self(), caller) == 0 { others.mark(0) }
                var x = 1.0
                for _ in 0..<200_000 { x = x * 1.000001 + 1e-9 }
                precondition(x > 0)
            }
        }
        #expect(others.counts[0] > 0)
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
        let count = 70_000   // more items than a ticket can count: falls back to Dispatch
        let tally = Tally(count)
        ComputePool(threads: 2).forEach(count) { tally.mark($0) }
        #expect(tally.counts.allSatisfy { $0 == 1 })
    }
}
