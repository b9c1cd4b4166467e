import Foundation
import Testing
import TestSupport
import Formats

/// End-to-end runs of the built `steertool` binary (it sits next to the test bundle).
@Suite struct CLITests {
    var binary: String {
        let runner = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        return runner.deletingLastPathComponent().appendingPathComponent("steertool").path
    }

    func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let o = Pipe(), e = Pipe()
        p.standardOutput = o
        p.standardError = e
        try p.run()
        let out = o.fileHandleForReading.readDataToEndOfFile(), err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func inspectJSONMatchesTheLibrary() throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "steertool binary not built at \(binary)")
        let r = try run(["inspect", "--json", Fixtures.path("tiny/gguf/base.q8_0.gguf")])
        #expect(r.status == 0)
        let j = try JSONParser.parse(Array(r.out.utf8))
        #expect(j["format"]?.stringValue == "gguf")
        #expect(j["tensors"]?.arrayValue?.count == 39)
        #expect(j["tensors"]?.arrayValue?.first?["dtype"]?.stringValue == "Q8_0")
    }

    @Test func hostileFileGivesOneLineAndNonZeroExit() throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "steertool binary not built at \(binary)")
        let dir = TestFiles.temporaryFolder()
        TestFiles.write(TestFiles.safetensors(header: "{}", length: .max), to: dir + "/bad.safetensors")
        let r = try run(["inspect", dir + "/bad.safetensors"])
        #expect(r.status != 0)
        #expect(r.err.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        #expect(r.err.contains("header length"))
    }

    @Test func convertRoundTripAndRefusal() throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "steertool binary not built at \(binary)")
        let dir = TestFiles.temporaryFolder()
        #expect(try run(["convert", Fixtures.path("tiny/base"), dir + "/m.gguf", "--type", "f32"]).status == 0)
        #expect(try run(["convert", Fixtures.path("tiny/base"), dir + "/m.gguf", "--type", "f32"]).status != 0, "refuses to overwrite")
        #expect(try run(["convert", Fixtures.path("tiny/base"), dir + "/m.gguf", "--type", "q5_9"]).status != 0)
        #expect(try run(["convert", dir + "/m.gguf", dir + "/hf"]).status == 0)
        let back = try Checkpoint(path: dir + "/hf"), ref = try Checkpoint(path: Fixtures.path("tiny/base"))
        for name in ref.tensorNames { #expect(try back.tensor(named: name) == ref.tensor(named: name), "\(name)") }
    }
}
