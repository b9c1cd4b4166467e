import Foundation
import Tensors

/// Speed measurements of the Formats module for `steertool bench formats` (never run by tests):
/// safetensors open and full read of a large file, dequantization throughput (Float32 output
/// bytes per second) and, as the machine's yardstick, a large memcpy.
public enum FormatsBenchmark {
    /// One figure: `{"name", "unit", "value", "threads"}`.
    public struct Figure: Sendable {
        public var name: String
        public var unit: String
        public var value: Double
        public var threads: Int

        /// The JSON line `steertool bench` prints.
        public var jsonLine: String {
            JSONValue.object([("name", .string(name)), ("unit", .string(unit)), ("value", .double((value * 1000).rounded() / 1000)),
                              ("threads", .int(threads))]).description
        }
    }

    /// Tensors of the synthetic checkpoint: 16 F32 tensors of [4096, 4096] (1 GiB).
    public static let syntheticTensors = 16
    public static let syntheticRows = 4096

    /// Writes the synthetic ≥ 1 GB safetensors file at `path` unless it already exists
    /// (values from SplitMix64, seed 42; the Python peer reads the same file).
    public static func ensureSyntheticCheckpoint(at path: String) throws {
        if FileManager.default.fileExists(atPath: path) { return }
        let n = syntheticRows
        var rng = SplitMix64(seed: 42)
        let records = (0..<syntheticTensors).map { i in
            TensorRecord(name: "tensor.\(i)", shape: [n, n], storage: .safetensors(.f32)) {
                var out = [UInt8](repeating: 0, count: n * n * 4)
                out.withUnsafeMutableBytes { raw in
                    for k in 0..<(n * n) { raw.storeBytes(of: (rng.nextUnitFloat() - 0.5).bitPattern, toByteOffset: 4 * k, as: UInt32.self) }
                }
                return out
            }
        }
        try SafetensorsWriter.write(records, metadata: ["format": "pt"], to: path)
    }

    /// Random blocks of `type` for `elements` values, with finite f16 scales in [−0.05, 0.05].
    public static func randomBlocks(_ type: GGMLType, elements: Int, seed: UInt64 = 7) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        let blocks = elements / type.blockSize
        var raw = [UInt8](repeating: 0, count: blocks * type.typeSize)
        for i in 0..<raw.count { raw[i] = UInt8(truncatingIfNeeded: rng.next()) }
        let scaleOffsets: [Int] = switch type {
        case .q8_0, .q4_0, .q5_0: [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q2_K: [80, 82]
        case .q3_K: [108]
        case .q6_K: [208]
        default: []
        }
        for b in 0..<blocks {
            for o in scaleOffsets {
                let h = FloatBits.half(from: (rng.nextUnitFloat() - 0.5) * 0.1)
                raw[b * type.typeSize + o] = UInt8(h & 0xff)
                raw[b * type.typeSize + o + 1] = UInt8(h >> 8)
            }
        }
        return raw
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Runs every measurement (best of `repeats`) and returns the figures.
    /// - Parameter workFolder: where the synthetic checkpoint lives (created if missing).
    public static func run(workFolder: String, repeats: Int = 3) throws -> [Figure] {
        try FileManager.default.createDirectory(atPath: workFolder, withIntermediateDirectories: true)
        let path = workFolder + "/formats-1gib.safetensors"
        try ensureSyntheticCheckpoint(at: path)
        var figures: [Figure] = []

        var openBest = Double.infinity, readBest = Double.infinity
        var total = 0
        for _ in 0..<repeats {
            var f: SafetensorsFile?
            openBest = min(openBest, try seconds { f = try SafetensorsFile(path: path) })
            guard let f else { continue }
            total = f.tensorInfos.reduce(0) { $0 + $1.byteCount }
            readBest = min(readBest, try seconds {
                for name in f.tensorNames { _ = try f.tensor(named: name) }
            })
        }
        figures.append(Figure(name: "formats.safetensors.open", unit: "ms", value: openBest * 1000, threads: 1))
        figures.append(Figure(name: "formats.safetensors.read_all", unit: "GB/s", value: Double(total) / readBest / 1e9, threads: 1))

        let elements = 1 << 24  // 64 MiB of Float32 output per measurement
        var out = [Float](repeating: 0, count: elements)
        for type in [GGMLType.q8_0, .q4_K, .q6_K] {
            let raw = randomBlocks(type, elements: elements)
            var best = Double.infinity
            for _ in 0..<repeats {
                best = min(best, seconds {
                    raw.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer { GGMLDequantizer.dequantize(r, type: type, into: $0) } }
                })
            }
            figures.append(Figure(name: "formats.dequant.\(type.name.lowercased())", unit: "GB/s", value: Double(elements * 4) / best / 1e9, threads: 1))
        }
        let source = [UInt8](repeating: 1, count: 1 << 28)
        var dest = [UInt8](repeating: 0, count: 1 << 28)
        var copyBest = Double.infinity
        for _ in 0..<repeats {
            copyBest = min(copyBest, seconds {
                source.withUnsafeBytes { s in dest.withUnsafeMutableBytes { d in d.copyMemory(from: s) } }
            })
        }
        figures.append(Figure(name: "formats.memcpy", unit: "GB/s", value: Double(source.count) / copyBest / 1e9, threads: 1))
        return figures
    }
}
