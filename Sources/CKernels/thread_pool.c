// A small pool of persistent worker threads that spin briefly between jobs; see include/CKernels.h.
#include "CKernels.h"

#include <pthread.h>

/// Workers the pool may hold (the caller is the first participant, so jobs run on ≤ 64 threads).
#define MAX_WORKERS 63
/// Pause instructions a worker spins through waiting for the next job before it sleeps (0.8 ms
/// measured on AMD Zen 3; the instruction's length varies by CPU): longer than the gaps between
/// the kernels of one forward pass.
#define SPIN_PAUSES (1u << 15)

static inline void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef struct {
    steertool_task_fn fn;
    void *context;
    size_t count;
    size_t participants;      // workers 0..participants-2 take part, with the caller
} job_t;

static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER;   // one job at a time
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

static job_t current;
static size_t workers = 0;                 // started so far (under submit_lock)
static unsigned long generation = 0;       // bumped for each job (atomic)
static size_t next_task = 0;               // next index of the current job (atomic)
static size_t acknowledged = 0;            // workers done with the current generation (atomic)
static size_t sleepers = 0;                // workers waiting on `wake` (atomic)

static void run_tasks(void) {
    for (;;) {
        size_t i = __atomic_fetch_add(&next_task, 1, __ATOMIC_RELAXED);
        if (i >= current.count) return;
        current.fn(current.context, i);
    }
}

static unsigned long initial_seen[MAX_WORKERS];   // the generation current when worker i started

static void *worker_main(void *arg) {
    size_t id = (size_t)arg;
    unsigned long seen = initial_seen[id];   // written before pthread_create, which orders it
    for (;;) {
        unsigned long g;
        unsigned spins = 0;
        while ((g = __atomic_load_n(&generation, __ATOMIC_ACQUIRE)) == seen) {
            if (++spins < SPIN_PAUSES) { cpu_pause(); continue; }
            pthread_mutex_lock(&sleep_lock);
            __atomic_fetch_add(&sleepers, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&generation, __ATOMIC_SEQ_CST) == seen) pthread_cond_wait(&wake, &sleep_lock);
            __atomic_fetch_sub(&sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&sleep_lock);
            spins = 0;
        }
        seen = g;
        if (id + 1 < current.participants) run_tasks();
        __atomic_fetch_add(&acknowledged, 1, __ATOMIC_RELEASE);
    }
    return 0;
}

void steertool_parallel_for(size_t count, size_t threads, steertool_task_fn fn, void *context) {
    if (count == 0) return;
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    if (threads > count) threads = count;
    // One job at a time: a second caller (another thread, or a task of this job) runs inline.
    if (threads <= 1 || pthread_mutex_trylock(&submit_lock) != 0) {
        for (size_t i = 0; i < count; i++) fn(context, i);
        return;
    }
    while (workers < threads - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        initial_seen[workers] = __atomic_load_n(&generation, __ATOMIC_RELAXED);
        int failed = pthread_create(&t, &attr, worker_main, (void *)workers);
        pthread_attr_destroy(&attr);
        if (failed) break;
        workers++;
    }
    if (workers == 0) {
        pthread_mutex_unlock(&submit_lock);
        for (size_t i = 0; i < count; i++) fn(context, i);
        return;
    }
    current = (job_t){fn, context, count, threads <= workers + 1 ? threads : workers + 1};
    __atomic_store_n(&next_task, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&acknowledged, 0, __ATOMIC_RELAXED);
    __atomic_fetch_add(&generation, 1, __ATOMIC_SEQ_CST);       // publishes the job (release)
    if (__atomic_load_n(&sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    run_tasks();
    // Every worker acknowledges every generation, so none still reads `current` or `next_task`
    // when the next job resets them.
    size_t n = workers;
    while (__atomic_load_n(&acknowledged, __ATOMIC_ACQUIRE) < n) cpu_pause();
    pthread_mutex_unlock(&submit_lock);
}
