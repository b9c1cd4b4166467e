// Fuzz driver for the Formats parsers. Built two ways:
//  - `make fuzz` (swift build -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING ...): libFuzzer calls
//    `LLVMFuzzerTestOneInput`; the parser is chosen by $STEERTOOL_FUZZ_TARGET
//    (safetensors | gguf | peft-config).
//  - a plain build: `FormatsFuzz <target> <file>...` replays inputs (crash reproducers, corpora).
import Foundation
import Formats

/// Runs one parser on one input; errors are the expected outcome for most inputs.
func fuzzOne(_ target: String, _ data: UnsafeRawBufferPointer) {
    switch target {
    case "safetensors":
        if let h = try? SafetensorsFile.parse(data, file: "fuzz") {
            for t in h.tensors {
                guard case .safetensors(let d) = t.storage, t.shape.count <= 1 << 20 else { continue }
                var out = [Float](repeating: 0, count: t.shape.count)
                out.withUnsafeMutableBufferPointer { ElementCodec.decode(UnsafeRawBufferPointer(rebasing: data[t.byteRange]), dtype: d, into: $0) }
            }
        }
    case "gguf":
        if let h = try? GGUFFile.parse(data, file: "fuzz") {
            for t in h.tensors {
                guard case .ggml(let type) = t.storage, GGMLDequantizer.supports(type), t.shape.count <= 1 << 20 else { continue }
                var out = [Float](repeating: 0, count: t.shape.count)
                out.withUnsafeMutableBufferPointer { GGMLDequantizer.dequantize(UnsafeRawBufferPointer(rebasing: data[t.byteRange]), type: type, into: $0) }
            }
        }
    default:  // peft-config (and config.json hyperparameters)
        let d = Data(data)
        _ = try? PEFTAdapterConfig(json: d)
        _ = try? LlamaMetadata.hyperparameters(fromConfigJSON: d)
    }
}

#if FUZZING
nonisolated(unsafe) let fuzzTarget = ProcessInfo.processInfo.environment["STEERTOOL_FUZZ_TARGET"] ?? "safetensors"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(fuzzTarget, UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

/// libFuzzer's driver, declared by symbol name (it has a plain C ABI).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// SwiftPM links an executable's entry point as `<module>_main`; hand control to libFuzzer.
@_cdecl("FormatsFuzz_main")
public func formatsFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in fuzzEntry(data, size) }
}
#else
/// Replay driver: `FormatsFuzz <target> <file>...`.
@main
struct FormatsFuzzReplay {
    static func main() {
        let args = CommandLine.arguments
        guard args.count >= 3 else {
            print("usage: FormatsFuzz safetensors|gguf|peft-config <file>...")
            return
        }
        for path in args.dropFirst(2) {
            guard let d = FileManager.default.contents(atPath: path) else { continue }
            d.withUnsafeBytes { fuzzOne(args[1], $0) }
        }
        print("replayed \(args.count - 2) input(s) through \(args[1]) without a crash")
    }
}
#endif
