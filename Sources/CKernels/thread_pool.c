// A small pool of persistent worker threads that spin briefly between jobs; see include/CKernels.h.
//
// Protocol (one job at a time, under submit_lock): the caller writes the job, resets the task
// counters, opens the job (open_generation = g) and bumps `generation`; workers that notice take
// tasks by fetch-add on next_task until none is left. The caller takes tasks too, waits until every
// task has finished, closes the job (open_generation = 0) and waits until no worker is `inside`.
// A worker counts itself inside before it checks that its generation is still open, so a worker
// that comes late either sees the job closed and touches nothing, or is waited for (the
// sequentially consistent store/load pairs on `inside` and `open_generation` order the two sides).
// The caller never waits for a worker that is asleep, still spinning, or descheduled before it
// joined: on a busy machine the caller simply runs the tasks itself.
#include "CKernels.h"

#include <pthread.h>
#include <sched.h>

/// Workers the pool may hold (the caller is the first participant, so jobs run on ≤ 64 threads).
#define MAX_WORKERS 63
/// Pause instructions a worker spins through waiting for the next job before it sleeps (0.8 ms
/// measured on AMD Zen 3; the instruction's length varies by CPU): longer than the gaps between
/// the kernels of one forward pass.
#define SPIN_PAUSES (1u << 15)
/// Spinning threads yield the CPU every this many pauses, so that on a machine with more runnable
/// threads than cores they give way to threads with work.
#define PAUSES_PER_YIELD 64u

static inline void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// One step of a spin-wait: a pause, and every PAUSES_PER_YIELD steps a sched_yield.
static inline void spin_step(unsigned *spins) {
    if (++*spins % PAUSES_PER_YIELD == 0) sched_yield(); else cpu_pause();
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

static job_t current;                      // written by the caller only while no worker is inside
static size_t workers = 0;                 // started so far (under submit_lock)
static unsigned long generation = 0;       // bumped for each job (atomic)
static unsigned long open_generation = 0;  // the generation whose tasks may be taken, 0 when none (atomic)
static size_t next_task = 0;               // next index of the open job (atomic)
static size_t finished = 0;                // tasks of the open job finished (atomic)
static size_t inside = 0;                  // workers between joining and leaving a job (atomic)
static size_t sleepers = 0;                // workers waiting on `wake` (atomic)

static void run_tasks(void) {
    for (;;) {
        size_t i = __atomic_fetch_add(&next_task, 1, __ATOMIC_RELAXED);
        if (i >= current.count) return;
        current.fn(current.context, i);
        __atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
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
            if (spins < SPIN_PAUSES) { spin_step(&spins); continue; }
            pthread_mutex_lock(&sleep_lock);
            __atomic_fetch_add(&sleepers, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&generation, __ATOMIC_SEQ_CST) == seen) pthread_cond_wait(&wake, &sleep_lock);
            __atomic_fetch_sub(&sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&sleep_lock);
            spins = 0;
        }
        seen = g;
        __atomic_fetch_add(&inside, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&open_generation, __ATOMIC_SEQ_CST) == g && id + 1 < current.participants) run_tasks();
        __atomic_fetch_sub(&inside, 1, __ATOMIC_RELEASE);
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
    __atomic_store_n(&finished, 0, __ATOMIC_RELAXED);
    unsigned long g = __atomic_load_n(&generation, __ATOMIC_RELAXED) + 1;
    if (g == 0) g = 1;                                            // 0 means "no job open"
    __atomic_store_n(&open_generation, g, __ATOMIC_SEQ_CST);
    __atomic_store_n(&generation, g, __ATOMIC_SEQ_CST);          // publishes the job (release)
    if (__atomic_load_n(&sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    run_tasks();
    unsigned spins = 0;
    while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) < count) spin_step(&spins);
    __atomic_store_n(&open_generation, 0, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&inside, __ATOMIC_SEQ_CST) > 0) spin_step(&spins);
    pthread_mutex_unlock(&submit_lock);
}
