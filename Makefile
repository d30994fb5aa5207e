# unclog: two commands for a new user on a fresh Debian machine with the Swift toolchain:
#   make demo   installs what is missing, builds, records the bundled example, prints the stalls
#   make test   the whole test suite (what CI runs)
# Everything this Makefile uses is installed by it (Debian packages, the Python virtualenv).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
SWIFT_BUILD_FLAGS ?=
UNCLOG := .build/release/unclog
FUZZ_SECONDS ?= 20
DEMO_DIR := .demo

# Debian packages: a C compiler (the Python recorder's native fast path, the SQLite ceiling
# benchmark), SQLite's headers and shell, Python's venv support.
DEB_PACKAGES := build-essential libsqlite3-dev sqlite3 python3-venv

.PHONY: all deps venv build build-debug demo test test-swift test-python test-python-pure test-python-compat fuzz fuzz-short bench clean help

all: build

help:
	@echo "make demo    build, record the bundled crawler example, print its stalls"
	@echo "make test    the whole test suite (Swift, Python recorder on the pinned and the oldest"
	@echo "             supported eventlet/gevent, visualization, a short fuzz run)"
	@echo "make bench   benchmarks (.bench/core.json, .bench/python.json)"
	@echo "make fuzz    fuzz the trace reader for longer (FUZZ_SECONDS=600)"

# Shell text: installs the Debian packages named in $$missing (apt-get update only then).
apt_install_missing = if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
# Shell text: installs those of the Debian packages $(1) that are missing.
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(apt_install_missing)

# Installs the Debian packages that are missing (apt-get update only when something is).
deps: .deps-stamp
.deps-stamp: Makefile
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if ! $(PYTHON) -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' 2>/dev/null; then \
	  missing="$$missing python3-dev"; fi; \
	$(call apt_install_missing)
	@touch $@

# The project's virtualenv with the pinned runtimes; rebuilt when requirements-dev.txt changes.
venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements-dev.txt .deps-stamp
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

build: deps
	swift build -c release $(SWIFT_BUILD_FLAGS)

build-debug: deps
	swift build $(SWIFT_BUILD_FLAGS)

# Records the bundled crawler (1000 greenthreads, a few of which block), imports it, and
# prints the stalls and the call sites that caused them.
demo: build venv
	@mkdir -p $(DEMO_DIR)
	$(UNCLOG) record --threshold 50ms -o $(DEMO_DIR)/crawler.trace -- $(VPY) examples/eventlet_crawler.py
	$(UNCLOG) import $(DEMO_DIR)/crawler.trace -o $(DEMO_DIR)/crawler.db --replace
	@echo; echo "== stalls (longest first) =="
	$(UNCLOG) stalls $(DEMO_DIR)/crawler.db
	@echo; echo "== call sites by stall time =="
	$(UNCLOG) top $(DEMO_DIR)/crawler.db
	@echo; echo "Explore further: $(UNCLOG) timeline $(DEMO_DIR)/crawler.db, $(UNCLOG) sql $(DEMO_DIR)/crawler.db \"SELECT * FROM top_sites\""

test: test-swift test-python test-python-pure test-python-compat fuzz-short

# The Swift recorder's tests compare recorded stalls with the programs' own timings (within
# max(5 ms, 5%)): they run after the rest, alone, so the other suites' parallel load on a small
# machine does not deschedule the programs mid-job.
test-swift: deps venv
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	UNCLOG_VENV_PYTHON=$(CURDIR)/$(VPY) swift test --skip-build --skip SwiftRecorderTests $(SWIFT_BUILD_FLAGS)
	UNCLOG_VENV_PYTHON=$(CURDIR)/$(VPY) swift test --skip-build --filter SwiftRecorderTests $(SWIFT_BUILD_FLAGS)

test-python: build venv
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) -m pytest -q Tests/python

# The same tests with the pure-Python switch tracer instead of the native one (_fast.c).
test-python-pure: build venv
	UNCLOG_PURE_PYTHON=1 UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) -m pytest -q Tests/python

# The same tests against the oldest supported eventlet and gevent (requirements-compat.txt).
COMPAT_VENV := .venv-compat
$(COMPAT_VENV)/.stamp: requirements-compat.txt .deps-stamp
	@test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	@$(COMPAT_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-compat.txt
	@touch $@
test-python-compat: build $(COMPAT_VENV)/.stamp
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(COMPAT_VENV)/bin/python -m pytest -q Tests/python

fuzz-short: deps
	bash Fuzz/run.sh $(FUZZ_SECONDS)

fuzz: deps
	bash Fuzz/run.sh $${FUZZ_SECONDS:-600}

# valgrind: switch_bench.py counts instructions per switch under callgrind (load-independent)
BENCH_DEB_PACKAGES := valgrind
.build/.deps-bench-stamp: Makefile
	@$(call apt_install,$(BENCH_DEB_PACKAGES))
	@mkdir -p $(dir $@) && touch $@

bench: build venv .build/.deps-bench-stamp
	@mkdir -p .bench
	cc -O2 Benchmarks/sqlite-ceiling.c -lsqlite3 -o .bench/sqlite-ceiling
	swift build -c release --product unclog-bench $(SWIFT_BUILD_FLAGS)
	.build/release/unclog-bench --unclog $(UNCLOG) --ceiling .bench/sqlite-ceiling --out .bench
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) Benchmarks/python/switch_bench.py --instructions

clean:
	rm -rf .build .bench $(DEMO_DIR) .deps-stamp $(COMPAT_VENV)

# --- Swift recorder ---
# Per-job cost of the Swift recorder (.bench/swift.json: ns_per_job_added, slowdown): 1M
# Task.yield() across 100 tasks, recorded (LD_PRELOAD) vs not, same run. `make bench` runs it too.
.PHONY: bench-swift
bench: bench-swift
bench-swift: build
	@mkdir -p .bench
	swift build -c release --product UnclogPreload $(SWIFT_BUILD_FLAGS)
	Benchmarks/swift/bench.sh .bench
# --- end Swift recorder ---

# --- visualization ---
# Issue 5: notebooks/, `unclog export` (Perfetto), `unclog report` (HTML), `unclog diff`.
# Headless Chromium renders the HTML report in the Swift tests (Tests/UnclogReportTests) and
# in Tests/visualization, which also runs the notebooks (nbclient) on a recording of
# examples/eventlet_crawler.py; their Python packages are pinned in requirements-dev.txt.
VIS_DEB_PACKAGES := chromium fonts-dejavu-core
.PHONY: deps-visualization test-visualization notebooks
VIS_STAMP := .build/.deps-visualization-stamp
deps-visualization: $(VIS_STAMP)
$(VIS_STAMP): Makefile
	@$(call apt_install,$(VIS_DEB_PACKAGES))
	@mkdir -p $(dir $@) && touch $@
test-swift: deps-visualization
test: test-visualization
test-visualization: build venv deps-visualization
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) -m pytest -q Tests/visualization

# Runs every notebook against UNCLOG_DB (default: the `make demo` recording, made if missing)
# and writes them with their figures to .demo/notebooks/ (NAME.ipynb, and NAME.html to open).
UNCLOG_DB ?= $(DEMO_DIR)/crawler.db
notebooks: build venv
	@if [ ! -f "$(UNCLOG_DB)" ] && [ "$(UNCLOG_DB)" = "$(DEMO_DIR)/crawler.db" ]; then $(MAKE) --no-print-directory demo >/dev/null; fi
	$(VPY) notebooks/render.py --db $(UNCLOG_DB) --out $(DEMO_DIR)/notebooks
	@echo "open $(DEMO_DIR)/notebooks/*.html in a browser (or the .ipynb files in Jupyter)"
# --- end visualization ---
