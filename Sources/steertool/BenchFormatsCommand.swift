import ArgumentParser
import Formats

/// `steertool bench formats`: safetensors open/read and dequantization throughput as JSON lines
/// (peer: `bench/peers/formats.py`). Register as a subcommand of `BenchCommand`.
struct BenchFormatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "formats",
        abstract: "safetensors open + read of a 1 GiB file, Q8_0/Q4_K/Q6_K dequantization and memcpy, in GB/s.")

    @Option(help: "Folder for the synthetic 1 GiB checkpoint (created on first use).")
    var work: String = "bench/work"

    @Option(help: "Repetitions; the best is reported.")
    var repeats: Int = 3

    func run() throws {
        for f in try FormatsBenchmark.run(workFolder: work, repeats: repeats) { print(f.jsonLine) }
    }
}
