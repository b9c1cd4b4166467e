import Foundation
import Testing
import TestSupport

/// `steertool distill` on inputs it cannot use refuses before writing anything, with one error
/// line naming the file and the tensor: a truncated shard, a checkpoint whose f32 widening would
/// not fit in memory, and a GGUF tensor type without a kernel.
@Suite("CLI distill refusals")
struct DistillRefusalCLITests {
    /// A scratch folder and a calibration file of two short sequences.
    static func scratch(_ name: String) throws -> (dir: String, calib: String, output: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-refusal-\(UUID().uuidString)-\(name)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let calib = dir + "/calib.json"
        try Data("[[1, 5, 9, 13, 17, 21, 25, 29], [2, 4, 6, 8, 10, 12, 14, 16]]".utf8).write(to: URL(fileURLWithPath: calib))
        return (dir, calib, dir + "/steer.safetensors")
    }

    /// Runs distill of `base` against the fixture fine-tune; expects a one-line refusal holding
    /// every string of `mentions` and no output file.
    static func expectRefusal(base: String, extra: [String] = [], mentions: [String], _ s: (dir: String, calib: String, output: String)) throws {
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let r = try SteerToolBinary.run(["distill", "--base", base, "--finetuned", Fixtures.path("tiny/finetuned"),
                                         "--calib", s.calib, "--output", s.output] + extra)
        #expect(r.status != 0)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1, "\(r.err)")
        for m in mentions { #expect(r.err.contains(m), "no \(m) in: \(r.err)") }
        #expect(!FileManager.default.fileExists(atPath: s.output))
        let left = try FileManager.default.contentsOfDirectory(atPath: s.dir).filter { $0.hasPrefix("steer") }
        #expect(left.isEmpty, "left behind: \(left)")
    }

    /// The fixture base with its weights file cut short in the last tensor's data.
    @Test func truncatedShard() throws {
        let s = try Self.scratch("truncated")
        let base = s.dir + "/base"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        for f in ["config.json", "tokenizer.json"] {
            try FileManager.default.copyItem(atPath: Fixtures.path("tiny/base/" + f), toPath: base + "/" + f)
        }
        let weights = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny/base/model.safetensors")))
        try weights.prefix(weights.count - 1000).write(to: URL(fileURLWithPath: base + "/model.safetensors"))
        try Self.expectRefusal(base: base, mentions: [base + "/model.safetensors", "model.layers.3.self_attn.v_proj.weight", "truncated"], s)
    }

    /// A checkpoint declaring an embedding of 2^37 bf16 values (a sparse file of 256 GiB, no data
    /// written): under `--weights f32` it would own 512 GiB, more than any machine here has, so
    /// the load is refused before allocating, naming the checkpoint, the storage and the tensor.
    @Test func largerThanMemoryUnderF32() throws {
        let s = try Self.scratch("huge")
        let base = s.dir + "/base"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("tiny/base/config.json"), toPath: base + "/config.json")
        let rows = 1 << 20, columns = 1 << 17, bytes = rows * columns * 2
        var header = Data(#"{"model.embed_tokens.weight":{"dtype":"BF16","shape":[\#(rows),\#(columns)],"data_offsets":[0,\#(bytes)]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(header)
        let path = base + "/model.safetensors"
        try file.write(to: URL(fileURLWithPath: path))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(file.count + bytes))   // sparse: no blocks allocated
        try handle.close()
        try Self.expectRefusal(base: base, extra: ["--weights", "f32"], mentions: [base, "f32", "model.embed_tokens.weight"], s)
    }

    /// A GGUF base holding a Q3_K matrix, which has no in-place kernel.
    @Test func tensorTypeWithoutKernel() throws {
        let s = try Self.scratch("q3k")
        let base = Fixtures.path("quant/kquant.q3_k.gguf")
        try Self.expectRefusal(base: base, extra: ["--weights", "native"], mentions: [base, "blk.0.ffn_down.weight", "Q3_K"], s)
    }
}
