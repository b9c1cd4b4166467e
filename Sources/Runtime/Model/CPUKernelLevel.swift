import CKernels

/// A code path of the hand-vectorised kernels (`Sources/CKernels`); every path of a kernel gives
/// the same results up to its documented summation order (the LoRA merge kernel: bit for bit).
public enum CPUKernelLevel: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// Portable C.
    case scalar = 0
    /// AVX2 + FMA + F16C.
    case avx2 = 1
    /// AVX-512F.
    case avx512 = 2

    /// The best path this CPU supports.
    public static var best: CPUKernelLevel { CPUKernelLevel(rawValue: Int(steertool_kernel_best_level().rawValue)) ?? .scalar }

    /// The C enum value.
    var cValue: steertool_kernel_level { steertool_kernel_level(rawValue: UInt32(rawValue)) }

    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }
}
