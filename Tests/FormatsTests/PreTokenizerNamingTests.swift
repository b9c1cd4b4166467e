import Foundation
import Testing
import Formats
import TestSupport

/// `tokenizer.ggml.pre` read off a tokenizer.json's own pre-tokenizer when steertool writes a
/// GGUF: each byte-level family's `pre_tokenizer` as HF `tokenizers` serialises it (recorded in
/// fixtures/convert/archs-check.json by extra/gguf_archs_check.py, which also checks the names
/// against llama.cpp's converter on the Qwen2, Qwen3 and Mistral folders) gets llama.cpp's name;
/// any other pre-tokenizer gets none, and the conversion is refused naming the file.
@Suite struct PreTokenizerNamingTests {
    @Test func familiesAreNamedAsLlamaCpp() throws {
        let check = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("convert/archs-check.json")))))
        let families = try #require(check["pre_tokenizers"]?.objectValue)
        #expect(families.map(\.0).sorted() == ["gpt-2", "llama-bpe", "qwen2", "smollm"])
        for (name, json) in families {
            #expect(ByteLevelPattern.pre(ofPreTokenizer: json, ignoresMerges: name == "llama-bpe") == name, "\(name)")
            // Our own tokenizer.json for a GGUF's name is the same family.
            #expect(ByteLevelPattern.pre(ofPreTokenizer: ByteLevelPattern.preTokenizerJSON(pre: name),
                                         ignoresMerges: ByteLevelPattern.ignoresMerges(pre: name)) == name)
        }
        #expect(ByteLevelPattern.pre(ofPreTokenizer: families.first { $0.0 == "llama-bpe" }?.1, ignoresMerges: false) == "smaug-bpe")
    }

    @Test func otherPreTokenizersAreNotNamed() throws {
        let metaspace = try JSONParser.parse(Array(#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}"#.utf8))
        let prefixed = try JSONParser.parse(Array(#"{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}"#.utf8))
        let otherSplit = try JSONParser.parse(Array(#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "use_regex": false}]}"#.utf8))
        for v in [metaspace, prefixed, otherSplit] { #expect(ByteLevelPattern.pre(ofPreTokenizer: v, ignoresMerges: false) == nil) }
        #expect(ByteLevelPattern.pre(ofPreTokenizer: nil, ignoresMerges: false) == nil)
    }

    /// A Llama-2-style tokenizer.json (character BPE with byte fallback, no byte-level
    /// pre-tokenizer) is not written as a GPT-2 vocabulary: one error naming the file.
    @Test func conversionRefusesAnUnnamedPreTokenizer() throws {
        let dir = TestFiles.temporaryFolder()
        try FileManager.default.copyItem(atPath: Fixtures.path("tiny/base"), toPath: dir + "/model")
        let tokenizer = dir + "/model/tokenizer.json"
        try? FileManager.default.removeItem(atPath: tokenizer)
        try FileManager.default.copyItem(atPath: Fixtures.path("vocab/hf-spm-bpe.tokenizer.json"), toPath: tokenizer)
        #expect {
            try LlamaConverter.hfToGGUF(input: dir + "/model", output: dir + "/out.gguf", type: .f32)
        } throws: { error in
            "\(error)".contains(tokenizer) && "\(error)".contains("no tokenizer.ggml.pre")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.gguf"))
    }
}
