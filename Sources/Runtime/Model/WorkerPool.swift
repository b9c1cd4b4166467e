import CKernels
import Dispatch

/// Data-parallel loops of the forward pass on `steertool_parallel_for`'s persistent workers.
///
/// Dispatch's `concurrentPerform` parks its threads between calls, and on a virtual machine waking
/// a parked vCPU can cost a good part of one projection of a small model: on this project's
/// 2-vCPU host the random 100M model's 2-thread prefill ran at 762–773 tokens/s with the token-panel
/// gemm dispatched through `concurrentPerform` and at 806–921 on these workers (OpenBLAS: 852).
/// They spin for about a millisecond after each job, so back-to-back kernels find them awake.
///
/// Only where the forward pass runs its own matrix kernels (`TokenPanelGemm.preferred`): there
/// OpenBLAS stays out of the forward pass. Elsewhere OpenBLAS's threads, which also spin after
/// each call, would compete with these, so loops go to `DispatchQueue.concurrentPerform`.
public enum WorkerPool {
    /// Runs `body(i)` for every i in 0..<count on up to `threads` threads (the caller included);
    /// returns when all have finished. `body` must not depend on which thread runs which index;
    /// a call from inside `body`, or while another thread's job runs, runs inline.
    public static func run(count: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        guard threads > 1, count > 1 else {
            for i in 0..<count { body(i) }
            return
        }
        guard TokenPanelGemm.preferred else {
            DispatchQueue.concurrentPerform(iterations: count, execute: body)
            return
        }
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { context in
                steertool_parallel_for(count, threads, { context, index in
                    context!.assumingMemoryBound(to: (@Sendable (Int) -> Void).self).pointee(Int(index))
                }, context)
            }
        }
    }

    /// How many ranges a kernel of `work` multiply-adds over `units` splittable pieces (rows,
    /// tiles) should use on up to `threads` threads: 1 below 2¹⁸ (~256k) multiply-adds, where a
    /// hand-off to another thread costs more than it saves, else min(threads, units), at least 1.
    public static func chunks(work: Int, units: Int, threads: Int) -> Int {
        work < 1 << 18 ? 1 : max(1, min(threads, units))
    }

    /// Splits 0..<n into `chunks` contiguous ranges whose bounds are multiples of `alignment`
    /// (the last ends at n) and runs `body` on each non-empty one through `run`; one chunk runs
    /// `body(0..<n)` on the calling thread.
    public static func run(splitting n: Int, into chunks: Int, alignment: Int = 1,
                           _ body: @Sendable (Range<Int>) -> Void) {
        guard n > 0 else { return }
        guard chunks > 1 else { body(0..<n); return }
        let units = (n + alignment - 1) / alignment
        run(count: chunks, threads: chunks) { c in
            let begin = units * c / chunks * alignment, end = min(n, units * (c + 1) / chunks * alignment)
            if begin < end { body(begin..<end) }
        }
    }
}
