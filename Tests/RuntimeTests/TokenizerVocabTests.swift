import Foundation
import Formats
import Runtime
import Testing

/// llama.cpp's vocab-only GGUFs with the test pairs of tests/test-tokenizer-0 (ids recorded with
/// HF tokenizers by llama.cpp's convert_hf_to_gguf_update.py): encoding must be exact, and
/// decoding the ids must give the string back.
@Suite("Tokenizer: llama.cpp vocab test pairs")
struct TokenizerVocabTests {
    @Test("every test string encodes to the recorded ids and decodes back",
          arguments: ["llama-spm", "llama-bpe", "gpt-2", "qwen2"])
    func pairs(name: String) throws {
        let tok = try TokenizerFixtures.vocab(name)
        let tests = try TokenizerFixtures.vocabTests(name)
        #expect(tests.count >= 30)
        for (text, ids) in tests {
            let got = tok.encode(text, addSpecialTokens: false)
            #expect(got == ids, "\(name): \(text.debugDescription)")
            #expect(tok.decode(ids) == text, "\(name): decode of \(text.debugDescription)")
        }
    }

    /// `convert` of a GGUF writes its vocabulary as a tokenizer.json with the pre-tokenizer its
    /// `tokenizer.ggml.pre` names (a Split on the Llama-3 or Qwen2 pattern, GPT-2's ByteLevel):
    /// read back through the tokenizer.json path, it encodes every test string to the same ids.
    @Test("the tokenizer.json rebuilt from each BPE vocab GGUF encodes the recorded ids",
          arguments: ["llama-bpe", "gpt-2", "qwen2"])
    func rebuiltTokenizerJSON(name: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-tokjson-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let gguf = dir.appendingPathComponent("vocab.gguf")
        try TokenizerFixtures.vocabGGUF(name).write(to: gguf)
        let json = dir.appendingPathComponent("tokenizer.json")
        try LlamaTokenizerMetadata.tokenizerJSON(fromGGUF: try GGUFFile(path: gguf.path).metadata).write(to: json)
        let tok = try TokenizerJSONLoader.load(tokenizerJSON: json.path, configJSON: nil)
        for (text, ids) in try TokenizerFixtures.vocabTests(name) {
            #expect(tok.encode(text, addSpecialTokens: false) == ids, "\(name): \(text.debugDescription)")
        }
    }

    @Test("BOS follows llama.cpp's defaults: added for llama (SPM) and Llama-3, not for GPT-2 or Qwen2")
    func bos() throws {
        let spm = try TokenizerFixtures.vocab("llama-spm")
        #expect(spm.addsBOS && spm.bosTokenID == 1)
        #expect(spm.encode("Hello world", addSpecialTokens: true) == [1, 15043, 3186])
        let l3 = try TokenizerFixtures.vocab("llama-bpe")
        #expect(l3.addsBOS && l3.bosTokenID == 128000)
        let gpt2 = try TokenizerFixtures.vocab("gpt-2")
        #expect(!gpt2.addsBOS)
        let qwen2 = try TokenizerFixtures.vocab("qwen2")
        #expect(!qwen2.addsBOS)
    }
}
