# servebench: make demo | make test | make bench-<engine> | make report
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug
VENV := build/venv
PY := $(VENV)/bin/python
# The Python packages the tests use (DuckDB reads our files in the tests).
PY_PKGS := duckdb==2.0.0 pytz==2025.2

.PHONY: all build demo test test-fast lint fmt clean venv report bench-client fuzz

all: build

build:
	$(CARGO) build --bins

$(VENV)/.ok: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(PY_PKGS)
	touch $@

venv: $(VENV)/.ok

demo: build
	scripts/demo.sh

# Every test: unit tests, the integration binary, DuckDB checks; timing-accuracy tests run
# last and alone so that other tests do not disturb them.
test: venv
	export SERVEBENCH_PYTHON=$(abspath $(PY)); \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --no-fail-fast -E 'not test(/timing/)' && \
	  $(CARGO) nextest run --no-fail-fast -E 'test(/timing/)' -j 1; \
	else \
	  $(CARGO) test -- --skip timing && $(CARGO) test -- timing --test-threads 1; \
	fi

# A report from every requests file under runs/ (summaries, charts and HTML beside it).
report: build
	$(BIN)/report runs --slo ttft=500ms,tpot=50ms -o runs/report

# How exact and how fast replay (and mock-engine) are on this machine; see BENCHMARKS.md.
bench-client: venv
	$(CARGO) build --release --bins
	chmod +x scripts/bench-client.sh
	SERVEBENCH_PYTHON=$(abspath $(PY)) scripts/bench-client.sh

# Fuzz the parsers of outside input (not in CI; needs `cargo install cargo-fuzz`):
# FUZZ_SECONDS per target (default 60); findings in fuzz/artifacts/.
fuzz:
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) scripts/fuzz.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf target build runs/demo
