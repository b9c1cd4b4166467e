import Foundation
import Formats
import Runtime
import TestSupport
import Testing

/// Gemma's tokenizers on hard text (combining marks after spaces, canonically equivalent but
/// distinct tokens, emoji sequences, runs of spaces, a literal "▁"), recorded by
/// fixtures/generate/extra/gemma3_tokenizer.py.
@Suite("Tokenizer: Gemma-3")
struct TokenizerGemmaTests {
    /// Gemma-3's tokenizer.json layout (Replace normalizer, literal Split, byte-fallback BPE,
    /// BOS template) on a small vocabulary trained by `tokenizers`: ids with and without special
    /// tokens and the decoded text equal `tokenizers`'.
    @Test func tokenizerJSONLayoutMatchesTokenizers() throws {
        let tok = try Tokenizer.load(modelPath: Fixtures.path("gemma3/tokenizer-json/tokenizer.json"))
        let rows = try #require(try TokenizerFixtures.json("gemma3/tokenizer-json/encodings.json").arrayValue)
        #expect(rows.count >= 20)
        for row in rows {
            let text = try #require(row["text"]?.stringValue)
            let ids = try #require(row["ids"]?.arrayValue).compactMap(\.intValue)
            let withSpecial = try #require(row["ids_with_special"]?.arrayValue).compactMap(\.intValue)
            #expect(tok.encode(text, addSpecialTokens: false) == ids, "\(text.debugDescription)")
            #expect(tok.encode(text, addSpecialTokens: true) == withSpecial, "\(text.debugDescription)")
            #expect(tok.decode(ids) == row["decoded"]?.stringValue, "decode \(text.debugDescription)")
        }
        #expect(tok.prefixTokenIDs == [try #require(tok.id(of: "<bos>"))])
    }

    /// tokenizer.json's `Split` on a literal string, each delimiter behaviour, cuts text where
    /// `tokenizers` does (offsets in Unicode scalars; a delimiter before a combining mark too).
    @Test func literalSplitMatchesTokenizers() throws {
        let rows = try #require(try TokenizerFixtures.json("gemma3/tokenizer-json/splits.json").arrayValue)
        #expect(rows.count == 12)
        for row in rows {
            let behavior = try #require(row["behavior"]?.stringValue)
            let name = behavior.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
            let delimiter = try #require(PreTokenizer.LiteralDelimiter(rawValue: name))
            let text = try #require(row["text"]?.stringValue), pattern = try #require(row["delimiter"]?.stringValue)
            let want = try #require(row["pieces"]?.arrayValue).map { ($0.arrayValue ?? []).compactMap(\.intValue) }
            let split = PreTokenizer(steps: [.literal(Array(pattern.unicodeScalars), delimiter)])
            let got = split.split(Array(text.unicodeScalars)).map { [$0.lowerBound, $0.upperBound] }
            #expect(got == want, "\(behavior) on \(pattern.debugDescription): \(text.debugDescription)")
        }
    }

    /// Two vocabulary entries that Swift's `String` equality takes for one (a precomposed and a
    /// decomposed spelling of Bengali "ায়") keep their own ids: the JSON reader does not call them
    /// duplicate keys, and lookups go by bytes.
    @Test func canonicallyEquivalentTokensStayDistinct() throws {
        let tok = try Tokenizer.load(modelPath: Fixtures.path("gemma3/tokenizer-json/tokenizer.json"))
        let precomposed = "\u{09BE}\u{09DF}", decomposed = "\u{09BE}\u{09AF}\u{09BC}"
        #expect(precomposed == decomposed, "Swift compares them as equal: the case this test is about")
        let a = try #require(tok.id(of: precomposed)), b = try #require(tok.id(of: decomposed))
        #expect(a != b)
        #expect(tok.token(for: a).map { Array($0.utf8) } == Array(precomposed.utf8))
        #expect(tok.token(for: b).map { Array($0.utf8) } == Array(decomposed.utf8))
        let parsed = try JSONParser.parse(Array("{\"\u{09DF}\": 1, \"\u{09AF}\u{09BC}\": 2}".utf8))
        #expect(parsed.objectValue?.count == 2)
        #expect(throws: (any Error).self) { try JSONParser.parse(Array("{\"\u{09DF}\": 1, \"\u{09DF}\": 2}".utf8)) }
    }

    /// The real Gemma-3 GGUF's SentencePiece vocabulary: ids equal llama.cpp's (special tokens in
    /// the text recognised, no BOS) for every text. Where transformers' GGUF tokenizer (a BPE
    /// rebuilt from the scores) differs from llama.cpp, the GGUF follows llama.cpp.
    @Test func realGGUFMatchesLlamaCpp() throws {
        guard FileManager.default.fileExists(atPath: Fixtures.gemma3GGUF) else {
            throw TokenizerFixtures.Missing(path: Fixtures.gemma3Missing)
        }
        let tok = try Tokenizer.load(modelPath: Fixtures.gemma3GGUF)
        let rows = try #require(try TokenizerFixtures.json("gemma3/encodings.json").arrayValue)
        #expect(rows.count >= 20)
        for row in rows {
            let text = try #require(row["text"]?.stringValue)
            let want = try #require(row["llama_cpp"]?.arrayValue).compactMap(\.intValue)
            #expect(tok.encode(text, addSpecialTokens: false) == want, "\(text.debugDescription)")
        }
    }
}
