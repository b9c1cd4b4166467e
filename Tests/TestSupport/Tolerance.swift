/// Numeric comparison helpers. Tests state their tolerance and why next to each use.

/// ‖a − b‖₂ / ‖b‖₂ accumulated in Double (0 when both are zero; ∞ when only `b` is zero).
public func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) elements")
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
    }
    if den == 0 { return num == 0 ? 0 : .infinity }
    return (num / den).squareRoot()
}

/// max |aᵢ − bᵢ|.
public func maxAbsoluteDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "maxAbsoluteDifference: \(a.count) vs \(b.count) elements")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// max |aᵢ − bᵢ| / max |bᵢ|: the elementwise error scaled by the reference's range, the
/// measure the runtime tests use ("max|Δ| ≤ tol · max|ref|").
public func maxAbsoluteDifferenceScaled(_ a: [Float], _ b: [Float]) -> Double {
    let scale = b.reduce(Float(0)) { max($0, abs($1)) }
    let d = maxAbsoluteDifference(a, b)
    return scale == 0 ? (d == 0 ? 0 : .infinity) : Double(d) / Double(scale)
}
