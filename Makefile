# unclog: two commands for a new user on a fresh Debian machine with the Swift toolchain:
#   make demo   installs what is missing, builds, records the bundled example, prints the stalls
#   make test   the whole test suite (what CI runs)
# Everything this Makefile uses is installed by it (Debian packages, the Python virtualenvs).
#
# Conventions: every aggregate target lists all its parts on its own line below; every
# "installed once" step leaves a stamp file in $(STAMPS) (a virtualenv's stamp lives inside
# it, so deleting the venv redoes it); Debian packages are installed through $(call apt_install,…).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
COMPAT_VENV := .venv-compat
SWIFT_BUILD_FLAGS ?=
UNCLOG := .build/release/unclog
FUZZ_SECONDS ?= 20
DEMO_DIR := .demo
STAMPS := .build/stamps

# Debian packages, by what needs them.
#   core: a C compiler (the Python recorder's native tracer, the C tests, the SQLite ceiling
#   benchmark), SQLite's headers and shell, zlib (the C tests check CRC-32 against it), venv support
DEB_PACKAGES := build-essential libsqlite3-dev sqlite3 zlib1g-dev python3-venv
#   the report tests render the HTML report in headless Chromium
VIS_DEB_PACKAGES := chromium fonts-dejavu-core
#   the benchmarks count instructions with callgrind
BENCH_DEB_PACKAGES := valgrind
#   `make lint` checks the C sources' formatting
LINT_DEB_PACKAGES := clang-format git

# ---- aggregate targets: each lists all its parts ----------------------------------------------
.PHONY: all help demo test bench
all: build

# The Swift recorder's timing tests (test-swift-recorder) compare recorded stalls with the
# programs' own timings: they run after the other Swift suites, alone, so the parallel load of
# those suites on a small machine does not deschedule the programs mid-job. The parts run in
# the order listed; do not run `make test` with -j.
test: lint test-c test-swift test-swift-recorder test-python test-python-pure test-python-compat test-visualization fuzz-short

bench: bench-core bench-python bench-swift

help:
	@echo "make demo     build, record the bundled crawler example, print its stalls"
	@echo "make test     the whole test suite: lint, C core, Swift, the Swift recorder, the Python"
	@echo "              recorder (both tracers, pinned and oldest supported eventlet/gevent),"
	@echo "              visualization, a short fuzz run"
	@echo "make bench    benchmarks (.bench/core.json, .bench/python.json, .bench/swift.json)"
	@echo "make fuzz     fuzz the trace reader for longer (FUZZ_SECONDS=600)"
	@echo "make notebooks  run the notebooks on UNCLOG_DB and render them to HTML"

# ---- installing what is missing ---------------------------------------------------------------
.PHONY: deps venv
# Shell text: installs those of the Debian packages $(1) that are missing (apt-get update only then).
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Python.h comes with the interpreter's own -dev package (python3-dev for Debian's python3).
PYTHON_DEV := $(shell $(PYTHON) -c 'import sysconfig, os; print("" if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else "python3-dev")' 2>/dev/null || echo python3-dev)

deps: $(STAMPS)/deps
$(STAMPS)/deps: Makefile
	@$(call apt_install,$(DEB_PACKAGES) $(PYTHON_DEV))
	@mkdir -p $(dir $@) && touch $@
$(STAMPS)/deps-visualization: Makefile
	@$(call apt_install,$(VIS_DEB_PACKAGES))
	@mkdir -p $(dir $@) && touch $@
$(STAMPS)/deps-lint: Makefile
	@$(call apt_install,$(LINT_DEB_PACKAGES))
	@mkdir -p $(dir $@) && touch $@
$(STAMPS)/deps-bench: Makefile
	@$(call apt_install,$(BENCH_DEB_PACKAGES))
	@mkdir -p $(dir $@) && touch $@

# The project's virtualenv with the pinned runtimes; rebuilt when requirements-dev.txt changes.
venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements-dev.txt $(STAMPS)/deps
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The oldest supported eventlet and gevent (requirements-compat.txt).
$(COMPAT_VENV)/.stamp: requirements-compat.txt $(STAMPS)/deps
	@test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	@$(COMPAT_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-compat.txt
	@touch $@

# ---- building -----------------------------------------------------------------------------------
.PHONY: build build-debug clean
build: deps
	swift build -c release $(SWIFT_BUILD_FLAGS)

build-debug: deps
	swift build $(SWIFT_BUILD_FLAGS)

clean:
	rm -rf .build .bench $(DEMO_DIR) $(COMPAT_VENV)

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

# Runs every notebook against UNCLOG_DB (default: the `make demo` recording, made if missing)
# and writes them with their figures to .demo/notebooks/ (NAME.ipynb, and NAME.html to open).
.PHONY: notebooks
UNCLOG_DB ?= $(DEMO_DIR)/crawler.db
notebooks: build venv
	@if [ ! -f "$(UNCLOG_DB)" ] && [ "$(UNCLOG_DB)" = "$(DEMO_DIR)/crawler.db" ]; then $(MAKE) --no-print-directory demo >/dev/null; fi
	$(VPY) notebooks/render.py --db $(UNCLOG_DB) --out $(DEMO_DIR)/notebooks
	@echo "open $(DEMO_DIR)/notebooks/*.html in a browser (or the .ipynb files in Jupyter)"

# ---- the parts of `make test` -------------------------------------------------------------------
.PHONY: lint test-c test-swift test-swift-recorder test-python test-python-pure test-python-compat test-visualization fuzz-short fuzz

# Formatting and lint, by the configs at the top level: .swift-format (the toolchain's
# swift-format), .clang-format (Debian's clang-format), ruff.toml (ruff, pinned in the venv).
C_SOURCES = $(shell git ls-files '*.c' '*.h')
lint: venv $(STAMPS)/deps-lint
	swift format lint --strict --recursive --parallel Package.swift Sources Tests Benchmarks Fuzz Integrations
	clang-format --dry-run --Werror $(C_SOURCES)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .

# The Swift recorder's pure C parts (CRC-32 against zlib, varints, the clock), without SwiftPM.
RECORDER_C := Sources/CUnclogSwiftRecorder
test-c: deps
	@mkdir -p .build/c-tests
	cc -O2 -std=gnu11 -Wall -Wextra -DUNCLOG_PURE_CORE -I $(RECORDER_C) -I $(RECORDER_C)/include \
	  Tests/CRecorderCore/core_test.c $(RECORDER_C)/crc32.c $(RECORDER_C)/clock.c -lz -o .build/c-tests/core_test
	.build/c-tests/core_test

.PHONY: build-tests
build-tests: deps
	swift build --build-tests $(SWIFT_BUILD_FLAGS)

test-swift: build-tests venv $(STAMPS)/deps-visualization
	UNCLOG_VENV_PYTHON=$(CURDIR)/$(VPY) swift test --skip-build --skip SwiftRecorderTests $(SWIFT_BUILD_FLAGS)

test-swift-recorder: build-tests venv
	UNCLOG_VENV_PYTHON=$(CURDIR)/$(VPY) swift test --skip-build --filter SwiftRecorderTests $(SWIFT_BUILD_FLAGS)

test-python: build venv
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) -m pytest -q Tests/python

# The same tests with the pure-Python greenlet tracer (the fallback on hosts without a compiler).
test-python-pure: build venv
	UNCLOG_PURE_PYTHON=1 UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) -m pytest -q Tests/python

test-python-compat: build $(COMPAT_VENV)/.stamp
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(COMPAT_VENV)/bin/python -m pytest -q Tests/python

# Export, report and notebooks (nbclient) on a recording of examples/eventlet_crawler.py;
# Chromium renders the HTML report.
test-visualization: build venv $(STAMPS)/deps-visualization
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) -m pytest -q Tests/visualization

fuzz-short: deps
	bash Fuzz/run.sh $(FUZZ_SECONDS)

fuzz: deps
	bash Fuzz/run.sh $${FUZZ_SECONDS:-600}

# ---- the parts of `make bench` (results in .bench/, figures in docs/benchmarks.md) -------------
.PHONY: bench-core bench-python bench-swift
# Import and query speed on a synthetic 10M-event trace, against SQLite's raw insert ceiling.
bench-core: build deps
	@mkdir -p .bench
	cc -O2 Benchmarks/sqlite-ceiling.c -lsqlite3 -o .bench/sqlite-ceiling
	swift build -c release --product unclog-bench $(SWIFT_BUILD_FLAGS)
	.build/release/unclog-bench --unclog $(UNCLOG) --ceiling .bench/sqlite-ceiling --out .bench

# The Python recorder's cost per switch: CPU time and instructions (callgrind), .bench/python.json.
bench-python: build venv $(STAMPS)/deps-bench
	@mkdir -p .bench
	UNCLOG_BIN=$(CURDIR)/$(UNCLOG) $(VPY) Benchmarks/python/switch_bench.py --instructions

# The Swift recorder's cost per job: 1M Task.yield() across 100 tasks, recorded (LD_PRELOAD) vs
# not, same run (.bench/swift.json).
bench-swift: build
	@mkdir -p .bench
	swift build -c release --product UnclogPreload $(SWIFT_BUILD_FLAGS)
	Benchmarks/swift/bench.sh .bench
