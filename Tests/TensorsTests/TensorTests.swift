import Foundation
import Testing
import Tensors

@Suite("Shape, Tensor, DType")
struct TensorTests {
    @Test("element counts detect overflow and negative dimensions")
    func shapeOverflow() {
        #expect(Shape.elementCount([3, 4, 5]) == 60)
        #expect(Shape.elementCount([]) == 1)
        #expect(Shape.elementCount([Int.max / 2, 3]) == nil)
        #expect(Shape.elementCount([4, -1]) == nil)
        #expect(Shape.checked([1 << 40, 1 << 30]) == nil)
    }

    @Test("withPointers binds inputs and outputs in order; a shared output is copied before it is written")
    func withPointersBindsInOrder() {
        let a = Tensor(vector: [1, 2, 3]), b = Tensor(vector: [10, 20, 30]), empty = Tensor(shape: [0])
        let shared = Tensor(vector: [0, 0, 0])
        var out = [shared, Tensor(shape: [2])]
        let n = Tensor.withPointers([a, empty, b], writing: &out) { p, o in
            for i in 0..<3 { o[0][i] = p[0][i] + p[2][i] }
            o[1][0] = -1; o[1][1] = -2
            return p.count + o.count
        }
        #expect(n == 5)
        #expect(out[0].scalars == [11, 22, 33] && out[1].scalars == [-1, -2])
        #expect(shared.scalars == [0, 0, 0])
        #expect(Tensor.withPointers([b]) { $0[0][1] } == 20)
    }

    @Test("copy-on-write: mutating a copy leaves the original alone")
    func copyOnWrite() {
        let a = Tensor(rows: [[1, 2], [3, 4]])
        var b = a
        b[0, 1] = 9
        #expect(a[0, 1] == 2 && b[0, 1] == 9)
    }

    @Test("transpose of a non-square matrix, row slicing and gathering")
    func transposeAndRows() {
        let a = Tensor(shape: [37, 70], scalars: (0..<(37 * 70)).map(Float.init))
        let t = a.transposed()
        #expect(t.shape == [70, 37])
        #expect(t[69, 36] == a[36, 69] && t[5, 3] == a[3, 5])
        #expect(a.rows(2..<4).row(1) == a.row(3))
        #expect(a.gatherRows([5, 1]).row(0) == a.row(5))
        #expect(Tensor.concatenatingRows([a.rows(0..<3), a.rows(3..<37)]) == a)
    }

    @Test("dtype sizes follow the safetensors spelling")
    func dtypes() {
        #expect(DType(rawValue: "BF16")?.byteSize == 2)
        #expect(DType(rawValue: "F8_E4M3")?.byteSize == 1)
        #expect(DType(rawValue: "F128") == nil)
    }

    @Test("seeded random tensors repeat exactly and have the requested scale")
    func seededRandom() {
        let a = Tensor.randomNormal([100, 100], std: 0.5, seed: 7)
        #expect(a == Tensor.randomNormal([100, 100], std: 0.5, seed: 7))
        let std = a.frobeniusNorm / 100
        #expect(abs(std - 0.5) < 0.02)
    }
}

@Suite("MappedFile")
struct MappedFileTests {
    @Test("maps a file's bytes read-only")
    func mapsBytes() throws {
        let path = NSTemporaryDirectory() + "steertool-mapped-\(UUID().uuidString)"
        let data = Data((0..<10_000).map { UInt8($0 % 251) })
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try MappedFile(path: path)
        #expect(f.count == 10_000)
        #expect(f.bytes[9_999] == UInt8(9_999 % 251))
        #expect(Data(f.bytes) == data)
    }

    @Test("an empty file maps to an empty buffer")
    func emptyFile() throws {
        let path = NSTemporaryDirectory() + "steertool-empty-\(UUID().uuidString)"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try MappedFile(path: path).bytes.count == 0)
    }

    @Test("a missing file or a directory is an error that names the path")
    func missing() {
        #expect { try MappedFile(path: "/nonexistent/steertool") } throws: { e in
            "\(e)".contains("/nonexistent/steertool") && "\(e)".contains("open")
        }
        #expect(throws: TensorsError.self) { try MappedFile(path: NSTemporaryDirectory()) }
    }
}
