import Testing
import Tensors
import TestSupport
import Formats

/// k-quant dequantization against gguf-py `quants.dequantize` on random block bytes
/// (`fixtures/formats-extra/kquant-random.*`, recorded by this branch's
/// `fixtures/generate/extra/formats-extra.py`). Bit-exact: both evaluate the same float32
/// products in the same order.
@Suite struct KQuantFixtureTests {
    let folder = Fixtures.packageRoot + "/fixtures/formats-extra"

    @Test func randomBlocksMatchGGUFPy() throws {
        let g = try GGUFFile(path: folder + "/kquant-random.gguf")
        let ref = try SafetensorsFile(path: folder + "/kquant-random.dequant.safetensors")
        #expect(Set(g.tensorNames) == ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
        for name in g.tensorNames {
            #expect(g.info(name)?.storage.description.lowercased() == name)
            let got = try g.tensor(named: name), want = try ref.tensor(named: name)
            #expect(got.shape == want.shape, "\(name)")
            let mismatches = zip(got.scalars, want.scalars).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(mismatches == 0, "\(name): \(mismatches) of \(want.count) values differ")
        }
    }

    /// Q8_K (no gguf-py dequantizer): one block worked by hand from ggml's definition
    /// y = d·q with d a float32 and q int8.
    @Test func q8KByHand() throws {
        var b = GGUFBuilder()
        b.header(tensors: 1, kvs: 0)
        b.tensorInfo("w", ne: [256], type: 15, offset: 0)
        b.align()
        withUnsafeBytes(of: Float(0.5).bitPattern.littleEndian) { b.bytes += $0 }
        for j in 0..<256 { b.u8(UInt8(bitPattern: Int8(j - 128))) }
        b.bytes += [UInt8](repeating: 0, count: 32)
        let dir = TestFiles.temporaryFolder()
        TestFiles.write(b.bytes, to: dir + "/q8k.gguf")
        let t = try GGUFFile(path: dir + "/q8k.gguf").tensor(named: "w")
        #expect(t.scalars == (0..<256).map { Float($0 - 128) * 0.5 })
    }
}
