//! The help texts of tracegen and its subcommands.

pub const EXAMPLES: &str = "\
Examples:
  tracegen poisson --rate 8 --duration 120s --input-len 512 --output-len 256 --seed 1 -o trace.parquet
  tracegen gamma --rate 8 --burstiness 0.5 --count 1000 --prompts builtin --category short,code -o t.parquet
  tracegen batch --count 200 --input-len uniform:512:0.25 --output-len 128 | replay --url $URL --concurrency 10
  tracegen constant --rate 2 --count 10 --format md      # look at it
  tracegen poisson --ramp 0:20:60s --duration 5m -o ramp.parquet   # 0 -> 20 req/s over a minute, then 20
  tracegen poisson --ramp steps:2@30s,4@30s,8 --duration 3m -o steps.parquet
  tracegen poisson --rate 4 --count 500 --prefix-groups 8 --prefix-len 2048 --prefix-popularity zipf:1.2 \
      --input-len 128 -o shared.parquet   # 8 system prompts of 2048 tokens, each request + its own 128

Real traces (see `tracegen azure --help` etc. for each format's quirks):
  tracegen sharegpt ShareGPT_V3_unfiltered_cleaned_split.json --count 1000 --process poisson --rate 8 --seed 1 -o sg.parquet
  tracegen sharegpt sg.json --sessions --think-time exp:10s --count 200 --rate 2 -o sessions.parquet
  tracegen azure AzureLLMInferenceTrace_conv.csv --start 10m --window 5m -o azure.parquet
  tracegen burstgpt BurstGPT_1.csv --model ChatGPT --log-type conversation --rate 4 -o burst.parquet
  tracegen mooncake conversation_trace.jsonl --max-input 32768 --clamp -o mooncake.parquet
  tracegen splitwise splitwise_conv.csv --sample 0.1 --seed 3 -o s.parquet
  tracegen csv my.csv --columns arrival=ts,input=prompt_len,output=output_len --arrival-unit ms -o mine.parquet
  tracegen transform azure.parquet --time-scale 0.5 -o faster.parquet
  tracegen stats azure.parquet --bucket 30s        # rate over time, burstiness, length percentiles

Trace tools, on every importer and transform (applied in this order):
  tracegen azure conv.csv --sort --max-input 8192 --clamp --start 2m --window 5m --sample 0.5 --seed 2 \\
      --count 1000 --time-scale 0.5 --category conv --first-id 0 -o t.parquet
  tracegen azure conv.csv --rate 12 -o t.parquet        # same burst shape, mean 12 req/s
  tracegen sharegpt sg.json --tokenizer ./Llama-3.1-8B/tokenizer.json -o sg.parquet   # exact token counts

Shared prefix (--prefix-groups G): each request belongs to one of G groups, drawn by
--prefix-popularity (uniform | zipf | zipf:S) and arranged by --prefix-order (random: as drawn;
grouped: each group's requests back to back; round-robin: one of each group in turn); its prompt
is its group's --prefix-len tokens (a multiple of 512) then its own --input-len tokens, written as
prefix_blocks, so replay sends the same text for the same prefix.

Lengths: N | fixed:N | uniform:N:RATIO (vLLM's range ratio: [N(1-R), N(1+R)]) | normal:MEAN:STD.
Output: -o FILE (Parquet unless the extension says otherwise), or stdout: Arrow IPC on a pipe,
Parquet when redirected to a file. The same arguments and seed give a byte-identical file.";

pub const SHAREGPT_HELP: &str = "\
Examples:
  tracegen sharegpt ShareGPT_V3_unfiltered_cleaned_split.json --count 1000 --seed 1 -o sg.parquet   # all at t=0
  tracegen sharegpt sg.json --count 500 --process poisson --rate 8 -o sg.parquet
  tracegen sharegpt sg.json --count 500 --process gamma --rate 8 --burstiness 0.5 -o bursty.parquet
  tracegen sharegpt sg.json --process constant --rate 2 --max-input 4096 --tokenizer tokenizer.json -o sg.parquet
  tracegen sharegpt sg.json --sessions --think-time exp:10s --count 100 --rate 1 -o sessions.parquet

A conversation's first human turn is the prompt (its text is kept; replay sends it as is) and the reply's
length is the output length. Empty, one-turn and not-human-first conversations (continuation chunks start
with gpt) are skipped and counted on stderr. Roles human/user and gpt/chatgpt/bing/bard/assistant are
understood. With --sessions, every human turn followed by a reply is a row: session_id per conversation,
turn 0, 1, ...; replay sends turn k+1 a think time after turn k's reply ends. Token counts use
--tokenizer when given (exact), else the approximation, and the trace's metadata says which.";

pub const AZURE_HELP: &str = "\
Examples:
  tracegen azure AzureLLMInferenceTrace_conv.csv --category conv -o azure-conv.parquet
  tracegen azure AzureLLMInferenceTrace_code.csv --start 3m --window 2m --time-scale 0.5 -o slice.parquet
  tracegen azure AzureLLMInferenceTrace_conv_1week.csv --rate 20 --max-input 8192 -o week.parquet

Formats: 2023 (`2023-11-16 18:15:46.6805900`: seven fractional digits, no zone, CRLF) and 2024
(`2024-05-12 00:00:00.123+00:00`, sometimes no fraction). arrival_s = timestamp - first timestamp, in
whole ticks. No text: replay synthesises prompts of ContextTokens tokens. Gaps are kept (the code trace
has a 217 s stretch without arrivals).";

pub const BURSTGPT_HELP: &str = "\
Examples:
  tracegen burstgpt BurstGPT_1.csv -o burst.parquet
  tracegen burstgpt BurstGPT_1.csv --model GPT-4 --log-type api --keep-failed -o gpt4-api.parquet
  tracegen burstgpt BurstGPT_v3.csv --model ChatGPT --start 1h --window 10m --rate 5 -o slice.parquet

v1 columns: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type; v3 adds Session ID,Elapsed
time (columns are found by name). Timestamp is seconds since the first day's midnight; arrival_s is
relative to the first kept row. The model becomes the row's category. Failed requests (Response tokens = 0)
are dropped and counted unless --keep-failed.";

pub const MOONCAKE_HELP: &str = "\
Examples:
  tracegen mooncake conversation_trace.jsonl -o mooncake.parquet
  tracegen mooncake conversation_trace.jsonl --max-input 32768 --clamp --time-scale 0.25 -o m.parquet

Timestamps are integer milliseconds (bucketed: many requests share one). hash_ids are kept as prefix_blocks:
replay turns each block id into the same 512 tokens of text every time (the last block holds the
remainder), so requests that shared a prefix share it again and prefix caching is exercised as it was.
--clamp cuts prefix blocks to ceil(N/512).";

pub const SPLITWISE_HELP: &str = "\
Examples:
  tracegen splitwise splitwise_conv.csv -o s.parquet
  tracegen splitwise splitwise_code.csv --sample 0.25 --seed 7 -o quarter.parquet

Vidur's derived Azure format: arrived_at (float seconds since the first request), num_prefill_tokens,
num_decode_tokens.";

pub const CSV_HELP: &str = "\
Examples:
  tracegen csv my.csv --columns arrival=ts,input=prompt_len,output=output_len -o t.parquet
  tracegen csv log.csv --columns arrival=time,input=in,output=out --arrival-unit datetime -o t.parquet
  tracegen csv req.jsonl --columns arrival=t_ms,prompt=text,output=max_tokens,session=user --arrival-unit ms -o t.parquet
  tracegen csv dump.txt --input-format jsonl --columns arrival=t,input=n_in,output=n_out,category=kind -o t.parquet

--columns maps trace columns to the file's: arrival, input (prompt tokens) and output (tokens to generate)
are required, except that input may be left out when prompt is given (its tokens are then counted, exactly
with --tokenizer). session values may be numbers or strings; turn, when not mapped, counts a session's rows
in file order. --arrival-unit: s, ms, us (numbers) or datetime (YYYY-MM-DD HH:MM:SS[.f][+HH:MM], UTC when
no zone). arrival_s is relative to the first row.";

pub const TRANSFORM_HELP: &str = "\
Examples:
  tracegen transform azure.parquet --time-scale 0.5 -o faster.parquet
  tracegen transform azure.parquet --rate 10 -o at10.parquet           # same burst shape, mean 10 req/s
  tracegen transform azure.parquet --ramp 0:10:2m -o ramp.parquet      # same burst shape, rate 0 -> 10 req/s
  tracegen transform big.parquet --start 30m --window 10m --sample 0.5 --seed 2 -o slice.parquet
  tracegen transform t.parquet --max-input 2048 --clamp --tokenizer tokenizer.json -o clamped.parquet
  tracegen transform unsorted.parquet --sort -o sorted.parquet
  tracegen transform part2.parquet --first-id 100000 -o part2-renumbered.parquet

The tools apply in this order: --sort, --max-input, --start/--window (in the source's time; START becomes
t=0), --sample, --count, --time-scale, --rate (times x observed/R, where observed = (n-1)/(last-first))
or --ramp (times x observed, then through the ramp's change of time: Λ(t) = ∫ rate = u).
Rows keep their request_id. Every importer takes the same options.";

pub const STATS_HELP: &str = "\
Examples:
  tracegen stats trace.parquet
  tracegen stats trace.parquet --bucket 10s
  tracegen stats trace.parquet --format json | jq .gap_cv

Prints the number of rows and sessions, the span, the mean rate ((n-1)/(last-first)), burstiness (the
coefficient of variation of inter-arrival gaps: 0 constant, 1 Poisson, > 1 burstier), input and output
token percentiles, and requests per bucket from t=0.";
