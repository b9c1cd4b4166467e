import Testing
import Formats

/// Hand-built malformed GGUF buffers, each with its specific error; none may crash or allocate
/// by a claimed count.
@Suite struct GGUFHostileTests {
    /// One key, one 2×32 F32 tensor: a valid file.
    func valid() -> [UInt8] {
        var b = GGUFBuilder()
        b.header(tensors: 1, kvs: 1)
        b.string("general.architecture"); b.u32(8); b.string("llama")
        b.tensorInfo("w", ne: [32, 2], type: 0, offset: 0)
        b.align()
        b.bytes += TestFiles.f32Bytes((0..<64).map(Float.init))
        return b.bytes
    }

    @Test func validParses() throws {
        let v = valid()
        let h = try v.withUnsafeBytes { raw throws(GGUFError) in try GGUFFile.parse(raw, file: "buf") }
        #expect(h.tensors.first?.shape == [2, 32])
        #expect(h.metadata["general.architecture"] == .string("llama"))
    }

    /// A file with no tensors may end right after its metadata, without alignment padding
    /// (llama.cpp's vocab-only GGUFs do; llama.cpp and gguf-py read them).
    @Test func tensorlessFileWithoutPaddingParses() throws {
        var b = GGUFBuilder()
        b.header(tensors: 0, kvs: 1)
        b.string("general.architecture"); b.u32(8); b.string("llama")
        #expect(b.bytes.count % 32 != 0)
        let h = try b.bytes.withUnsafeBytes { raw throws(GGUFError) in try GGUFFile.parse(raw, file: "buf") }
        #expect(h.tensors.isEmpty)
        #expect(h.metadata["general.architecture"] == .string("llama"))
    }

    @Test func truncatedEverywhere() {
        let v = valid()
        for n in 0..<v.count { #expect(ggufError(Array(v[..<n])) != nil, "prefix \(n)") }
    }

    @Test func magicAndVersion() {
        #expect(ggufError([0x47, 0x47, 0x55, 0x47, 3, 0, 0, 0]) == .badMagic(file: "buf", found: 0x4755_4747))
        var b = GGUFBuilder(); b.header(version: 1, tensors: 0, kvs: 0)
        #expect(ggufError(b.bytes) == .unsupportedVersion(file: "buf", version: 1))
    }

    @Test func hugeCounts() {
        var b = GGUFBuilder(); b.header(tensors: .max, kvs: 0)
        #expect(ggufError(b.bytes) == .countTooLarge(file: "buf", offset: 8, what: "tensor count", count: .max))
        var c = GGUFBuilder(); c.header(tensors: 0, kvs: 1 << 40)
        #expect(ggufError(c.bytes) == .countTooLarge(file: "buf", offset: 16, what: "metadata count", count: 1 << 40))
        var s = GGUFBuilder(); s.header(tensors: 0, kvs: 1); s.u64(.max); s.bytes += [UInt8](repeating: 0, count: 16)
        #expect(ggufError(s.bytes) == .countTooLarge(file: "buf", offset: 24, what: "length of metadata key", count: .max))
        var a = GGUFBuilder(); a.header(tensors: 0, kvs: 1); a.string("k"); a.u32(9); a.u32(6); a.u64(1 << 60)
        #expect(ggufError(a.bytes) == .countTooLarge(file: "buf", offset: 41, what: "array length of 'k'", count: 1 << 60))
    }

    @Test func unknownValueTypeAndNesting() {
        var b = GGUFBuilder(); b.header(tensors: 0, kvs: 1); b.string("k"); b.u32(13)
        #expect(ggufError(b.bytes) == .unknownValueType(file: "buf", offset: 33, key: "k", type: 13))
        var d = GGUFBuilder(); d.header(tensors: 0, kvs: 1); d.string("k"); d.u32(9)
        for _ in 0..<20 { d.u32(9); d.u64(1) }
        guard case .nestingTooDeep? = ggufError(d.bytes) else { Issue.record("expected nestingTooDeep"); return }
    }

    @Test func duplicates() {
        var b = GGUFBuilder(); b.header(tensors: 0, kvs: 2)
        b.string("k"); b.u32(4); b.u32(1)
        b.string("k"); b.u32(4); b.u32(2)
        #expect(ggufError(b.bytes) == .duplicateKey(file: "buf", offset: 41, key: "k"))
        var t = GGUFBuilder(); t.header(tensors: 2, kvs: 0)
        t.tensorInfo("w", ne: [1], type: 0, offset: 0)
        t.tensorInfo("w", ne: [1], type: 0, offset: 32)
        t.align(); t.bytes += [UInt8](repeating: 0, count: 64)
        #expect(ggufError(t.bytes) == .duplicateTensor(file: "buf", tensor: "w"))
    }

    @Test func badAlignmentKey() {
        var b = GGUFBuilder(); b.header(tensors: 0, kvs: 1); b.string("general.alignment"); b.u32(4); b.u32(24)
        guard case .invalidMetadata(_, "general.alignment", _)? = ggufError(b.bytes) else { Issue.record("expected invalidMetadata"); return }
    }

    @Test func tensorShapes() {
        var b = GGUFBuilder(); b.header(tensors: 1, kvs: 0); b.tensorInfo("w", ne: [1, 1, 1, 1, 1], type: 0, offset: 0)
        guard case .countTooLarge(_, _, let what, 5)? = ggufError(b.bytes) else { Issue.record("expected countTooLarge"); return }
        #expect(what.contains("dimension count"))
        var o = GGUFBuilder(); o.header(tensors: 1, kvs: 0); o.tensorInfo("w", ne: [1 << 40, 1 << 40], type: 0, offset: 0); o.align()
        guard case .invalidTensorShape(_, "w", _, _)? = ggufError(o.bytes) else { Issue.record("expected invalidTensorShape"); return }
        var q = GGUFBuilder(); q.header(tensors: 1, kvs: 0); q.tensorInfo("w", ne: [16], type: 8, offset: 0); q.align()
        q.bytes += [UInt8](repeating: 0, count: 64)
        guard case .invalidTensorShape(_, "w", [16], _)? = ggufError(q.bytes) else { Issue.record("expected block-size error"); return }
        var u = GGUFBuilder(); u.header(tensors: 1, kvs: 0); u.tensorInfo("w", ne: [32], type: 31, offset: 0)
        #expect(ggufError(u.bytes) == .unknownTensorType(file: "buf", tensor: "w", type: 31))
    }

    @Test func tensorOffsets() {
        var m = GGUFBuilder(); m.header(tensors: 1, kvs: 0); m.tensorInfo("w", ne: [1], type: 0, offset: 4); m.align()
        m.bytes += [UInt8](repeating: 0, count: 64)
        guard case .invalidTensorOffset(_, "w", 4, let r)? = ggufError(m.bytes) else { Issue.record("expected misaligned"); return }
        #expect(r.contains("alignment"))
        var p = GGUFBuilder(); p.header(tensors: 1, kvs: 0); p.tensorInfo("w", ne: [64], type: 0, offset: 0); p.align()
        p.bytes += [UInt8](repeating: 0, count: 32)
        guard case .invalidTensorOffset(_, "w", 0, _)? = ggufError(p.bytes) else { Issue.record("expected past end"); return }
        var h = GGUFBuilder(); h.header(tensors: 1, kvs: 0); h.tensorInfo("w", ne: [1], type: 0, offset: UInt64.max - 31); h.align()
        guard case .invalidTensorOffset? = ggufError(h.bytes) else { Issue.record("expected huge offset error"); return }
        var v = GGUFBuilder(); v.header(tensors: 2, kvs: 0)
        v.tensorInfo("a", ne: [16], type: 0, offset: 0)
        v.tensorInfo("b", ne: [16], type: 0, offset: 32)
        v.align(); v.bytes += [UInt8](repeating: 0, count: 96)
        guard case .invalidTensorOffset(_, "b", 32, let why)? = ggufError(v.bytes) else { Issue.record("expected overlap"); return }
        #expect(why.contains("overlaps"))
    }

    @Test func invalidUTF8AndBool() {
        var s = GGUFBuilder(); s.header(tensors: 0, kvs: 1); s.u64(2); s.bytes += [0xff, 0xfe]; s.bytes += [UInt8](repeating: 0, count: 16)
        #expect(ggufError(s.bytes) == .invalidString(file: "buf", offset: 24))
        var b = GGUFBuilder(); b.header(tensors: 0, kvs: 1); b.string("k"); b.u32(7); b.u8(2)
        guard case .invalidMetadata(_, "k", _)? = ggufError(b.bytes) else { Issue.record("expected bad bool"); return }
    }

    @Test func unsupportedTypeIsNamed() throws {
        var b = GGUFBuilder(); b.header(tensors: 1, kvs: 0)
        b.tensorInfo("w", ne: [256], type: 16, offset: 0)  // IQ2_XXS
        b.align(); b.bytes += [UInt8](repeating: 0, count: 66)
        let dir = TestFiles.temporaryFolder()
        TestFiles.write(b.bytes, to: dir + "/iq.gguf")
        let f = try GGUFFile(path: dir + "/iq.gguf")
        #expect(throws: GGUFError.unsupportedTensorType(file: dir + "/iq.gguf", tensor: "w", type: "IQ2_XXS")) { try f.tensor(named: "w") }
    }
}
