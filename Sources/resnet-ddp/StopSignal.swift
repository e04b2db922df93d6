import Dispatch
import Foundation

/// Turns SIGINT and SIGTERM into a flag the trainer polls between steps, so a stop always lands
/// on a step boundary with a checkpoint. A second signal exits at once.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    private var sources: [DispatchSourceSignal] = []

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

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return set
    }
}
