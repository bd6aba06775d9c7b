# servebench: make demo | make test | make bench-<engine> | make report
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug
VENV := build/venv
PY := $(VENV)/bin/python
# The Python packages the tests use (DuckDB reads our files; numpy checks agg's percentiles;
# pyspark runs docs/queries.md's Spark SQL, with a Java runtime from spark-deps).
PY_PKGS := duckdb==2.0.0 pytz==2025.2 numpy==2.4.6 pyspark==4.3.0 py4j==0.10.9.9

.PHONY: all build demo test test-fast lint fmt clean venv spark-deps chromium report bench-client bench-agg bench-sweep fuzz
.PHONY: real-vllm real-llamacpp test-real bench-mock bench-vllm bench-sglang bench-tgi bench-trtllm bench-friendli bench-llamacpp bench-all

all: build

build:
	$(CARGO) build --bins

$(VENV)/.ok: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(PY_PKGS)
	touch $@

venv: $(VENV)/.ok

# What the Spark test needs besides the venv: a Java 17+ runtime (Debian's headless JRE,
# installed with apt-get when `java` is missing or older; nothing to do otherwise).
spark-deps: venv
	scripts/install-jre.sh

# What the report's browser test needs (tests/it/browser.rs): Debian's Chromium, installed
# with apt-get when `chromium` does not run (nothing to do otherwise; ~300 MB).
chromium:
	scripts/install-chromium.sh

# The whole pipeline on mock-engine's simulated mode, the capacity search included (under 3
# minutes after the build; README gives the measured figure).
demo: build
	scripts/demo.sh

# Every test: unit tests, the integration binary, DuckDB and Spark checks, the report in a
# headless Chromium; timing-accuracy tests run last and alone so that other tests do not
# disturb them.
test: venv spark-deps chromium real-vllm real-llamacpp
	export SERVEBENCH_PYTHON=$(abspath $(PY)); \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --no-fail-fast -E 'not test(/timing/) and not test(/real_/)' && \
	  $(CARGO) nextest run --no-fail-fast -E 'test(/timing/)' -j 1; \
	else \
	  $(CARGO) test -- --skip timing --skip real_ && $(CARGO) test -- timing --test-threads 1; \
	fi
	$(MAKE) test-real

# A report from every requests file under runs/ (summaries, charts and HTML beside it).
report: build
	$(BIN)/report runs --slo ttft=500ms,tpot=50ms -o runs/report

# How exact and how fast replay (and mock-engine) are on this machine; see BENCHMARKS.md.
# QUICK=1 shorter; SECTIONS=f only replay beside the bare reader, SECTIONS=g only https beside
# http (needs openssl for the run's certificate); BASE_BIN=dir adds an earlier build's replay to
# section (f) for a before/after in one run.
bench-client: venv
	$(CARGO) build --release --bins --example bare_reader
	chmod +x scripts/bench-client.sh
	SERVEBENCH_PYTHON=$(abspath $(PY)) scripts/bench-client.sh

# agg against DuckDB on a generated dataset (ROWS=100000000 by default; ROWS=10000000 for the
# 10 M-row figure); see BENCHMARKS.md.
bench-agg: venv
	$(CARGO) build --release --bins
	chmod +x scripts/bench-agg.sh
	SERVEBENCH_PYTHON=$(abspath $(PY)) scripts/bench-agg.sh

# A capacity search (sweep) against a fixed 10-point rate grid of the same step length, on
# mock-engine --slots; STEP/WARMUP (8s/2s), START (sweep --start-rate), PROBE (sweep --probe,
# 1 = no probes); see BENCHMARKS.md.
bench-sweep:
	chmod +x scripts/bench-sweep.sh
	START=$(or $(START),1) PROBE=$(or $(PROBE),0.25) scripts/bench-sweep.sh $(or $(STEP),8s) $(or $(WARMUP),2s)

# Fuzz the parsers of outside input (not in CI; needs `cargo install cargo-fuzz`):
# FUZZ_SECONDS per target (default 60), or FUZZ_RUNS executions per target (FUZZ_RUNS=10000000
# for BENCHMARKS.md's figures); FUZZ_TARGETS="a b" for some; findings in fuzz/artifacts/.
fuzz:
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),$(if $(FUZZ_RUNS),0,60)) FUZZ_RUNS=$(FUZZ_RUNS) scripts/fuzz.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf target build runs/demo

# A real engine: the CPU build of vLLM (PyPI, ~4 GB) serving a tiny dummy-weight Llama, under
# build/real-vllm (kept between runs). The real-engine tests (names with real_) run alone;
# here they fail instead of skipping when the install is missing.
REAL_VLLM := build/real-vllm

$(REAL_VLLM)/.ok:
	scripts/real-vllm/install.sh $(REAL_VLLM)

real-vllm: $(REAL_VLLM)/.ok

# A second real engine: llama.cpp's llama-server, built once per machine from the sources in
# PyPI's llama-cpp-python sdist (about 25 minutes on 2 cores; a cache outside the clone,
# $$SERVEBENCH_CACHE or ~/.cache/servebench, keeps it for every clone), and a tiny random-weight
# Llama as F16, Q8_0 and Q4_K_M GGUFs under build/real-llamacpp (seconds). Always run: the
# script returns at once when both its markers are there.
REAL_LLAMACPP := build/real-llamacpp

real-llamacpp:
	scripts/real-llamacpp/install.sh $(REAL_LLAMACPP)

test-real: real-vllm real-llamacpp
	export SERVEBENCH_REQUIRE_REAL_VLLM=1 SERVEBENCH_REQUIRE_REAL_LLAMACPP=1; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --no-fail-fast -E 'test(/real_/)' -j 1; \
	else \
	  $(CARGO) test -- real_ --test-threads 1 --nocapture; \
	fi

# One engine benchmarked by scripts/bench.sh, files in runs/DATE-ENGINE/: by default the capacity
# search (sweep) per quant and prompt category; MODE=grid runs the fixed grid of configs/sweep.env
# instead. MODEL=..., QUANTS="...", SWEEP_SLO=..., SWEEP_STEP=..., GPU_HOUR_COST=... (and for the
# grid CONCURRENCY="...", RATES="...") override the defaults.
bench-mock bench-vllm bench-sglang bench-tgi bench-trtllm bench-friendli: bench-%: build
	scripts/bench.sh $*

# llama.cpp: MODEL=cpu-tiny (make real-llamacpp's tiny GGUFs on this CPU) is the default when no
# GPU is present (no nvidia-smi), with a sweep sized for it: one prompt category, 32 output
# tokens, steps of 4 s, 10 s of drain, a loose SLO; a few minutes for the three quants. Each can
# be set from the environment. With a GPU the default stays the engine's (Llama 3.1 8B).
LLAMACPP_MODEL := $(or $(MODEL),$(if $(shell command -v nvidia-smi 2>/dev/null),,cpu-tiny))
TINY_BENCH_ENV := MODEL=cpu-tiny CATEGORIES="$${CATEGORIES-short}" OUTPUT_LEN="$${OUTPUT_LEN-32}" \
  SWEEP_STEP="$${SWEEP_STEP-4s}" SWEEP_WARMUP="$${SWEEP_WARMUP-1s}" SWEEP_TOLERANCE="$${SWEEP_TOLERANCE-0.1}" \
  SWEEP_SLO="$${SWEEP_SLO-ttft_p99=1s,tpot_p99=100ms}" SLO="$${SLO-ttft=1s,tpot=100ms}" \
  SWEEP_ARGS="$${SWEEP_ARGS---drain 10s}"
bench-llamacpp: build $(if $(filter cpu-tiny,$(LLAMACPP_MODEL)),real-llamacpp)
	$(if $(filter cpu-tiny,$(LLAMACPP_MODEL)),$(TINY_BENCH_ENV)) scripts/bench.sh llamacpp

# Every real engine in turn (one at a time), continuing past failures.
BENCH_ENGINES ?= vllm sglang tgi trtllm friendli llamacpp
bench-all: build
	@failed=""; for e in $(BENCH_ENGINES); do scripts/bench.sh $$e || failed="$$failed $$e"; done; \
	if [ -n "$$failed" ]; then echo "bench-all: failed:$$failed" >&2; exit 1; fi
