// Start, stop and fork: the public entry points that set the recorder up (runtime lookup, modes,
// the watchdog's periods, the file, the hooks) and tear it down (final flush, `End`), and the
// recorder's state R.
#include "recorder_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

recorder_state R = {.fd = -1, .reg_lock = PTHREAD_MUTEX_INITIALIZER, .pend_lock = PTHREAD_MUTEX_INITIALIZER};

static void at_exit(void) { unclog_recorder_stop(); }
static void in_child(void) {  // a forked child must not write into the parent's trace
    atomic_store(&R.stopping, 1);
    atomic_store(&R.active, 0);
    R.fd = -1;
    // The fork may have come while the watchdog held buffers: the child has no watchdog to give
    // them back, and its one thread may still finish a job into its buffer.
    for (tbuf *t = atomic_load(&R.threads); t; t = t->next) {
        atomic_store_explicit(&t->steal, 0, memory_order_relaxed);
        atomic_store_explicit(&t->busy, 0, memory_order_relaxed);
    }
}

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void unclog_runtime_lookup(unclog_runtime *rt) {
    memset(rt, 0, sizeof *rt);
    rt->enqueue_global_hook = dlsym(RTLD_DEFAULT, "swift_task_enqueueGlobal_hook");
    rt->job_run = dlsym(RTLD_DEFAULT, "swift_job_run");
    rt->dispatch_async_f = dlsym(RTLD_DEFAULT, "dispatch_async_f");
    rt->dispatch_queue_create = dlsym(RTLD_DEFAULT, "dispatch_queue_create");
    rt->dispatch_queue_attr_make_with_qos_class = dlsym(RTLD_DEFAULT, "dispatch_queue_attr_make_with_qos_class");
    rt->dispatch_queue_set_width = dlsym(RTLD_DEFAULT, "dispatch_queue_set_width");
    rt->dispatch_queue_attr_concurrent = dlsym(RTLD_DEFAULT, "_dispatch_queue_attr_concurrent");
    rt->swift_task_getCurrent = dlsym(RTLD_DEFAULT, "swift_task_getCurrent");
    rt->enqueue_main_hook = dlsym(RTLD_DEFAULT, "swift_task_enqueueMainExecutor_hook");
    rt->get_main_executor = dlsym(RTLD_DEFAULT, "swift_task_getMainExecutor");
    rt->dispatch_main_q = dlsym(RTLD_DEFAULT, "_dispatch_main_q");
}

int unclog_recorder_start(const unclog_config *config, const unclog_runtime *rt, char *error, size_t error_size) {
#define FAIL(...)                                                                                                                \
    do {                                                                                                                         \
        if (error && error_size) snprintf(error, error_size, __VA_ARGS__);                                                       \
        return -1;                                                                                                               \
    } while (0)
    if (atomic_load(&R.active)) FAIL("already recording");
    if (!config || !config->output || !*config->output) FAIL("no output file given");
    if (!rt || !rt->enqueue_global_hook) FAIL("swift_task_enqueueGlobal_hook not found (no Swift Concurrency runtime)");
    if (!rt->job_run || !rt->dispatch_async_f || !rt->dispatch_queue_create || !rt->dispatch_queue_attr_make_with_qos_class ||
        !rt->dispatch_queue_set_width || !rt->dispatch_queue_attr_concurrent)
        FAIL("swift_job_run or Dispatch functions not found");
    R.cfg = *config;
    if (!R.cfg.threshold_ns) R.cfg.threshold_ns = UNCLOG_DEFAULT_THRESHOLD_NS;
    if (!R.cfg.sample_interval_ns) R.cfg.sample_interval_ns = UNCLOG_DEFAULT_SAMPLE_INTERVAL_NS;
    snprintf(R.output, sizeof R.output, "%s", config->output);
    R.cfg.output = R.output;
    R.hook_slot = rt->enqueue_global_hook;
    R.job_run = (job_run_fn)rt->job_run;
    R.async_f = (dispatch_async_f_fn)rt->dispatch_async_f;
    R.queue_create = (dispatch_queue_create_fn)rt->dispatch_queue_create;
    R.attr_qos = (dispatch_attr_qos_fn)rt->dispatch_queue_attr_make_with_qos_class;
    R.set_width = (dispatch_set_width_fn)rt->dispatch_queue_set_width;
    R.after_f = (dispatch_after_f_fn)rt->dispatch_after_f;
    R.dispatch_time = (dispatch_time_fn)rt->dispatch_time;
    if (rt->dispatch_main_q && !R.main_queue) R.main_queue = rt->dispatch_main_q;
    R.attr_concurrent = rt->dispatch_queue_attr_concurrent;
    // The watchdog's period: a quarter of the threshold while no job is past it (how late a stall
    // is noticed, and the bound on a ready stamp's earliness: ready_stamp), a quarter of the sample
    // interval during a stall (so samples keep their interval); 1-10 ms either way. Each wake-up
    // preempts a worker when the CPUs are busy: at 400 per second (the sampling period alone) the
    // context switches were a measurable share of a job's cost (docs/benchmarks.md).
    R.tick_ns = clamp_u64(R.cfg.threshold_ns / 4, WATCHDOG_TICK_MIN_NS, WATCHDOG_TICK_MAX_NS);
    uint64_t sampling = R.cfg.sample_interval_ns < R.cfg.threshold_ns ? R.cfg.sample_interval_ns : R.cfg.threshold_ns;
    R.stall_tick_ns = clamp_u64(sampling / 4, WATCHDOG_TICK_MIN_NS, R.tick_ns);
    crc_init();
    asym_fence_init();  // before any buffer is written: owners fence or not from here on

    R.fd = open(R.output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (R.fd < 0) FAIL("%s: cannot create: %s", R.output, strerror(errno));
    R.pid = getpid();
    loops_on = rt->loops;
    if (rt->interpose) {
        find_concurrency_runtime();
        interpose_on = conc_text_hi != 0;
    }
    clock_start();
    atomic_store_explicit(&coarse_tick, ticks(), memory_order_relaxed);  // hand-offs' starts (KIND_HANDOFF)
    if (getenv("UNCLOG_LOOP_THREADS")) loops_set_prefixes(getenv("UNCLOG_LOOP_THREADS"));
    write_header_and_metadata();

    sampler_start();  // the sampling signal
    buffers_start();
    refresh_images(watchdog_buf, 1);
    static const struct {
        uint32_t gt;
        const char *name;
    } special[] = {
        {GT_TIMER, "Swift timer jobs (Task.sleep wake-ups)"},
        {GT_RUNTIME_KIND | 193, "Swift actor jobs (separate)"},
        {GT_RUNTIME_KIND | 194, "Swift actor jobs (override)"},
        {HANDOFF_GT, "Swift hand-offs past the threshold (resumptions, e.g. Task.yield)"},
        {GT_RUNTIME_KIND | 196, "Swift isolated deinits"},
        {GT_ACTOR_OVERFLOW, "Swift actors (beyond 8192)"},
        {GT_NO_TASK_ID, "Swift jobs without a task id"},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        uint32_t sid = next_id++;
        emit_string(watchdog_buf, sid, special[i].name, strlen(special[i].name));
        uint64_t f[4] = {special[i].gt, sid, 0, 0};
        emit_simple(watchdog_buf, EV_GREENTHREAD_CREATE, now_ns(), 4, f);
    }
    registry_push(watchdog_buf);

    atomic_store(&R.stopping, 0);
    atomic_store(&R.active, 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    if (pthread_create(&R.watchdog, &attr, watchdog_main, NULL) != 0) {
        pthread_attr_destroy(&attr);
        atomic_store(&R.active, 0);
        close(R.fd);
        R.fd = -1;
        FAIL("cannot start the watchdog thread");
    }
    pthread_attr_destroy(&attr);

    // Install the hook. Whoever installed one first keeps control (e.g. SwiftNIO's event loops as
    // the global executor): we chain to it and cannot time its jobs.
    // UNCLOG_EXECUTOR_HOOK=off leaves the hook free (e.g. for SwiftNIO's compare-and-swap install of its
    // event loops as the global executor, which fails when any hook is set): loops are still recorded.
    const char *hook_env = getenv("UNCLOG_EXECUTOR_HOOK");
    int hook_off = hook_env && (strcmp(hook_env, "off") == 0 || strcmp(hook_env, "0") == 0);
    void *prev = __atomic_load_n(R.hook_slot, __ATOMIC_ACQUIRE);
    R.previous_hook = (enqueue_hook_fn)prev;
    if (!hook_off && !interpose_on) __atomic_store_n(R.hook_slot, (void *)enqueue_hook, __ATOMIC_RELEASE);
    if (prev && !interpose_on && !config->quiet) {
        static const char msg[] = "unclog: another executor hook was installed first; its jobs are not timed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
    }
    // Main-actor jobs, when the runtime lets us (Dispatch main queue and the main executor).
    if (!interpose_on && rt->enqueue_main_hook && rt->get_main_executor && rt->dispatch_main_q &&
        !getenv("UNCLOG_NO_MAIN_HOOK")) {
        R.main_executor = ((get_main_executor_fn)rt->get_main_executor)();
        R.main_queue = rt->dispatch_main_q;
        R.main_hook_slot = rt->enqueue_main_hook;
        R.previous_main_hook = (enqueue_hook_fn)__atomic_load_n(R.main_hook_slot, __ATOMIC_ACQUIRE);
        __atomic_store_n(R.main_hook_slot, (void *)enqueue_main_hook, __ATOMIC_RELEASE);
    }
    static int registered;
    if (!registered) {
        registered = 1;
        atexit(at_exit);
        pthread_atfork(NULL, NULL, in_child);
    }
    return 0;
#undef FAIL
}

void unclog_recorder_stop(void) {
    if (!atomic_load(&R.active) || getpid() != R.pid) return;
    if (atomic_exchange(&R.stopping, 1)) return;
    if (__atomic_load_n(R.hook_slot, __ATOMIC_ACQUIRE) == (void *)enqueue_hook)
        __atomic_store_n(R.hook_slot, (void *)R.previous_hook, __ATOMIC_RELEASE);
    if (R.main_hook_slot && __atomic_load_n(R.main_hook_slot, __ATOMIC_ACQUIRE) == (void *)enqueue_main_hook)
        __atomic_store_n(R.main_hook_slot, (void *)R.previous_main_hook, __ATOMIC_RELEASE);
    pthread_join(R.watchdog, NULL);
    name_actors();
    // Everything recorded so far goes to the file, counted; then the summary events, then one last
    // flush: a job still running records into a buffer nobody writes again, and the statistics
    // count what was flushed.
    buf_totals tot = {gone_events, gone_dropped, 0, 0};
    flush_partial(now_ns(), &tot);
    write_pending();
    if (tot.dropped || R.pend_dropped) {
        uint64_t f[2] = {DROPPED_BUFFER_FULL, tot.dropped + R.pend_dropped};
        emit_simple(watchdog_buf, EV_DROPPED, now_ns(), 2, f);
    }
    uint64_t f[2] = {R.chunks_written, tot.events};
    emit_simple(watchdog_buf, EV_END, now_ns(), 2, f);
    buf_totals last = {0, 0, gone_jobs, gone_handoffs};
    flush_partial(now_ns(), &last);
    write_pending();
    close(R.fd);
    R.fd = -1;
    atomic_store(&R.active, 0);
    if (getenv("UNCLOG_STATS")) {  // for benchmarks: what was recorded
        char line[200];
        int n = snprintf(line, sizeof line, "unclog-stats jobs=%llu handoffs=%llu events=%llu chunks=%llu\n",
                         (unsigned long long)last.jobs, (unsigned long long)last.handoffs, (unsigned long long)tot.events,
                         (unsigned long long)R.chunks_written);
        ssize_t w = write(2, line, (size_t)n);
        (void)w;
    }
}

int unclog_recorder_active(void) { return atomic_load(&R.active); }
uint64_t unclog_recorder_jobs(void) {
    pthread_mutex_lock(&R.reg_lock);  // the watchdog frees exited threads' buffers under this lock
    uint64_t n = gone_jobs;
    for (tbuf *t = atomic_load(&R.threads); t; t = t->next) n += t->jobs;  // racy read: a statistic
    pthread_mutex_unlock(&R.reg_lock);
    return n;
}
