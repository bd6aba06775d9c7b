#!/usr/bin/env bash
# make bench-client: how exact and how fast replay is, against mock-engine in exact mode.
#   (a) TTFT/ITL error against the known truth (TTFT 50 ms, ITL 10 ms, 128 tokens) at 1, 256,
#       512 and 1,024 concurrent streams, with both processes' CPU time
#   (b) the highest output tokens/s and requests/s replay sustains (mock-engine with no delays)
#   (c) sched_lag_ms p99 for an open-loop Poisson trace at 2,000 requests/s
#   (d) replay's memory: per in-flight stream, and peak for 1,000,000 recorded requests
#   (e) mock-engine's own capacity on one core: streams and tokens/s before ITL slips
#   (f) replay beside a bare reader (examples/bare_reader.rs: tokio + hyper, one thread, no
#       recording) on the same mock-engine: client CPU per output token, delivered concurrency
#       and wall at 256 and 1,024 closed-loop users, with the server at normal priority and at
#       real-time priority on every core (client starved), and the TTFT/E2E error at 1,024 users
#   (g) TLS beside plain HTTP: replay against the same mock-engine over https (a certificate
#       made with openssl at run time, in the temp dir, trusted with --cacert) and over http,
#       back to back: client and server CPU per token and per event, handshakes, and the
#       TTFT/ITL error against the exact mock at 1 and 256 streams
# Release binaries; results on stdout as Markdown. Set QUICK=1 for a shorter run.
# SECTIONS=f runs only the named sections (letters, e.g. SECTIONS=af); BASE_BIN=dir adds the
# replay binary in dir (an earlier build) to section (f), so a change is measured before and
# after in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
W=$(mktemp -d /tmp/sb-bench.XXXXXX)
QUICK=${QUICK:-0}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
SECTIONS=${SECTIONS:-abcdefg}
want() { [[ $SECTIONS == *$1* ]]; }

mock() { # args... ; sets URL, records the pid (not in a subshell: the pid must stay known)
  local pf="$W/port.$RANDOM"
  local pre=()
  if [ "${MOCK_RT:-0}" = 1 ]; then pre=(chrt -f 50); fi   # real-time priority (root)
  "${pre[@]}" "$BIN/mock-engine" --port 0 --port-file "$pf" "$@" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
  URL="http://127.0.0.1:$(cat "$pf")"
}
# replay's CPU seconds (user+sys) from a requests file's client health
rcpu() { python3 -c "print(f'{$(client "$1" cpu_user_s) + $(client "$1" cpu_sys_s):.2f}')"; }
# CPU seconds (user+sys) the newest mock-engine has used so far, from /proc
mock_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/${PIDS[-1]}/stat"; }
stop_mock() { kill "${PIDS[-1]}" 2>/dev/null || true; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

# one-line JSON summary of a requests file
summ() { "$BIN/agg" "$1" --bootstrap 0 --format json 2>/dev/null; }
field() { python3 -c "import json,sys; d=json.loads(sys.stdin.readline()); print(d.get('$1'))"; }
# client health (servebench.client metadata) of a requests file, read with DuckDB
PY=${SERVEBENCH_PYTHON:-build/venv/bin/python}
[ -x "$PY" ] || PY=python3
client() { "$PY" - "$1" "$2" <<'PY'
import sys, json, duckdb
kv = dict(duckdb.sql(f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{sys.argv[1]}')").fetchall())
print(json.loads(kv['servebench.client'])[sys.argv[2]])
PY
}

echo "## replay (make bench-client, $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
if want a; then
echo "### (a) error against the known truth: mock-engine --ttft-ms 50 --itl-ms 10, 128 tokens"
echo
echo "Streams in flight are kept steady by an open-loop constant-rate trace (rate = streams / 1.32 s,"
echo "the length of one request), so requests arrive spread out as they do in production rather than"
echo "in lockstep bursts; 1 stream is a closed loop."
echo
echo "| streams (peak in flight) | requests | TTFT p50 (ms) | TTFT error | ITL p50 (ms) | ITL error | TTFT p99 (ms) | ITL p99 (ms) | sched lag p99 (ms) | replay CPU user+sys (s) | mock-engine CPU (s) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in 1 256 512 1024; do
  mock --ttft-ms 50 --itl-ms 10 --threads "${MOCK_THREADS:-1}"
  if [ $c = 1 ]; then
    "$BIN/tracegen" batch --count 20 --input-len 32 --output-len 128 -o "$W/t.parquet" 2>/dev/null
    "$BIN/replay" "$W/t.parquet" --url "$URL" --concurrency 1 --quiet -o "$W/a$c.parquet"
  else
    rate=$(python3 -c "print($c / 1.32)")
    "$BIN/tracegen" constant --rate "$rate" --duration $(( QUICK == 1 ? 4 : 8 ))s --input-len 32 --output-len 128 -o "$W/t.parquet" 2>/dev/null
    "$BIN/replay" "$W/t.parquet" --url "$URL" --quiet -o "$W/a$c.parquet"
  fi
  mcpu=$(mock_cpu); stop_mock
  j=$(summ "$W/a$c.parquet")
  peak=$(client "$W/a$c.parquet" peak_in_flight)
  cpu=$(rcpu "$W/a$c.parquet")
  J="$j" C=$c PEAK=$peak CPU=$cpu MCPU=$mcpu python3 -c '
import json, os
e = os.environ
d = json.loads(e["J"]); t = d["ttft_p50_ms"]; i = d["itl_p50_ms"]
c, peak, cpu, mcpu, n = e["C"], e["PEAK"], e["CPU"], e["MCPU"], d["n_requests"]
t99, i99, lag = d["ttft_p99_ms"], d["itl_p99_ms"], d["sched_lag_p99_ms"]
print(f"| {c} ({peak}) | {n} | {t:.3f} | {t-50:+.3f} | {i:.4f} | {i-10:+.4f} | {t99:.2f} | {i99:.2f} | {lag:.3f} | {cpu} | {mcpu} |")'
done

fi

echo
if want b; then
echo "### (b) throughput ceiling: mock-engine with no delays"
echo
echo "| case | streams | requests x tokens | output tok/s | req/s | replay CPU user+sys (s) | wall (s) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for tpc in 1 8; do
  mock --ttft-ms 0 --itl-ms 0 --tokens-per-chunk $tpc --threads 1
  for c in 64 256; do
    n=$(( QUICK == 1 ? c * 2 : c * 8 )); tok=$(( QUICK == 1 ? 1000 : 4000 ))
    "$BIN/tracegen" batch --count $n --input-len 16 --output-len $tok -o "$W/t.parquet" 2>/dev/null
    "$BIN/replay" "$W/t.parquet" --url "$URL" --concurrency $c --quiet -o "$W/b.parquet"
    j=$(summ "$W/b.parquet")
    echo "$j" | python3 -c "import json, sys; d=json.loads(sys.stdin.readline()); print(f\"| {$tpc} token(s)/chunk | $c | $n x $tok | {d['output_tok_per_s']:.0f} | {d['req_per_s']:.1f} | $(rcpu "$W/b.parquet") | {d['duration_s']:.2f} |\")"
  done
  stop_mock
done
mock --ttft-ms 0 --itl-ms 0 --threads 1
n=$(( QUICK == 1 ? 20000 : 100000 ))
"$BIN/tracegen" batch --count $n --input-len 16 --output-len 1 -o "$W/t.parquet" 2>/dev/null
"$BIN/replay" "$W/t.parquet" --url "$URL" --concurrency 64 --quiet -o "$W/b.parquet"
j=$(summ "$W/b.parquet")
echo "$j" | python3 -c "import json, sys; d=json.loads(sys.stdin.readline()); print(f\"| 1-token requests | 64 | $n x 1 | {d['output_tok_per_s']:.0f} | {d['req_per_s']:.0f} | $(rcpu "$W/b.parquet") | {d['duration_s']:.2f} |\")"
stop_mock

fi

echo
if want c; then
echo "### (c) open-loop schedule: Poisson at 2,000 req/s"
echo
mock --ttft-ms 5 --itl-ms 2 --threads 1
d=$(( QUICK == 1 ? 5 : 20 ))
"$BIN/tracegen" poisson --rate 2000 --duration ${d}s --input-len 16 --output-len 8 --seed 1 -o "$W/t.parquet" 2>/dev/null
"$BIN/replay" "$W/t.parquet" --url "$URL" --quiet -o "$W/c.parquet"
j=$(summ "$W/c.parquet")
echo "$j" | python3 -c "import json, sys; d=json.loads(sys.stdin.readline()); print(f\"{d['n_requests']} requests over {d['duration_s']:.1f} s ({d['req_per_s']:.0f} req/s achieved): sched_lag_ms p99 = {d['sched_lag_p99_ms']:.3f} ms; peak in flight $(client "$W/c.parquet" peak_in_flight); replay CPU $(rcpu "$W/c.parquet") s user+sys\")"
stop_mock

fi

echo
if want d; then
echo "### (d) memory"
echo
# per in-flight stream: RSS with N long streams in flight, minus RSS with few
mock --ttft-ms 0 --itl-ms 100 --threads 1
for c in 16 2048; do
  "$BIN/tracegen" batch --count $c --input-len 16 --output-len 60 -o "$W/t.parquet" 2>/dev/null
  "$BIN/replay" "$W/t.parquet" --url "$URL" --concurrency $c --quiet -o "$W/d$c.parquet"
  eval "rss$c=$(client "$W/d$c.parquet" max_rss_mib)"
done
python3 -c "print(f'peak RSS with 16 streams {$rss16:.1f} MiB, with 2,048 streams {$rss2048:.1f} MiB: {($rss2048-$rss16)*1024*1024/(2048-16):.0f} bytes per in-flight stream (6 s streams, 60 chunks each recorded)')"
stop_mock
mock --ttft-ms 0 --itl-ms 0 --threads 1
n=$(( QUICK == 1 ? 100000 : 1000000 ))
"$BIN/tracegen" batch --count $n --input-len 8 --output-len 2 -o "$W/t.parquet" 2>/dev/null
/usr/bin/time -f "%M" -o "$W/rss" "$BIN/replay" "$W/t.parquet" --url "$URL" --concurrency 64 --quiet -o "$W/m.parquet"
python3 -c "print(f'{$n:,} recorded requests: peak RSS {int(open(\"$W/rss\").read().split()[-1])/1024:.0f} MiB (file {__import__(\"os\").path.getsize(\"$W/m.parquet\")/1e6:.1f} MB)')"
stop_mock

fi

echo
if want e; then
echo "### (e) mock-engine capacity on one core (exact mode, 1 token per chunk)"
echo
echo "| streams | ITL set (ms) | offered tok/s | achieved tok/s | ITL p50 (ms) | ITL p99 (ms) |"
echo "|---:|---:|---:|---:|---:|---:|"
for spec in "1000 10" "2500 25" "5000 25" "5000 50"; do
  set -- $spec; c=$1; itl=$2
  mock --ttft-ms 0 --itl-ms $itl --threads 1
  tok=$(( 4000 / itl ))   # ~4 s streams
  "$BIN/tracegen" batch --count $c --input-len 8 --output-len $tok -o "$W/t.parquet" 2>/dev/null
  "$BIN/replay" "$W/t.parquet" --url "$URL" --concurrency $c --threads 1 --quiet -o "$W/e.parquet"
  j=$(summ "$W/e.parquet")
  echo "$j" | python3 -c "import json, sys; d=json.loads(sys.stdin.readline()); print(f\"| $c | $itl | {$c*1000/$itl:.0f} | {d['output_tok_per_s']:.0f} | {d['itl_p50_ms']:.2f} | {d['itl_p99_ms']:.2f} |\")"
  stop_mock
done
fi


if want f; then
echo
echo "### (f) replay beside a bare reader: mock-engine --ttft-ms 0 --itl-ms 0, 128 tokens one per event"
echo
echo "The bare reader (examples/bare_reader.rs) is tokio + hyper on one thread with no recording: the"
echo "floor for a client's cost. Closed loop; \"delivered\" is the time-weighted mean of requests in"
echo "flight between send and done (sum of send-to-done / wall). CPU per token is the client's"
echo "user+sys CPU over output tokens. \"contended\": mock-engine at real-time priority"
echo "(chrt -f 50) with $(nproc) threads, so the client gets only what the server leaves."
echo
BARE=${BARE:-target/release/examples/bare_reader}
[ -x "$BARE" ] || cargo build --release --example bare_reader >&2   # make bench-client builds it
# one row of a replay requests file: requests, wall, delivered, CPU/token (us), TTFT p50, E2E p50
rrow() { "$PY" - "$1" "$(rcpu "$1")" <<'PY'
import sys, duckdb
f, cpu = sys.argv[1], float(sys.argv[2])
n, busy, wall, tok, ttft, e2e = duckdb.sql(f"""SELECT count(*), sum(epoch_us(done_at) - epoch_us(sent_at)) / 1e6,
  (max(epoch_us(done_at)) - min(epoch_us(sent_at))) / 1e6, sum(output_tokens), median(ttft_ms), median(e2e_ms)
  FROM '{f}' WHERE NOT warmup AND status = 'ok'""").fetchall()[0]
print(f"{n} | {wall:.2f} | {busy / wall:.0f} | {cpu / tok * 1e6:.2f} | {ttft:.2f} | {e2e:.2f}")
PY
}
brow() { J="$1" MT=$2 "$PY" - <<'PY'
import json, os
d = json.loads(os.environ["J"]); tok = d["requests"] * int(os.environ["MT"])
print(f"{d['requests']} | {d['wall_s']:.2f} | {d['delivered']:.0f} | {d['cpu_s'] / tok * 1e6:.2f} | {d['ttft_p50_ms']:.2f} | {d['e2e_p50_ms']:.2f}")
PY
}
REPLAYS=("$BIN/replay|replay")
[ -n "${BASE_BIN:-}" ] && REPLAYS=("$BASE_BIN/replay|replay (before: $BASE_BIN)" "${REPLAYS[@]}")
echo "| server | client | users | requests | wall (s) | delivered | CPU/token (µs) | TTFT p50 (ms) | E2E p50 (ms) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for setup in normal contended; do
  for c in 256 1024; do
    n=$(( QUICK == 1 ? c * 16 : c * 64 )); [ $c = 1024 ] && n=$(( QUICK == 1 ? 8192 : 32768 ))
    if [ $setup = normal ]; then mock --ttft-ms 0 --itl-ms 0 --threads 1; label="normal, 1 thread"
    else MOCK_RT=1 mock --ttft-ms 0 --itl-ms 0 --threads "$(nproc)"; label="real-time, $(nproc) threads"; fi
    "$BIN/tracegen" batch --count $n --input-len 8 --output-len 128 -o "$W/t.parquet" 2>/dev/null
    echo "| $label | bare reader | $c | $(brow "$("$BARE" --url "$URL" --users $c --requests $n --max-tokens 128)" 128) |"
    for r in "${REPLAYS[@]}"; do
      rb=${r%%|*}; rl=${r#*|}
      "$rb" "$W/t.parquet" --url "$URL" --concurrency $c --quiet -o "$W/f.parquet"
      echo "| $label | $rl | $c | $(rrow "$W/f.parquet") |"
      if [ $setup = contended ] && [ $c = 256 ]; then
        "$rb" "$W/t.parquet" --url "$URL" --concurrency $c --threads 1 --quiet -o "$W/f.parquet"
        echo "| $label | $rl --threads 1 | $c | $(rrow "$W/f.parquet") |"
      fi
    done
    stop_mock
  done
done
echo
echo "TTFT and E2E error at 1,024 closed-loop users, mock-engine --ttft-ms 50 --itl-ms 10 (truth: TTFT 50 ms, E2E 1,320 ms):"
echo
echo "| client | users | requests | wall (s) | delivered | CPU/token (µs) | TTFT p50 (ms) | E2E p50 (ms) | TTFT error (ms) | E2E error (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
err() { awk -F'|' '{printf "%s | %+.2f | %+.2f", $0, $5 - 50, $6 - 1320}'; }
c=1024; n=$(( QUICK == 1 ? 2048 : 4096 ))
mock --ttft-ms 50 --itl-ms 10 --threads "${MOCK_THREADS:-1}"
"$BIN/tracegen" batch --count $n --input-len 8 --output-len 128 -o "$W/t.parquet" 2>/dev/null
echo "| bare reader | $c | $(brow "$("$BARE" --url "$URL" --users $c --requests $n --max-tokens 128)" 128 | err) |"
for r in "${REPLAYS[@]}"; do
  rb=${r%%|*}; rl=${r#*|}
  "$rb" "$W/t.parquet" --url "$URL" --concurrency $c --quiet -o "$W/f.parquet"
  echo "| $rl | $c | $(rrow "$W/f.parquet" | err) |"
done
stop_mock
fi


if want g; then
echo
echo "### (g) TLS beside plain HTTP: the same mock-engine over https and over http"
echo
# A private CA and a server certificate for 127.0.0.1 (EC P-256), made now in the temp dir
# (removed at exit): no key is ever checked in.
command -v openssl >/dev/null || { echo "section (g) makes its certificate with openssl: install it (apt-get install openssl) or leave g out of SECTIONS" >&2; exit 2; }
T="$W/tls"; mkdir -p "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=servebench-bench-ca -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile <(printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n') \
  -out "$T/srv.pem" 2>/dev/null
# mockx SCHEME args...: mock-engine over that scheme; sets URL and TLSARGS (replay's options)
mockx() {
  local scheme=$1; shift
  if [ "$scheme" = https ]; then
    mock "$@" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key"
    URL="https://${URL#http://}"; TLSARGS=(--cacert "$T/ca.pem")
  else
    mock "$@"; TLSARGS=()
  fi
}
# wall (first send to last done), events, tokens, connections opened (new or warm) and their
# mean TCP connect and TLS handshake times, of a requests file
gstats() { "$PY" - "$1" <<'PY'
import sys, duckdb
wall, ev, tok, conns, con, hs = duckdb.sql(f"""SELECT
  (max(epoch_us(done_at)) - min(epoch_us(sent_at))) / 1e6, sum(len(chunk_times_ms)),
  sum(output_tokens), count(connect_ms), avg(connect_ms), avg(tls_ms)
  FROM '{sys.argv[1]}' WHERE NOT warmup""").fetchall()[0]
f = lambda v: "-" if v is None else f"{v:.3f}"
print(f"{wall:.2f}", ev, tok, conns, f(con), f(hs))
PY
}
echo "CPU: mock-engine --ttft-ms 0 --itl-ms 0, closed loop, 256 users. CPU per token and per event"
echo "is user+sys CPU (the whole process: start, handshakes, streams, writing the file) over output"
echo "tokens and over content events (chunk times). Connections: those opened (new or warm), with"
echo "their mean TCP connect and TLS handshake times. The last case (1-token requests with"
echo "--warm-pool 0, so every connection is opened on a request's path and recorded) is mostly"
echo "set-up: its https-minus-http CPU over its https connections is the cost of one handshake."
echo
echo "| case | scheme | requests | events | wall (s) | replay CPU/token (µs) | replay CPU/event (µs) | mock-engine CPU/event (µs) | connections | connect mean (ms) | TLS handshake mean (ms) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
c=256
for spec in "1 128 $(( QUICK == 1 ? 4096 : 16384 ))" "8 128 $(( QUICK == 1 ? 4096 : 16384 ))" "1 1 $(( QUICK == 1 ? 1024 : 4096 ))"; do
  set -- $spec; tpc=$1; tok=$2; n=$3
  case "$tpc/$tok" in
    1/128) label="128 tokens, 1 per event"; pool=() ;;
    8/128) label="128 tokens, 8 per event"; pool=() ;;
    *) label="1 token, --warm-pool 0"; pool=(--warm-pool 0) ;;
  esac
  "$BIN/tracegen" batch --count $n --input-len 8 --output-len $tok -o "$W/t.parquet" 2>/dev/null
  for scheme in http https; do
    mockx $scheme --ttft-ms 0 --itl-ms 0 --tokens-per-chunk $tpc --threads 1
    "$BIN/replay" "$W/t.parquet" --url "$URL" "${TLSARGS[@]}" "${pool[@]}" --concurrency $c --quiet -o "$W/g.parquet"
    mcpu=$(mock_cpu); stop_mock
    cpu=$(rcpu "$W/g.parquet")
    read -r wall ev tokens conns con hs < <(gstats "$W/g.parquet")
    python3 -c "
cpu, mcpu, ev, tok = $cpu, $mcpu, $ev, $tokens
print(f'| $label | $scheme | $n | {ev} | $wall | {cpu / tok * 1e6:.2f} | {cpu / ev * 1e6:.2f} | {mcpu / ev * 1e6:.2f} | $conns | $con | $hs |')"
    eval "hcpu_$scheme=$cpu; hmcpu_$scheme=$mcpu; hconns_$scheme=$conns"
  done
done
echo
python3 -c "
c = $hconns_https
print(f'One TLS handshake (the last case: {c} https connections): replay {($hcpu_https - $hcpu_http) / c * 1e6:.0f} µs of CPU, mock-engine {($hmcpu_https - $hmcpu_http) / c * 1e6:.0f} µs (CPU times to 10 ms).')"
echo
echo "Accuracy: mock-engine --ttft-ms 50 --itl-ms 10, 128 tokens one per event; 1 stream is a closed"
echo "loop, 256 an open-loop constant-rate trace as in (a). \"fresh\": requests on a connection not"
echo "kept alive from an earlier one (conn_fresh_pct); set-up: what connection set-up added per"
echo "request on the schedule's path (conn_setup_mean_ms; the warm pool keeps it off)."
echo
echo "| streams (peak in flight) | scheme | requests | TTFT p50 (ms) | TTFT error | ITL p50 (ms) | ITL error | TTFT p99 (ms) | ITL p99 (ms) | sched lag p99 (ms) | fresh (%) | set-up (ms) | replay CPU (s) | mock-engine CPU (s) |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in 1 256; do
  if [ $c = 1 ]; then
    "$BIN/tracegen" batch --count $(( QUICK == 1 ? 8 : 20 )) --input-len 32 --output-len 128 -o "$W/t.parquet" 2>/dev/null
    conc=(--concurrency 1)
  else
    rate=$(python3 -c "print($c / 1.32)")
    "$BIN/tracegen" constant --rate "$rate" --duration $(( QUICK == 1 ? 4 : 8 ))s --input-len 32 --output-len 128 -o "$W/t.parquet" 2>/dev/null
    conc=()
  fi
  for scheme in http https; do
    mockx $scheme --ttft-ms 50 --itl-ms 10 --threads "${MOCK_THREADS:-1}"
    "$BIN/replay" "$W/t.parquet" --url "$URL" "${TLSARGS[@]}" "${conc[@]}" --quiet -o "$W/g.parquet"
    mcpu=$(mock_cpu); stop_mock
    J="$(summ "$W/g.parquet")" C=$c S=$scheme PEAK=$(client "$W/g.parquet" peak_in_flight) CPU=$(rcpu "$W/g.parquet") MCPU=$mcpu python3 -c '
import json, os
e = os.environ
d = json.loads(e["J"]); t = d["ttft_p50_ms"]; i = d["itl_p50_ms"]
c, s, peak, cpu, mcpu, n = e["C"], e["S"], e["PEAK"], e["CPU"], e["MCPU"], d["n_requests"]
t99, i99, lag = d["ttft_p99_ms"], d["itl_p99_ms"], d["sched_lag_p99_ms"]
fresh, setup = d.get("conn_fresh_pct"), d.get("conn_setup_mean_ms")
fresh = "-" if fresh is None else f"{fresh:.1f}"
setup = "-" if setup is None else f"{setup:.3f}"
print(f"| {c} ({peak}) | {s} | {n} | {t:.3f} | {t-50:+.3f} | {i:.4f} | {i-10:+.4f} | {t99:.2f} | {i99:.2f} | {lag:.3f} | {fresh} | {setup} | {cpu} | {mcpu} |")'
  done
done
fi
