#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that readers see either the old file or the complete new one: bytes go to a
/// temporary file in the destination's folder (same file system, so the final `rename` is
/// atomic), which is fsynced and then renamed into place by `commit()`. Without `force`, an
/// existing destination is never replaced (checked at creation and again, race-free through
/// `link`, at commit). If the writer is dropped without `commit()`, the temporary file is removed.
///
/// Not thread-safe: one writer is used by one thread.
public final class AtomicFileWriter {
    /// The destination path.
    public let path: String
    /// Whether an existing destination may be replaced.
    public let force: Bool
    /// Bytes written so far (including buffered ones).
    public private(set) var bytesWritten = 0

    private var fd: Int32
    private let temporaryPath: String
    private var buffer: [UInt8] = []
    private var finished = false
    private static let bufferCapacity = 1 << 20

    /// Creates the temporary file next to `path`.
    /// - Throws: `FormatsError.outputExists` if `path` exists and `force` is false, or
    ///   `FormatsError.io` if the temporary file cannot be created.
    public init(path: String, force: Bool = false) throws {
        self.path = path
        self.force = force
        if !force, access(path, F_OK) == 0 { throw FormatsError.outputExists(path: path) }
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var template = Array("\(folder.isEmpty ? "/" : folder)/.\(base).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FormatsError.io(path: path, operation: "create temporary file", errno: errno) }
        self.fd = fd
        self.temporaryPath = String(cString: template.map { UInt8(bitPattern: $0) })
        _ = fchmod(fd, 0o644)
        buffer.reserveCapacity(Self.bufferCapacity)
    }

    deinit {
        if !finished { abort() }
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "AtomicFileWriter: write after commit/abort")
        bytesWritten += bytes.count
        if buffer.count + bytes.count <= Self.bufferCapacity {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= Self.bufferCapacity {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Appends bytes.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends a UTF-8 string.
    public func write(_ string: String) throws {
        try write(Array(string.utf8))
    }

    /// Appends `count` zero bytes (alignment padding).
    public func writeZeros(_ count: Int) throws {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// Appends a little-endian integer.
    public func writeLittleEndian<T: FixedWidthInteger>(_ value: T) throws {
        try withUnsafeBytes(of: value.littleEndian) { try write($0) }
    }

    /// Flushes, fsyncs and renames the temporary file onto `path`.
    /// - Throws: `FormatsError.outputExists` if `path` appeared meanwhile and `force` is false.
    public func commit() throws {
        precondition(!finished, "AtomicFileWriter: commit twice")
        do {
            try flush()
            guard fsync(fd) == 0 else { throw FormatsError.io(path: path, operation: "fsync", errno: errno) }
        } catch {
            abort()
            throw error
        }
        close(fd)
        fd = -1
        finished = true
        if force {
            guard rename(temporaryPath, path) == 0 else {
                let e = errno
                unlink(temporaryPath)
                throw FormatsError.io(path: path, operation: "rename", errno: e)
            }
        } else {
            // link() fails with EEXIST instead of replacing: no window where an existing file is lost.
            if link(temporaryPath, path) == 0 {
                unlink(temporaryPath)
            } else {
                let e = errno
                if e == EEXIST {
                    unlink(temporaryPath)
                    throw FormatsError.outputExists(path: path)
                }
                // File systems without hard links: check, then rename.
                if access(path, F_OK) == 0 {
                    unlink(temporaryPath)
                    throw FormatsError.outputExists(path: path)
                }
                guard rename(temporaryPath, path) == 0 else {
                    let e2 = errno
                    unlink(temporaryPath)
                    throw FormatsError.io(path: path, operation: "rename", errno: e2)
                }
            }
        }
        syncFolder()
    }

    /// Discards the temporary file; `path` is left untouched.
    public func abort() {
        guard !finished else { return }
        finished = true
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporaryPath)
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = systemWrite(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatsError.io(path: path, operation: "write", errno: errno)
            }
            left -= n
            p += n
        }
    }

    private func syncFolder() {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let dfd = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
