import Foundation
import Formats

/// Refuses, before anything is allocated, a load whose own buffers would not fit in the memory
/// this machine has available: `.f32` widens every tensor to 4 bytes per value, `.q8_0` keeps
/// 34 bytes per 32 matrix values plus one tensor widened at a time, `.native` owns the 1-D vectors
/// and any matrix stored in 4 or more bytes per value (BF16, F16 and GGML-block matrices stay in
/// the mapped file and are not counted). Without this an 8B bf16
/// checkpoint under `--weights f32` (32 GB) would be killed by the kernel part way through.
public enum LoadMemoryCheck {
    /// Bytes the loaded model will own for `tensors` under `storage`.
    public static func bytesNeeded(_ tensors: [TensorInfo], storage: WeightStorage) -> Int {
        let counts = tensors.map { $0.shape.count }
        switch storage {
        case .f32:
            return counts.reduce(0) { $0 + 4 * $1 }
        case .q8_0:
            let matrices = zip(tensors, counts).filter { $0.0.shape.rank == 2 }.map(\.1)
            let vectors = zip(tensors, counts).filter { $0.0.shape.rank != 2 }.map(\.1)
            return matrices.reduce(0) { $0 + $1 / 32 * 34 + 34 } + 4 * (matrices.max() ?? 0) + 4 * vectors.reduce(0, +)
        case .native:
            // Matrices stored in fewer than 4 bytes per value (BF16, F16, GGML blocks) stay in place.
            let owned = tensors.filter { $0.shape.rank != 2 || $0.byteRange.count >= 4 * $0.shape.count }
            return owned.reduce(0) { $0 + 4 * $1.shape.count }
        }
    }

    /// Memory available to a new allocation: Linux's MemAvailable, else the physical memory.
    public static func availableBytes() -> Int {
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
            return kb * 1024
        }
        return Int(clamping: ProcessInfo.processInfo.physicalMemory)
    }

    /// - Throws: `RuntimeError.notEnoughMemory` naming `source`, the storage and the largest
    ///   tensor when the model would own more than `available` bytes.
    public static func check(_ tensors: [TensorInfo], storage: WeightStorage, source: String,
                             available: Int = availableBytes()) throws {
        let needed = bytesNeeded(tensors, storage: storage)
        guard needed > available else { return }
        let largest = tensors.max { $0.shape.count < $1.shape.count }
        throw RuntimeError.notEnoughMemory(source: source, storage: storage.rawValue, needed: needed, available: available,
                                           largestTensor: largest.map { "\($0.name) \($0.shape)" } ?? "-")
    }
}
