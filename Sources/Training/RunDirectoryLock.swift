import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One writer per run directory: an exclusive `flock` on `RUN_DIR/lock`, held for the life of the
/// process (the kernel drops it when the process ends, however it ends, so a killed trainer never
/// leaves a stale lock). The file records the holder's pid so a second trainer can name it.
/// Deliberately no deinit: the optimizer may end a value's lifetime at its last use, and the lock
/// must outlive the training that never mentions it; `release()` ends it early.
public final class RunDirectoryLock: @unchecked Sendable {
    public let path: String
    private let descriptor: Int32

    /// Takes the lock, creating the directory if needed; throws `RunDirectoryLockError.held`
    /// naming the other process when one already holds it.
    public init(runDirectory: String) throws {
        path = URL(fileURLWithPath: runDirectory).appendingPathComponent("lock").path
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw RunDirectoryLockError.io(runDirectory, error.localizedDescription)
        }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunDirectoryLockError.io(path, String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &bytes, bytes.count, 0)
            close(fd)
            if reason == EWOULDBLOCK {
                let holder =
                    count > 0
                    ? String(decoding: bytes[..<count], as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
                throw RunDirectoryLockError.held(runDirectory, pid: holder)
            }
            throw RunDirectoryLockError.io(path, String(cString: strerror(reason)))
        }
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) != 0 || pwrite(fd, text, text.count, 0) != text.count {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw RunDirectoryLockError.io(path, reason)
        }
        descriptor = fd
    }

    /// Drops the lock (tests; a trainer keeps it until it exits).
    public func release() { close(descriptor) }
}

public enum RunDirectoryLockError: Error, CustomStringConvertible, Equatable {
    case held(String, pid: String)
    case io(String, String)

    public var description: String {
        switch self {
        case .held(let directory, let pid):
            "run directory \(directory) is in use by another trainer (pid \(pid)); stop it first "
                + "(two writers would interleave its metrics and checkpoints)"
        case .io(let path, let reason): "cannot lock \(path): \(reason)"
        }
    }
}
