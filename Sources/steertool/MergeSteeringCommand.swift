import ArgumentParser
import Foundation
import Formats
import Merge
import Runtime

/// `steertool merge steering`: weighted sums of steering adapters, optional SVD re-compression.
struct MergeSteeringCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steering",
        abstract: "Weighted sum of steering adapters (ranks concatenate, biases add), optionally re-compressed to a rank by SVD (linear adapters only).")

    @Option(name: .customLong("adapter"), help: "A steering adapter file (repeat).") var adapters: [String]
    @Option(name: .customLong("weight"), parsing: .unconditionalSingleValue, help: "Its weight (repeat; default 1 each; negative subtracts).")
    var weights: [Float] = []
    @Option(help: "Re-compress every layer to this rank (identity activation only).") var rank: Int?
    @Option(help: "Output steering adapter file (.safetensors).") var output: String
    @Flag(help: "Overwrite an existing output.") var force = false

    func run() throws {
        let ws = weights.isEmpty ? [Float](repeating: 1, count: adapters.count) : weights
        guard ws.count == adapters.count else { throw ValidationError("give one --weight per --adapter or none") }
        let report = try runMerge { () throws -> String in
            let loaded = try adapters.map { try SteeringAdapter.load(path: $0) }
            var sum = try SteeringArithmetic.weightedSum(loaded, weights: ws)
            var note = ""
            if let rank {
                let (c, errors) = try SteeringArithmetic.recompressed(sum, rank: rank)
                sum = c
                note = "; re-compressed to rank \(rank), largest ‖M − U Dᵀ‖_F \(String(format: "%.3g", errors.values.max() ?? 0))"
            }
            let source = zip(adapters, ws).map { "\($1)·\($0)" }.joined(separator: " + ")
            try SteeringFiles.file(from: sum, source: source).write(to: output, force: force)
            return "wrote \(sum.layers.count) layers to \(output)" + note
        }
        print(report)
    }
}

/// `steertool merge control-vector`: llama.cpp control vectors ⇄ steering adapters.
struct MergeControlVectorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control-vector",
        abstract: "Export a vector-kind steering adapter as a llama.cpp control vector (GGUF), or import one.",
        subcommands: [Export.self, Import.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "steering adapter (.safetensors) → control vector (.gguf)")
        @Argument(help: "Steering adapter file.") var adapter: String
        @Argument(help: "Output .gguf.") var output: String
        @Option(help: "controlvector.model_hint.") var modelHint = "llama"
        @Flag(help: "Overwrite an existing output.") var force = false
        func run() throws {
            let n = try runMerge { () throws -> Int in
                let cv = try SteeringFiles.controlVector(from: try SteeringAdapter.load(path: adapter), modelHint: modelHint)
                try cv.write(to: output, force: force)
                return cv.directions.count
            }
            print("wrote \(n) directions to \(output)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "control vector (.gguf) → steering adapter (.safetensors)")
        @Argument(help: "Control vector .gguf.") var controlVector: String
        @Argument(help: "Output steering adapter file.") var output: String
        @Flag(help: "Overwrite an existing output.") var force = false
        func run() throws {
            let n = try runMerge { () throws -> Int in
                let a = SteeringAdapter(controlVector: try ControlVectorFile.load(path: controlVector))
                try SteeringFiles.file(from: a, source: controlVector).write(to: output, force: force)
                return a.layers.count
            }
            print("wrote \(n) layers to \(output)")
        }
    }
}

/// `steertool merge import-authors`: the paper authors' `pytorch_model.bin` adapters.
struct MergeImportAuthorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-authors",
        abstract: "Import post-block adapters saved by the paper authors' code (adapters.layer{i}_block.{down,up}.weight in pytorch_model.bin).")

    @Argument(help: "pytorch_model.bin (torch.save zip; read without executing anything).") var input: String
    @Option(help: "The adapters' α (Δh = α·up·act(down·h)); a training hyper-parameter the file lacks.") var alpha: Float
    @Option(help: "identity or silu (the authors' default).") var activation: SteeringActivation = .silu
    @Option(help: "Output steering adapter file.") var output: String
    @Flag(help: "Overwrite an existing output.") var force = false

    func run() throws {
        let act = activation
        let n = try runMerge { () throws -> Int in
            let a = try AuthorsAdapterImport.load(path: input, alpha: alpha, activation: act)
            try SteeringFiles.file(from: a, source: input).write(to: output, force: force)
            return a.layers.count
        }
        print("wrote \(n) layers to \(output)")
    }
}
