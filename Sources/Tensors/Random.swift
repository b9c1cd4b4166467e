/// A small, fast, seedable generator (SplitMix64, Steele et al. 2014). Every stochastic step in
/// steertool (adapter initialisation, minibatch order, DARE masks, sampling) draws from one of
/// these with an explicit seed, so runs repeat exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in (0, 1) with 53 random bits, never 0 (safe for `log`).
    public mutating func nextOpenUnitDouble() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    /// A standard normal sample (Box–Muller, one of the pair).
    public mutating func nextNormal() -> Float {
        let u1 = nextOpenUnitDouble(), u2 = nextOpenUnitDouble()
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif

extension Tensor {
    /// A tensor of independent normal samples with mean 0 and standard deviation `std`, drawn
    /// from `SplitMix64(seed:)` in row-major order.
    public static func randomNormal(_ shape: Shape, std: Float = 1, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape) { buf in
            for i in 0..<buf.count { buf[i] = rng.nextNormal() * std }
        }
    }

    /// A tensor of independent uniform samples in `[low, high)`.
    public static func randomUniform(_ shape: Shape, low: Float = 0, high: Float = 1, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape) { buf in
            for i in 0..<buf.count { buf[i] = low + (high - low) * rng.nextUnitFloat() }
        }
    }
}
