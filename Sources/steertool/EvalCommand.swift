import ArgumentParser
import Foundation
import Formats
import Runtime
import Tensors

/// `steertool eval`: what an adaptation does to a model's outputs. Rows are variants: each
/// `--model` as it is, then the first model with each `--adapter` (or all of them together with
/// `--combine`); with `--reference`, KL to it, top-1 agreement and the recovered fraction of the
/// reference's loss gain over the first plain model. `--tasks` scores multiple-choice items by
/// log-likelihood, or generation-scored items by greedy decoding and `AnswerNormalization`.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Perplexity, KL to a reference, agreement and multiple-choice accuracy for models and adapters.")

    @Option(name: .long, help: "Model (HF folder or GGUF); repeatable: each is a row.")
    var model: [String]

    @Option(name: .long, help: "Adapter for the first model (PEFT LoRA folder, steering file, control vector or joint bundle; :<scale> scales a steering part); repeatable: each is a row.")
    var adapter: [String] = []

    @Flag(name: .long, help: "Apply all --adapter files together as one row instead of one row each.")
    var combine = false

    @Option(name: .long, help: "Reference model (e.g. the fine-tune) for KL, agreement and recovered fraction.")
    var reference: String?

    @Option(name: .long, help: "Adapter applied to the reference model; repeatable.")
    var referenceAdapter: [String] = []

    @Option(name: .long, help: "Text file to score (tokenized with the first model's tokenizer, BOS included when it adds one; later windows are fed behind the same BOS); repeatable.")
    var text: [String] = []

    @Option(name: .long, help: "JSON file with a list of token-id lists to score.")
    var tokens: String?

    @Option(name: .long, help: ArgumentHelp(
        "JSONL tasks, one kind per file: multiple choice {\"context\", \"choices\", \"label\"} (log-likelihood, acc and acc_norm), or generation-scored {\"prompt\", \"answer\"} with optional \"max_tokens\" (greedy decoding until EOS, a newline or the token limit; acc).",
        discussion: "Generation answers match after normalisation: \(AnswerNormalization.description)."))
    var tasks: String?

    @Flag(name: .long, help: "Generation-scored tasks: wrap each prompt in the model's chat template as one user turn.")
    var chat = false

    @Flag(name: .long, help: "With --chat on Qwen3 models: render enable_thinking=False (each reply opens with an empty <think> block).")
    var noThinking = false

    @Option(name: .long, help: "Generation-scored tasks: most new tokens for items without \"max_tokens\" (default 16).")
    var maxTokens: Int?

    @Option(name: .long, help: "Window length in tokens (default: min(max positions, 1024)).")
    var context: Int?

    @Option(name: .long, help: "Window stride in tokens (default: context / 2).")
    var stride: Int?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Option(name: .long, help: "Also write the JSON result to this file.")
    var output: String?

    @Flag(name: .long, help: "Overwrite an existing --output.")
    var force = false

    @Option(name: .long, help: "How the --model variants hold their weight matrices: native (the file's dtype: BF16/F16 and GGUF blocks in place, the rest f32), f32, or q8_0 (kept quantized).")
    var weights: WeightStorage = .native

    @Option(name: .long, help: "How the --reference holds its weight matrices (default f32, so a q8_0 variant is measured against full precision).")
    var referenceWeights: WeightStorage = .f32

    @OptionGroup var threadArguments: ThreadArguments

    func validate() throws {
        guard !model.isEmpty else { throw ValidationError("give at least one --model") }
        let inputs = (text.isEmpty ? 0 : 1) + (tokens == nil ? 0 : 1) + (tasks == nil ? 0 : 1)
        guard inputs == 1 else { throw ValidationError("give exactly one of --text, --tokens and --tasks") }
        if let context, context < 2 { throw ValidationError("--context must be ≥ 2") }
        if let stride, stride < 1 { throw ValidationError("--stride must be ≥ 1") }
        if noThinking && !chat { throw ValidationError("--no-thinking applies to --chat prompts") }
        if !referenceAdapter.isEmpty && reference == nil { throw ValidationError("--reference-adapter needs --reference") }
        if tasks != nil && reference != nil { throw ValidationError("--reference applies to --text/--tokens, not --tasks") }
        if tasks == nil && (chat || maxTokens != nil) { throw ValidationError("--chat and --max-tokens apply to generation-scored --tasks") }
        if let maxTokens, maxTokens < 1 || maxTokens > GenerationItem.maxTokensLimit {
            throw ValidationError("--max-tokens must be in 1...\(GenerationItem.maxTokensLimit)")
        }
    }

    func run() throws {
        try threadArguments.apply()
        // Variants.
        // Each row keeps the path whose tokenizer encodes its text (adapters use the first model's).
        var rows: [(name: String, model: LlamaModel, tokenizerPath: String)] = []
        let first = try LlamaModel.load(path: model[0], storage: weights)
        rows.append((model[0], first, model[0]))
        for path in model.dropFirst() { rows.append((path, try LlamaModel.load(path: path, storage: weights), path)) }
        if combine && !adapter.isEmpty {
            var m = first
            for path in adapter { try AdapterLoading.apply(path: path, to: &m) }
            rows.append(("+ " + adapter.joined(separator: " + "), m, model[0]))
        } else {
            for path in adapter {
                var m = first
                try AdapterLoading.apply(path: path, to: &m)
                rows.append(("+ " + path, m, model[0]))
            }
        }
        var referenceModel: LlamaModel? = nil
        if let reference {
            // The reference is often the evaluated model plus an adapter: the same file in the same
            // storage is shared (one mapping, one copy of any widened weights), not loaded twice.
            var r = reference == model[0] && referenceWeights == weights
                ? first : try LlamaModel.load(path: reference, storage: referenceWeights)
            for path in referenceAdapter { try AdapterLoading.apply(path: path, to: &r) }
            referenceModel = r
        }

        var results: [[String: JSONValue]] = rows.map { row in
            ["name": .string(row.name), "parameters_added": .int(row.model.adapterParameterCount)]
        }
        var summary: [String: JSONValue] = [:]

        if let tasks {
            let loaded = try TaskFile.loadTasks(path: tasks)
            let progress = TerminalProgress(total: loaded.count * rows.count, unit: "items")
            switch loaded {
            case .multipleChoice(let items):
                guard !chat && maxTokens == nil else {
                    throw ValidationError("\(tasks): --chat and --max-tokens apply to generation-scored tasks, not multiple choice")
                }
                let evaluator = MultipleChoiceEvaluator()
                for (i, row) in rows.enumerated() {
                    let tokenizer = try Tokenizer.load(modelPath: row.tokenizerPath)
                    let eos = row.model.config.eosTokenIds.first ?? row.model.config.bosTokenId ?? 0
                    let (score, _) = try evaluator.evaluate(
                        model: row.model, items: items, emptyContextToken: eos,
                        encode: { tokenizer.encode($0, addSpecialTokens: false) },
                        progress: { progress.advance(by: 1) })
                    results[i]["accuracy"] = number(score.accuracy)
                    results[i]["accuracy_norm"] = number(score.accuracyNormalized)
                    results[i]["items"] = .int(score.items)
                }
                summary["tasks"] = sortedObject(["kind": .string("multiple_choice"), "items": .int(items.count)])
            case .generation(let items):
                let evaluator = GenerationEvaluator(defaultMaxTokens: maxTokens ?? 16)
                for (i, row) in rows.enumerated() {
                    let tokenizer = try Tokenizer.load(modelPath: row.tokenizerPath)
                    let template = chat ? try tokenizer.chatTemplate(architecture: row.model.architecture.name).template : nil
                    if let template { try TextInput.checkThinking(!noThinking, template: template) }
                    let (score, outcomes) = try evaluator.evaluate(
                        model: row.model, items: items, tokenizer: tokenizer,
                        stopTokens: GenerationEvaluator.stopTokens(config: row.model.config, tokenizer: tokenizer, template: template),
                        encodePrompt: GenerationEvaluator.promptEncoder(tokenizer: tokenizer, template: template, enableThinking: !noThinking),
                        progress: { progress.advance(by: 1) })
                    results[i]["accuracy"] = number(score.accuracy)
                    results[i]["correct"] = .int(score.correct)
                    results[i]["items"] = .int(score.items)
                    results[i]["outputs"] = .array(outcomes.map { o in
                        sortedObject(["text": .string(o.text), "correct": .bool(o.correct), "tokens": .int(o.tokens.count)])
                    })
                }
                summary["tasks"] = sortedObject([
                    "kind": .string("generation"), "items": .int(items.count), "chat": .bool(chat),
                    "default_max_tokens": .int(evaluator.defaultMaxTokens), "normalization": .string(AnswerNormalization.description),
                ])
            }
            progress.finish()
        } else {
            let sequences: [[Int]]
            var windowPrefix: [Int] = []
            if let tokens {
                sequences = try TokenListFile.load(path: tokens)
            } else {
                let tokenizer = try Tokenizer.load(modelPath: model[0])
                windowPrefix = tokenizer.prefixTokenIDs
                sequences = try text.map { path in
                    guard let data = FileManager.default.contents(atPath: path), let s = String(data: data, encoding: .utf8) else {
                        throw ValidationError("\(path): cannot read UTF-8 text")
                    }
                    return tokenizer.encode(s, addSpecialTokens: true)
                }
            }
            let ctx = context ?? min(first.config.maxPositionEmbeddings, 1024)
            let str = stride ?? max(ctx / 2, 1)
            guard str <= ctx else { throw ValidationError("--stride must not exceed --context (\(ctx))") }
            let evaluator = TextEvaluator(context: ctx, stride: str, windowPrefix: windowPrefix)
            let progress = TerminalProgress(total: evaluator.scoredTokenCount(sequences), unit: "tokens")
            let (metrics, referenceMetrics) = try evaluator.evaluate(
                variants: rows.map(\.model), reference: referenceModel, sequences: sequences,
                progress: { progress.advance(by: $0) })
            progress.finish()
            for (i, m) in metrics.enumerated() {
                results[i]["perplexity"] = number(m.perplexity)
                results[i]["nll"] = number(m.nll)
                results[i]["tokens"] = .int(m.tokens)
                if let kl = m.klToReference { results[i]["kl_to_reference"] = number(kl) }
                if let a = m.top1Agreement { results[i]["top1_agreement"] = number(a) }
                if let referenceMetrics,
                   let rf = recoveredFraction(plainNLL: metrics[0].nll, modelNLL: m.nll, referenceNLL: referenceMetrics.nll) {
                    results[i]["recovered_fraction"] = number(rf)
                }
            }
            if let referenceMetrics, let reference {
                summary["reference"] = sortedObject(["name": .string(reference), "perplexity": number(referenceMetrics.perplexity),
                                                     "nll": number(referenceMetrics.nll)])
            }
            summary["context"] = .int(ctx)
            summary["stride"] = .int(str)
            if !windowPrefix.isEmpty { summary["window_prefix"] = .array(windowPrefix.map { .int($0) }) }
        }
        summary["variants"] = .array(results.map(sortedObject))
        let document = sortedObject(summary).serialized(indent: 2)
        if let output {
            let writer = try AtomicFileWriter(path: output, force: force)
            try writer.write(document + "\n")
            try writer.commit()
        }
        if json {
            print(document)
        } else {
            printTable(results, summary: summary)
        }
    }

    private func printTable(_ rows: [[String: JSONValue]], summary: [String: JSONValue]) {
        let columns: [(key: String, title: String)] = [
            ("perplexity", "ppl"), ("nll", "nll"), ("kl_to_reference", "KL→ref"), ("top1_agreement", "top-1"),
            ("recovered_fraction", "recovered"), ("accuracy", "acc"), ("accuracy_norm", "acc_norm"),
            ("parameters_added", "+params"),
        ].filter { c in rows.contains { $0[c.key] != nil } }
        let nameWidth = min(max(rows.map { plain($0["name"]).count }.max() ?? 8, 8), 60)
        var header = "variant".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
        for c in columns { header += "  " + String(repeating: " ", count: max(0, 10 - c.title.count)) + c.title }
        print(header)
        print(String(repeating: "-", count: header.count))
        for row in rows {
            var name = plain(row["name"])
            if name.count > nameWidth { name = "…" + name.suffix(nameWidth - 1) }
            var line = name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            for c in columns {
                let v = plain(row[c.key], integer: c.key == "parameters_added")
                line += "  " + String(repeating: " ", count: max(0, 10 - v.count)) + v
            }
            print(line)
        }
        if let ref = summary["reference"], let p = ref["perplexity"] {
            print("reference \(plain(ref["name"])): ppl \(plain(p))")
        }
        if let t = summary["tasks"], case .string("generation")? = t["kind"] {
            print("generation-scored: greedy until EOS, newline or \(plain(t["default_max_tokens"], integer: true)) tokens\(t["chat"] == .bool(true) ? ", chat template" : ""); match: \(plain(t["normalization"]))")
        }
        if let c = summary["context"], let s = summary["stride"] {
            let prefixNote = summary["window_prefix"].map { ", each window after the first fed behind the tokenizer's prefix \($0.serialized())" } ?? ""
            print("windows: context \(plain(c, integer: true)), stride \(plain(s, integer: true))\(prefixNote)")
        }
    }
}

/// A JSON number, or null for nan/inf (which JSON cannot spell).
private func number(_ d: Double) -> JSONValue { d.isFinite ? .double(d) : .null }

/// An object with its keys sorted, so `--json` output has a stable key order.
private func sortedObject(_ fields: [String: JSONValue]) -> JSONValue {
    .object(fields.keys.sorted().map { ($0, fields[$0]!) })
}

/// A table cell: strings as they are, integers as they are, other numbers to 4 decimals (1 above
/// 1000), missing or null as "—".
private func plain(_ v: JSONValue?, integer: Bool = false) -> String {
    switch v {
    case let .string(s)?: return s
    case let .number(s)?:
        guard !integer, let d = Double(s) else { return s }
        return String(format: abs(d) >= 1000 ? "%.1f" : "%.4f", d)
    case nil, .null?: return "—"
    case let other?: return other.serialized()
    }
}
