-- unclog SQLite schema, version 1 (PRAGMA user_version = 1).
--
-- `unclog import` streams trace files (schema/trace-format.md) into these tables; the query
-- commands and the notebooks read them, and `unclog sql` lets you read them too.
--
-- Conventions
-- * Several traces can live in one database. Rows of trace T are told apart two ways:
--   - Objects the recorder named with an id (strings, frames, stacks, images, OS threads,
--     greenthreads) have a `key` = T << 32 | the recorder's id, so references between
--     them need no look-up table at import time. The recorder's own id is kept beside it.
--   - Rows the importer creates (slices, I/O waits, stalls, samples) have an `id` in
--     T << 40 … (T + 1) << 40 − 1, assigned in file order, so a trace's rows are one range.
--   This is the one description of the key scheme; code builds such keys and ranges only
--   through `StoreKey` (Sources/UnclogStore/StoreKey.swift) and, in the notebooks,
--   `trace_range` in notebooks/unclog_nb.py. Comments below that spell `T << 32 | id` or
--   `T << 40 | n` refer back here.
-- * Every `*_ns` time is nanoseconds since the trace's `start_mono_ns` (a CLOCK_MONOTONIC
--   reading of the recorded process); every duration is in nanoseconds.
-- * The timeline is rebuilt while importing (slices, victims), not at query time: pairing
--   start and end events with window functions over millions of rows takes seconds.

PRAGMA user_version = 1;

-- One row per imported trace file.
CREATE TABLE traces (
    id                 INTEGER PRIMARY KEY,  -- T
    path               TEXT NOT NULL,        -- the trace file as given to `unclog import`
    fingerprint        TEXT NOT NULL UNIQUE, -- the recording: CRC-32 of the first chunk's payload (the metadata: pid, clock anchor), its base_ns and thread; a re-import of the same recording (even grown or copied) is refused, or replaces it with --replace
    imported_at        TEXT NOT NULL,        -- UTC, ISO 8601
    runtime            TEXT,                 -- eventlet, gevent, greenlet, swift-concurrency, swiftnio (metadata `runtime`)
    runtime_version    TEXT,
    pid                INTEGER,
    hostname           TEXT,
    argv               TEXT,                 -- the command line, as a JSON array
    threshold_ns       INTEGER,              -- a slice longer than this was recorded as a stall
    sample_interval_ns INTEGER,              -- stack sampling period during stalls
    start_mono_ns      INTEGER NOT NULL,     -- CLOCK_MONOTONIC time 0 of every *_ns column of this trace
    anchor_wall_ns     INTEGER,              -- Unix time (ns) at start_mono_ns, when the recorder gave it
    duration_ns        INTEGER,              -- last event time
    events             INTEGER NOT NULL,     -- events decoded
    chunks             INTEGER NOT NULL,     -- intact chunks read
    file_bytes         INTEGER NOT NULL,
    bytes_lost         INTEGER NOT NULL,     -- bytes of the file that could not be used (damage)
    events_dropped     INTEGER NOT NULL,     -- events the recorder reported losing (`Dropped`)
    recorder_errors    INTEGER NOT NULL,     -- recorder errors it caught (`Dropped` reason 2)
    clean_end          INTEGER NOT NULL      -- 1 when the recorder wrote its `End` event
);

-- Every metadata key of the trace, including ones this version does not know.
CREATE TABLE trace_metadata (
    trace_id INTEGER NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT,                           -- integers as decimal text, lists as JSON arrays
    PRIMARY KEY (trace_id, key)
) WITHOUT ROWID;

-- Damage met while importing: where, how many bytes, and what was wrong.
CREATE TABLE import_damage (
    trace_id   INTEGER NOT NULL,
    offset     INTEGER NOT NULL,             -- byte offset in the trace file
    bytes_lost INTEGER NOT NULL,
    reason     TEXT NOT NULL
);

-- Interned strings (`String` events).
CREATE TABLE strings (
    key      INTEGER PRIMARY KEY,            -- T << 32 | id
    trace_id INTEGER NOT NULL,
    value    TEXT NOT NULL
);

-- Loaded images (executables, shared libraries) of native recordings.
CREATE TABLE images (
    key        INTEGER PRIMARY KEY,
    trace_id   INTEGER NOT NULL,
    path       TEXT,
    path_key   INTEGER,
    load_bias  INTEGER NOT NULL,             -- address − load_bias = address in the file
    start      INTEGER NOT NULL,             -- executable range [start, end) in the process
    end        INTEGER NOT NULL,
    build_id   TEXT                          -- lower-case hex, NULL when unknown
);

-- Stack frames. Symbolic frames (Python) come with function/file/line; native frames
-- (Swift) with image + address, and get function/file/line when symbolized.
CREATE TABLE frames (
    key       INTEGER PRIMARY KEY,
    trace_id  INTEGER NOT NULL,
    function  TEXT,                          -- NULL when unknown (unsymbolized native frame)
    file      TEXT,
    function_key INTEGER,                    -- the strings behind function and file (symbolic frames)
    file_key  INTEGER,
    line      INTEGER,                       -- NULL when unknown
    internal  INTEGER NOT NULL,              -- 1: runtime, hub or recorder code; attribution skips it
    image_key INTEGER,                       -- native frames: the image
    address   INTEGER,                       -- native frames: the address in the process (as recorded)
    flags     INTEGER NOT NULL               -- the raw frame flags of the trace format (8: library code)
);

-- Call stacks: one row per frame, innermost first (depth 0).
CREATE TABLE stack_frames (
    stack_key INTEGER NOT NULL,              -- T << 32 | stack id
    depth     INTEGER NOT NULL,
    frame_key INTEGER NOT NULL,
    PRIMARY KEY (stack_key, depth)
) WITHOUT ROWID;

-- OS threads that ran greenthreads, sampled stacks or wrote chunks.
CREATE TABLE threads (
    key      INTEGER PRIMARY KEY,            -- T << 32 | tid
    trace_id INTEGER NOT NULL,
    tid      INTEGER NOT NULL,
    name     TEXT,
    name_key INTEGER,
    hub_key  INTEGER,                        -- its hub greenthread, when it has one
    slices   INTEGER NOT NULL,               -- greenthread run slices on it
    busy_ns  INTEGER NOT NULL,               -- time greenthreads (not the hub) ran on it
    io_wait_ns INTEGER NOT NULL              -- time its hub spent waiting for I/O
);

-- Greenthreads (greenlets, tasks). The hub of each thread is one too (is_hub = 1).
CREATE TABLE greenthreads (
    key           INTEGER PRIMARY KEY,       -- T << 32 | gt
    trace_id      INTEGER NOT NULL,
    gt            INTEGER NOT NULL,          -- the recorder's id
    name          TEXT,                      -- the function it runs
    name_key      INTEGER,
    spawn_stack_key INTEGER,                 -- where it was spawned
    parent_key    INTEGER,
    is_hub        INTEGER NOT NULL,
    created_ns    INTEGER,                   -- NULL: created before recording began
    exited_ns     INTEGER,                   -- NULL: still alive when recording ended
    slices        INTEGER NOT NULL,          -- times it ran
    run_ns        INTEGER NOT NULL,          -- total running time
    ready_wait_ns INTEGER NOT NULL,          -- total time it was ready but not running
    last_slice_id INTEGER                    -- its last slice: slices.prev_id chains back from here
);

-- The rebuilt timeline: each time a greenthread (not a hub) ran on a thread.
-- No secondary index: a greenthread's slices are found by walking prev_id from
-- greenthreads.last_slice_id, starting from the nearest slice_checkpoints row; a thread's
-- slices in a time window are an id range, also found through slice_checkpoints.
CREATE TABLE slices (
    id         INTEGER PRIMARY KEY,          -- T << 40 | n, in each thread's time order
    gt_key     INTEGER NOT NULL,
    thread_key INTEGER NOT NULL,
    ready_ns   INTEGER,                      -- since when it was ready to run (NULL: unknown)
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    reason     INTEGER NOT NULL,             -- why it ran: 1 timer, 2 I/O, 3 spawn, 4 explicit, 5 other, 0 unknown (see switch_reasons)
    prev_id    INTEGER                       -- the same greenthread's previous slice
);

-- Every 256th slice of each greenthread (kind 0) and of each thread (kind 1), and every
-- 256th I/O wait of each thread (kind 2): entry points into the id-ordered tables.
-- Kind 3 marks a greenthread whose prev_id chain is not in time order (a slice that starts
-- before the end of the one before it in the chain: a task that moved between threads whose
-- chunks reached the file out of order); row_id is that slice. Its chain is walked whole.
CREATE TABLE slice_checkpoints (
    kind     INTEGER NOT NULL,
    key      INTEGER NOT NULL,               -- greenthread key (kinds 0, 3) or thread key (kinds 1, 2)
    start_ns INTEGER NOT NULL,
    row_id   INTEGER NOT NULL,               -- slices.id (kinds 0, 1) or io_waits.id (kind 2)
    PRIMARY KEY (kind, key, row_id)
) WITHOUT ROWID;

-- Hub waits for I/O (poll/epoll): the thread was idle, by its own choice.
CREATE TABLE io_waits (
    id         INTEGER PRIMARY KEY,          -- T << 40 | n
    thread_key INTEGER NOT NULL,
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    timeout_ns INTEGER,                      -- requested timeout; NULL = wait forever, or unknown when the
                                             -- trace_metadata key io_timeout_known is 0 (gevent)
    nready     INTEGER                       -- ready file descriptors it returned (NULL: never returned)
);

-- Stalls: a slice that ran past the threshold, holding its thread.
CREATE TABLE stalls (
    id            INTEGER PRIMARY KEY,       -- T << 40 | n
    trace_id      INTEGER NOT NULL,
    thread_key    INTEGER NOT NULL,
    gt_key        INTEGER NOT NULL,          -- the greenthread (or hub) that held the thread
    start_ns      INTEGER NOT NULL,
    end_ns        INTEGER NOT NULL,
    duration_ns   INTEGER NOT NULL,
    stack_key     INTEGER,                   -- the stack seen most often while it stalled, else end_stack_key
    end_stack_key INTEGER,                   -- where the slice ended
    samples       INTEGER NOT NULL,          -- stacks sampled during it
    complete      INTEGER NOT NULL,          -- 0: the recording ended inside the stall (duration is a lower bound)
    victims       INTEGER NOT NULL,          -- greenthreads it kept waiting
    victim_wait_ns INTEGER NOT NULL          -- the wait it added to them, summed
);
CREATE INDEX stalls_by_thread ON stalls (thread_key, start_ns);

-- Stacks sampled by the watchdog during stalls.
CREATE TABLE stall_samples (
    id         INTEGER PRIMARY KEY,
    trace_id   INTEGER NOT NULL,
    stall_id   INTEGER,                      -- the stall it fell in (NULL: none matched)
    thread_key INTEGER NOT NULL,             -- the stalled thread
    ts_ns      INTEGER NOT NULL,
    stack_key  INTEGER,
    state      INTEGER NOT NULL              -- 0 unknown, 1 on CPU, 2+N asleep in syscall N
);
CREATE INDEX stall_samples_by_stall ON stall_samples (stall_id);

-- Who each stall kept waiting: greenthreads that were ready on the same thread while it
-- held the thread, with the part of their wait that the stall caused. In a thread pool
-- (traces whose metadata runtime is 'swift-concurrency': the global executor's workers,
-- i.e. threads without a hub, but the main thread) a stall leaves the pool a worker short,
-- so jobs that waited through it and then ran on another worker count too (ready before
-- the stall ended, started after it began); a job that waited through stalls on several
-- workers at once counts for each (their waits overlap). A greenthread that
-- resumed more than 10 s after the stall ended is not counted (its wait is not this
-- stall's doing alone). For I/O wake-ups the ready time is when the hub saw the readiness
-- (the kernel does not say when data arrived), so I/O victims of a stall are counted only
-- when the recorder saw them ready during it; timer and spawn wake-ups are exact.
CREATE TABLE stall_victims (
    stall_id   INTEGER NOT NULL,
    gt_key     INTEGER NOT NULL,
    ready_ns   INTEGER NOT NULL,
    resumed_ns INTEGER NOT NULL,             -- when the victim finally ran
    wait_ns    INTEGER NOT NULL,             -- overlap of [ready, resumed] with the stall
    PRIMARY KEY (stall_id, gt_key, ready_ns)
) WITHOUT ROWID;

-- Names of slices.reason.
CREATE TABLE switch_reasons (code INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO switch_reasons VALUES (0, 'unknown'), (1, 'timer'), (2, 'io'), (3, 'spawn'), (4, 'explicit'), (5, 'other');

----------------------------------------------------------------------------------------
-- Analysis views
----------------------------------------------------------------------------------------

-- Each stall's call site: the innermost frame of its stack that is the program's own code
-- (neither internal nor library, frames.flags bit 8), i.e. the program's line that blocked
-- or called into the library that blocked; else the innermost library frame; else the
-- innermost frame when the whole stack is runtime code.
CREATE VIEW stall_sites AS
SELECT s.id AS stall_id, s.trace_id, s.thread_key, s.gt_key, s.start_ns, s.end_ns, s.duration_ns,
       s.samples, s.complete, s.victims, s.victim_wait_ns, s.stack_key,
       f.key AS frame_key, f.function, f.file, f.line
FROM stalls s
LEFT JOIN frames f ON f.key = COALESCE(
    (SELECT sf.frame_key FROM stack_frames sf JOIN frames ff ON ff.key = sf.frame_key
      WHERE sf.stack_key = s.stack_key AND ff.internal = 0 AND (ff.flags & 8) = 0 ORDER BY sf.depth LIMIT 1),
    (SELECT sf.frame_key FROM stack_frames sf JOIN frames ff ON ff.key = sf.frame_key
      WHERE sf.stack_key = s.stack_key AND ff.internal = 0 ORDER BY sf.depth LIMIT 1),
    (SELECT sf.frame_key FROM stack_frames sf WHERE sf.stack_key = s.stack_key ORDER BY sf.depth LIMIT 1));

-- Stall time charged to call sites, one row per (stall, site):
--  scope 'self'      : the stall's call site only (the innermost application frame);
--  scope 'inclusive' : every distinct application frame on the stall's stack, so a
--                      function is charged for stalls in anything it called.
CREATE VIEW stall_attribution AS
SELECT 'self' AS scope, stall_id, trace_id, function, file, line, duration_ns, victim_wait_ns
FROM stall_sites
UNION ALL
SELECT DISTINCT 'inclusive', s.id, s.trace_id, f.function, f.file, f.line, s.duration_ns, s.victim_wait_ns
FROM stalls s
JOIN stack_frames sf ON sf.stack_key = s.stack_key
JOIN frames f ON f.key = sf.frame_key AND f.internal = 0;

-- Call sites (function, file, line) ranked by self stall time, with nearest-rank
-- percentiles of stall duration and each site's share of all stall time.
-- `unclog top` reads it as it is, and ranks other groupings, inclusive attribution and single
-- traces the same way (Queries.swift, `rankedSites`): keep the two alike.
CREATE VIEW top_sites AS
WITH a AS (SELECT function, file, line, duration_ns, victim_wait_ns FROM stall_attribution WHERE scope = 'self'),
r AS (SELECT a.*, ROW_NUMBER() OVER w AS rn, COUNT(*) OVER (PARTITION BY function, file, line) AS n
      FROM a WINDOW w AS (PARTITION BY function, file, line ORDER BY duration_ns))
SELECT function, file, line, COUNT(*) AS stalls, SUM(duration_ns) AS total_ns, MAX(duration_ns) AS max_ns,
       MIN(CASE WHEN rn >= 0.50 * n THEN duration_ns END) AS p50_ns,
       MIN(CASE WHEN rn >= 0.99 * n THEN duration_ns END) AS p99_ns,
       1.0 * SUM(duration_ns) / (SELECT SUM(duration_ns) FROM stalls) AS share,
       SUM(victim_wait_ns) AS victim_wait_ns
FROM r GROUP BY function, file, line ORDER BY total_ns DESC;

-- Victims with names: who waited, for which stall, and how long because of it.
CREATE VIEW victims AS
SELECT v.stall_id, s.trace_id, v.gt_key, g.gt, g.name, v.ready_ns, v.resumed_ns, v.wait_ns
FROM stall_victims v JOIN stalls s ON s.id = v.stall_id LEFT JOIN greenthreads g ON g.key = v.gt_key;

-- Per greenthread: how long it ran, waited while ready, and was kept waiting by stalls.
CREATE VIEW greenthread_summary AS
SELECT g.trace_id, g.gt, g.name, g.is_hub, g.slices, g.run_ns, g.ready_wait_ns,
       (SELECT COUNT(*) FROM stalls s WHERE s.gt_key = g.key) AS stalls_caused,
       (SELECT COALESCE(SUM(duration_ns), 0) FROM stalls s WHERE s.gt_key = g.key) AS stall_ns_caused,
       (SELECT COALESCE(SUM(wait_ns), 0) FROM stall_victims v WHERE v.gt_key = g.key) AS stall_wait_ns_suffered
FROM greenthreads g;
