/// The dimensions of a row-major tensor, outermost first (`[rows, cols]` for a matrix).
/// A scalar has `dims == []` and one element.
public struct Shape: Hashable, Sendable, Codable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Dimensions, outermost first. Every entry is ≥ 0.
    public let dims: [Int]
    /// Number of elements (product of `dims`; 1 for a scalar).
    public let count: Int

    /// Creates a shape; traps on negative dimensions or an element count that overflows `Int`
    /// (programmer error). Use `Shape.checked(_:)` for dimensions that come from a file.
    public init(_ dims: [Int]) {
        guard let count = Shape.elementCount(dims) else {
            preconditionFailure("invalid shape \(dims): negative dimension or element-count overflow")
        }
        self.dims = dims
        self.count = count
    }

    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// Creates a shape from untrusted dimensions, or returns nil when a dimension is negative or
    /// the element count overflows.
    public static func checked(_ dims: [Int]) -> Shape? {
        guard Shape.elementCount(dims) != nil else { return nil }
        return Shape(dims)
    }

    /// Product of `dims` with overflow detection; nil for a negative dimension or overflow.
    public static func elementCount(_ dims: [Int]) -> Int? {
        var n = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = p
        }
        return n
    }

    /// Number of dimensions.
    public var rank: Int { dims.count }

    /// Dimension `i`, where negative `i` counts from the end (`-1` is the innermost).
    public subscript(_ i: Int) -> Int { dims[i < 0 ? dims.count + i : i] }

    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

    public init(from decoder: any Decoder) throws {
        let dims = try decoder.singleValueContainer().decode([Int].self)
        guard let count = Shape.elementCount(dims) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "invalid shape \(dims)"))
        }
        self.dims = dims
        self.count = count
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(dims)
    }
}
