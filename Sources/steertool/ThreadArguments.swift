import ArgumentParser
import Tensors

/// `--threads`: the BLAS thread count of a command (default: OpenBLAS's own choice).
struct ThreadArguments: ParsableArguments {
    @Option(name: .long, help: "BLAS threads (default: OpenBLAS's own choice).")
    var threads: Int?

    /// Sets the BLAS thread count when `--threads` was given.
    func apply() throws {
        guard let threads else { return }
        guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
        BLAS.setThreadCount(threads)
    }
}
