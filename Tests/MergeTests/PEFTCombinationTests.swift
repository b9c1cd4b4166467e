import Foundation
import Merge
import Tensors
import TestSupport
import Testing

/// `LoRACombination` against PEFT 0.21.2 `add_weighted_adapter` (fixtures/merge/peft-combinations.json).
@Suite struct PEFTCombinationTests {
    struct Case {
        let id: String
        let inputs: [String: [LoRAUpdate]]   // module → one per adapter
        let weights: [Float]
        let combination: LoRACombination
        let newRank: Int
        let expected: [String: (a: Tensor, b: Tensor, delta: Tensor)]
    }

    static func cases() throws -> [Case] {
        let root = try MergeFixtures.load("peft-combinations.json")
        let adapters = root["adapters"] as! [String: Any]
        var out: [Case] = []
        for c in root["combinations"] as! [[String: Any]] {
            let names = c["adapters"] as! [String]
            let mods = c["modules"] as! [String: Any]
            var inputs: [String: [LoRAUpdate]] = [:]
            var expected: [String: (Tensor, Tensor, Tensor)] = [:]
            for (m, v) in mods {
                inputs[m] = try names.map { n in
                    let am = ((adapters[n] as! [String: Any])["modules"] as! [String: Any])[m] as! [String: Any]
                    return LoRAUpdate(a: try MergeFixtures.tensor(am["A"]), b: try MergeFixtures.tensor(am["B"]),
                                       scaling: Float((am["scaling"] as! NSNumber).doubleValue))
                }
                let e = v as! [String: Any]
                expected[m] = (try MergeFixtures.tensor(e["A"]), try MergeFixtures.tensor(e["B"]), try MergeFixtures.tensor(e["delta"]))
            }
            let comb = LoRACombination(
                type: try LoRACombinationType(parsing: c["combination_type"] as! String),
                density: (c["density"] as? NSNumber)?.doubleValue,
                majoritySignMethod: MajoritySignMethod(rawValue: c["majority_sign_method"] as! String)!,
                svdRank: (c["svd_rank"] as? NSNumber)?.intValue, svdClamp: (c["svd_clamp"] as? NSNumber)?.doubleValue, seed: 11)
            out.append(Case(id: c["id"] as! String, inputs: inputs, weights: (c["weights"] as! [NSNumber]).map { $0.floatValue },
                            combination: comb, newRank: (c["new_r"] as! NSNumber).intValue, expected: expected))
        }
        return out
    }

    /// Aligns the sign of each rank component of (B, A) to the reference's (SVD factors are unique
    /// only up to a sign per component; torch and LAPACK may choose differently).
    static func alignSigns(_ f: LoRAUpdate, to ref: (a: Tensor, b: Tensor)) -> LoRAUpdate {
        var g = f
        for j in 0..<min(f.rank, ref.a.rows) {
            var dot: Float = 0
            for k in 0..<f.inFeatures { dot += f.a[j, k] * ref.a[j, k] }
            if dot < 0 {
                for k in 0..<f.inFeatures { g.a[j, k] = -f.a[j, k] }
                for i in 0..<f.outFeatures { g.b[i, j] = -f.b[i, j] }
            }
        }
        return g
    }

    @Test("deterministic combination types equal PEFT's factors and deltas")
    func deterministicTypes() throws {
        let all = try Self.cases().filter { !$0.id.hasPrefix("dare") && $0.id != "svd_clamp" }
        #expect(all.count == 10)
        for c in all {
            var rng = SplitMix64(seed: 1)
            for (module, inputs) in c.inputs {
                let got = try c.combination.combine(inputs, weights: c.weights, module: module, rng: &rng)
                let ref = c.expected[module]!
                #expect(got.rank == c.newRank, "\(c.id) \(module)")
                #expect(got.scaling == 1)
                // delta: float32 products in both; SVD types truncate the same spectrum (our SVD in
                // float64, torch's in float32), so 1e-5 relative covers both roundings.
                let dErr = relativeError(got.delta.scalars, ref.delta.scalars)
                #expect(dErr < (c.combination.type.usesSVD ? 1e-5 : 1e-6), "\(c.id) \(module) delta \(dErr)")
                let aligned = c.combination.type.usesSVD ? Self.alignSigns(got, to: (ref.a, ref.b)) : got
                // factors: elementwise float32 arithmetic in the same order (1e-6); singular vectors
                // of float32 vs float64 SVDs differ by ~σ-gap-conditioned rounding (1e-4).
                let tol = c.combination.type.usesSVD ? 1e-4 : 1e-6
                let aErr = relativeError(aligned.a.scalars, ref.a.scalars)
                let bErr = relativeError(aligned.b.scalars, ref.b.scalars)
                #expect(aErr < tol && bErr < tol, "\(c.id) \(module) A \(aErr) B \(bErr)")
            }
        }
    }

    /// PEFT's clamp threshold is a quantile of the SVD factors, which depends on the sign the SVD
    /// routine gave each component; torch's and ours differ. With our factors' signs aligned to
    /// PEFT's, the clamp reproduces PEFT's factors.
    @Test("svd_clamp: PEFT's quantile clamp on sign-aligned factors")
    func svdClamp() throws {
        let c = try Self.cases().first { $0.id == "svd_clamp" }!
        var unclamped = c.combination
        unclamped.svdClamp = nil
        var rng = SplitMix64(seed: 1)
        for (module, inputs) in c.inputs {
            let ref = c.expected[module]!
            let f = Self.alignSigns(try unclamped.combine(inputs, weights: c.weights, module: module, rng: &rng), to: (ref.a, ref.b))
            let (b, a) = LoRACombination.clamp(b: f.b, a: f.a, quantile: c.combination.svdClamp!)
            // float64 vs float32 SVD factors (1e-4, as for svd); the clamp itself is exact
            #expect(relativeError(a.scalars, ref.a.scalars) < 1e-4, "\(module) A")
            #expect(relativeError(b.scalars, ref.b.scalars) < 1e-4, "\(module) B")
            #expect(b.maxAbsolute < f.b.maxAbsolute || a.maxAbsolute < f.a.maxAbsolute, "the clamp bites")
        }
    }

    /// PEFT's per-side view of a DARE/TIES combination for `module`: side 0 is A (weights
    /// sign(wᵢsᵢ)·√|wᵢsᵢ|), side 1 is B (weights √|wᵢsᵢ|), with each input's factor entries and
    /// PEFT's output entries of that side.
    static func side(_ side: Int, of c: Case, module: String) -> (weights: [Float], inputs: [[Float]], expected: [Float]) {
        let inputs = c.inputs[module]!
        let w: [Float] = inputs.enumerated().map { (i, x) in
            let ws = c.weights[i] * x.scaling
            let r = Float(Double(abs(ws)).squareRoot())
            return side == 0 ? (ws >= 0 ? r : -r) : r
        }
        let xs = inputs.map { side == 0 ? $0.a.scalars : $0.b.scalars }
        let ref = side == 0 ? c.expected[module]!.a.scalars : c.expected[module]!.b.scalars
        return (w, xs, ref)
    }

    /// Every entry of PEFT's DARE-linear output is Σ_{i∈S} wᵢxᵢ/p for some kept subset S; the
    /// same holds for ours. The kept fractions of both are within 4σ of the density.
    @Test("dare_linear: PEFT's output and ours have DARE's structure and keep rate")
    func dareLinearStructure() throws {
        let c = try Self.cases().first { $0.id == "dare_linear" }!
        let p = c.combination.density!
        var rng = SplitMix64(seed: 5)
        var keptRef = 0, keptOurs = 0, total = 0
        for (module, inputs) in c.inputs {
            let ours = try c.combination.combine(inputs, weights: c.weights, module: module, rng: &rng)
            for side in 0..<2 {
                let (w, xs, ref) = Self.side(side, of: c, module: module)
                let mine = side == 0 ? ours.a.scalars : ours.b.scalars
                for e in 0..<ref.count {
                    for (target, counter) in [(ref[e], 0), (mine[e], 1)] {
                        var found: Int?
                        for s in 0..<(1 << xs.count) {
                            var v: Float = 0
                            for i in 0..<xs.count where s & (1 << i) != 0 { v += xs[i][e] / Float(p) * w[i] }
                            if abs(v - target) <= 1e-5 * max(1, abs(target)) { found = s; break }
                        }
                        #expect(found != nil, "\(module) entry \(e) = \(target) is no subset sum")
                        let k = (found ?? 0).nonzeroBitCount
                        if counter == 0 { keptRef += k } else { keptOurs += k }
                    }
                    total += xs.count
                }
            }
        }
        let sigma = (Double(total) * p * (1 - p)).squareRoot()
        #expect(abs(Double(keptRef) - p * Double(total)) < 4 * sigma, "PEFT kept \(keptRef)/\(total)")
        #expect(abs(Double(keptOurs) - p * Double(total)) < 4 * sigma, "ours kept \(keptOurs)/\(total)")
    }

    /// dare_ties = TIES' disjoint merge of DARE-pruned inputs: PEFT's entries equal the disjoint
    /// merge of some kept subset (checked with our deterministic `disjointMerge`).
    @Test("dare_ties: PEFT's output is the TIES disjoint merge of a DARE-pruned subset")
    func dareTiesStructure() throws {
        let c = try Self.cases().first { $0.id == "dare_ties" }!
        let p = Float(c.combination.density!)
        var matched = 0, total = 0
        for module in c.inputs.keys {
            for side in 0..<2 {
                let (w, xs, ref) = Self.side(side, of: c, module: module)
                for e in 0..<ref.count {
                    total += 1
                    for s in 0..<(1 << xs.count) {
                        let pruned = (0..<xs.count).map { i in Tensor(vector: [s & (1 << i) != 0 ? xs[i][e] / p : 0]) }
                        let v = TaskTensorMerge.disjointMerge(pruned, weights: w, signs: c.combination.majoritySignMethod).scalars[0]
                        if abs(v - ref[e]) <= 1e-5 * max(1, abs(ref[e])) { matched += 1; break }
                    }
                }
            }
        }
        #expect(matched == total, "\(matched)/\(total) entries explained")
    }

    @Test("invalid parameters and mismatched inputs are refused")
    func errors() throws {
        let a = LoRAUpdate(a: Tensor.randomNormal([2, 4], seed: 1), b: Tensor.randomNormal([3, 2], seed: 2), scaling: 1)
        let c = LoRAUpdate(a: Tensor.randomNormal([3, 4], seed: 3), b: Tensor.randomNormal([3, 3], seed: 4), scaling: 1)
        var rng = SplitMix64(seed: 0)
        #expect(throws: MergeError.self) { try LoRACombination(type: .ties, density: 1.5).combine([a, a], weights: [1, 1], rng: &rng) }
        #expect(throws: MergeError.self) { try LoRACombination(type: .ties, density: 0).combine([a, a], weights: [1, 1], rng: &rng) }
        #expect(throws: MergeError.self) { try LoRACombination(type: .ties).combine([a, a], weights: [1, 1], rng: &rng) }
        #expect(throws: MergeError.self) { try LoRACombination(type: .linear).combine([a, c], weights: [1, 1], rng: &rng) }
        #expect(throws: MergeError.self) { try LoRACombination(type: .linear).combine([a], weights: [1, 1], rng: &rng) }
        #expect(throws: MergeError.unknownMethod("median")) { try LoRACombinationType(parsing: "median") }
        // cat and svd accept different ranks
        let cat = try LoRACombination(type: .cat).combine([a, c], weights: [1, 1], rng: &rng)
        #expect(cat.rank == 5)
    }
}
