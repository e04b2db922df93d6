import Dispatch
import Foundation

/// Passes SIGINT, SIGTERM and SIGHUP on to the child process being run (SIGHUP as SIGTERM, which
/// `train` turns into a stop with a checkpoint), and remembers that one arrived.
final class SignalForwarder: @unchecked Sendable {
    private let lock = NSLock()
    private var child: Int32?
    private var received = false
    private var sources: [DispatchSourceSignal] = []

    init() {
        for (number, forwarded) in [(SIGINT, SIGINT), (SIGTERM, SIGTERM), (SIGHUP, SIGTERM)] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.forward(forwarded) }
            source.resume()
            sources.append(source)
        }
    }

    private func forward(_ number: Int32) {
        lock.withLock {
            received = true
            if let child { kill(child, number) }
        }
    }

    /// Starts `process` (unless a signal already came: then check `interrupted`), forwards
    /// signals to it until it exits, and waits for that.
    func run(_ process: Process) throws {
        let started = try lock.withLock {
            if received { return false }
            try process.run()
            child = process.processIdentifier
            return true
        }
        guard started else { return }
        process.waitUntilExit()
        lock.withLock { child = nil }
    }

    var interrupted: Bool { lock.withLock { received } }
}
