// The LD_PRELOAD entry point of unclog's Swift recorder: a constructor reads UNCLOG_OUTPUT,
// UNCLOG_THRESHOLD_NS and UNCLOG_SAMPLE_INTERVAL_NS and starts the recorder (CUnclogSwiftRecorder).
#ifndef UNCLOG_PRELOAD_H
#define UNCLOG_PRELOAD_H
/// 1 when the preloaded recorder started (for tests).
int unclog_preload_started(void);
#endif
