#!/usr/bin/env bash
# make bench-agg: agg against DuckDB on the same generated requests dataset.
#   ROWS (default 100000000) rows in FILES parts (hive-partitioned like a sharded run), four
#   labels, eight content chunks per request. Both answer the same question: per label, the
#   count, TTFT/TPOT/E2E p50/p90/p99 and ITL (chunk gaps) p50/p99. Wall time and peak memory
#   of each (GNU time) go to stdout as Markdown.
# Needs ~8 GB of disk per 100 M rows under BENCH_DIR (default build/bench-agg; kept for reruns).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
PY=${SERVEBENCH_PYTHON:-build/venv/bin/python}
ROWS=${ROWS:-100000000}
FILES=${FILES:-20}
DIR=${BENCH_DIR:-build/bench-agg}/rows-$ROWS
THREADS=${THREADS:-$(nproc)}

if [ ! -f "$DIR/.done" ]; then
  rm -rf "$DIR"; mkdir -p "$DIR"
  echo "generating $ROWS rows in $FILES files under $DIR ..." >&2
  per=$(( ROWS / FILES ))
  for i in $(seq 0 $(( FILES - 1 ))); do
    mkdir -p "$DIR/shard=$i"
    "$PY" - "$DIR/shard=$i/part-0.parquet" $(( i * per )) $per <<'PY'
import sys, duckdb
out, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
duckdb.sql(f"""
COPY (
  SELECT i::UBIGINT AS request_id,
         'engine-' || (i % 4)::VARCHAR AS label,
         'run' AS run_id, 'bench' AS engine, 'm' AS model, 'chat' AS api,
         (10 * (1 + (i % 4)))::UINTEGER AS concurrency,
         TIMESTAMPTZ '2026-11-22 00:00:00+00' + to_microseconds((i * 1000)::BIGINT) AS sent_at,
         sent_at + to_microseconds(((ttft + 7 * gap) * 1000)::BIGINT) AS done_at,
         0.1 + random() AS sched_lag_ms,
         ttft AS ttft_ms, ttft + 7 * gap AS e2e_ms, gap AS tpot_ms, ttft + 0.5 AS ttft_sched_ms,
         false AS warmup,
         [ttft, ttft + gap, ttft + 2 * gap, ttft + 3 * gap, ttft + 4 * gap, ttft + 5 * gap, ttft + 6 * gap, ttft + 7 * gap + random()] AS chunk_times_ms,
         512::UINTEGER AS input_tokens, 8::UINTEGER AS output_tokens, 8::UINTEGER AS requested_output_tokens,
         'usage' AS output_tokens_source,
         CASE WHEN i % 100 = 0 THEN 'timeout' ELSE 'ok' END AS status
  FROM (SELECT range AS i, 20 + 200 * random() * random() AS ttft, 5 + 20 * random() AS gap
        FROM range({start}, {start + n}))
) TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)
""")
PY
  done
  touch "$DIR/.done"
fi
SIZE=$(du -sh "$DIR" | cut -f1)

t() { /usr/bin/time -f "%e %M" -o "$1" "${@:2}"; }
t /tmp/sb-agg.time "$BIN/agg" "$DIR" --bootstrap 0 --format csv > /tmp/sb-agg.csv 2>/tmp/sb-agg.err
read AGG_S AGG_KB < /tmp/sb-agg.time
t /tmp/sb-duck.time "$PY" - "$DIR" "$THREADS" > /tmp/sb-duck.out <<'PY'
import sys, duckdb
d, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
src = f"read_parquet('{d}/*/*.parquet', hive_partitioning = true)"
con.execute(f"CREATE VIEW r AS SELECT * FROM {src} WHERE status = 'ok' AND NOT warmup")
print(con.sql("""
SELECT label, count(*),
       quantile_cont(ttft_ms, [0.5, 0.9, 0.99]), quantile_cont(tpot_ms, [0.5, 0.9, 0.99]),
       quantile_cont(e2e_ms, [0.5, 0.9, 0.99])
FROM r GROUP BY label ORDER BY label
""").fetchall())
print(con.sql("""
SELECT label, quantile_cont(g, [0.5, 0.99])
FROM (SELECT label, unnest(list_transform(range(1, len(chunk_times_ms)), lambda i: chunk_times_ms[i + 1] - chunk_times_ms[i])) AS g FROM r)
GROUP BY label ORDER BY label
""").fetchall())
PY
read DUCK_S DUCK_KB < /tmp/sb-duck.time
# agg with a small exact-value budget: HDR histograms from the first million values, so its
# memory no longer depends on the data's size.
t /tmp/sb-agg-small.time "$BIN/agg" "$DIR" --bootstrap 0 --exact-budget 1000000 --format csv > /tmp/sb-agg-small.csv 2>/dev/null
read SMALL_S SMALL_KB < /tmp/sb-agg-small.time
MODE=$(grep -o "percentiles from HDR histograms" /tmp/sb-agg.err >/dev/null && echo "HDR histograms (past the 256 M exact-value budget)" || echo "exact")
echo "## agg vs DuckDB ($(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), DuckDB threads $THREADS)"
echo
echo "$ROWS requests in $FILES Parquet files ($SIZE, zstd), 8 chunks each; question: per label, count and TTFT/TPOT/E2E p50/p90/p99 and ITL p50/p99."
echo
echo "| tool | wall (s) | peak RSS (MiB) | percentiles |"
echo "|---|---:|---:|---|"
echo "| agg (release) | $AGG_S | $(( AGG_KB / 1024 )) | $MODE |"
echo "| agg --exact-budget 1000000 | $SMALL_S | $(( SMALL_KB / 1024 )) | HDR histograms (past 1 M values) |"
echo "| DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)') (Python) | $DUCK_S | $(( DUCK_KB / 1024 )) | exact (quantile_cont) |"
echo
# The same answer? agg's percentiles against DuckDB's exact ones, largest relative difference.
"$PY" - /tmp/sb-agg.csv /tmp/sb-duck.out <<'PY'
import ast, csv, sys
agg = {r["label"]: r for r in csv.DictReader(open(sys.argv[1]))}
lines = open(sys.argv[2]).read().splitlines()
main, itl = ast.literal_eval(lines[0]), ast.literal_eval(lines[1])
worst = {}
def cmp(name, label, mine, theirs):
    rel = abs(float(mine) - theirs) / abs(theirs) if theirs else 0.0
    worst[name] = max(worst.get(name, 0.0), rel)
for label, n, ttft, tpot, e2e in main:
    a = agg[label]
    assert int(a["n_ok"]) == n, f"{label}: agg counted {a['n_ok']} ok rows, DuckDB {n}"
    for m, qs in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e)):
        for p, v in zip(("p50", "p90", "p99"), qs):
            cmp(f"{m} {p}", label, a[f"{m}_{p}_ms"], v)
for label, qs in itl:
    for p, v in zip(("p50", "p99"), qs):
        cmp(f"itl {p}", label, agg[label][f"itl_{p}_ms"], v)
print("Same counts per label; largest relative difference of agg's percentiles from DuckDB's "
      "exact quantile_cont, over the four labels: "
      + ", ".join(f"{k} {v * 100:.3f}%" for k, v in worst.items()) + ".")
PY
