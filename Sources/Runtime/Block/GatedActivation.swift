#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// The gated MLP's activation, forward and backward side by side: m = φ(a_g) ⊙ a_u from the gate
/// and up projections' outputs (elementwise over `count` values). Llama, Mistral and Qwen2 use
/// SiLU, φ(x) = x·σ(x); Gemma-3 GELU with the tanh approximation (`gelu_pytorch_tanh`).
public enum GatedActivation: String, Sendable, Equatable {
    /// φ(x) = x·σ(x) (SwiGLU).
    case silu
    /// φ(x) = ½x·(1 + tanh(√(2/π)·(x + 0.044715x³))) (GeGLU, PyTorch's `gelu(approximate="tanh")`).
    case geluTanh

    /// The activation of a config's `hidden_act` / `hidden_activation`, nil for one not implemented.
    public init?(configName: String) {
        switch configName {
        case "silu", "swish": self = .silu
        case "gelu_pytorch_tanh", "gelu_tanh": self = .geluTanh
        default: return nil
        }
    }

    /// m = φ(gate) ⊙ up into `out` (which may be `gate` or `up`); e^x through `VectorMath.exp`.
    func forward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .silu: VectorMath.swiGLU(gate: gate, up: up, out: out, count: count)
        case .geluTanh: for i in 0..<count { out[i] = GELUTanh.value(gate[i]) * up[i] }
        }
    }

    /// From gm = ∂L/∂m: gUp = gm ⊙ φ(gate) and gGate = gm ⊙ up ⊙ φ′(gate), written (not added)
    /// into `upGradient` and `gateGradient`. SiLU: φ′(x) = σ(x)·(1 + x·(1 − σ(x))), σ by `expf`;
    /// GELU-tanh: `GELUTanh.derivative`.
    func backward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, gradient gm: UnsafePointer<Float>,
                  gateGradient: UnsafeMutablePointer<Float>, upGradient: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .silu:
            for i in 0..<count {
                let a = gate[i], sg = SiLU.sigmoid(a)
                upGradient[i] = gm[i] * a * sg
                gateGradient[i] = gm[i] * up[i] * sg * (1 + a * (1 - sg))
            }
        case .geluTanh:
            for i in 0..<count {
                let a = gate[i]
                upGradient[i] = gm[i] * GELUTanh.value(a)
                gateGradient[i] = gm[i] * up[i] * GELUTanh.derivative(a)
            }
        }
    }

    /// The tangent's coefficients at (gate, up): δm = `gate` ⊙ δa_g + `up` ⊙ δa_u with
    /// `gate` = φ′(a_g) ⊙ a_u and `up` = φ(a_g) (the same factors `backward` multiplies by).
    public func tangentCoefficients(gate: Tensor, up: Tensor) -> (gate: Tensor, up: Tensor) {
        var out = [Tensor(shape: gate.shape), Tensor(shape: gate.shape)]
        Tensor.withPointers([gate, up, Tensor(shape: gate.shape, repeating: 1)], writing: &out) { p, o in
            backward(gate: p[0], up: p[1], gradient: p[2], gateGradient: o[0], upGradient: o[1], count: gate.count)
        }
        return (out[0], out[1])
    }
}

/// SiLU, φ(x) = x·σ(x), and its derivative elementwise in f32 with `expf`: the one definition the
/// gated MLP's backward, the SiLU steering adapters and their fits share.
public enum SiLU {
    /// σ(x) = 1/(1+e⁻ˣ).
    @inline(__always) public static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
    /// φ(x) = x/(1+e⁻ˣ).
    @inline(__always) public static func value(_ x: Float) -> Float { x / (1 + expf(-x)) }
    /// φ′(x) = σ(x)·(1 + x·(1 − σ(x))).
    @inline(__always) public static func derivative(_ x: Float) -> Float {
        let s = sigmoid(x)
        return s * (1 + x * (1 - s))
    }
}

/// GELU with the tanh approximation and its derivative, elementwise in f32 (PyTorch's
/// `gelu(approximate="tanh")`: u = √(2/π)·(x + 0.044715·x³), φ(x) = ½x·(1 + tanh u)).
public enum GELUTanh {
    /// √(2/π) as PyTorch's kernel forms it (√2 · 2/√π · ½), and the cubic coefficient.
    static let beta = Float(2.0.squareRoot() * (2 / Double.pi.squareRoot()) * 0.5), kappa: Float = 0.044715

    /// φ(x) = ½x·(1 + tanh(β(x + κx³))).
    @inline(__always) public static func value(_ x: Float) -> Float {
        let inner = beta * (x + kappa * x * x * x)
        return 0.5 * x * (1 + tanhf(inner))
    }

    /// φ′(x) = ½(1 + t) + ½x·(1 − t²)·β(1 + 3κx²), t = tanh(β(x + κx³)).
    @inline(__always) public static func derivative(_ x: Float) -> Float {
        let t = tanhf(beta * (x + kappa * x * x * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * beta * (1 + 3 * kappa * x * x)
    }
}
