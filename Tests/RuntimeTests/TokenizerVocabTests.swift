import Foundation
import Runtime
import Testing

/// llama.cpp's vocab-only GGUFs with the test pairs of tests/test-tokenizer-0 (ids recorded with
/// HF tokenizers by llama.cpp's convert_hf_to_gguf_update.py): encoding must be exact, and
/// decoding the ids must give the string back.
@Suite("Tokenizer: llama.cpp vocab test pairs")
struct TokenizerVocabTests {
    @Test("every test string encodes to the recorded ids and decodes back",
          arguments: ["llama-spm", "llama-bpe", "gpt-2", "starcoder"])
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

    @Test("BOS follows llama.cpp's defaults: added for llama (SPM) and Llama-3, not for GPT-2")
    func bos() throws {
        let spm = try TokenizerFixtures.vocab("llama-spm")
        #expect(spm.addsBOS && spm.bosTokenID == 1)
        #expect(spm.encode("Hello world", addSpecialTokens: true) == [1, 15043, 3186])
        let l3 = try TokenizerFixtures.vocab("llama-bpe")
        #expect(l3.addsBOS && l3.bosTokenID == 128000)
        let gpt2 = try TokenizerFixtures.vocab("gpt-2")
        #expect(!gpt2.addsBOS)
    }
}
