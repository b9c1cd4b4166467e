import Foundation

/// A one-line progress bar on stderr (units done, rate, ETA), drawn only when stderr is a
/// terminal; silent otherwise so logs and pipes stay clean.
final class TerminalProgress {
    private let total: Int
    private let unit: String
    private var done = 0
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool

    init(total: Int, unit: String) {
        self.total = max(total, 1)
        self.unit = unit
        enabled = isatty(STDERR_FILENO) == 1
    }

    func advance(by n: Int) {
        done += n
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 || done >= total else { return }
        lastDraw = Date()
        let elapsed = max(Date().timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let width = 30
        let filled = min(width, Int(Double(width) * Double(done) / Double(total)))
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = String(format: "\r[%@] %d/%d %@  %.0f %@/s  ETA %d:%02d ", bar, done, total, unit, rate, unit,
                          Int(remaining) / 60, Int(remaining) % 60)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// A one-line status on stderr for work in stages ("layer 3/30  fit  0:42 elapsed  ETA 2:10"):
/// the ETA extrapolates the elapsed time over the stages done. Drawn only when stderr is a
/// terminal; silent otherwise.
final class TerminalStatus {
    private let start = Date()
    private let enabled = isatty(STDERR_FILENO) == 1

    /// Shows `label` with `done` of `total` stages finished.
    func update(done: Int, total: Int, label: String) {
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(start)
        var line = "\r\u{1B}[K" + label + String(format: "  %d:%02d elapsed", Int(elapsed) / 60, Int(elapsed) % 60)
        if done > 0 && done < total {
            let eta = elapsed / Double(done) * Double(total - done)
            line += String(format: "  ETA %d:%02d", Int(eta) / 60, Int(eta) % 60)
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Clears the line.
    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
