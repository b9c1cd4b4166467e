import Testing
import Formats

/// Hand-built malformed safetensors buffers: each must give the specific error, never a crash,
/// and never an allocation sized by a claimed length.
@Suite struct SafetensorsHostileTests {
    let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    @Test func validBufferParses() throws {
        #expect(safetensorsError(TestFiles.safetensors(header: ok, data: TestFiles.f32Bytes([1, 2]))) == nil)
    }

    @Test func truncatedLengthPrefix() {
        #expect(safetensorsError([1, 2, 3]) == .fileTooSmall(file: "buf", size: 3))
    }

    @Test func headerLengthLimits() {
        #expect(safetensorsError(TestFiles.safetensors(header: ok, length: .max)) == .headerTooLarge(file: "buf", length: .max))
        #expect(safetensorsError(TestFiles.safetensors(header: ok, length: 100_000_001)) == .headerTooLarge(file: "buf", length: 100_000_001))
        let b = TestFiles.safetensors(header: ok, length: 1000)
        #expect(safetensorsError(b) == .headerPastEnd(file: "buf", length: 1000, fileSize: b.count))
    }

    @Test func truncatedEverywhere() {
        // Every strict prefix of a valid file must fail with an error, never crash.
        let full = TestFiles.safetensors(header: ok, data: TestFiles.f32Bytes([1, 2]))
        for n in 0..<full.count {
            #expect(safetensorsError(Array(full[..<n])) != nil, "prefix \(n)")
        }
    }

    @Test func badJSON() {
        #expect(safetensorsError(TestFiles.safetensors(header: "[1]")) == .invalidHeaderStart(file: "buf"))
        guard case .invalidHeaderJSON(_, let offset, _)? = safetensorsError(TestFiles.safetensors(header: #"{"a":}"#)) else {
            Issue.record("expected invalidHeaderJSON"); return
        }
        #expect(offset == 8 + 5)
        let dup = #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#
        guard case .invalidHeaderJSON(_, _, let reason)? = safetensorsError(TestFiles.safetensors(header: dup)) else {
            Issue.record("expected duplicate-key error"); return
        }
        #expect(reason.contains("duplicate"))
        let deep = "{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        guard case .invalidHeaderJSON(_, _, let r2)? = safetensorsError(TestFiles.safetensors(header: deep)) else {
            Issue.record("expected nesting error"); return
        }
        #expect(r2.contains("nesting"))
    }

    @Test func unknownDType() {
        let h = #"{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: h, data: [0])) == .unknownDType(file: "buf", tensor: "a", dtype: "F7"))
    }

    @Test func shapeOverflowAndNegative() {
        let big = #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: big, data: [0, 0, 0, 0])) == .invalidShape(file: "buf", tensor: "a", shape: "[4294967296, 4294967296]"))
        // Element count fits Int but × 8 bytes overflows.
        let bytes = #"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: bytes, data: [UInt8](repeating: 0, count: 8))) == .invalidShape(file: "buf", tensor: "a", shape: "[2305843009213693952]"))
        let neg = #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: neg, data: [0, 0, 0, 0])) == .invalidShape(file: "buf", tensor: "a", shape: "[-1]"))
    }

    @Test func lengthMismatch() {
        let h = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: h, data: [UInt8](repeating: 0, count: 8))) == .byteLengthMismatch(file: "buf", tensor: "a", expected: 12, found: 8))
    }

    @Test func overlappingAndGappedOffsets() {
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: overlap, data: [UInt8](repeating: 0, count: 8))) == .nonContiguousOffsets(file: "buf", tensor: "b", expectedStart: 8, found: 4))
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: gap, data: [UInt8](repeating: 0, count: 12))) == .nonContiguousOffsets(file: "buf", tensor: "b", expectedStart: 4, found: 8))
    }

    @Test func offsetsPastTheEndOrShortOfIt() {
        let h = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: h, data: [UInt8](repeating: 0, count: 8))) == .truncatedTensor(file: "buf", tensor: "a", end: 16, dataLength: 8))
        #expect(safetensorsError(TestFiles.safetensors(header: ok, data: [UInt8](repeating: 0, count: 12))) == .dataNotCovered(file: "buf", tensorsEnd: 8, dataLength: 12))
        let huge = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: huge, data: [0])) == .nonContiguousOffsets(file: "buf", tensor: "a", expectedStart: 0, found: 9223372036854775806))
        let reversed = #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}"#
        guard case .invalidTensorEntry? = safetensorsError(TestFiles.safetensors(header: reversed)) else {
            Issue.record("expected invalidTensorEntry"); return
        }
    }

    @Test func metadataMustBeStrings() {
        let h = #"{"__metadata__":{"k":1}}"#
        #expect(safetensorsError(TestFiles.safetensors(header: h)) == .invalidMetadata(file: "buf", reason: "value of \"k\" is not a string"))
    }

    @Test func entryShape() {
        let missing = #"{"a":{"dtype":"F32","shape":[1]}}"#
        guard case .invalidTensorEntry(_, "a", _)? = safetensorsError(TestFiles.safetensors(header: missing, data: [0, 0, 0, 0])) else {
            Issue.record("expected invalidTensorEntry"); return
        }
        let extra = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#
        guard case .invalidTensorEntry(_, "a", _)? = safetensorsError(TestFiles.safetensors(header: extra, data: [0, 0, 0, 0])) else {
            Issue.record("expected invalidTensorEntry"); return
        }
    }
}
