/// The causal softmax Jacobian applied to a `[t, t]` block in place: for every row i,
/// g[i, j] ← P[i, j]·(g[i, j] − Σ_{k≤i} P[i, k]·g[i, k]) for j ≤ i and 0 for the masked j > i,
/// with P the row-softmaxed causal attention probabilities (row-major, rows t apart; the dot
/// product is summed in f32, k ascending). The Jacobian is symmetric, so this is both the tangent
/// δP of a score tangent δS and the gradient ∂L/∂S of ∂L/∂P — the forward-mode (Equivalence's
/// block JVP) and reverse-mode (this module's backward pass, Equivalence's VJP) uses share it.
public func causalSoftmaxJacobianProduct(probabilities p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, size t: Int) {
    for i in 0..<t {
        let pr = p + i * t, gr = g + i * t
        var dot: Float = 0
        for j in 0...i { dot += pr[j] * gr[j] }
        for j in 0...i { gr[j] = pr[j] * (gr[j] - dot) }
        for j in (i + 1)..<t { gr[j] = 0 }
    }
}
