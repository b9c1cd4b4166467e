import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// `fixtures/formats-extra/` (this branch's `fixtures/generate/extra/formats-extra.py`): files written by
/// `torch.save`, with the same tensors saved contiguously by safetensors as expected values.
@Suite struct TorchPickleTests {
    let folder = Fixtures.packageRoot + "/fixtures/formats-extra"

    /// Exact: the reader copies elements and converts each once, like safetensors' reader.
    @Test func tensorsEqualTheirSafetensorsCopies() throws {
        let got = try TorchPickleReader.load(path: folder + "/tensors.bin")
        let want = try SafetensorsFile(path: folder + "/tensors.safetensors")
        #expect(Set(got.keys) == Set(want.tensorNames))
        for name in want.tensorNames {
            let w = try want.tensor(named: name)
            #expect(got[name]?.shape == w.shape, "\(name)")
            #expect(got[name]?.scalars.map(\.bitPattern) == w.scalars.map(\.bitPattern), "\(name)")
        }
    }

    @Test func peftBinAdapterEqualsSafetensorsAdapter() throws {
        let bin = try PEFTAdapter.load(directory: folder + "/lora")
        let st = try PEFTAdapter.load(directory: Fixtures.path("tiny/lora-patterns"))
        #expect(bin.modules == st.modules)
    }

    @Test func refusesToRunCode() {
        #expect(throws: PickleError.forbiddenGlobal(file: folder + "/evil.bin", offset: 13, module: "posix", name: "system")) {
            _ = try TorchPickleReader.load(path: folder + "/evil.bin")
        }
    }

    @Test func hostileContainers() throws {
        let dir = TestFiles.temporaryFolder()
        let good = try Data(contentsOf: URL(fileURLWithPath: folder + "/tensors.bin"))
        // Truncations and byte flips must give errors, never crashes.
        for n in stride(from: 0, to: good.count, by: 97) {
            TestFiles.write(Array(good.prefix(n)), to: dir + "/t.bin")
            #expect(throws: (any Error).self) { _ = try TorchPickleReader.load(path: dir + "/t.bin") }
        }
        var rng = SplitMix64(seed: 7)
        for _ in 0..<300 {
            var b = [UInt8](good)
            for _ in 0..<4 { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            TestFiles.write(b, to: dir + "/m.bin")
            _ = try? TorchPickleReader.load(path: dir + "/m.bin")
        }
    }
}
