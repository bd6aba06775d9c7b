#!/usr/bin/env bash
# The whole pipeline on the built-in mock engine: two simulated engines, two quantizations
# each, a concurrency sweep (1, 10, 50, 100 users) and a Poisson run per setting, and for the
# FP8 variants the capacity search (sweep: the highest Poisson rate meeting p99 TTFT <= 500 ms
# and p99 TPOT <= 50 ms, in 2 s steps, priced at an example $2.50 per GPU-hour), with enginemon
# and gpumon (scripted GPUs following the mock's load) beside them; then agg, the report
# (capacity table, summary, charts, winners, quantization, recommendations) and the summary
# table. Output under runs/demo/ (the search's steps under runs/demo/sweep/LABEL/).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug}
OUT=${OUT:-runs/demo}
export SERVEBENCH_STATE_DIR=${SERVEBENCH_STATE_DIR:-$OUT/.engines}
rm -rf "$OUT"
mkdir -p "$OUT/requests" "$OUT/monitors" "$OUT/sweep"
MON=()
stop_monitors() { for p in "${MON[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; for p in "${MON[@]}"; do wait "$p" 2>/dev/null || true; done; MON=(); }
trap 'stop_monitors; "$BIN/engine-down" --all >/dev/null 2>&1 || true' EXIT

OUT_LEN=128
# the capacity search's trace: Poisson arrivals of ~512-token prompts, re-timed by sweep to
# each step's rate
"$BIN/tracegen" poisson --rate 1 --count 4000 --input-len uniform:512:0.25 --output-len "$OUT_LEN" --seed 7 \
  -o "$OUT/sweep-trace.parquet" 2>/dev/null
for setting in "mock fp16" "mock fp8" "mock-b fp16" "mock-b fp8"; do
  set -- $setting; engine=$1; quant=$2
  label="$engine-$quant"
  URL=$("$BIN/engine-up" "$engine" --quant "$quant" --port 0)
  echo "demo: $label at $URL" >&2
  # the engine's own view (mock-engine serves /metrics in vLLM's names) and GPU samples
  # (scripted devices that follow the mock's running requests, marked synthetic: this
  # machine has no GPU; on a GPU host drop --fake and --fake-load)
  "$BIN/enginemon" --engine "$engine" --interval 250ms -o "$OUT/monitors/engine-$label.parquet" 2>/dev/null & MON+=($!)
  "$BIN/gpumon" --fake 1 --fake-load "$URL" --interval 200ms -o "$OUT/monitors/gpu-$label.parquet" 2>/dev/null & MON+=($!)
  for c in 1 10 50 100; do
    n=$(( c == 1 ? 8 : 3 * c ))
    "$BIN/tracegen" batch --count $n --prompts --output-len "$OUT_LEN" --seed $c \
      | "$BIN/replay" --engine "$engine" --concurrency $c --label "$label" --warmup 2 --quiet \
          -o "$OUT/requests/$label-c$c.parquet"
  done
  "$BIN/tracegen" poisson --rate 25 --duration 6s --input-len uniform:512:0.25 --output-len "$OUT_LEN" --seed 7 \
    | "$BIN/replay" --engine "$engine" --label "$label" --quiet -o "$OUT/requests/$label-poisson.parquet"
  if [ "$quant" = fp8 ]; then
    "$BIN/sweep" "$OUT/sweep-trace.parquet" --engine "$engine" --label "$label" --quant "$quant" \
      --slo ttft_p99=500ms,tpot_p99=50ms --step 2s --warmup 1s --start-rate 16 --tolerance 0.1 --drain 5s \
      --seed 7 --gpu-hour-cost 2.5 -o "$OUT/sweep/$label"
  fi
  stop_monitors
  "$BIN/engine-down" "$engine" >&2
done

SUB="mock-engine (simulated); closed loop: built-in prompts (short, medium, long, code); open loop: ~512 tokens; output $OUT_LEN tokens"
MONS=(--gpu "$OUT/monitors" --engine-metrics "$OUT/monitors")
"$BIN/agg" "$OUT/requests" --slo ttft=500ms,tpot=50ms "${MONS[@]}" -o "$OUT/summary.parquet"
"$BIN/report" "$OUT/requests" --capacity "$OUT/sweep" --slo ttft=500ms,tpot=50ms "${MONS[@]}" -o "$OUT/report" \
  --title "servebench demo: two simulated engines, two quantizations each" --subtitle "$SUB"
"$BIN/agg" "$OUT/requests" --slo ttft=500ms,tpot=50ms --format md
echo "demo: requests in $OUT/requests, capacity searches in $OUT/sweep, summary in $OUT/summary.parquet, report in $OUT/report/report.md (and .html, charts/)" >&2
