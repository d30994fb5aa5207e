"""The recorder's version and default settings, defined once.

`sitecustomize` (the `UNCLOG_*` variables' fallbacks), the API (`start()`'s defaults)
and the metadata chunk all read them here. `unclog record` passes its own values (same
defaults, in the Swift CLI).
"""

VERSION = "0.1.0"
RECORDER_NAME = "unclog-python " + VERSION  # metadata key `recorder`

DEFAULT_THRESHOLD_NS = 50_000_000  # a slice longer than this is a stall
DEFAULT_SAMPLE_INTERVAL_NS = 10_000_000  # the watchdog's sampling period in a stall
