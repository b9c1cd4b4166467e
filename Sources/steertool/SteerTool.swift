import ArgumentParser

/// The `steertool` command: a thin layer that parses arguments, calls the library modules and
/// prints. Every subcommand lives in its own file.
@main
struct SteerTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steertool",
        abstract: "Fine-tuned weights and activation steering for open models (Llama, Mistral, Qwen2, Qwen3, Gemma-3), as two views of one thing.",
        version: "0.1.0",
        subcommands: [InspectCommand.self, ConvertCommand.self, TokenizeCommand.self, ForwardCommand.self, GenerateCommand.self, DistillCommand.self, TrainCommand.self, VectorsCommand.self, FoldCommand.self, MergeCommand.self, ExtractLoRACommand.self, EvalCommand.self, BenchCommand.self])
}
