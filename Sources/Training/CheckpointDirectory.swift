import Foundation

/// The checkpoints of a run: `RUN_DIR/checkpoints/step-00012000.ckpt`. Writes are atomic (temporary
/// file, fsync, rename, fsync of the directory), so a crash or a full disk leaves every file that
/// was already there intact; only the newest `keep` files are kept.
public struct CheckpointDirectory: Sendable {
    public let path: String

    public init(runDirectory: String) {
        path = URL(fileURLWithPath: runDirectory).appendingPathComponent("checkpoints").path
    }

    public func fileName(step: Int) -> String { String(format: "step-%08d.ckpt", step) }

    /// Checkpoint files, newest step first.
    public func files() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".ckpt") }.sorted(by: >)
            .map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
    }

    /// Writes `checkpoint` and removes the oldest files beyond `keep`. Returns the file's path.
    @discardableResult
    public func write(_ checkpoint: Checkpoint, keep: Int) throws -> String {
        let target = URL(fileURLWithPath: path).appendingPathComponent(fileName(step: checkpoint.step)).path
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.io(target, error.localizedDescription)
        }
        try atomicWrite(try checkpoint.encoded(), to: target)
        for old in files().dropFirst(keep) { try? FileManager.default.removeItem(atPath: old) }
        return target
    }

    /// The newest checkpoint that reads and verifies, with warnings for newer ones that did not.
    public func latestValid() throws -> (checkpoint: Checkpoint, path: String, warnings: [String]) {
        var warnings = [String]()
        for file in files() {
            do {
                return (try Self.read(file), file, warnings)
            } catch {
                warnings.append("skipping \(error)")
            }
        }
        throw CheckpointError.noneFound(path + (warnings.isEmpty ? "" : " (\(warnings.joined(separator: "; ")))"))
    }

    public static func read(_ file: String) throws -> Checkpoint {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CheckpointError.invalid(file, "cannot be read (missing or not a file)")
        }
        return try Checkpoint.decode(data, source: file)
    }
}

/// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs
/// the directory. On any error the temporary file is removed and `path` is untouched.
public func atomicWrite(_ data: Data, to path: String) throws {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw CheckpointError.io(path, String(cString: strerror(errno))) }
    var failure: String?
    data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno))
                return
            }
            offset += written
        }
    }
    if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
    if close(fd) != 0 && failure == nil { failure = String(cString: strerror(errno)) }
    if failure == nil && rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
    if let failure {
        unlink(temporary)
        throw CheckpointError.io(path, failure)
    }
    let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY)
    if directory >= 0 {
        fsync(directory)
        close(directory)
    }
}
