#!/usr/bin/env bash
# Wall time of a capacity search (sweep) against a fixed 10-point rate grid of the same step
# length (replay at each rate), on mock-engine --slots (capacity 20 req/s), dev builds (optimized).
# The numbers go to BENCHMARKS.md ("sweep against a fixed grid"). Usage: scripts/bench-sweep.sh
# [STEP] [WARMUP] (defaults 8s 2s); START=RPS sets sweep --start-rate (default 1), PROBE=SHARE
# sweep --probe (default 0.25; 1 = every step full-length, the search before probes). The
# machine's load average is printed before and after: the figures mean little on a busy host.
set -euo pipefail
STEP=${1:-8s}
WARMUP=${2:-2s}
B=target/debug   # the dev profile of this crate is optimized (Cargo.toml)
cargo build --quiet --bin mock-engine --bin tracegen --bin replay --bin sweep
W=$(mktemp -d)
trap 'kill "$MOCK" 2>/dev/null || true; rm -rf "$W"' EXIT
"$B/mock-engine" --port 0 --port-file "$W/port" --slots 4 --ttft-ms 50 --itl-ms 10 2>/dev/null &
MOCK=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$W/port")"
"$B/tracegen" poisson --rate 1 --count 4000 --input-len 64 --output-len 16 --seed 1 -o "$W/t.parquet" 2>/dev/null
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
"$B/sweep" "$W/t.parquet" --url "$URL" --slo ttft_p99=500ms,tpot_p99=50ms --step "$STEP" \
  --warmup "$WARMUP" --seed 1 --start-rate "${START:-1}" --probe "${PROBE:-0.25}" -o "$W/cap" 2>&1 | sed 's/^/  /'
t1=$(date +%s.%N)
search=$(python3 -c "print(round($t1 - $t0, 1))")
# the grid: 10 rates from 0.25x to 2.5x the capacity, each a replay of warm-up + step
total=$(python3 -c "
import re
def s(d): return float(re.match(r'([0-9.]+)', d).group(1)) * {'s':1,'m':60}[d[-1]]
print(s('$STEP') + s('$WARMUP'))")
t0=$(date +%s.%N)
for r in 5 10 15 20 25 30 35 40 45 50; do
  "$B/tracegen" poisson --rate "$r" --duration "${total}s" --input-len 64 --output-len 16 --seed 1 2>/dev/null \
    | "$B/replay" --url "$URL" --label grid --quiet -o "$W/grid-$r.parquet" >/dev/null 2>&1 || true
done
t1=$(date +%s.%N)
grid=$(python3 -c "print(round($t1 - $t0, 1))")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "step $STEP + warm-up $WARMUP: search ${search} s, 10-point grid ${grid} s, ratio $(python3 -c "print(round($search / $grid, 2))")"
