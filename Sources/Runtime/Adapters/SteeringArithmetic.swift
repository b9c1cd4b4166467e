import Formats
import Tensors

/// Arithmetic on post-block steering adapters (Δh = scale·(U·φ(Dᵀh) + b) per layer).
///
/// A weighted sum Σ wᵢ·adapterᵢ is exact for both activations: ranks concatenate
/// (D = [D₁ D₂ …], U = [w₁s₁U₁ w₂s₂U₂ …], since φ acts column by column) and biases add
/// (b = Σ wᵢsᵢbᵢ); the result has scale 1. Re-compression to rank r refactors the linear map
/// M = U·Dᵀ `[d, d]` by its SVD (M ≈ U_r Σ_r V_rᵀ → U = U_r·Σ_r, D = V_r): optimal in Frobenius
/// norm and exact when rank M ≤ r. It is refused for SiLU adapters, whose map is not linear.
public enum SteeringArithmetic {
    /// Σᵢ weights[i]·adapters[i], made for the model its inputs were made for. Throws when sites,
    /// activations, positions or recorded models (`madeFor`) differ, or a layer's widths differ.
    public static func weightedSum(_ adapters: [SteeringAdapter], weights: [Float]) throws -> SteeringAdapter {
        guard let first = adapters.first, adapters.count == weights.count else {
            throw SteeringAdapterError.incompatibleInputs("\(adapters.count) adapters and \(weights.count) weights")
        }
        for a in adapters where a.site != first.site {
            throw SteeringAdapterError.incompatibleInputs("adapters steer different sites (\(first.site) and \(a.site))")
        }
        for a in adapters where a.positions != first.positions {
            throw SteeringAdapterError.incompatibleInputs("adapters steer different positions (\(first.positions.rawValue) and \(a.positions.rawValue))")
        }
        let linearKinds = adapters.filter { $0.layers.values.contains { $0.down != nil } }
        if let other = linearKinds.first(where: { $0.activation != linearKinds[0].activation }) {
            throw SteeringAdapterError.incompatibleInputs("cannot add a \(linearKinds[0].activation.rawValue) adapter to a \(other.activation.rawValue) one")
        }
        let activation = linearKinds.first?.activation ?? first.activation
        let signatures = adapters.compactMap(\.madeFor)
        if let other = signatures.first(where: { !$0.matches(signatures[0]) }) {
            throw SteeringAdapterError.incompatibleInputs("adapters made for different models (\(signatures[0]) and \(other))")
        }
        var layers: [Int: SteeringLayer] = [:]
        for l in Set(adapters.flatMap { $0.layers.keys }).sorted() {
            var downs: [Tensor] = [], ups: [Tensor] = []
            var bias: Tensor?
            var width: Int?
            for (a, w) in zip(adapters, weights) {
                guard let layer = a.layers[l] else { continue }
                let coef = w * a.scale
                let d = layer.bias?.count ?? layer.down?.rows ?? 0
                if let width, width != d {
                    throw SteeringAdapterError.shapeMismatch(tensor: "layers.\(l)", expected: [width], found: [d])
                }
                width = d
                if let down = layer.down, let up = layer.up {
                    downs.append(down); ups.append(coef * up)
                }
                if let b = layer.bias {
                    bias = bias.map { $0 + coef * b } ?? coef * b
                }
            }
            if downs.isEmpty {
                layers[l] = SteeringLayer(bias: bias)
            } else {
                let down = Tensor.concatenatingRows(downs.map { $0.transposed() }).transposed()
                let up = Tensor.concatenatingRows(ups.map { $0.transposed() }).transposed()
                layers[l] = SteeringLayer(down: down, up: up, bias: bias)
            }
        }
        return SteeringAdapter(site: first.site, activation: activation, layers: layers, scale: 1, madeFor: signatures.first,
                               positions: first.positions)
    }

    /// The adapter with every shift multiplied by `factor` (folded into U and b; scale 1).
    public static func scaled(_ a: SteeringAdapter, by factor: Float) -> SteeringAdapter {
        var out = a
        out.layers = a.layers.mapValues { l in
            SteeringLayer(down: l.down, up: l.up.map { (factor * a.scale) * $0 }, bias: l.bias.map { (factor * a.scale) * $0 })
        }
        out.scale = 1
        return out
    }

    /// The adapter that undoes `a` to first order (every shift negated).
    public static func negated(_ a: SteeringAdapter) -> SteeringAdapter { scaled(a, by: -1) }

    /// Re-compresses every linear layer to rank ≤ `rank` (see the type's documentation);
    /// returns the adapter and, per layer, ‖M − U Dᵀ‖_F (the SVD tail). Scale is folded in.
    public static func recompressed(_ a: SteeringAdapter, rank: Int) throws -> (adapter: SteeringAdapter, frobeniusError: [Int: Double]) {
        guard rank >= 1 else { throw SteeringAdapterError.invalidParameter(name: "rank", value: "\(rank)", reason: "must be ≥ 1") }
        let hasLinear = a.layers.values.contains { $0.down != nil }
        if hasLinear && a.activation != .identity {
            throw SteeringAdapterError.unsupported("SVD re-compression needs a linear (identity) adapter; a \(a.activation.rawValue) adapter's shift U·φ(Dᵀh) is not a linear map of h")
        }
        var out = scaled(a, by: 1)
        var errors: [Int: Double] = [:]
        for (l, layer) in out.layers {
            guard let down = layer.down, let up = layer.up else { continue }
            let m = matmul(up, down, transposeB: true)   // [d, d]
            let s: SingularValueDecomposition
            do { s = try svd(m, precision: .double) } catch {
                throw SteeringAdapterError.numerical(tensor: "layers.\(l)", reason: "SVD failed: \(error)")
            }
            let r = min(rank, s.singularValues.count)
            var u = Tensor(shape: [m.rows, r])
            for i in 0..<m.rows { for j in 0..<r { u[i, j] = s.u[i, j] * s.singularValues[j] } }
            let d = s.vt.rows(0..<r).transposed()
            out.layers[l] = SteeringLayer(down: d, up: u, bias: layer.bias)
            errors[l] = s.singularValues.dropFirst(r).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        }
        return (out, errors)
    }
}
