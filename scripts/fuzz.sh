#!/usr/bin/env bash
# Fuzz every parser of outside input for FUZZ_SECONDS (default 60) each, or for FUZZ_RUNS
# executions each when that is set (then FUZZ_SECONDS, if given, still caps each): the SSE/JSON-lines
# framer with every protocol's event parser, each trace importer, the engines.toml loader.
# Corpora start from tests/fixtures and configs; findings (crash-*, timeout-*, oom-*) land in
# fuzz/artifacts/TARGET/ and are listed at the end. Not part of `make test` or CI.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${FUZZ_RUNS:-}
if [ -n "$RUNS" ]; then
  SECS=${FUZZ_SECONDS:-0} # 0: no time limit
  LIMIT=(-runs="$RUNS" -max_total_time="$SECS")
else
  SECS=${FUZZ_SECONDS:-60}
  LIMIT=(-max_total_time="$SECS")
fi
read -r -a TARGETS <<< "${FUZZ_TARGETS:-sse_protocol engines_toml import_sharegpt import_azure import_burstgpt import_mooncake import_csv}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: needs cargo-fuzz: cargo install cargo-fuzz" >&2
  exit 2
fi
# cargo-fuzz passes -Z options to rustc; a stable toolchain accepts them this way.
export RUSTC_BOOTSTRAP=1
mkdir -p build

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Seeds. A target that takes a leading mode byte gets it prepended.
seed() { # TARGET NAME PREFIX_OCTAL FILE [BYTES]
  local dir="fuzz/corpus/$1" out
  mkdir -p "$dir"
  out="$dir/seed-$2"
  [ -e "$out" ] && return 0
  { printf "$3"; head -c "${5:-8192}" "$4"; } > "$out"
}
i=0
for f in tests/fixtures/sse/*.sse tests/fixtures/sse/*.json; do
  for api in 0 1 2 3 4 5; do
    seed sse_protocol "$api-$(basename "$f")" "\\$(printf %03o "$api")\\$(printf %03o $((i % 17)))" "$f"
  done
  i=$((i + 1))
done
printf 'data: {"choices":[{"delta":{"content":"a"}}]}\r\ndata: b\r\n\r\n: keep-alive\r\rdata:c\r\n\r\n' > "$tmp/crlf.sse"
for api in 0 3; do seed sse_protocol "crlf-$api" "\\$(printf %03o "$api")\\003" "$tmp/crlf.sse"; done
# an error without a message (once a finding: the row's error was empty)
printf 'data: {"error":""}\n\ndata: {"error":{"message":null,"code":500}}\n\n' > "$tmp/noerr.sse"
for api in 0 1 2 3 4; do seed sse_protocol "noerr-$api" "\\$(printf %03o "$api")\\004" "$tmp/noerr.sse"; done
printf '{"error":""}\n' > "$tmp/noerr.jsonl"
seed sse_protocol noerr-5 '\005\004' "$tmp/noerr.jsonl"
seed engines_toml engines.toml "" configs/engines.toml 65536
printf '[{"id":"a","conversations":[{"from":"human","value":"Hi, who are you?"},{"from":"gpt","value":"An assistant."},{"from":"human","value":"ok"},{"from":"gpt","value":"Fine."}]},{"id":"b","conversations":[]}]' > "$tmp/sg.json"
for m in 0 1 3 7 15; do
  seed import_sharegpt "small-$m" "\\$(printf %03o "$m")" "$tmp/sg.json"
  seed import_sharegpt "sample-$m" "\\$(printf %03o "$m")" tests/fixtures/traces/ShareGPT_V3_unfiltered_cleaned_split.json.sample 6000
done
seed import_azure code "" tests/fixtures/traces/AzureLLMInferenceTrace_code.csv.sample 4000
seed import_azure conv "" tests/fixtures/traces/AzureLLMInferenceTrace_conv.csv.sample 4000
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2024-05-10 00:00:00+00:00,10,20\r\n2024-05-10 00:00:01.1234567+00:00,3,0\r\n' > "$tmp/az.csv"
seed import_azure crlf "" "$tmp/az.csv"
printf 'Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,18,490,Conversation log\n45,GPT-4,1087,0,1087,API log\n' > "$tmp/b1.csv"
printf 'Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n0.5,7,1.2,ChatGPT,20,30,50,Conversation log\n' > "$tmp/b3.csv"
for m in 0 1 2 4 7; do
  seed import_burstgpt "v1-$m" "\\$(printf %03o "$m")" "$tmp/b1.csv"
  seed import_burstgpt "v3-$m" "\\$(printf %03o "$m")" "$tmp/b3.csv"
done
seed import_mooncake sample "" tests/fixtures/traces/conversation_trace.jsonl.sample 6000
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,128,32\n0.25,4096,1\n' > "$tmp/sw.csv"
printf 't,i,o,p,s,n,c\n0,10,5,hello,1,0,short\n1.5,,7,"a, ""quoted"" prompt",1,1,long\n' > "$tmp/m.csv"
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n-1e300,1,2\n1e300,3,4\n' > "$tmp/huge.csv"
seed import_csv huge '\000' "$tmp/huge.csv"
printf '{"t":0,"i":10,"o":5,"p":"hi","s":"x","n":0,"c":"code"}\n{"t":"2024-05-10 00:00:01","i":1,"o":2}\n' > "$tmp/m.jsonl"
seed import_csv splitwise '\000' "$tmp/sw.csv"
for m in 1 2 5 17 33 49; do seed import_csv "csv-$m" "\\$(printf %03o "$m")" "$tmp/m.csv"; done
for m in 10 26 42 58; do seed import_csv "jsonl-$m" "\\$(printf %03o "$m")" "$tmp/m.jsonl"; done

# One build for every target (release, debug assertions on: overflows are findings too).
cargo fuzz build --fuzz-dir fuzz -s none -a >&2

printf '%-16s %14s %8s %10s %8s %s\n' target executions seconds exec/s corpus findings
status=0
for t in "${TARGETS[@]}"; do
  log="build/fuzz-$t.log"
  mkdir -p "fuzz/artifacts/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  # -s none: no sanitizer (stable toolchain); -a: debug assertions; one job per core is not
  # asked for, so the figures are per core.
  t0=$(date +%s)
  cargo fuzz run --fuzz-dir fuzz -s none -a "$t" -- "${LIMIT[@]}" -max_len=16384 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || true
  secs=$(($(date +%s) - t0))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  after=$(find "fuzz/artifacts/$t" -type f | wc -l)
  new=$((after - before))
  [ "$new" -gt 0 ] && status=1
  printf '%-16s %14s %8s %10s %8s %s\n' "$t" "${execs:-0}" "$secs" "${rate:-0}" "$corpus" "$new new ($after in fuzz/artifacts/$t)"
done
exit $status
