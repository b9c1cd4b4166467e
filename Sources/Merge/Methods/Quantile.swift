/// `torch.quantile(x, q)` with its default linear interpolation: sort ascending, position
/// q·(n−1), interpolate between the neighbours. `q` in [0, 1]; nil for an empty input.
public func torchQuantile(_ values: [Float], _ q: Double) -> Float? {
    guard !values.isEmpty else { return nil }
    let s = values.sorted()
    let pos = q * Double(s.count - 1)
    let lo = Int(pos.rounded(.down))
    let hi = min(lo + 1, s.count - 1)
    let frac = Float(pos - Double(lo))
    // torch.lerp form: a + w·(b − a)
    return s[lo] + frac * (s[hi] - s[lo])
}
