#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (`mmap`, `PROT_READ`, `MAP_PRIVATE`), unmapped when
/// the last reference goes away. Readers hand out views into `bytes` instead of copying tensor
/// data; a view must not outlive the `MappedFile` it points into (keep the file alive with it).
///
/// Thread safety: the mapping is created in `init`, never written and released only in `deinit`,
/// so concurrent reads from any thread are safe; that is why the class is `@unchecked Sendable`.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// Length of the file in bytes.
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps the file at `path`. An empty file gives an empty `bytes` buffer.
    /// - Throws: `TensorsError.cannotMap` naming the path and the failing call.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TensorsError.cannotMap(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TensorsError.cannotMap(path: path, operation: "fstat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw TensorsError.cannotMap(path: path, operation: "open (not a regular file)", errno: EISDIR)
        }
        let size = Int(st.st_size)
        count = size
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw TensorsError.cannotMap(path: path, operation: "mmap", errno: errno)
        }
        base = p
    }

    deinit {
        if let base { munmap(base, count) }
    }

    /// The file's bytes. Valid as long as this object is alive.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Access pattern hints passed to `madvise`. `dontNeed`: the range has been read; its pages
    /// leave this process's resident set (the mapping is read-only, so nothing is lost: they stay
    /// in the page cache and fault back in if read again).
    public enum Advice: Sendable { case sequential, random, willNeed, dontNeed }

    /// Tells the kernel how a byte range will be read (best effort; errors are ignored because
    /// the hint changes only speed, never results).
    public func advise(_ advice: Advice, range: Range<Int>? = nil) {
        guard let base else { return }
        let r = range ?? 0..<count
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (r.lowerBound / page) * page
        guard start < count, r.upperBound > start else { return }
        let flag: Int32 = switch advice {
        case .sequential: MADV_SEQUENTIAL
        case .random: MADV_RANDOM
        case .willNeed: MADV_WILLNEED
        case .dontNeed: MADV_DONTNEED
        }
        _ = madvise(base + start, min(r.upperBound, count) - start, flag)
    }
}
