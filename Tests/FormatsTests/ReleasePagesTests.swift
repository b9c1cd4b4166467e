import Formats
import Tensors
import TestSupport
import Testing

/// `releasePages(named:)` (streaming readers drop a tensor's mapped pages once done) loses
/// nothing: the mapping is read-only, so the tensor reads back identical, in every store kind.
@Suite struct ReleasePagesTests {
    @Test func tensorsReadBackUnchangedAfterRelease() throws {
        let stores: [any TensorStore] = [
            try Checkpoint(path: Fixtures.path("tiny/tied-llama3")),            // sharded safetensors
            try SafetensorsFile(path: Fixtures.path("tiny/base/model.safetensors")),
            try GGUFFile(path: Fixtures.path("tiny/gguf/base.q8_0.gguf")),
        ]
        for store in stores {
            for name in store.tensorNames {
                let before = try store.tensor(named: name)
                store.releasePages(named: name)
                #expect(try store.tensor(named: name) == before, "\(name)")
            }
            store.releasePages(named: "no.such.tensor")   // ignored
        }
    }
}
