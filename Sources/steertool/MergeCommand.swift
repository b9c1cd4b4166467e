import ArgumentParser
import Formats
import Foundation
import Merge

/// `steertool merge …`: LoRA into weights, combinations of LoRA adapters, mergekit-config
/// checkpoint merges, LoRA extraction. Thin: parse, call `Merge.MergeFiles`, print.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge LoRAs into weights, combine adapters, merge checkpoints (mergekit YAML), extract LoRAs.",
        subcommands: [MergeLoRACommand.self, MergeAdaptersCommand.self, MergeConfigCommand.self, MergeExtractCommand.self,
                      MergeSteeringCommand.self, MergeControlVectorCommand.self, MergeImportAuthorsCommand.self])
}

/// A library error as the CLI reports it: one line ("Error: …"), exit code 1, no usage text.
struct MergeCommandError: Error, CustomStringConvertible {
    let description: String
}

/// Runs library code, mapping its errors to `MergeCommandError`.
func runMerge<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as CustomStringConvertible {
        throw MergeCommandError(description: e.description)
    }
}

struct MergeLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lora",
        abstract: "Fold a PEFT LoRA into an HF checkpoint (PEFT merge_and_unload), keeping the base's shards and dtypes.")

    @Option(help: "Base model: HF folder (model.safetensors or sharded index) or .gguf.") var base: String
    @Option(name: [.customLong("adapter"), .customLong("lora")], help: "PEFT adapter folder (adapter_config.json + adapter_model.safetensors), or a joint bundle (its LoRA is merged, its steering file kept).")
    var adapter: String
    @Option(help: "Output: HF folder, or a .gguf file (Q/K permuted as convert_hf_to_gguf.py).") var output: String
    @Option(help: "GGUF output type: f32, f16, bf16, q8_0, q4_0.") var type: LlamaConverter.OutputType = .f32
    @Flag(help: "Overwrite an existing output.") var force = false

    func run() throws {
        let t = type
        let start = Date()
        if JointAdapterBundle.isBundle(adapter) {
            // A joint bundle: fold its LoRA part, keep its steering part next to the output.
            let (s, steeringPath) = try runMerge {
                try MergeFiles.mergeJointBundle(base: base, bundle: adapter, output: output, ggufType: t, force: force)
            }
            print("merged the bundle's LoRA into \(s.changedCount) of \(s.tensorCount) tensors of \(output); "
                  + "its steering part is kept at \(steeringPath) (apply it with --adapter \(steeringPath))")
            return
        }
        let s = try runMerge { try MergeFiles.mergeLoRAAnyFormat(base: base, adapter: adapter, output: output, ggufType: t, force: force) }
        let secs = Date().timeIntervalSince(start)
        print("merged \(s.changedCount) of \(s.tensorCount) tensors into \(output) (\(s.files.joined(separator: ", "))), "
              + String(format: "%.1f MB in %.2f s", Double(s.bytes) / 1e6, secs))
    }
}

struct MergeAdaptersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapters",
        abstract: "Combine PEFT LoRA adapters like PEFT's add_weighted_adapter.")

    @Option(help: "linear, cat, svd, ties, ties_svd, dare_linear, dare_ties, dare_linear_svd, dare_ties_svd, magnitude_prune, magnitude_prune_svd.")
    var method: String
    @Option(name: .customLong("adapter"), help: "An adapter folder (repeat).") var adapters: [String]
    @Option(name: .customLong("weight"), parsing: .unconditionalSingleValue, help: "Its weight (repeat, one per adapter; negative subtracts).") var weights: [Float]
    @Option(help: "Fraction kept by ties/dare/magnitude_prune, in (0, 1].") var density: Double?
    @Option(help: "Target rank of the svd types (default: the largest input rank).") var rank: Int?
    @Option(help: "Quantile for clamping the svd factors (PEFT svd_clamp).") var clamp: Double?
    @Option(help: "TIES sign election: total or frequency.") var majoritySign: MajoritySignMethod = .total
    @Option(help: "Seed of DARE's random masks.") var seed: UInt64 = 0
    @Flag(help: "Write scaling 1 even when the first adapter uses rsLoRA (PEFT then scales the result by √r).")
    var unitScaling = false
    @Option(help: "Output adapter folder.") var output: String
    @Flag(help: "Overwrite an existing output.") var force = false

    func run() throws {
        guard adapters.count == weights.count else {
            throw ValidationError("give one --weight per --adapter (\(adapters.count) adapters, \(weights.count) weights)")
        }
        let sign = majoritySign
        let ranks = try runMerge { () throws -> [String: Int] in
            let c = LoRACombination(type: try LoRACombinationType(parsing: method), density: density, majoritySignMethod: sign,
                                    svdRank: rank, svdClamp: clamp, seed: seed)
            return try MergeFiles.combineAdapters(adapters, weights: weights, combination: c, output: output,
                                                 matchPEFTRSLoRA: !unitScaling, force: force)
        }
        print("wrote \(ranks.count) modules (ranks \(Set(ranks.values).sorted().map(String.init).joined(separator: ", "))) to \(output)")
    }
}

struct MergeConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Merge checkpoints from a mergekit YAML config (linear, task_arithmetic, ties, dare_ties, dare_linear, slerp).",
        aliases: ["models"])

    @Argument(help: "mergekit YAML; model paths are relative to the working directory (as mergekit) or else to the YAML's folder.") var config: String
    @Option(help: "Output folder.") var output: String
    @Option(help: "Seed of DARE's random masks.") var seed: UInt64 = 0
    @Flag(help: "Overwrite an existing output.") var force = false

    func run() throws {
        let s = try runMerge { () throws -> MergeFiles.Summary in
            guard let data = FileManager.default.contents(atPath: config) else { throw MergeError.io(path: config, reason: "cannot read") }
            let cfg = try MergekitConfig(yaml: String(decoding: data, as: UTF8.self))
            let folder = (config as NSString).deletingLastPathComponent
            return try MergeFiles.mergeCheckpoints(config: cfg, relativeTo: folder.isEmpty ? "." : folder, output: output, seed: seed, force: force)
        }
        print("merged \(s.tensorCount) tensors into \(output) (\(s.files.joined(separator: ", ")))")
    }
}

/// Options of LoRA extraction, shared by `merge extract` and the top-level `extract-lora`.
struct ExtractLoRAOptions: ParsableArguments {
    @Option(help: "Base HF folder.") var base: String
    @Option(help: "Fine-tuned HF folder.") var finetuned: String
    @Option(help: "Rank (the cap when --energy is given).") var rank: Int
    @Option(help: "Keep the smallest rank holding this fraction of Σσ² (0, 1].") var energy: Double?
    @Option(help: "Output adapter folder.") var output: String
    @Flag(help: "Overwrite an existing output.") var force = false

    func run() throws {
        let r: ExtractionRank = energy.map { .energy($0, maxRank: rank) } ?? .fixed(rank)
        let errors = try runMerge { try MergeFiles.extractLoRA(base: base, finetuned: finetuned, rank: r, output: output, force: force) }
        let worst = errors.max { $0.value < $1.value }
        print("wrote \(errors.count) modules to \(output); largest relative error \(String(format: "%.3g", worst?.value ?? 0)) (\(worst?.key ?? "-"))")
    }
}

struct MergeExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract a PEFT LoRA from a fine-tuned checkpoint by truncated SVD of W_ft − W_base per projection.")

    @OptionGroup var options: ExtractLoRAOptions

    func run() throws { try options.run() }
}

/// `steertool extract-lora`: the same as `merge extract`, under the name practitioners look for.
struct ExtractLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract-lora",
        abstract: "Extract a PEFT LoRA from a fine-tuned checkpoint (truncated SVD of W_ft − W_base; same as merge extract).")

    @OptionGroup var options: ExtractLoRAOptions

    func run() throws { try options.run() }
}
