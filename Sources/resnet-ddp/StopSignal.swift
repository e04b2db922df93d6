import Dispatch
import Foundation

/// Turns SIGINT and SIGTERM into a flag the trainer polls between steps, so a stop always lands
/// on a step boundary with a checkpoint. A second signal exits at once.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private var sources: [DispatchSourceSignal] = []
    private var parentWatch: DispatchSourceTimer?

    init() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.raise() }
            source.resume()
            sources.append(source)
        }
    }

    private func raise() {
        lock.lock()
        defer { lock.unlock() }
        if set { exit(130) }
        set = true
        FileHandle.standardError.write(Data("\nstopping after this step (again to abort)\n".utf8))
    }

    /// Stops after the current step once `parent` is no longer this process's parent: a trainer
    /// started by `experiment` must not outlive it, even when it was SIGKILLed (we are then
    /// re-parented, so `getppid` changes; unlike a kill(pid, 0) probe this cannot be fooled by a
    /// reused pid).
    func watchParent(_ parent: Int32) {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now(), repeating: .milliseconds(250))
        timer.setEventHandler { [weak self] in
            guard let self, getppid() != parent else { return }
            self.lock.withLock {
                self.parentWatch?.cancel()
                guard !self.set else { return }
                self.set = true
                FileHandle.standardError.write(Data("\nparent process \(parent) ended: stopping after this step\n".utf8))
            }
        }
        lock.withLock { parentWatch = timer }
        timer.resume()
    }

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return set
    }
}
