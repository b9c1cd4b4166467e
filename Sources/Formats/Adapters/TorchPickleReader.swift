import Foundation
internal import CZlib
import Tensors

/// Why a PyTorch `.bin` checkpoint was refused. The reader executes nothing: unknown pickle
/// opcodes and any global other than the few tensor-rebuilding ones are errors naming them.
public enum PickleError: Error, Equatable, CustomStringConvertible {
    /// The zip container is malformed (offset in the file).
    case invalidZip(file: String, offset: Int, reason: String)
    /// A pickle opcode outside the supported subset.
    case unsupportedOpcode(file: String, offset: Int, opcode: UInt8)
    /// A global (module, name) that is not on the allow-list.
    case forbiddenGlobal(file: String, offset: Int, module: String, name: String)
    /// The pickle program is malformed (stack underflow, wrong argument types, …).
    case invalidPickle(file: String, offset: Int, reason: String)
    /// A tensor refers to storage bytes that are missing or too short.
    case invalidStorage(file: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidZip(f, off, r): return "\(f): invalid zip container at offset \(off): \(r)"
        case let .unsupportedOpcode(f, off, op): return "\(f): unsupported pickle opcode 0x\(String(op, radix: 16)) at offset \(off)"
        case let .forbiddenGlobal(f, off, m, n): return "\(f): pickle global \(m).\(n) at offset \(off) is not allowed (only tensor rebuilding is)"
        case let .invalidPickle(f, off, r): return "\(f): invalid pickle at offset \(off): \(r)"
        case let .invalidStorage(f, k, r): return "\(f): storage '\(k)': \(r)"
        }
    }
}

/// Reads `torch.save` zip checkpoints (a `state_dict` of tensors: `{name: Tensor}` as a dict or
/// OrderedDict) into Float32 tensors. The zip container is parsed by hand (stored entries, or
/// deflated ones through zlib); the pickle is interpreted by a restricted machine that only
/// builds dicts, tuples, lists, strings, numbers and tensors from
/// `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` over `torch.*Storage` persistent ids.
public enum TorchPickleReader {
    /// Loads every tensor of the checkpoint at `path`.
    public static func load(path: String) throws -> [String: Tensor] {
        let file = try MappedFile(path: path)
        let zip = try ZipDirectory(bytes: file.bytes, file: path)
        guard let pklName = zip.names.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw PickleError.invalidZip(file: path, offset: 0, reason: "no data.pkl entry")
        }
        let prefix = String(pklName.dropLast("data.pkl".count))
        let pkl = try zip.contents(of: pklName)
        var machine = PickleMachine(bytes: pkl, file: path)
        let root = try machine.run()
        guard case .dict(let pairs) = root else { throw PickleError.invalidPickle(file: path, offset: 0, reason: "the pickle is not a dict of tensors") }
        var out: [String: Tensor] = [:]
        for (k, v) in pairs {
            guard case .string(let name) = k, case .tensor(let ref) = v else {
                throw PickleError.invalidPickle(file: path, offset: 0, reason: "an entry of the state dict is not name → tensor")
            }
            let storage = try zip.contents(of: prefix + "data/" + ref.key)
            out[name] = try ref.materialize(storage, file: path)
        }
        return out
    }
}

/// A reference to tensor data inside the archive, as `_rebuild_tensor_v2` describes it.
struct TensorRef {
    var key: String
    var dtype: DType
    var storageOffset: Int
    var size: [Int]
    var stride: [Int]

    func materialize(_ storage: [UInt8], file: String) throws -> Tensor {
        guard let shape = Shape.checked(size), stride.count == size.count, storageOffset >= 0 else {
            throw PickleError.invalidStorage(file: file, key: key, reason: "invalid size \(size) / stride \(stride)")
        }
        let elements = storage.count / dtype.byteSize
        // Largest element index touched, checked for overflow before any access.
        var maxIndex = storageOffset
        for (d, s) in zip(size, stride) where d > 0 {
            guard s >= 0 else { throw PickleError.invalidStorage(file: file, key: key, reason: "negative stride") }
            let (p, o1) = (d - 1).multipliedReportingOverflow(by: s)
            let (q, o2) = maxIndex.addingReportingOverflow(p)
            guard !o1, !o2 else { throw PickleError.invalidStorage(file: file, key: key, reason: "size × stride overflows") }
            maxIndex = q
        }
        guard shape.count == 0 || maxIndex < elements else {
            throw PickleError.invalidStorage(file: file, key: key, reason: "tensor reaches element \(maxIndex) of a \(elements)-element storage")
        }
        var decoded = [Float](repeating: 0, count: elements)
        storage.withUnsafeBytes { raw in
            decoded.withUnsafeMutableBufferPointer { out in
                ElementCodec.decode(UnsafeRawBufferPointer(rebasing: raw[0..<(elements * dtype.byteSize)]), dtype: dtype, into: out)
            }
        }
        return Tensor(shape: shape) { out in
            var index = [Int](repeating: 0, count: size.count)
            for i in 0..<shape.count {
                var src = storageOffset
                for k in 0..<size.count { src += index[k] * stride[k] }
                out[i] = decoded[src]
                var k = size.count - 1
                while k >= 0 {
                    index[k] += 1
                    if index[k] < size[k] { break }
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }
}

/// Values the restricted pickle machine can hold.
indirect enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case tuple([PickleValue]), list([PickleValue]), dict([(PickleValue, PickleValue)])
    case global(String, String), storage(key: String, dtype: DType), tensor(TensorRef), mark
}

/// The pickle subset torch.save uses for a state dict (protocol 2–5 opcodes).
struct PickleMachine {
    let bytes: [UInt8]
    let file: String
    var i = 0
    var stack: [PickleValue] = []
    var memo: [Int: PickleValue] = [:]

    init(bytes: [UInt8], file: String) { self.bytes = bytes; self.file = file }

    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8, "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    func fail(_ r: String) -> PickleError { .invalidPickle(file: file, offset: i, reason: r) }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - i else { throw fail("truncated") }
        defer { i += n }
        return bytes[i..<(i + n)]
    }
    mutating func u8() throws -> Int { Int(try take(1).first ?? 0) }
    mutating func le(_ n: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for (k, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(k)) }
        return v
    }
    mutating func line() throws -> String {
        guard let end = bytes[i...].firstIndex(of: 0x0a) else { throw fail("unterminated line") }
        defer { i = end + 1 }
        return String(decoding: bytes[i..<end], as: UTF8.self)
    }
    mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        return v
    }
    mutating func popMark() throws -> [PickleValue] {
        guard let m = stack.lastIndex(where: { if case .mark = $0 { true } else { false } }) else { throw fail("no MARK") }
        let items = Array(stack[(m + 1)...])
        stack.removeSubrange(m...)
        return items
    }
    mutating func string(_ n: Int) throws -> PickleValue {
        guard let s = String(validating: try take(n), as: UTF8.self) else { throw fail("string is not UTF-8") }
        return .string(s)
    }

    mutating func run() throws -> PickleValue {
        let maxStack = 1 << 20
        while true {
            let at = i
            let op = UInt8(try u8())
            guard stack.count < maxStack else { throw fail("stack too deep") }
            switch op {
            case 0x80: _ = try u8()                                   // PROTO
            case 0x95: _ = try le(8)                                  // FRAME
            case 0x2e: return try pop()                               // STOP
            case 0x28: stack.append(.mark)                            // MARK
            case 0x7d: stack.append(.dict([]))                        // EMPTY_DICT
            case 0x29: stack.append(.tuple([]))                       // EMPTY_TUPLE
            case 0x5d: stack.append(.list([]))                        // EMPTY_LIST
            case 0x4e: stack.append(.none)                            // NONE
            case 0x88: stack.append(.bool(true))                      // NEWTRUE
            case 0x89: stack.append(.bool(false))                     // NEWFALSE
            case 0x4b: stack.append(.int(try u8()))                   // BININT1
            case 0x4d: stack.append(.int(Int(try le(2))))             // BININT2
            case 0x4a: stack.append(.int(Int(Int32(truncatingIfNeeded: try le(4)))))  // BININT
            case 0x8a:                                                // LONG1
                let n = try u8()
                guard n <= 8 else { throw fail("LONG1 of \(n) bytes") }
                var v = n == 0 ? 0 : Int(truncatingIfNeeded: try le(n))
                if n > 0 && n < 8, v & (1 << (8 * n - 1)) != 0 { v -= 1 << (8 * n) }
                stack.append(.int(v))
            case 0x47: stack.append(.float(Double(bitPattern: (try take(8)).reduce(0) { $0 << 8 | UInt64($1) })))  // BINFLOAT (big-endian)
            case 0x58: stack.append(try string(Int(try le(4))))       // BINUNICODE
            case 0x8c: stack.append(try string(try u8()))             // SHORT_BINUNICODE
            case 0x8d: let n = try le(8); guard n < UInt64(bytes.count) else { throw fail("huge string") }; stack.append(try string(Int(n)))  // BINUNICODE8
            case 0x43: stack.append(.bytes(Array(try take(try u8()))))           // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try take(Int(try le(4))))))     // BINBYTES
            case 0x71: memo[try u8()] = stack.last                    // BINPUT
            case 0x72: memo[Int(try le(4))] = stack.last              // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                  // MEMOIZE
            case 0x68, 0x6a:                                          // BINGET, LONG_BINGET
                let k = op == 0x68 ? try u8() : Int(try le(4))
                guard let v = memo[k] else { throw fail("memo \(k) unset") }
                stack.append(v)
            case 0x74: stack.append(.tuple(try popMark()))            // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))              // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))  // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))  // TUPLE3
            case 0x6c: stack.append(.list(try popMark()))             // LIST
            case 0x61, 0x65:                                          // APPEND, APPENDS
                let items = op == 0x61 ? [try pop()] : try popMark()
                guard case .list(var l) = try pop() else { throw fail("APPEND to a non-list") }
                l += items
                stack.append(.list(l))
            case 0x73, 0x75:                                          // SETITEM, SETITEMS
                let items = op == 0x73 ? [try pop(), try pop()].reversed() : try popMark()
                guard items.count % 2 == 0, case .dict(var d) = try pop() else { throw fail("SETITEMS on a non-dict") }
                for k in stride(from: 0, to: items.count, by: 2) { d.append((items[k], items[k + 1])) }
                stack.append(.dict(d))
            case 0x63:                                                // GLOBAL
                let module = try line(), name = try line()
                stack.append(try allowGlobal(module, name, at: at))
            case 0x93:                                                // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs strings") }
                stack.append(try allowGlobal(module, name, at: at))
            case 0x51:                                                // BINPERSID
                guard case .tuple(let t) = try pop(), t.count >= 5, case .string("storage") = t[0],
                      case .storage(_, let dtype) = t[1], case .string(let key) = t[2] else {
                    throw fail("persistent id is not ('storage', torch.*Storage, key, location, numel)")
                }
                guard !key.contains("/"), !key.contains("..") else { throw fail("storage key \(key) is not a plain name") }
                stack.append(.storage(key: key, dtype: dtype))
            case 0x52:                                                // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args))
            case 0x62:                                                // BUILD (state of an OrderedDict / Parameter): ignored
                _ = try pop()
            default:
                throw PickleError.unsupportedOpcode(file: file, offset: at, opcode: op)
            }
        }
    }

    func allowGlobal(_ module: String, _ name: String, at: Int) throws -> PickleValue {
        switch (module, name) {
        case ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"):
            return .global(module, name)
        case ("torch", _):
            guard let dtype = Self.storageTypes[name] else { fallthrough }
            return .storage(key: "", dtype: dtype)
        default:
            throw PickleError.forbiddenGlobal(file: file, offset: at, module: module, name: name)
        }
    }

    func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let module, let name) = callable, case .tuple(let a) = args else { throw fail("REDUCE of a non-global") }
        switch (module, name) {
        case ("collections", "OrderedDict"):
            return .dict([])
        case ("torch._utils", "_rebuild_parameter"):
            guard let t = a.first, case .tensor = t else { throw fail("_rebuild_parameter without a tensor") }
            return t
        default:  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, ...)
            guard a.count >= 4, case .storage(let key, let dtype) = a[0], case .int(let offset) = a[1],
                  case .tuple(let size) = a[2], case .tuple(let stride) = a[3] else {
                throw fail("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, …)")
            }
            func ints(_ v: [PickleValue]) throws -> [Int] {
                try v.map { guard case .int(let x) = $0 else { throw fail("non-integer size/stride") }; return x }
            }
            return .tensor(TensorRef(key: key, dtype: dtype, storageOffset: offset, size: try ints(size), stride: try ints(stride)))
        }
    }
}

/// The central directory of a zip archive (stored and deflated entries; no zip64 sizes).
struct ZipDirectory {
    struct Entry { var method: UInt16; var compressedSize: Int; var size: Int; var localOffset: Int }
    let bytes: UnsafeRawBufferPointer
    let file: String
    private(set) var names: [String] = []
    private var entries: [String: Entry] = [:]

    init(bytes: UnsafeRawBufferPointer, file: String) throws {
        self.bytes = bytes
        self.file = file
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        guard bytes.count >= 22 else { throw PickleError.invalidZip(file: file, offset: 0, reason: "too short for a zip file") }
        var eocd = -1
        var o = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65535)
        while o >= lowest { if u32(o) == 0x0605_4b50 { eocd = o; break }; o -= 1 }
        guard eocd >= 0 else { throw PickleError.invalidZip(file: file, offset: bytes.count, reason: "no end-of-central-directory record") }
        let count = u16(eocd + 10)
        var p = u32(eocd + 16)
        guard p <= eocd else { throw PickleError.invalidZip(file: file, offset: eocd, reason: "central directory offset past its end") }
        for _ in 0..<count {
            guard p + 46 <= eocd, u32(p) == 0x0201_4b50 else { throw PickleError.invalidZip(file: file, offset: p, reason: "bad central directory entry") }
            let method = UInt16(u16(p + 10)), csize = u32(p + 20), size = u32(p + 24)
            let nameLength = u16(p + 28), extra = u16(p + 30), comment = u16(p + 32), local = u32(p + 42)
            guard p + 46 + nameLength <= eocd else { throw PickleError.invalidZip(file: file, offset: p, reason: "entry name past the directory") }
            guard csize != 0xffff_ffff, size != 0xffff_ffff, local != 0xffff_ffff else {
                throw PickleError.invalidZip(file: file, offset: p, reason: "zip64 archives are not supported")
            }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(p + 46)..<(p + 46 + nameLength)]), as: UTF8.self)
            names.append(name)
            entries[name] = Entry(method: method, compressedSize: csize, size: size, localOffset: local)
            p += 46 + nameLength + extra + comment
        }
    }

    func contents(of name: String) throws -> [UInt8] {
        guard let e = entries[name] else { throw PickleError.invalidZip(file: file, offset: 0, reason: "no entry \(name)") }
        let o = e.localOffset
        guard o + 30 <= bytes.count, bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self) == 0x0403_4b50 else {
            throw PickleError.invalidZip(file: file, offset: o, reason: "bad local header for \(name)")
        }
        let n = Int(bytes.loadUnaligned(fromByteOffset: o + 26, as: UInt16.self)), x = Int(bytes.loadUnaligned(fromByteOffset: o + 28, as: UInt16.self))
        let start = o + 30 + n + x
        guard start <= bytes.count, e.compressedSize <= bytes.count - start else {
            throw PickleError.invalidZip(file: file, offset: o, reason: "data of \(name) runs past the end")
        }
        let data = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + e.compressedSize)])
        switch e.method {
        case 0:
            guard e.size == e.compressedSize else { throw PickleError.invalidZip(file: file, offset: o, reason: "stored entry sizes differ") }
            return Array(data)
        case 8:
            return try inflate(data, size: e.size, name: name, offset: o)
        default:
            throw PickleError.invalidZip(file: file, offset: o, reason: "compression method \(e.method) of \(name)")
        }
    }

    private func inflate(_ data: UnsafeRawBufferPointer, size: Int, name: String, offset: Int) throws -> [UInt8] {
        // deflate expands at most ~1032:1, so a claimed size beyond that is a lie: refuse it
        // before allocating.
        guard size <= data.count * 1032 + 64 else {
            throw PickleError.invalidZip(file: file, offset: offset, reason: "claimed size \(size) of \(name) exceeds what \(data.count) deflated bytes can hold")
        }
        var out = [UInt8](repeating: 0, count: size)
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw PickleError.invalidZip(file: file, offset: offset, reason: "zlib init failed")
        }
        defer { inflateEnd(&stream) }
        let status: Int32 = out.withUnsafeMutableBytes { o in
            stream.next_in = UnsafeMutablePointer(mutating: data.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(data.count)
            stream.next_out = o.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(size)
            return CZlib.inflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            throw PickleError.invalidZip(file: file, offset: offset, reason: "deflate data of \(name) is corrupt")
        }
        return out
    }
}
