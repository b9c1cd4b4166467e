import Runtime
import Testing

/// The incremental decoder holds bytes back until they form whole UTF-8 characters, and its
/// pieces add up to `decode` (checked itself against the recorded strings).
@Suite("Tokenizer: incremental decoding")
struct TokenizerStreamingTests {
    @Test("token-by-token output concatenates to the reference string; no partial character is emitted",
          arguments: ["llama-spm", "gpt-2", "llama-bpe", "qwen2"])
    func streaming(name: String) throws {
        let tok = try TokenizerFixtures.vocab(name)
        var sawSplitCharacter = false
        for (text, ids) in try TokenizerFixtures.vocabTests(name) {
            var decoder = tok.incrementalDecoder()
            var pieces: [String] = []
            for id in ids { pieces.append(decoder.push(id)) }
            pieces.append(decoder.finish())
            #expect(pieces.joined() == text, "\(name): \(text.debugDescription)")
            #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") }, "\(name): replacement char while streaming \(text.debugDescription)")
            if pieces.contains("") && ids.count > 1 { sawSplitCharacter = true }
        }
        // Some reference strings (emoji, CJK) spread one character over several byte tokens.
        #expect(sawSplitCharacter)
    }

    @Test("a cut character decodes to U+FFFD, as HF's from_utf8_lossy")
    func lossy() throws {
        let tok = try TokenizerFixtures.vocab("llama-spm")
        // <0xF0> <0x9F> are the first two bytes of a four-byte emoji.
        let f0 = try #require(tok.id(of: "<0xF0>")), x9f = try #require(tok.id(of: "<0x9F>"))
        #expect(tok.decode([f0, x9f]) == "\u{FFFD}")
        var d = tok.incrementalDecoder()
        #expect(d.push(f0) == "")
        #expect(d.push(x9f) == "")
        #expect(d.finish() == "\u{FFFD}")
    }

    @Test("skipSpecialTokens leaves out special tokens only")
    func skipSpecial() throws {
        let tok = try TokenizerFixtures.vocab("llama-spm")
        let ids = tok.encode("Hello world", addSpecialTokens: true)
        #expect(ids.first == 1)
        #expect(tok.decode(ids, skipSpecialTokens: true) == "Hello world")
        #expect(tok.decode(ids, skipSpecialTokens: false) == "<s> Hello world")
    }
}
