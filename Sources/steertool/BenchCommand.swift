import ArgumentParser

/// `steertool bench <area>`: speed figures as JSON lines
/// `{"name": …, "unit": …, "value": …, "threads": N}` (the peers in `bench/peers/` print the same).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed; prints JSON lines {name, unit, value, threads}.",
        subcommands: [BenchEquivalenceCommand.self, BenchFormatsCommand.self, BenchKLCommand.self, BenchMergeCommand.self, BenchRuntimeCommand.self, BenchTokenizerCommand.self, BenchTrainCommand.self])
}
