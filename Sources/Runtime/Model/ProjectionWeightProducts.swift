import Tensors

/// The products of a weight matrix W `[out, in]` that analysis and training read, for every
/// storage format, in place: f32 straight through BLAS, the others (bf16/f16, GGML blocks) a tile of
/// rows widened to f32 at a time (`tileRows` rows, about 4 MB), so no f32 copy of the whole matrix is ever
/// made. `x · Wᵀ` is `Kernels.linear`; these are the other side and the widened views.
extension ProjectionWeight {
    /// Rows of W widened per tile by the tiled products: about 2^20 floats (4 MB), at least 16.
    static func tileRows(columns: Int, rows: Int) -> Int {
        max(1, min(rows, max(16, (1 << 20) / max(columns, 1))))
    }

    /// Calls `body(rows, tile)` for consecutive ranges of W's rows (`tileRows` at a time), each
    /// widened to f32 into one scratch buffer (`rows.count × columns`, row-major, valid during the
    /// call only): the one tile loop of the products that read a non-f32 matrix without an f32
    /// copy of it.
    func forEachWidenedTile(_ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        guard rows > 0, columns > 0 else { return }
        let tile = Self.tileRows(columns: columns, rows: rows)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: tile * columns)
        defer { buffer.deallocate() }
        var r0 = 0
        while r0 < rows {
            let r1 = min(rows, r0 + tile)
            widenRows(r0..<r1, into: buffer, ldo: columns)
            body(r0..<r1, buffer)
            r0 = r1
        }
    }

    /// Writes rows `range` of W as f32 into `out`, row r at out + (r − range.lowerBound)·ldo
    /// (exact widening for bf16/f16, gguf-py's dequantization for GGML blocks, a copy for f32).
    /// - Precondition: `range` within 0..<rows and ldo ≥ columns (programmer errors).
    public func widenRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>, ldo: Int) {
        guard !range.isEmpty, columns > 0 else { return }
        precondition(range.lowerBound >= 0 && range.upperBound <= rows && ldo >= columns,
                     "widenRows: rows \(range) of \(rows), ldo \(ldo) < \(columns)")
        switch self {
        case .f32(let t):
            t.withUnsafeBufferPointer { w in
                for r in range {
                    (out + (r - range.lowerBound) * ldo).update(from: w.baseAddress! + r * columns, count: columns)
                }
            }
        case .half(let m):
            m.widenRows(range, into: out, ldo: ldo)
        case .quantized(let m):
            m.widenRows(range, into: out, ldo: ldo)
        }
    }

    /// Copies row `row` as f32 into `out` (`columns` floats): an embedding lookup.
    func copyRow(_ row: Int, into out: UnsafeMutablePointer<Float>) {
        widenRows(row..<row + 1, into: out, ldo: columns)
    }

    /// gx = g · W (or gx += g · W with `accumulate`) for `tokens` rows: g `[tokens, out]` with rows
    /// `ldg` apart, gx `[tokens, in]` with rows `ldo` apart. The input gradient of y = x · Wᵀ, and
    /// the vector-Jacobian product of a projection. Sums in f32 through sgemm over the (widened)
    /// values; for bf16/f16 and GGML blocks the sum runs tile by tile over W's rows.
    public func multiplyTransposed(_ g: UnsafePointer<Float>, tokens: Int, ldg: Int,
                                   into gx: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool = false) {
        let nOut = rows, nIn = columns
        guard tokens > 0, nIn > 0 else { return }
        guard nOut > 0 else {
            if !accumulate { for t in 0..<tokens { (gx + t * ldo).update(repeating: 0, count: nIn) } }
            return
        }
        if case .f32(let t) = self {
            t.withUnsafeBufferPointer { w in
                BLAS.sgemm(m: tokens, n: nIn, k: nOut, a: g, lda: ldg, b: w.baseAddress!, ldb: nIn,
                           beta: accumulate ? 1 : 0, c: gx, ldc: ldo)
            }
            return
        }
        forEachWidenedTile { r, tile in
            BLAS.sgemm(m: tokens, n: nIn, k: r.count, a: g + r.lowerBound, lda: ldg, b: tile, ldb: nIn,
                       beta: accumulate || r.lowerBound > 0 ? 1 : 0, c: gx, ldc: ldo)
        }
    }

    /// ‖other − self‖_F / ‖self‖_F over the widened values (sums in Double), both matrices read a
    /// tile of rows at a time; nil when the shapes differ or the two are equal in storage
    /// (`==`: the same format and bytes). Infinity when self is zero and other is not.
    public func relativeFrobeniusChange(to other: ProjectionWeight) -> Float? {
        guard dims == other.dims, self != other else { return nil }
        let b = UnsafeMutablePointer<Float>.allocate(capacity: Self.tileRows(columns: columns, rows: rows) * columns)
        defer { b.deallocate() }
        var norm = 0.0, difference = 0.0
        forEachWidenedTile { r, a in
            other.widenRows(r, into: b, ldo: columns)
            for i in 0..<(r.count * columns) {
                let x = Double(a[i]), y = Double(b[i])
                norm += x * x; difference += (y - x) * (y - x)
            }
        }
        return norm == 0 ? .infinity : Float(difference.squareRoot() / norm.squareRoot())
    }
}

extension ProjectionWeight {
    /// y = x · Wᵀ for `tokens` rows: x `[tokens, in]` (rows `in` apart), y `[tokens, out]` (rows
    /// `ldo` apart), by the forward pass's own kernels (`Kernels.linear`: one row through the
    /// matrix-vector kernel of the format, several through the token-panel gemm or sgemm over
    /// widened tiles), on `BLAS.threadCount` threads. `useBLAS` takes sgemm/sgemv instead of this
    /// CPU's own kernels (the path of a pass that makes BLAS calls between projections).
    public func multiply(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>, ldo: Int,
                         useBLAS: Bool = false) {
        guard tokens > 0, rows > 0 else { return }
        precondition(ldo >= rows, "multiply: ldo \(ldo) < \(rows) output features")
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 1) { scratch in
            Kernels.linear(x, rows: tokens, weight: self, bias: nil, loras: [], out: y, ldo: ldo, scratch: scratch.baseAddress!,
                           useBLAS: useBLAS)
        }
    }
}
