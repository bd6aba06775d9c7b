#!/usr/bin/env bash
# One engine benchmarked (make bench-ENGINE): for each quantization variant, engine-up, gpumon
# (when a GPU is present) and enginemon (when built) in the background, then for every prompt
# category either
#   MODE=sweep (the default): the capacity search (`sweep`): the highest open-loop request rate
#        meeting $SLO, with its 95% interval (and its price with GPU_HOUR_COST), or
#   MODE=grid: the fixed grid of configs/sweep.env (every concurrency level and Poisson rate);
# then, while the engine is still up, the quality tool once per variant (the evaluation set through
# the same endpoint; the first quant is the baseline and every later one is compared with it);
# engine-down; then agg, chart and report. Everything goes under runs/<date>-<engine>/:
#   sweep/LABEL-CATEGORY/step=N/requests.parquet, sweep/LABEL-CATEGORY/capacity.parquet  (sweep)
#   requests/LABEL-CATEGORY-cN.parquet, requests/LABEL-CATEGORY-rR.parquet   (grid: replay)
#   engine/LABEL.json, engine/LABEL.log       (engine-up's state and the engine's log)
#   engine/metrics-LABEL.parquet              (enginemon)   gpu.parquet (gpumon)
#   quality/LABEL.parquet, quality/LABEL.log  (quality: the variant's rows and its stderr)
#   quality/LABEL-vs-BASELABEL.json           (quality --baseline: the measures with intervals)
#   summary.parquet, summary.md, charts/      (agg, chart)   report/ (report.md, report.html)
# LABEL is ENGINE-QUANT. Ctrl-C (or SIGTERM) stops the monitors and the engine.
#
# usage: scripts/bench.sh ENGINE
# env:   MODE (sweep or grid), MODEL (engines.toml model variant or id), QUANTS, PORT (default 0:
#        a free one), UP_ARGS (more engine-up arguments, e.g. "--container"), RUN_DIR, BIN
#        (target/debug), the grid's variables (configs/sweep.env: SLO, CATEGORIES, OUTPUT_LEN,
#        SEED... are shared) and the search's:
#        SWEEP_SLO (ttft_p99=500ms,tpot_p99=50ms), SWEEP_STEP (length of a step: 30s, 3s on
#        the mock), SWEEP_WARMUP (10s, 1s), SWEEP_START
#        (first rate, req/s: 1, 8), SWEEP_TOLERANCE (0.05), SWEEP_REPEATS (1), SWEEP_ARGS (more
#        sweep arguments, e.g. "--attainment 0.99"), GPU_HOUR_COST (USD, for the cost line),
#        QUALITY (1; 0 skips the quality tool), QUALITY_API (the protocol it speaks: completions
#        for the OpenAI servers, tgi, sglang, llamacpp native; see below), QUALITY_ARGS (more
#        quality arguments, e.g. "--top-k 5 --set FILE"). An engine whose protocol returns no
#        log probabilities makes the tool exit 2: bench reports it and goes on.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${1:?usage: scripts/bench.sh ENGINE}
BIN=${BIN:-target/debug}
. configs/sweep.env
qvar="QUANTS_${ENGINE//-/_}"
QUANTS=${QUANTS:-${!qvar:-}}
PORT=${PORT:-0}
MODE=${MODE:-sweep}
case "$ENGINE" in
  mock | mock-b) : "${SWEEP_STEP=3s}" "${SWEEP_WARMUP=1s}" "${SWEEP_START=8}" ;;
  *) : "${SWEEP_STEP=30s}" "${SWEEP_WARMUP=10s}" "${SWEEP_START=1}" ;;
esac
: "${SWEEP_TOLERANCE=0.05}" "${SWEEP_REPEATS=1}"
# the quality tool's protocol: the one that scores a given text where the engine has one
case "$ENGINE" in
  tgi) : "${QUALITY_API=tgi}" ;;
  sglang) : "${QUALITY_API=sglang}" ;;
  llamacpp) : "${QUALITY_API=llamacpp}" ;;
  ollama) : "${QUALITY_API=ollama}" ;;
  *) : "${QUALITY_API=completions}" ;;
esac
: "${QUALITY=1}"
# the search's SLO: limits on percentiles (or per-request limits with SWEEP_ARGS="--attainment A")
: "${SWEEP_SLO=ttft_p99=500ms,tpot_p99=50ms}"
RUN="${RUN_DIR:-runs/$(date +%Y%m%d-%H%M%S)-$ENGINE}"
mkdir -p "$RUN/requests" "$RUN/sweep" "$RUN/engine" "$RUN/quality"
# A state directory of its own: engine-down --all on exit touches only this run's engine.
export SERVEBENCH_STATE_DIR="$RUN/.engines"

say() { echo "bench: $*" >&2; }
GPUMON_PID=""
ENGINEMON_PID=""

stop_pid() { # stop a background monitor: SIGTERM, then wait for it to write its file
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

cleanup() {
  trap - INT TERM EXIT
  stop_pid "$ENGINEMON_PID"
  stop_pid "$GPUMON_PID"
  "$BIN/engine-down" --all >&2 || true
}
trap 'say "interrupted; stopping the engine"; cleanup; exit 130' INT
trap 'say "terminated; stopping the engine"; cleanup; exit 143' TERM
trap cleanup EXIT

case "$MODE" in
  sweep | grid) ;;
  *) say "MODE must be sweep (the capacity search, the default) or grid (the fixed grid), not '$MODE'"; exit 2 ;;
esac
for b in engine-up engine-down tracegen replay sweep agg chart report; do
  [ -x "$BIN/$b" ] || { say "$BIN/$b is missing; run 'make build' first"; exit 2; }
done
[ -n "$QUANTS" ] || { say "no quantization variants for $ENGINE: set QUANTS or QUANTS_$ENGINE in configs/sweep.env"; exit 2; }
if [ "$MODE" = sweep ]; then
  say "$ENGINE: capacity search at $SWEEP_SLO, quants [$QUANTS], categories [$CATEGORIES], steps of $SWEEP_STEP from $SWEEP_START req/s to ${SWEEP_TOLERANCE} tolerance; files in $RUN"
else
  say "$ENGINE: quants [$QUANTS], concurrency [$CONCURRENCY], rates [$RATES]/s, categories [$CATEGORIES]; files in $RUN"
fi

# GPU samples for the whole run; gpumon exits 2 at once without an NVIDIA driver.
if [ -x "$BIN/gpumon" ]; then
  "$BIN/gpumon" -o "$RUN/gpu.parquet" 2>"$RUN/gpumon.log" &
  pid=$!
  sleep 1
  if kill -0 "$pid" 2>/dev/null; then
    GPUMON_PID=$pid
    say "gpumon sampling into $RUN/gpu.parquet"
  else
    rc=0; wait "$pid" || rc=$?
    say "no GPU samples (gpumon exited $rc: $(head -c 200 "$RUN/gpumon.log"))"
  fi
fi

# the sweep's lists, split into arrays once (words, never globs)
read -ra QUANT_LIST <<< "$QUANTS"
read -ra CATEGORY_LIST <<< "$CATEGORIES"
read -ra CONCURRENCY_LIST <<< "$CONCURRENCY"
read -ra RATE_LIST <<< "$RATES"
read -ra UP_ARG_LIST <<< "${UP_ARGS:-}"
read -ra SWEEP_ARG_LIST <<< "${SWEEP_ARGS:-}"
read -ra QUALITY_ARG_LIST <<< "${QUALITY_ARGS:-}"
QUALITY_BASE=""   # the first variant's quality file, once measured
QUALITY_BASE_LABEL=""
FIRST_QUANT=1
cost_args=()
[ -n "${GPU_HOUR_COST:-}" ] && cost_args=(--gpu-hour-cost "$GPU_HOUR_COST")
for quant in "${QUANT_LIST[@]}"; do
  label="$ENGINE-$quant"
  say "$label: starting"
  model_args=()
  [ -n "${MODEL:-}" ] && model_args=(--model "$MODEL")
  URL=$("$BIN/engine-up" "$ENGINE" "${model_args[@]}" --quant "$quant" --port "$PORT" "${UP_ARG_LIST[@]}")
  cp "$SERVEBENCH_STATE_DIR/$ENGINE.json" "$RUN/engine/$label.json"
  if [ -x "$BIN/enginemon" ]; then
    # --engine reads the metrics endpoint from engine-up's state (TRT-LLM and Friendli serve
    # theirs apart from the API)
    "$BIN/enginemon" --engine "$ENGINE" -o "$RUN/engine/metrics-$label.parquet" 2>>"$RUN/engine/enginemon.log" &
    ENGINEMON_PID=$!
  fi
  for cat in "${CATEGORY_LIST[@]}"; do
    if [ "$MODE" = sweep ]; then
      # the category's prompts, Poisson arrivals (sweep re-times them to each step's rate)
      "$BIN/tracegen" poisson --rate 1 --count 5000 --prompts --category "$cat" \
          --output-len "$OUTPUT_LEN" --seed "$SEED" \
        | "$BIN/sweep" --engine "$ENGINE" --label "$label" --quant "$quant" --slo "$SWEEP_SLO" \
            --step "$SWEEP_STEP" --warmup "$SWEEP_WARMUP" --start-rate "$SWEEP_START" \
            --tolerance "$SWEEP_TOLERANCE" --repeats "$SWEEP_REPEATS" --seed "$SEED" \
            "${cost_args[@]}" "${SWEEP_ARG_LIST[@]}" --quiet -o "$RUN/sweep/$label-$cat"
      say "$label: $cat done"
      continue
    fi
    for c in "${CONCURRENCY_LIST[@]}"; do
      n=$(( c * REQS_PER_USER )); (( n < MIN_REQS )) && n=$MIN_REQS
      "$BIN/tracegen" batch --count "$n" --prompts --category "$cat" --output-len "$OUTPUT_LEN" --seed "$SEED" \
        | "$BIN/replay" --engine "$ENGINE" --concurrency "$c" --warmup "$WARMUP" --label "$label" --quiet \
            -o "$RUN/requests/$label-$cat-c$c.parquet"
    done
    for r in "${RATE_LIST[@]}"; do
      "$BIN/tracegen" poisson --rate "$r" --duration "$POISSON_DURATION" --prompts --category "$cat" \
          --output-len "$OUTPUT_LEN" --seed "$SEED" \
        | "$BIN/replay" --engine "$ENGINE" --label "$label" --quiet -o "$RUN/requests/$label-$cat-r$r.parquet"
    done
    say "$label: $cat done"
  done
  stop_pid "$ENGINEMON_PID"; ENGINEMON_PID=""
  # quality through the same endpoint, while the engine is up (the first quant is the baseline)
  if [ "$QUALITY" != 0 ] && [ -x "$BIN/quality" ]; then
    qout="$RUN/quality/$label.parquet"
    rc=0
    "$BIN/quality" --engine "$ENGINE" --api "$QUALITY_API" --label "$label" --quant "$quant" \
        "${QUALITY_ARG_LIST[@]}" -o "$qout" 2>"$RUN/quality/$label.log" || rc=$?
    if [ "$rc" = 0 ]; then
      if [ "$FIRST_QUANT" = 1 ]; then
        QUALITY_BASE=$qout; QUALITY_BASE_LABEL=$label
        say "$label: quality measured (the baseline): $qout"
      elif [ -n "$QUALITY_BASE" ]; then
        qcmp="$RUN/quality/$label-vs-$QUALITY_BASE_LABEL.json"
        if "$BIN/quality" --baseline "$QUALITY_BASE" "$qout" > "$qcmp" 2>>"$RUN/quality/$label.log"; then
          say "$label: quality against $QUALITY_BASE_LABEL: $qcmp"
        else
          say "$label: quality --baseline failed: $(tail -c 300 "$RUN/quality/$label.log")"
        fi
      else
        say "$label: quality measured; no baseline to compare with (the first variant's failed)"
      fi
    else
      rm -f "$qout"
      say "$label: quality exited $rc, the sweep goes on: $(tail -c 300 "$RUN/quality/$label.log")"
    fi
  elif [ "$QUALITY" != 0 ]; then
    say "$BIN/quality is missing: no quality measured (run 'make build')"
  fi
  FIRST_QUANT=0
  cp "$SERVEBENCH_STATE_DIR/$ENGINE.log" "$RUN/engine/$label.log" 2>/dev/null || true
  "$BIN/engine-down" "$ENGINE" >&2
done
stop_pid "$GPUMON_PID"; GPUMON_PID=""

mon_args=()
[ -s "$RUN/gpu.parquet" ] && mon_args+=(--gpu "$RUN/gpu.parquet")
ls "$RUN"/engine/metrics-*.parquet >/dev/null 2>&1 && mon_args+=(--engine-metrics "$RUN/engine")
if [ "$MODE" = sweep ]; then
  # every step's requests (agg groups them by step rate), the capacity files beside them
  data="$RUN/sweep"; cap_args=(--capacity "$RUN/sweep")
else
  data="$RUN/requests"; cap_args=()
fi
qual_args=()
ls "$RUN"/quality/*.parquet >/dev/null 2>&1 && qual_args=(--quality "$RUN/quality")
agg_args=("$data" --by category --slo "$SLO" "${mon_args[@]}")
"$BIN/agg" "${agg_args[@]}" -o "$RUN/summary.parquet"
"$BIN/agg" "${agg_args[@]}" --format md > "$RUN/summary.md"
title="$ENGINE ${MODEL:-(default model)}: quants $QUANTS, output $OUTPUT_LEN tokens"
"$BIN/chart" "$RUN/summary.parquet" "${cap_args[@]}" --requests "$data" "${mon_args[@]}" -o "$RUN/charts" --title "$title" 2>/dev/null
"$BIN/report" "$data" --slo "$SLO" "${mon_args[@]}" "${qual_args[@]}" -o "$RUN/report" --title "servebench: $ENGINE" --subtitle "$title"
say "done: $RUN (summary.md, summary.parquet, charts/, report/report.html)"
