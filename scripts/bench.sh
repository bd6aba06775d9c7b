#!/usr/bin/env bash
# One engine through the sweep of configs/sweep.env (make bench-ENGINE): for each quantization
# variant, engine-up, gpumon (when a GPU is present) and enginemon (when built) in the
# background, replay over every concurrency level and Poisson rate for every prompt category,
# engine-down; then agg and chart. Everything goes under runs/<date>-<engine>/:
#   requests/LABEL-CATEGORY-cN.parquet, requests/LABEL-CATEGORY-rR.parquet   (replay)
#   engine/LABEL.json, engine/LABEL.log       (engine-up's state and the engine's log)
#   engine/metrics-LABEL.parquet              (enginemon)   gpu.parquet (gpumon)
#   summary.parquet, summary.md, charts/      (agg, chart)   report/ (report.md, report.html)
# LABEL is ENGINE-QUANT. Ctrl-C (or SIGTERM) stops the monitors and the engine.
#
# usage: scripts/bench.sh ENGINE
# env:   MODEL (engines.toml model variant or id), QUANTS, PORT (default 0: a free one),
#        UP_ARGS (more engine-up arguments, e.g. "--container"), RUN_DIR, BIN (target/debug),
#        and the sweep's variables (configs/sweep.env).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${1:?usage: scripts/bench.sh ENGINE}
BIN=${BIN:-target/debug}
. configs/sweep.env
qvar="QUANTS_${ENGINE//-/_}"
QUANTS=${QUANTS:-${!qvar:-}}
PORT=${PORT:-0}
RUN="${RUN_DIR:-runs/$(date +%Y%m%d-%H%M%S)-$ENGINE}"
mkdir -p "$RUN/requests" "$RUN/engine"
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

for b in engine-up engine-down tracegen replay agg chart report; do
  [ -x "$BIN/$b" ] || { say "$BIN/$b is missing; run 'make build' first"; exit 2; }
done
[ -n "$QUANTS" ] || { say "no quantization variants for $ENGINE: set QUANTS or QUANTS_$ENGINE in configs/sweep.env"; exit 2; }
say "$ENGINE: quants [$QUANTS], concurrency [$CONCURRENCY], rates [$RATES]/s, categories [$CATEGORIES]; files in $RUN"

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
  cp "$SERVEBENCH_STATE_DIR/$ENGINE.log" "$RUN/engine/$label.log" 2>/dev/null || true
  "$BIN/engine-down" "$ENGINE" >&2
done
stop_pid "$GPUMON_PID"; GPUMON_PID=""

mon_args=()
[ -s "$RUN/gpu.parquet" ] && mon_args+=(--gpu "$RUN/gpu.parquet")
ls "$RUN"/engine/metrics-*.parquet >/dev/null 2>&1 && mon_args+=(--engine-metrics "$RUN/engine")
agg_args=("$RUN/requests" --by category --slo "$SLO" "${mon_args[@]}")
"$BIN/agg" "${agg_args[@]}" -o "$RUN/summary.parquet"
"$BIN/agg" "${agg_args[@]}" --format md > "$RUN/summary.md"
title="$ENGINE ${MODEL:-(default model)}: quants $QUANTS, output $OUTPUT_LEN tokens"
"$BIN/chart" "$RUN/summary.parquet" --requests "$RUN/requests" "${mon_args[@]}" -o "$RUN/charts" --title "$title" 2>/dev/null
"$BIN/report" "$RUN/requests" --slo "$SLO" "${mon_args[@]}" -o "$RUN/report" --title "servebench: $ENGINE" --subtitle "$title"
say "done: $RUN (summary.md, summary.parquet, charts/, report/report.html)"
