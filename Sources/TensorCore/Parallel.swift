import Dispatch

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

    /// Runs `body(i)` for i in 0..<count, items interleaved over the threads (static schedule).
    /// Never inlined: inlined into a kernel, the one-thread loop got a copy of the body that the
    /// optimizer compiled several times slower than the closure (fused inference: 32 vs 118 GFLOP/s).
    @inline(never)
    public func forEach(_ count: Int, _ body: (Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let task = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var i = worker
                while i < count {
                    task.value(i)
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
