#!/usr/bin/env bash
# The whole pipeline on the built-in mock engine: two simulated engines, two quantizations
# each, a concurrency sweep (1, 10, 50, 100 users) and a Poisson run per setting, with
# enginemon and gpumon (scripted GPUs following the mock's load) beside them; then agg, the
# report (summary, charts, winners, quantization, recommendations) and the summary table.
# Output under runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug}
OUT=${OUT:-runs/demo}
export SERVEBENCH_STATE_DIR=${SERVEBENCH_STATE_DIR:-$OUT/.engines}
rm -rf "$OUT"
mkdir -p "$OUT/requests" "$OUT/monitors"
MON=()
stop_monitors() { for p in "${MON[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; for p in "${MON[@]}"; do wait "$p" 2>/dev/null || true; done; MON=(); }
trap 'stop_monitors; "$BIN/engine-down" --all >/dev/null 2>&1 || true' EXIT

OUT_LEN=128
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
  "$BIN/tracegen" poisson --rate 25 --duration 10s --input-len uniform:512:0.25 --output-len "$OUT_LEN" --seed 7 \
    | "$BIN/replay" --engine "$engine" --label "$label" --quiet -o "$OUT/requests/$label-poisson.parquet"
  stop_monitors
  "$BIN/engine-down" "$engine" >&2
done

SUB="mock-engine (simulated); closed loop: built-in prompts (short, medium, long, code); open loop: ~512 tokens; output $OUT_LEN tokens"
MONS=(--gpu "$OUT/monitors" --engine-metrics "$OUT/monitors")
"$BIN/agg" "$OUT/requests" --slo ttft=500ms,tpot=50ms "${MONS[@]}" -o "$OUT/summary.parquet"
"$BIN/report" "$OUT/requests" --slo ttft=500ms,tpot=50ms "${MONS[@]}" -o "$OUT/report" \
  --title "servebench demo: two simulated engines, two quantizations each" --subtitle "$SUB"
"$BIN/agg" "$OUT/requests" --slo ttft=500ms,tpot=50ms --format md
echo "demo: requests in $OUT/requests, summary in $OUT/summary.parquet, report in $OUT/report/report.md (and .html, charts/)" >&2
