#!/usr/bin/env bash
# Builds the libFuzzer target for the trace reader (Fuzz/TraceReaderFuzz.swift compiled
# together with Sources/UnclogTrace/*.swift, ASan + libFuzzer) and runs it for SECONDS
# (default 30) on a scratch corpus seeded from schema/vectors/*.bin and from the inputs
# earlier runs kept in .build/fuzz/corpus (new ones are added back there).
# Exit status: 0 when nothing was found, non-zero on a crash, leak, timeout or build failure.
# Crashing inputs are kept in .build/fuzz/artifacts/ (reproduce:
#   SWIFT_BACKTRACE=enable=no .build/fuzz/trace-reader FILE).
# Usage: Fuzz/run.sh [SECONDS]   (FUZZ_JOBS=N to run N processes in parallel)
set -euo pipefail

seconds="${1:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.build/fuzz"
bin="$out/trace-reader"
swiftc="${SWIFTC:-swiftc}"
mkdir -p "$out/artifacts"

# Rebuild only when a source is newer than the binary (make test runs this every time).
sources=("$root/Fuzz/TraceReaderFuzz.swift" "$root"/Sources/UnclogTrace/*.swift)
stale=1
if [ -x "$bin" ]; then
  stale=0
  for s in "${sources[@]}"; do [ "$s" -nt "$bin" ] && stale=1; done
fi
if [ "$stale" = 1 ]; then
  echo "fuzz: building $bin"
  # lld: the default gold linker prints hundreds of harmless ASan symbol warnings.
  linker=()
  command -v ld.lld >/dev/null 2>&1 || [ -x "$(dirname "$(command -v "$swiftc")")/ld.lld" ] && linker=(-use-ld=lld)
  "$swiftc" -sanitize=fuzzer,address -parse-as-library -O -swift-version 6 -g \
    -module-name TraceReaderFuzz "${linker[@]}" "${sources[@]}" -o "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi

# A scratch corpus: the vectors, plus what earlier runs found (kept in .build/fuzz/corpus so
# the short run of `make test` starts where the long `make fuzz` runs got to).
corpus="$(mktemp -d "${TMPDIR:-/tmp}/unclog-fuzz.XXXXXX")"
trap 'rm -rf "$corpus"' EXIT
cp "$root"/schema/vectors/*.bin "$corpus"/ 2>/dev/null || true
mkdir -p "$out/corpus"
find "$out/corpus" -type f -exec cp -n {} "$corpus"/ \;

echo "fuzz: running for ${seconds}s on $(ls "$corpus" | wc -l) seed inputs ($(ls "$out/corpus" | wc -l) from earlier runs)"
jobs=()
if [ -n "${FUZZ_JOBS:-}" ] && [ "${FUZZ_JOBS}" -gt 1 ]; then
  jobs=(-fork="$FUZZ_JOBS")
fi
# -max_len 64 KiB: room for the realistic vector and multi-chunk mutations.
# Swift's own backtracer would run inside ASan on a trap and crash it: let libFuzzer report.
set +e
SWIFT_BACKTRACE=enable=no "$bin" "$corpus" -dict="$root/Fuzz/trace.dict" -max_total_time="$seconds" \
  -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
  "${jobs[@]}" 2>&1 | grep -v -E '^#[0-9]+.*(NEW|REDUCE|pulse)|# Uses: '
status="${PIPESTATUS[0]}"
set -e
# Keep a minimal set of the inputs that reached new code for the next run (-merge=1 keeps
# the smallest inputs covering every feature: ~1000 files instead of tens of thousands).
if [ "$status" = 0 ]; then
  fresh="$out/corpus.new"
  rm -rf "$fresh" && mkdir -p "$fresh"
  if SWIFT_BACKTRACE=enable=no "$bin" -merge=1 -max_len=65536 "$fresh" "$corpus" >/dev/null 2>&1; then
    rm -rf "$out/corpus" && mv "$fresh" "$out/corpus"
  else
    rm -rf "$fresh"
  fi
fi
if [ "$status" != 0 ]; then
  echo "fuzz: FAILED (exit $status); crashing inputs in $out/artifacts/" >&2
  exit "$status"
fi
echo "fuzz: no crash in ${seconds}s"
