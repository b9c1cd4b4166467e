import Foundation
import Formats
import Runtime
import Testing

/// The hand-written scanners against HF tokenizers' regex pre-tokenizers (recorded in
/// fixtures/vocab/pretokenize.json as [start, end) offsets in Unicode scalars).
@Suite("Tokenizer: pre-tokenizer scanners")
struct TokenizerPreTokenizerTests {
    @Test("GPT-2, Llama-3, Qwen2 and SmolLM splits equal HF tokenizers'")
    func splits() throws {
        let doc = try TokenizerFixtures.json("vocab/pretokenize.json")
        let entries = try #require(doc.arrayValue)
        #expect(entries.count >= 100)
        let byName: [String: PreTokenizer] = ["gpt2": .gpt2, "llama3": .llama3, "qwen2": .qwen2, "smollm": .smolLM]
        var seen = Set<String>()
        for e in entries {
            let name = try #require(e["pre"]?.stringValue)
            let text = try #require(e["text"]?.stringValue)
            let expected = try #require(e["pieces"]?.arrayValue).map { p -> [Int] in (p.arrayValue ?? []).compactMap(\.intValue) }
            let pre = try #require(byName[name])
            seen.insert(name)
            let got = pre.split(Array(text.unicodeScalars)).map { [$0.lowerBound, $0.upperBound] }
            #expect(got == expected, "\(name): \(text.debugDescription)")
        }
        #expect(seen == Set(byName.keys))
    }
}
