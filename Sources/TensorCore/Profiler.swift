import Foundation

/// Time per operation kind, for `resnet-ddp bench --profile`. Off unless a pool carries one.
public final class Profiler: @unchecked Sendable {
    public struct Entry: Sendable {
        public var seconds = 0.0
        public var calls = 0
        public var flops = 0.0
        public var bytes = 0.0
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var order: [String] = []

    public init() {}

    public func record(_ name: String, seconds: Double, flops: Double, bytes: Double) {
        lock.lock()
        defer { lock.unlock() }
        if entries[name] == nil { order.append(name) }
        entries[name, default: Entry()].seconds += seconds
        entries[name, default: Entry()].calls += 1
        entries[name, default: Entry()].flops += flops
        entries[name, default: Entry()].bytes += bytes
    }

    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        entries = [:]
        order = []
    }

    /// Entries in first-seen order.
    public var report: [(name: String, entry: Entry)] {
        lock.lock()
        defer { lock.unlock() }
        return order.map { ($0, entries[$0]!) }
    }
}

extension ComputePool {
    /// Runs `body`, charging its time (and the given work) to `name` when profiling.
    @inline(__always)
    public func measure<T>(
        _ name: @autoclosure () -> String, flops: Double = 0, bytes: Double = 0,
        _ body: () throws -> T
    ) rethrows -> T {
        guard let profiler else { return try body() }
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let result = try body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        profiler.record(
            name(), seconds: Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9,
            flops: flops, bytes: bytes)
        return result
    }
}
