import Foundation

/// The human-readable progress line: rewritten in place on a terminal, printed as plain lines
/// otherwise (logs, CI). Messages go to standard error so standard output stays for results.
public final class ProgressDisplay {
    public let isInteractive: Bool
    private var lineOpen = false

    public init(interactive: Bool = isatty(STDERR_FILENO) != 0) {
        self.isInteractive = interactive
    }

    /// Updates the status line (on a terminal) or prints it (otherwise, only when `persistent`).
    public func status(_ text: String, persistent: Bool) {
        if isInteractive {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
            lineOpen = true
            if persistent { newline() }
        } else if persistent {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    public func message(_ text: String) {
        if lineOpen { newline() }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    private func newline() {
        FileHandle.standardError.write(Data("\n".utf8))
        lineOpen = false
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
