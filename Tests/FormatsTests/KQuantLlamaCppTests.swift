import Testing
import Tensors
import TestSupport
import Formats

/// k-quant GGUFs quantized by llama.cpp itself (`fixtures/quant/kquant.*`, via llama-cpp-python),
/// with gguf-py's dequantized values (ggml's `dequantize_row_q8_K` for Q8_K, which gguf-py lacks).
/// Bit-exact: same float32 operations in the same order.
@Suite struct KQuantLlamaCppTests {
    @Test func everyTensorMatches() throws {
        let index = try #require(try fixtureJSON("quant/kquant.index.json").objectValue)
        #expect(index.count == 6)
        for (typeName, e) in index {
            let g = try GGUFFile(path: Fixtures.path("quant/" + (e["gguf"]?.stringValue ?? "")))
            let ref = try SafetensorsFile(path: Fixtures.path("quant/" + (e["dequant"]?.stringValue ?? "")))
            if let types = e["tensor_types"]?.objectValue {
                for (name, t) in types { #expect(g.info(name)?.storage.description == t.stringValue, "\(typeName) \(name)") }
            }
            #expect(g.tensorInfos.contains { $0.storage.description == typeName }, "\(typeName) present")
            for name in ref.tensorNames {
                let got = try g.tensor(named: name), want = try ref.tensor(named: name)
                #expect(got.shape == want.shape, "\(typeName) \(name)")
                let bad = zip(got.scalars, want.scalars).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(bad == 0, "\(typeName) \(name): \(bad) of \(want.count) values differ")
            }
        }
    }
}
