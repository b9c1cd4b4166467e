/// A dense row-major Float32 tensor: `scalars[i₀·stride₀ + i₁·stride₁ + …]` with the innermost
/// dimension contiguous. Value semantics with copy-on-write (the storage is a Swift array), so a
/// `Tensor` can be passed around freely and is copied only when a shared one is mutated.
///
/// Matrices follow the token-as-row convention used across steertool: activations are
/// `[tokens, features]`, weights are stored as PyTorch does, `[out, in]`, and a linear layer
/// computes `x · Wᵀ`.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    /// Dimensions, outermost first.
    public private(set) var shape: Shape
    /// Elements in row-major order; `scalars.count == shape.count` always holds.
    public private(set) var scalars: [Float]

    /// Wraps existing row-major values. Traps if `scalars.count != shape.count` (programmer error).
    public init(shape: Shape, scalars: [Float]) {
        precondition(
            scalars.count == shape.count,
            "Tensor: \(scalars.count) scalars do not fill shape \(shape)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of the given shape filled with `value`.
    public init(shape: Shape, repeating value: Float = 0) {
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.count)
    }

    /// A zero tensor.
    public static func zeros(_ dims: Int...) -> Tensor { Tensor(shape: Shape(dims)) }

    /// A matrix from rows (all rows must have the same length).
    public init(rows: [[Float]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "Tensor(rows:): ragged rows")
        self.init(shape: [rows.count, cols], scalars: rows.flatMap { $0 })
    }

    /// A 1-D tensor.
    public init(vector: [Float]) { self.init(shape: [vector.count], scalars: vector) }

    /// The `n × n` identity matrix.
    public static func identity(_ n: Int) -> Tensor {
        var t = Tensor(shape: [n, n])
        for i in 0..<n { t.scalars[i * n + i] = 1 }
        return t
    }

    /// Creates a tensor by filling a buffer of `shape.count` elements in place.
    public init(shape: Shape, initializingWith body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.shape = shape
        self.scalars = try [Float](unsafeUninitializedCapacity: shape.count) { buf, n in
            buf.initialize(repeating: 0)
            try body(buf)
            n = shape.count
        }
    }

    // MARK: - Shape helpers

    /// Number of dimensions.
    public var rank: Int { shape.rank }
    /// Number of elements.
    public var count: Int { shape.count }
    /// Rows of a matrix (`shape[0]`); traps unless rank is 2.
    public var rows: Int { precondition(rank == 2, "rows of a rank-\(rank) tensor"); return shape.dims[0] }
    /// Columns of a matrix (`shape[1]`); traps unless rank is 2.
    public var columns: Int { precondition(rank == 2, "columns of a rank-\(rank) tensor"); return shape.dims[1] }

    /// The same scalars under another shape with the same element count.
    public func reshaped(_ newShape: Shape) -> Tensor {
        precondition(newShape.count == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, scalars: scalars)
    }

    /// Element `[i, j]` of a matrix.
    public subscript(_ i: Int, _ j: Int) -> Float {
        get { scalars[i * shape.dims[1] + j] }
        set { scalars[i * shape.dims[1] + j] = newValue }
    }

    /// Element at a flat row-major index.
    public subscript(flat i: Int) -> Float {
        get { scalars[i] }
        set { scalars[i] = newValue }
    }

    /// Row `i` of a matrix, copied.
    public func row(_ i: Int) -> [Float] {
        let c = columns
        return Array(scalars[(i * c)..<((i + 1) * c)])
    }

    /// Rows `range` of a matrix as a new `[range.count, columns]` matrix.
    public func rows(_ range: Range<Int>) -> Tensor {
        let c = columns
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) of \(shape)")
        return Tensor(shape: [range.count, c], scalars: Array(scalars[(range.lowerBound * c)..<(range.upperBound * c)]))
    }

    /// Selected rows (in the given order) as a new matrix.
    public func gatherRows(_ indices: [Int]) -> Tensor {
        let c = columns
        return Tensor(shape: [indices.count, c]) { out in
            scalars.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < rows, "row \(i) out of range for \(shape)")
                    (out.baseAddress! + k * c).update(from: src.baseAddress! + i * c, count: c)
                }
            }
        }
    }

    /// Stacks matrices with equal column counts vertically.
    public static func concatenatingRows(_ parts: [Tensor]) -> Tensor {
        guard let first = parts.first else { return Tensor(shape: [0, 0]) }
        let c = first.columns
        precondition(parts.allSatisfy { $0.columns == c }, "concatenatingRows: column counts differ")
        var all: [Float] = []
        all.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for p in parts { all.append(contentsOf: p.scalars) }
        return Tensor(shape: [parts.reduce(0) { $0 + $1.rows }, c], scalars: all)
    }

    /// The transpose of a matrix (a copy, cache-blocked).
    public func transposed() -> Tensor {
        let r = rows, c = columns
        return Tensor(shape: [c, r]) { out in
            scalars.withUnsafeBufferPointer { src in
                let block = 32
                var i0 = 0
                while i0 < r {
                    let i1 = min(i0 + block, r)
                    var j0 = 0
                    while j0 < c {
                        let j1 = min(j0 + block, c)
                        for i in i0..<i1 {
                            for j in j0..<j1 { out[j * r + i] = src[i * c + j] }
                        }
                        j0 = j1
                    }
                    i0 = i1
                }
            }
        }
    }

    // MARK: - Buffer access

    /// Calls `body` with the row-major elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Calls `body` with mutable row-major elements (copies first if the storage is shared).
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }

    /// Calls `body` with the address of the first element of each of `inputs` (read-only) and of
    /// each of `outputs` (written in place, copied first where their storage is shared), in order;
    /// the addresses are valid during the call only. An empty tensor's address points at no
    /// element and must not be read. For kernels that take several raw buffers at once.
    public static func withPointers<R>(_ inputs: [Tensor], writing outputs: inout [Tensor],
                                       _ body: ([UnsafePointer<Float>], [UnsafeMutablePointer<Float>]) -> R) -> R {
        var read: [UnsafePointer<Float>] = [], written: [UnsafeMutablePointer<Float>] = []
        let none = UnsafeMutablePointer<Float>(bitPattern: MemoryLayout<Float>.alignment)!
        return outputs.withUnsafeMutableBufferPointer { out in
            // Each output tensor is a separate element: binding one while another is bound is no
            // overlapping access (the elements are reached through the buffer, not the array).
            func bind(_ i: Int, _ j: Int) -> R {
                if i < inputs.count {
                    return inputs[i].withUnsafeBufferPointer { read.append($0.baseAddress ?? UnsafePointer(none)); return bind(i + 1, j) }
                }
                guard j < out.count else { return body(read, written) }
                return out[j].withUnsafeMutableBufferPointer { written.append($0.baseAddress ?? none); return bind(i, j + 1) }
            }
            return bind(0, 0)
        }
    }

    /// `withPointers(_:writing:_:)` with inputs only.
    public static func withPointers<R>(_ inputs: [Tensor], _ body: ([UnsafePointer<Float>]) -> R) -> R {
        var outputs: [Tensor] = []
        return withPointers(inputs, writing: &outputs) { p, _ in body(p) }
    }

    // MARK: - Elementwise

    /// Applies `f` to every element.
    public func map(_ f: (Float) throws -> Float) rethrows -> Tensor {
        Tensor(shape: shape, scalars: try scalars.map(f))
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "+: shapes \(a.shape) and \(b.shape) differ")
        return Tensor(shape: a.shape, scalars: zip(a.scalars, b.scalars).map(+))
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "-: shapes \(a.shape) and \(b.shape) differ")
        return Tensor(shape: a.shape, scalars: zip(a.scalars, b.scalars).map(-))
    }

    public static func * (s: Float, a: Tensor) -> Tensor { a.map { $0 * s } }

    public static func += (a: inout Tensor, b: Tensor) {
        precondition(a.shape == b.shape, "+=: shapes \(a.shape) and \(b.shape) differ")
        a.scalars.withUnsafeMutableBufferPointer { x in
            b.scalars.withUnsafeBufferPointer { y in
                for i in 0..<x.count { x[i] += y[i] }
            }
        }
    }

    /// Adds a `[columns]` vector to every row of a matrix.
    public func addingToEachRow(_ v: [Float]) -> Tensor {
        let c = columns
        precondition(v.count == c, "addingToEachRow: vector of \(v.count) for \(c) columns")
        var out = self
        out.scalars.withUnsafeMutableBufferPointer { x in
            for i in 0..<rows {
                for j in 0..<c { x[i * c + j] += v[j] }
            }
        }
        return out
    }

    // MARK: - Reductions

    /// Frobenius norm √(Σ xᵢ²), accumulated in Double.
    public var frobeniusNorm: Float {
        var s = 0.0
        for x in scalars { s += Double(x) * Double(x) }
        return Float(s.squareRoot())
    }

    /// max |xᵢ| (0 for an empty tensor).
    public var maxAbsolute: Float { scalars.reduce(0) { max($0, abs($1)) } }

    /// Column means of a matrix, `[columns]`, accumulated in Double.
    public func columnMeans() -> [Float] {
        let r = rows, c = columns
        var acc = [Double](repeating: 0, count: c)
        for i in 0..<r {
            for j in 0..<c { acc[j] += Double(scalars[i * c + j]) }
        }
        return acc.map { Float($0 / Double(max(r, 1))) }
    }

    public var description: String {
        let head = scalars.prefix(6).map { String($0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 6 ? ", …" : "")]"
    }
}
