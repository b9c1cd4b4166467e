// The best kernel path this CPU has; see include/CKernels.h.
#include "CKernels.h"

steertool_kernel_level steertool_kernel_best_level(void) {
#if defined(__x86_64__) || defined(__i386__)
    // Computed once; threads racing here compute the same value, and the atomics keep that race defined.
    static int level = -1;
    int known = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (known < 0) {
        __builtin_cpu_init();
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        int avx512 = avx2 && __builtin_cpu_supports("avx512f");
        known = avx512 ? STEERTOOL_KERNEL_AVX512 : (avx2 ? STEERTOOL_KERNEL_AVX2 : STEERTOOL_KERNEL_SCALAR);
        __atomic_store_n(&level, known, __ATOMIC_RELAXED);
    }
    return (steertool_kernel_level)known;
#else
    return STEERTOOL_KERNEL_SCALAR;
#endif
}
