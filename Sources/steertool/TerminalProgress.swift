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
