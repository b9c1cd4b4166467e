import Foundation
import Testing
import Formats

@Suite struct AtomicFileWriterTests {
    @Test func writesAndRenames() throws {
        let dir = TestFiles.temporaryFolder()
        let path = dir + "/out.bin"
        let w = try AtomicFileWriter(path: path)
        try w.write([1, 2, 3])
        #expect(!FileManager.default.fileExists(atPath: path))
        try w.commit()
        #expect(FileManager.default.contents(atPath: path) == Data([1, 2, 3]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
    }

    @Test func refusesToReplaceWithoutForce() throws {
        let dir = TestFiles.temporaryFolder()
        let path = dir + "/out.bin"
        TestFiles.write([9], to: path)
        #expect(throws: FormatsError.outputExists(path: path)) { try AtomicFileWriter(path: path) }
        let w = try AtomicFileWriter(path: path, force: true)
        try w.write([7, 7])
        try w.commit()
        #expect(FileManager.default.contents(atPath: path) == Data([7, 7]))
    }

    @Test func refusesAFileThatAppearedBeforeCommit() throws {
        let dir = TestFiles.temporaryFolder()
        let path = dir + "/out.bin"
        let w = try AtomicFileWriter(path: path)
        try w.write([1])
        TestFiles.write([5], to: path)
        #expect(throws: FormatsError.outputExists(path: path)) { try w.commit() }
        #expect(FileManager.default.contents(atPath: path) == Data([5]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
    }

    @Test func abandonedWriterLeavesNothing() throws {
        let dir = TestFiles.temporaryFolder()
        do {
            let w = try AtomicFileWriter(path: dir + "/x")
            try w.write([UInt8](repeating: 1, count: 3 << 20))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}
