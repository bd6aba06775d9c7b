//! Real traces: importers on the public samples (tests/fixtures/traces) and on broken files,
//! the trace tools, `tracegen stats`, tokenizer-exact lengths, and replays that keep a trace's
//! arrival shape and its shared prefixes.

use std::path::{Path, PathBuf};
use std::process::Output;

use servebench::trace::{TraceReader, TraceRow};

use crate::common::*;

fn fx(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/traces")
        .join(name)
        .to_string_lossy()
        .to_string()
}

const AZURE_CONV: &str = "AzureLLMInferenceTrace_conv.csv.sample";
const AZURE_CODE: &str = "AzureLLMInferenceTrace_code.csv.sample";
const MOONCAKE: &str = "conversation_trace.jsonl.sample";
const SHAREGPT: &str = "ShareGPT_V3_unfiltered_cleaned_split.json.sample";

fn rows_of(p: &Path) -> Vec<TraceRow> {
    TraceReader::open(&p.to_string_lossy()).unwrap().read_all().unwrap()
}

/// tracegen ARGS -o DIR/NAME; returns the path and the output.
fn tg(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, Output) {
    let p = dir.join(name);
    let o = ok(cmd("tracegen").args(args).arg("-o").arg(&p));
    (p, o)
}

/// tracegen ARGS must fail with exit 2 and one line on stderr; returns that line.
fn fails(args: &[&str]) -> String {
    let d = tmp();
    let o = run(cmd("tracegen").args(args).arg("-o").arg(d.path().join("x.parquet")));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
    assert_eq!(e.trim().lines().count(), 1, "one line expected: {e}");
    assert!(!e.contains("panicked"), "{e}");
    assert!(!d.path().join("x.parquet").exists(), "no output on error");
    e.trim().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().to_string()
}

fn meta(p: &Path, key: &str) -> Option<String> {
    servebench::io::open(&p.to_string_lossy())
        .unwrap()
        .meta
        .get(key)
        .map(str::to_string)
}

fn stats_json(p: &Path, bucket: &str) -> serde_json::Value {
    let o = ok(cmd("tracegen")
        .arg("stats")
        .arg(p)
        .args(["--bucket", bucket, "--format", "json"]));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn counts(v: &serde_json::Value) -> Vec<u64> {
    v["per_bucket"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn azure_samples_2023() {
    let d = tmp();
    let (p, _) = tg(d.path(), "conv.parquet", &["azure", &fx(AZURE_CONV)]);
    let r = rows_of(&p);
    assert_eq!(r.len(), 2000);
    assert_eq!((r[0].arrival_s, r[0].input_tokens, r[0].output_tokens), (0.0, 374, 44));
    // 18:15:50.9951690 - 18:15:46.6805900, in whole 100 ns ticks
    assert!((r[1].arrival_s - 4.314579).abs() < 1e-9, "{}", r[1].arrival_s);
    assert!((r[1999].arrival_s - 424.259457).abs() < 1e-9, "{}", r[1999].arrival_s);
    assert!(r.windows(2).all(|w| w[1].arrival_s > w[0].arrival_s));
    assert!(
        r.iter()
            .all(|x| x.source.as_deref() == Some("azure") && x.prompt.is_none())
    );
    assert_eq!(
        r.iter().map(|x| x.request_id).collect::<Vec<_>>(),
        (0..2000).collect::<Vec<_>>()
    );
    // per-minute counts, as pandas computes them from the CSV
    let s = stats_json(&p, "60s");
    assert_eq!(counts(&s), [191, 265, 329, 353, 307, 273, 268, 14]);
    assert!(meta(&p, "servebench.trace.tokenizer").unwrap().starts_with("none"));
    assert_eq!(meta(&p, "servebench.trace.source").as_deref(), Some("azure"));
    let rate: f64 = meta(&p, "servebench.trace.rate_rps").unwrap().parse().unwrap();
    assert!((rate - 1999.0 / 424.259457).abs() < 1e-9, "{rate}");
    // the code sample: long gaps are not the end
    let (p, _) = tg(d.path(), "code.parquet", &["azure", &fx(AZURE_CODE)]);
    let s = stats_json(&p, "60s");
    assert_eq!(s["rows"], 2000);
    assert_eq!(
        counts(&s),
        [63, 0, 0, 531, 187, 130, 15, 42, 38, 476, 421, 63, 0, 0, 34]
    );
}

#[test]
fn azure_2024_format_and_crlf() {
    let d = tmp();
    let f = write(
        d.path(),
        "a24.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2024-05-12 00:00:00+00:00,10,5\r\n2024-05-12 00:00:00.25+00:00,20,6\r\n2024-05-12 00:00:01.1234567+00:00,30,7\r\n2024-05-12 00:01:00+00:00,40,8\r\n",
    );
    let (p, _) = tg(d.path(), "t.parquet", &["azure", &f]);
    let a: Vec<f64> = rows_of(&p).iter().map(|r| r.arrival_s).collect();
    assert_eq!(a, [0.0, 0.25, 1.1234567, 60.0]);
}

#[test]
fn azure_bad_files_name_the_line_and_column() {
    let d = tmp();
    let head = "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44\r\n";
    let f = write(d.path(), "ts.csv", &format!("{head}2023-11-16 18:15:4x.1,1,2\r\n"));
    let e = fails(&["azure", &f]);
    assert!(
        e.contains("ts.csv: line 3: column `TIMESTAMP`: \"2023-11-16 18:15:4x.1\" is not a timestamp"),
        "{e}"
    );
    let f = write(
        d.path(),
        "num.csv",
        &format!("{head}2023-11-16 18:15:47,1,2\r\n2023-11-16 18:15:48,abc,2\r\n"),
    );
    let e = fails(&["azure", &f]);
    assert!(
        e.contains("num.csv: line 4: column `ContextTokens`: \"abc\" is not a number"),
        "{e}"
    );
    let f = write(d.path(), "col.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:47,1\n");
    let e = fails(&["azure", &f]);
    assert!(
        e.contains("col.csv: line 1: column `GeneratedTokens`: missing from the header"),
        "{e}"
    );
    let f = write(d.path(), "short.csv", &format!("{head}2023-11-16 18:15:47,1\r\n"));
    let e = fails(&["azure", &f]);
    assert!(
        e.contains("short.csv: line 3: column `GeneratedTokens`: missing"),
        "{e}"
    );
    let f = write(
        d.path(),
        "back.csv",
        &format!("{head}2023-11-16 18:15:47,1,2\r\n2023-11-16 18:15:40,1,2\r\n"),
    );
    let e = fails(&["azure", &f]);
    assert!(
        e.contains("back.csv: line 4: column `TIMESTAMP`: time goes backwards"),
        "{e}"
    );
    assert!(e.contains("--sort"), "{e}");
    // --sort fixes it (and the earliest row becomes t = 0)
    let (p, _) = tg(d.path(), "sorted.parquet", &["azure", &f, "--sort"]);
    let a: Vec<f64> = rows_of(&p).iter().map(|r| r.arrival_s).collect();
    assert!((a[0]).abs() < 1e-12 && a.windows(2).all(|w| w[1] >= w[0]), "{a:?}");
    // to stdout: nothing is written before the first good row
    let o = run(cmd("tracegen").args(["azure", &f, "--format", "csv"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
    let e = fails(&["azure", "/nonexistent/azure.csv"]);
    assert!(e.contains("/nonexistent/azure.csv: no such file"), "{e}");
}

#[test]
fn sharegpt_sample_first_turns() {
    let d = tmp();
    let (p, o) = tg(d.path(), "sg.parquet", &["sharegpt", &fx(SHAREGPT)]);
    let e = stderr(&o);
    assert!(e.contains("skipped 179 not starting with a human turn, 2 empty"), "{e}");
    let r = rows_of(&p);
    assert_eq!(r.len(), 319);
    // the first conversation, as it is in the file
    assert!(
        r[0].prompt
            .as_deref()
            .unwrap()
            .starts_with("Summarize the main ideas of Jeff Walker's Product Launch Formula")
    );
    for x in &r {
        let text = x.prompt.as_deref().unwrap();
        assert_eq!(x.input_tokens, servebench::trace::tokens::approx_tokens(text));
        assert!(x.output_tokens > 0 && x.session_id.is_none() && x.turn.is_none());
        assert_eq!(x.arrival_s, 0.0, "no process given: batch");
    }
    assert!(meta(&p, "servebench.trace.tokenizer").unwrap().starts_with("approx-v1"));
    // a seeded sample of 50 under a Poisson process: reproducible, and another seed differs
    let sg = fx(SHAREGPT);
    let args = [
        "sharegpt",
        &sg,
        "--count",
        "50",
        "--process",
        "poisson",
        "--rate",
        "8",
        "--seed",
        "1",
    ];
    let (a, _) = tg(d.path(), "a.parquet", &args);
    let r = rows_of(&a);
    assert_eq!(r.len(), 50);
    assert!(r.windows(2).all(|w| w[1].arrival_s >= w[0].arrival_s));
    assert_eq!(meta(&a, "servebench.trace.rate_rps").as_deref(), Some("8"));
    assert_eq!(meta(&a, "servebench.trace.process").as_deref(), Some("poisson"));
    let bytes = std::fs::read(&a).unwrap();
    // the same arguments (the output path is in the metadata too) give the same bytes
    std::fs::remove_file(&a).unwrap();
    let (a2, _) = tg(d.path(), "a.parquet", &args);
    assert_eq!(bytes, std::fs::read(&a2).unwrap(), "same seed, same bytes");
    let mut args2 = args;
    args2[9] = "2";
    let (c, _) = tg(d.path(), "c.parquet", &args2);
    assert_ne!(column_text(&a, "prompt"), column_text(&c, "prompt"));
    // gamma and constant processes
    let (g, _) = tg(
        d.path(),
        "g.parquet",
        &["sharegpt", &fx(SHAREGPT), "--process", "constant", "--rate", "4"],
    );
    let r = rows_of(&g);
    assert!((r[10].arrival_s - 2.5).abs() < 1e-12);
    tg(
        d.path(),
        "gm.parquet",
        &[
            "sharegpt",
            &fx(SHAREGPT),
            "--process",
            "gamma",
            "--rate",
            "4",
            "--burstiness",
            "0.5",
        ],
    );
}

#[test]
fn sharegpt_sessions() {
    let d = tmp();
    let (p, _) = tg(
        d.path(),
        "s.parquet",
        &[
            "sharegpt",
            &fx(SHAREGPT),
            "--sessions",
            "--think-time",
            "5s",
            "--count",
            "40",
            "--seed",
            "4",
        ],
    );
    let r = rows_of(&p);
    assert!(
        r.len() > 40,
        "multi-turn conversations give more rows than conversations"
    );
    let mut by: std::collections::BTreeMap<u64, Vec<&TraceRow>> = Default::default();
    for x in &r {
        by.entry(x.session_id.unwrap()).or_default().push(x);
    }
    assert_eq!(by.len(), 40);
    for turns in by.values() {
        for (k, t) in turns.iter().enumerate() {
            assert_eq!(t.turn, Some(k as u32));
            // batch arrivals, then a 5 s think time between turns
            assert!((t.arrival_s - 5.0 * k as f64).abs() < 1e-9, "{}", t.arrival_s);
            assert!(t.prompt.is_some() && t.output_tokens > 0);
        }
    }
    assert!(
        r.windows(2).all(|w| w[1].arrival_s >= w[0].arrival_s),
        "rows in arrival order"
    );
    let ids: Vec<u64> = r.iter().map(|x| x.request_id).collect();
    assert_eq!(ids, (0..r.len() as u64).collect::<Vec<_>>());
}

#[test]
fn sharegpt_bad_files() {
    let d = tmp();
    let full = std::fs::read_to_string(fx(SHAREGPT)).unwrap();
    // cut in the middle of a string, some way in
    let cut = &full[..full.char_indices().nth(5000).unwrap().0];
    let line = cut.matches('\n').count() + 1;
    let f = write(d.path(), "trunc.json", cut);
    let e = fails(&["sharegpt", &f]);
    assert!(e.contains(&format!("trunc.json: line {line}: column")), "{e}");
    assert!(e.contains("truncated"), "{e}");
    let f = write(
        d.path(),
        "type.json",
        "[\n  {\"id\": \"a\", \"conversations\": [\n    {\"from\": \"human\", \"value\": \"hi\"},\n    {\"from\": \"gpt\", \"value\": 5}\n  ]}\n]\n",
    );
    let e = fails(&["sharegpt", &f]);
    assert!(e.contains("type.json: line 4: column"), "{e}");
    assert!(e.contains("expected a string"), "{e}");
    let f = write(d.path(), "obj.json", "{\"conversations\": []}");
    let e = fails(&["sharegpt", &f]);
    assert!(
        e.contains("obj.json: line 1: column") && e.contains("JSON array"),
        "{e}"
    );
    let f = write(d.path(), "trail.json", "[]\n]");
    let e = fails(&["sharegpt", &f]);
    assert!(e.contains("trail.json: line 2"), "{e}");
}

#[test]
fn mooncake_sample() {
    let d = tmp();
    let (p, _) = tg(d.path(), "m.parquet", &["mooncake", &fx(MOONCAKE)]);
    let r = rows_of(&p);
    assert_eq!(r.len(), 2000);
    assert_eq!((r[0].input_tokens, r[0].output_tokens), (6758, 500));
    assert_eq!(r[0].prefix_blocks.as_deref(), Some(&(0..14).collect::<Vec<u64>>()[..]));
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(fx(MOONCAKE))
            .unwrap()
            .lines()
            .nth(1999)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r[1999].arrival_s, first["timestamp"].as_f64().unwrap() / 1000.0);
    for x in &r {
        let n = x.prefix_blocks.as_ref().unwrap().len() as u32;
        assert_eq!(n, x.input_tokens.div_ceil(512));
    }
    let s = stats_json(&p, "60s");
    assert_eq!(counts(&s), [162, 177, 217, 175, 187, 164, 144, 183, 162, 179, 218, 32]);
    assert!(s["gap_cv"].as_f64().unwrap() > 2.0, "bucketed arrivals are bursty");
    // --clamp cuts prefix blocks too
    let (c, _) = tg(
        d.path(),
        "c.parquet",
        &["mooncake", &fx(MOONCAKE), "--max-input", "2000", "--clamp"],
    );
    for x in rows_of(&c) {
        assert!(x.input_tokens <= 2000);
        assert_eq!(x.prefix_blocks.unwrap().len() as u32, x.input_tokens.div_ceil(512));
    }
}

#[test]
fn mooncake_bad_lines() {
    let d = tmp();
    let good = "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [0, 1]}\n";
    let f = write(
        d.path(),
        "trunc.jsonl",
        &format!("{good}{good}{{\"timestamp\": 10, \"input_len"),
    );
    let e = fails(&["mooncake", &f]);
    assert!(e.contains("trunc.jsonl: line 3: column"), "{e}");
    let f = write(
        d.path(),
        "ts.jsonl",
        &format!("{good}{{\"timestamp\": \"soon\", \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}}\n"),
    );
    let e = fails(&["mooncake", &f]);
    assert!(
        e.contains("ts.jsonl: line 2: column `timestamp`: \"soon\" is not a non-negative number"),
        "{e}"
    );
    let f = write(
        d.path(),
        "ids.jsonl",
        &format!("{good}\n{{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [\"x\"]}}\n"),
    );
    let e = fails(&["mooncake", &f]);
    assert!(e.contains("ids.jsonl: line 3: column `hash_ids`"), "{e}");
    let f = write(
        d.path(),
        "miss.jsonl",
        "{\"timestamp\": 1, \"output_length\": 1, \"hash_ids\": [0]}\n",
    );
    let e = fails(&["mooncake", &f]);
    assert!(
        e.contains("miss.jsonl: line 1: column") && e.contains("input_length"),
        "{e}"
    );
}

#[test]
fn burstgpt_v1_and_v3() {
    let d = tmp();
    let v1 = write(
        d.path(),
        "b1.csv",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
         5,ChatGPT,472,18,490,Conversation log\n\
         5,GPT-4,100,0,100,Conversation log\n\
         6,ChatGPT,0,0,0,API log\n\
         9,GPT-4,300,40,340,API log\n\
         12,ChatGPT,50,60,110,API log\n",
    );
    let (p, o) = tg(d.path(), "b1.parquet", &["burstgpt", &v1]);
    assert!(stderr(&o).contains("skipped 2 failed"), "{}", stderr(&o));
    let r = rows_of(&p);
    assert_eq!(r.iter().map(|x| x.arrival_s).collect::<Vec<_>>(), [0.0, 4.0, 7.0]);
    assert_eq!(r.iter().map(|x| x.input_tokens).collect::<Vec<_>>(), [472, 300, 50]);
    assert_eq!(r[1].category.as_deref(), Some("GPT-4"));
    let (p, _) = tg(d.path(), "k.parquet", &["burstgpt", &v1, "--keep-failed"]);
    assert_eq!(rows_of(&p).len(), 5);
    let (p, _) = tg(
        d.path(),
        "m.parquet",
        &["burstgpt", &v1, "--model", "gpt-4", "--keep-failed"],
    );
    assert_eq!(
        rows_of(&p).iter().map(|x| x.input_tokens).collect::<Vec<_>>(),
        [100, 300]
    );
    let (p, o) = tg(d.path(), "l.parquet", &["burstgpt", &v1, "--log-type", "api"]);
    assert!(stderr(&o).contains("of other log types"), "{}", stderr(&o));
    let r = rows_of(&p);
    assert_eq!(r.iter().map(|x| x.arrival_s).collect::<Vec<_>>(), [0.0, 3.0]);
    // v3: two more columns in the middle; found by name
    let v3 = write(
        d.path(),
        "b3.csv",
        "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
         100,17,1.5,ChatGPT,20,30,50,Conversation log\n\
         101,17,2.5,ChatGPT,25,35,60,Conversation log\n",
    );
    let (p, _) = tg(d.path(), "b3.parquet", &["burstgpt", &v3]);
    let r = rows_of(&p);
    assert_eq!((r[1].arrival_s, r[1].input_tokens, r[1].output_tokens), (1.0, 25, 35));
    // bad rows
    let bad = write(
        d.path(),
        "bad.csv",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,472,18,490,API log\n6,ChatGPT,x,18,490,API log\n",
    );
    let e = fails(&["burstgpt", &bad]);
    assert!(
        e.contains("bad.csv: line 3: column `Request tokens`: \"x\" is not a number"),
        "{e}"
    );
    let bad = write(d.path(), "nocol.csv", "Timestamp,Model,Request tokens\n5,ChatGPT,472\n");
    let e = fails(&["burstgpt", &bad]);
    assert!(
        e.contains("line 1: column `Response tokens`: missing from the header"),
        "{e}"
    );
}

#[test]
fn splitwise_and_mapped_csv_jsonl() {
    let d = tmp();
    let s = write(
        d.path(),
        "sw.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,10\n0.5,200,20\n2.25,300,30\n",
    );
    let (p, _) = tg(d.path(), "sw.parquet", &["splitwise", &s]);
    let r = rows_of(&p);
    assert_eq!(r.iter().map(|x| x.arrival_s).collect::<Vec<_>>(), [0.0, 0.5, 2.25]);
    assert_eq!(r[2].source.as_deref(), Some("splitwise"));
    let bad = write(
        d.path(),
        "swbad.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,10\nx,1,1\n",
    );
    let e = fails(&["splitwise", &bad]);
    assert!(
        e.contains("swbad.csv: line 3: column `arrived_at`: \"x\" is not a number"),
        "{e}"
    );
    // a CSV with datetimes, string sessions, a category and text
    let c = write(
        d.path(),
        "log.csv",
        "when,user,kind,text,max\n\
         2024-01-01 10:00:00,alice,chat,hello there,16\n\
         2024-01-01 10:00:02.5,bob,code,fn main() {},32\n\
         2024-01-01 10:00:04,alice,chat,and again,8\n",
    );
    let (p, _) = tg(
        d.path(),
        "c.parquet",
        &[
            "csv",
            &c,
            "--columns",
            "arrival=when,prompt=text,output=max,session=user,category=kind",
            "--arrival-unit",
            "datetime",
        ],
    );
    let r = rows_of(&p);
    assert_eq!(r.iter().map(|x| x.arrival_s).collect::<Vec<_>>(), [0.0, 2.5, 4.0]);
    assert_eq!(r[0].session_id, r[2].session_id);
    assert_ne!(r[0].session_id, r[1].session_id);
    assert_eq!((r[0].turn, r[2].turn), (Some(0), Some(1)));
    assert_eq!(r[1].input_tokens, 6); // fn main ( ) { }
    assert_eq!(r[1].category.as_deref(), Some("code"));
    assert_eq!(r[1].prompt.as_deref(), Some("fn main() {}"));
    // JSONL in milliseconds
    let j = write(
        d.path(),
        "r.jsonl",
        "{\"t\": 1000, \"in\": 5, \"out\": 6}\n{\"t\": 1500, \"in\": 7, \"out\": 8}\n",
    );
    let (p, _) = tg(
        d.path(),
        "j.parquet",
        &[
            "csv",
            &j,
            "--columns",
            "arrival=t,input=in,output=out",
            "--arrival-unit",
            "ms",
        ],
    );
    assert_eq!(rows_of(&p).iter().map(|x| x.arrival_s).collect::<Vec<_>>(), [0.0, 0.5]);
    let e = fails(&["csv", &c, "--columns", "arrival=when,input=nope,output=max"]);
    assert!(
        e.contains("log.csv: line 1: column `nope`: missing from the header"),
        "{e}"
    );
    let e = fails(&[
        "csv",
        &c,
        "--columns",
        "arrival=when,prompt=text,output=max",
        "--arrival-unit",
        "ms",
    ]);
    assert!(e.contains("log.csv: line 2: column `when`"), "{e}");
    let bad = write(
        d.path(),
        "bad.jsonl",
        "{\"t\": 1, \"in\": 5, \"out\": 6}\n{\"t\": 2, \"in\": 5, \"out\": -1}\n",
    );
    let e = fails(&["csv", &bad, "--columns", "arrival=t,input=in,output=out"]);
    assert!(e.contains("bad.jsonl: line 2: column `out`"), "{e}");
    let e = fails(&["csv", &c, "--columns", "arrival=when"]);
    assert!(e.contains("--columns"), "{e}");
}

#[test]
fn trace_tools() {
    let d = tmp();
    let conv = fx(AZURE_CONV);
    // a window: minutes 1 and 2, re-based so that 1m is t = 0
    let (p, o) = tg(
        d.path(),
        "w.parquet",
        &["azure", &conv, "--start", "1m", "--window", "2m"],
    );
    let r = rows_of(&p);
    assert_eq!(r.len(), 265 + 329);
    assert!(r.iter().all(|x| (0.0..120.0).contains(&x.arrival_s)));
    assert!(stderr(&o).contains("outside the window"), "{}", stderr(&o));
    assert_eq!(r[0].request_id, 0);
    // time scale
    let (p, _) = tg(d.path(), "h.parquet", &["azure", &conv, "--time-scale", "0.5"]);
    let last = rows_of(&p).last().unwrap().arrival_s;
    assert!((last - 424.259457 / 2.0).abs() < 1e-9);
    // a target rate keeps the burst shape (the gaps' CV) and hits the mean rate exactly
    let (orig, _) = tg(d.path(), "o.parquet", &["azure", &conv]);
    let (p, _) = tg(d.path(), "r.parquet", &["azure", &conv, "--rate", "10"]);
    let a = stats_json(&orig, "60s");
    let b = stats_json(&p, "60s");
    assert!((b["mean_rate_rps"].as_f64().unwrap() - 10.0).abs() < 1e-9, "{b}");
    assert!((a["gap_cv"].as_f64().unwrap() - b["gap_cv"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(meta(&p, "servebench.trace.rate_rps").as_deref(), Some("10"));
    assert!(
        !std::fs::read_dir(d.path())
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().contains(".servebench-rate") })
    );
    // max input: dropped, or clamped
    let over = rows_of(&orig).iter().filter(|x| x.input_tokens > 2000).count();
    assert!(over > 0);
    let (p, o) = tg(d.path(), "m.parquet", &["azure", &conv, "--max-input", "2000"]);
    assert_eq!(rows_of(&p).len(), 2000 - over);
    assert!(
        stderr(&o).contains(&format!("{over} over --max-input dropped")),
        "{}",
        stderr(&o)
    );
    let (p, _) = tg(
        d.path(),
        "c.parquet",
        &["azure", &conv, "--max-input", "2000", "--clamp"],
    );
    let r = rows_of(&p);
    assert_eq!(r.len(), 2000);
    assert_eq!(r.iter().filter(|x| x.input_tokens == 2000).count(), over);
    // a seeded sample
    let (p, _) = tg(
        d.path(),
        "s.parquet",
        &["azure", &conv, "--sample", "0.25", "--seed", "3"],
    );
    let n = rows_of(&p).len();
    assert!((400..600).contains(&n), "{n}");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    let (q, _) = tg(
        d.path(),
        "s.parquet",
        &["azure", &conv, "--sample", "0.25", "--seed", "3"],
    );
    assert_eq!(bytes, std::fs::read(&q).unwrap(), "seeded: the same rows");
    // the same tools on an existing trace file give the same rows
    let (t, _) = tg(
        d.path(),
        "t.parquet",
        &["transform", &orig.to_string_lossy(), "--start", "1m", "--window", "2m"],
    );
    let a: Vec<(f64, u32)> = rows_of(&t).iter().map(|x| (x.arrival_s, x.input_tokens)).collect();
    let b: Vec<(f64, u32)> = rows_of(&d.path().join("w.parquet"))
        .iter()
        .map(|x| (x.arrival_s, x.input_tokens))
        .collect();
    assert_eq!(a, b);
    assert_eq!(rows_of(&t)[0].request_id, 191, "transform keeps request ids");
    // bad usage
    fails(&["azure", &conv, "--rate", "5", "--time-scale", "2"]);
    fails(&["azure", &conv, "--sample", "1.5"]);
    fails(&["azure", &conv, "--clamp"]);
    fails(&["transform", &conv]);
}

#[test]
fn stats_text() {
    let d = tmp();
    let (p, _) = tg(d.path(), "m.parquet", &["mooncake", &fx(MOONCAKE)]);
    let o = ok(cmd("tracegen").args(["stats"]).arg(&p));
    let s = String::from_utf8_lossy(&o.stdout);
    for want in [
        "rows         2000",
        "mean rate",
        "CV of gaps",
        "input",
        "output",
        "arrivals per 60.00 s",
        "p99",
    ] {
        assert!(s.contains(want), "{want}: {s}");
    }
    let j = stats_json(&p, "30s");
    assert_eq!(j["bucket_s"], 30.0);
    assert_eq!(j["input_tokens"]["max"], 123192);
    assert_eq!(counts(&j).iter().sum::<u64>(), 2000);
}

/// A WordLevel tokenizer over whitespace-separated words (unknown words are one [UNK] each),
/// so a text's tokens are its words.
fn wordlevel_tokenizer(dir: &Path) -> PathBuf {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), 0.into());
    for (i, w) in servebench::trace::tokens::WORDS.iter().enumerate() {
        vocab.entry(w.to_string()).or_insert((i + 1).into());
    }
    let j = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    let p = dir.join("tokenizer.json");
    std::fs::write(&p, j.to_string()).unwrap();
    p
}

/// A character-level BPE tokenizer with a few merges: common words are one to several tokens,
/// and text cut mid-word re-tokenizes differently (the exact-length loop has work to do).
fn bpe_tokenizer(dir: &Path) -> PathBuf {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), 0.into());
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"()-_/{}".chars() {
        let n = vocab.len();
        vocab.insert(c.to_string(), n.into());
    }
    let merges = ["t h", "th e", "a n", "an d", "o f", "i n", "t o", "e r", "o n", "e s"];
    for m in merges {
        let n = vocab.len();
        vocab.insert(m.replace(' ', ""), n.into());
    }
    let j = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
        "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": "[UNK]", "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": merges}
    });
    let p = dir.join("bpe.json");
    std::fs::write(&p, j.to_string()).unwrap();
    p
}

#[test]
fn tokenizer_counts_imported_text() {
    let d = tmp();
    let tok = wordlevel_tokenizer(d.path());
    let (p, _) = tg(
        d.path(),
        "sg.parquet",
        &[
            "sharegpt",
            &fx(SHAREGPT),
            "--count",
            "30",
            "--tokenizer",
            &tok.to_string_lossy(),
        ],
    );
    for x in rows_of(&p) {
        assert_eq!(x.input_tokens as usize, x.prompt.unwrap().split_whitespace().count());
    }
    let m = meta(&p, "servebench.trace.tokenizer").unwrap();
    assert!(m.starts_with("tokenizer.json sha256:"), "{m}");
    // --clamp cuts the text to N tokens of that tokenizer
    let (p, _) = tg(
        d.path(),
        "c.parquet",
        &[
            "sharegpt",
            &fx(SHAREGPT),
            "--tokenizer",
            &tok.to_string_lossy(),
            "--max-input",
            "20",
            "--clamp",
        ],
    );
    for x in rows_of(&p) {
        let words = x.prompt.unwrap().split_whitespace().count() as u32;
        assert!(
            x.input_tokens <= 20 && words == x.input_tokens,
            "{words} {}",
            x.input_tokens
        );
    }
    let bad = write(d.path(), "bad.json", "{\"model\": 3}");
    let e = fails(&["sharegpt", &fx(SHAREGPT), "--tokenizer", &bad]);
    assert!(e.contains("bad.json: cannot load the tokenizer"), "{e}");
}

/// The prompt text of every completions request a scripted server received.
fn sent_prompts(bodies: &std::sync::Mutex<Vec<Vec<u8>>>) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            let j: serde_json::Value = serde_json::from_slice(b).unwrap();
            (
                j["max_tokens"].as_u64().unwrap() as u32,
                j["prompt"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn recording_server() -> (Scripted, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let rec = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let srv = Scripted::start(Script {
        body: fixture("sse/vllm-completions.sse"),
        record: Some(rec.clone()),
        pause: std::time::Duration::ZERO,
        ..Script::default()
    });
    (srv, rec)
}

#[test]
fn replay_tokenizer_makes_exact_prompts() {
    let d = tmp();
    let tok_path = bpe_tokenizer(d.path());
    let tok = servebench::trace::tokenizer::Tok::load(&tok_path).unwrap();
    let t = trace(
        d.path(),
        "t.parquet",
        &[
            "batch",
            "--count",
            "12",
            "--input-len",
            "uniform:300:0.9",
            "--output-len",
            "4",
        ],
    );
    let want: Vec<u32> = rows_of(&t).iter().map(|x| x.input_tokens).collect();
    let (srv, rec) = recording_server();
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &srv.url,
            "--api",
            "completions",
            "--model",
            "m",
            "--concurrency",
            "4",
            "--quiet",
        ])
        .arg("--tokenizer")
        .arg(&tok_path)
        .arg("-o")
        .arg(&out));
    let sent = sent_prompts(&rec);
    assert_eq!(sent.len(), 12);
    let mut got: Vec<u32> = sent.iter().map(|(_, p)| tok.count(p).unwrap()).collect();
    let mut want = want;
    got.sort();
    want.sort();
    assert_eq!(got, want, "prompts are exactly input_tokens long in the tokenizer");
    let m = meta(&out, "servebench.prompter").unwrap();
    assert!(m.starts_with("bpe.json sha256:"), "{m}");
    // the approximation says so in the trace
    assert!(meta(&t, "servebench.trace.tokenizer").unwrap().starts_with("approx-v1"));
}

/// Mooncake rows replayed: equal block ids give equal prompt bytes, different ids different
/// bytes, and every prompt has input_length tokens (the last block holds the remainder) — with
/// the approximation and with a real tokenizer.
#[test]
fn mooncake_replay_reproduces_shared_prefixes() {
    let d = tmp();
    let tok_path = bpe_tokenizer(d.path());
    let tok = servebench::trace::tokenizer::Tok::load(&tok_path).unwrap();
    // 24 rows that fit in 6000 tokens, played 1000x faster
    let (t, _) = tg(
        d.path(),
        "m.parquet",
        &[
            "mooncake",
            &fx(MOONCAKE),
            "--max-input",
            "6000",
            "--count",
            "24",
            "--time-scale",
            "0.001",
        ],
    );
    let rows = rows_of(&t);
    assert_eq!(rows.len(), 24);
    for with_tok in [false, true] {
        let (srv, rec) = recording_server();
        let mut c = cmd("replay");
        c.arg(&t).args([
            "--url",
            &srv.url,
            "--api",
            "completions",
            "--model",
            "m",
            "--quiet",
            "--format",
            "csv",
        ]);
        if with_tok {
            c.arg("--tokenizer").arg(&tok_path);
        }
        ok(&mut c);
        drop(srv);
        // match each sent body to its row by its unique max_tokens + length, via the row order:
        // find the row whose prompt this is by checking token counts and block texts
        let sent: Vec<String> = sent_prompts(&rec).into_iter().map(|(_, p)| p).collect();
        assert_eq!(sent.len(), rows.len());
        let count = |s: &str| {
            if with_tok {
                tok.count(s).unwrap()
            } else {
                servebench::trace::tokens::approx_tokens(s)
            }
        };
        let block_text = |id: u64, n: u32| -> String {
            use servebench::client::run::{ApproxPrompter, Prompter};
            if with_tok {
                tok.exact_block(id, n).to_string()
            } else {
                ApproxPrompter.block(id, n)
            }
        };
        // each row's expected prompt: its blocks in order, the last holding the remainder
        let mut expected: Vec<String> = rows
            .iter()
            .map(|r| {
                let ids = r.prefix_blocks.as_ref().unwrap();
                let n = ids.len() as u32;
                let parts: Vec<String> = ids
                    .iter()
                    .enumerate()
                    .map(|(k, id)| {
                        let len = if (k as u32) + 1 < n {
                            512
                        } else {
                            r.input_tokens - 512 * (n - 1)
                        };
                        block_text(*id, len)
                    })
                    .collect();
                parts.join(" ")
            })
            .collect();
        expected.sort();
        let mut sent_sorted = sent.clone();
        sent_sorted.sort();
        assert_eq!(
            sent_sorted, expected,
            "prompts are the rows' blocks (tokenizer: {with_tok})"
        );
        // and so: lengths are exact, and shared ids give shared bytes
        let mut lens: Vec<u32> = sent.iter().map(|p| count(p)).collect();
        let mut want: Vec<u32> = rows.iter().map(|r| r.input_tokens).collect();
        lens.sort();
        want.sort();
        assert_eq!(lens, want, "tokenizer: {with_tok}");
        let b0 = block_text(0, 512);
        let starts_with_0 = rows
            .iter()
            .filter(|r| r.prefix_blocks.as_ref().unwrap()[0] == 0)
            .count();
        assert!(starts_with_0 > 1, "the sample has rows sharing block 0");
        assert_eq!(sent.iter().filter(|p| p.starts_with(&b0)).count(), starts_with_0);
        // a different first block never shares the first bytes
        let mut firsts: Vec<&str> = sent.iter().map(|p| &p[..40.min(p.len())]).collect();
        firsts.sort();
        firsts.dedup();
        let mut first_ids: Vec<u64> = rows.iter().map(|r| r.prefix_blocks.as_ref().unwrap()[0]).collect();
        first_ids.sort();
        first_ids.dedup();
        assert_eq!(firsts.len(), first_ids.len());
    }
}

/// An Azure sample replayed at 1/20 of its time keeps its arrival shape: requests sent per
/// (scaled) minute equal the trace's requests per minute.
#[test]
fn timing_azure_replay_keeps_arrival_shape() {
    let d = tmp();
    let scale = 0.05;
    let (t, _) = tg(
        d.path(),
        "a.parquet",
        &[
            "azure",
            &fx(AZURE_CONV),
            "--window",
            "3m",
            "--time-scale",
            &scale.to_string(),
        ],
    );
    let (src, _) = tg(d.path(), "src.parquet", &["azure", &fx(AZURE_CONV), "--window", "3m"]);
    let trace_counts = counts(&stats_json(&src, "60s"));
    assert_eq!(trace_counts, [191, 265, 329]);
    let m = Mock::start(&["--ttft-ms", "1", "--itl-ms", "0", "--tokens-per-chunk", "256"]);
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &m.url, "--api", "completions", "--quiet", "-o"])
        .arg(&out));
    let q = |sql: &str| duckdb(&sql.replace("FILE", &out.to_string_lossy()));
    let n = q("SELECT count(*) FROM 'FILE' WHERE status = 'ok'");
    assert_eq!(n.trim(), "(785,)", "{n}");
    // per scaled minute (3 s), by when requests were sent and by when they were due
    let bucket = 60.0 * scale;
    let sql = format!(
        "WITH r AS (SELECT epoch(sent_at) AS s, epoch(scheduled_at) AS d FROM 'FILE'),
              z AS (SELECT min(d) AS t0 FROM r)
         SELECT floor((s - t0) / {bucket})::INT AS b, count(*),
                sum(CASE WHEN floor((d - t0) / {bucket}) = floor((s - t0) / {bucket}) THEN 0
                         WHEN abs((d - t0) / {bucket} - round((d - t0) / {bucket})) * {bucket} < 0.25 THEN 0
                         ELSE 1 END)
         FROM r, z GROUP BY 1 ORDER BY 1"
    );
    let rows: Vec<(i64, u64, u64)> = q(&sql)
        .lines()
        .map(|l| {
            let v: Vec<i64> = l
                .trim_matches(|c| c == '(' || c == ')')
                .split(',')
                .map(|x| x.trim().parse().unwrap())
                .collect();
            (v[0], v[1] as u64, v[2] as u64)
        })
        .collect();
    let due = q(&format!(
        "WITH r AS (SELECT epoch(scheduled_at) AS d FROM 'FILE'), z AS (SELECT min(d) AS t0 FROM r)
         SELECT floor((d - t0) / {bucket})::INT, count(*) FROM r, z GROUP BY 1 ORDER BY 1"
    ));
    assert_eq!(due.trim(), "(0, 191)\n(1, 265)\n(2, 329)", "schedule per scaled minute");
    // sent per scaled minute: equal, except requests due within 250 ms of a bucket edge may
    // fall on the other side of it; no request leaves its bucket otherwise
    assert!(rows.iter().all(|r| r.2 == 0), "{rows:?}");
    let sent: Vec<u64> = rows.iter().map(|r| r.1).collect();
    for (a, b) in sent.iter().zip(&trace_counts) {
        assert!(
            a.abs_diff(*b) <= 3,
            "sent per minute {sent:?} vs trace {trace_counts:?}"
        );
    }
}

/// Every option of every importer, transform and stats appears in an example of its --help.
#[test]
fn every_new_flag_has_an_example() {
    for sub in [
        "sharegpt",
        "azure",
        "burstgpt",
        "mooncake",
        "splitwise",
        "csv",
        "transform",
        "stats",
    ] {
        let o = ok(cmd("tracegen").args([sub, "--help"]));
        let help = String::from_utf8_lossy(&o.stdout).to_string();
        let top = String::from_utf8_lossy(&ok(cmd("tracegen").arg("--help")).stdout).to_string();
        let examples: String = help
            .lines()
            .chain(top.lines())
            .filter(|l| l.trim_start().starts_with("tracegen ") || l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let flags: Vec<&str> = help
            .split(|c: char| c.is_whitespace() || ",=/()".contains(c))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .collect();
        for f in flags {
            let f = f.trim_end_matches(|c: char| !c.is_alphanumeric());
            // --format of data outputs is older than these subcommands; stats has its own
            if ["--help", "--print-schema", "--output"].contains(&f) || (f == "--format" && sub != "stats") {
                continue;
            }
            assert!(examples.contains(f), "tracegen {sub}: {f} has no example in --help");
        }
    }
    let o = ok(cmd("replay").arg("--help"));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("--tokenizer ./"),
        "replay --tokenizer example"
    );
}

/// ShareGPT sessions replayed: each later turn carries the conversation so far (the earlier
/// prompts and the replies received) and leaves at least its think time after the previous
/// turn's reply ended.
#[test]
fn timing_sharegpt_sessions_replay_history_and_think_time() {
    let d = tmp();
    let (t, _) = tg(
        d.path(),
        "s.parquet",
        &[
            "sharegpt",
            &fx(SHAREGPT),
            "--sessions",
            "--think-time",
            "300ms",
            "--count",
            "4",
            "--seed",
            "3",
        ],
    );
    let rows = rows_of(&t);
    assert!(rows.iter().any(|r| r.turn == Some(2)), "the sample has 3-turn sessions");
    let rec = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let srv = Scripted::start(Script {
        body: fixture("sse/vllm-chat.sse"),
        record: Some(rec.clone()),
        pause: std::time::Duration::ZERO,
        ..Script::default()
    });
    let out = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &srv.url, "--api", "chat", "--model", "m", "--quiet", "-o"])
        .arg(&out));
    assert!(column_text(&out, "status").iter().all(|s| s == "ok"));
    // history: a turn k request has 2k + 1 messages, the last being the row's prompt
    let bodies: Vec<serde_json::Value> = rec
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(bodies.len(), rows.len());
    for r in &rows {
        let prompt = r.prompt.as_deref().unwrap();
        let b = bodies
            .iter()
            .find(|b| {
                let m = b["messages"].as_array().unwrap();
                m.len() == 2 * r.turn.unwrap() as usize + 1 && m.last().unwrap()["content"] == prompt
            })
            .unwrap_or_else(|| panic!("no request for session {:?} turn {:?}", r.session_id, r.turn));
        let m = b["messages"].as_array().unwrap();
        for (k, msg) in m.iter().enumerate() {
            assert_eq!(msg["role"], if k % 2 == 0 { "user" } else { "assistant" });
        }
        if r.turn.unwrap() > 0 {
            let prev = rows
                .iter()
                .find(|p| p.session_id == r.session_id && p.turn == Some(r.turn.unwrap() - 1))
                .unwrap();
            assert_eq!(m[m.len() - 3]["content"], prev.prompt.as_deref().unwrap());
            assert!(
                !m[m.len() - 2]["content"].as_str().unwrap().is_empty(),
                "the reply received"
            );
        }
    }
    // think time: sent_at(turn k+1) >= done_at(turn k) + 300 ms
    let gaps = duckdb(&format!(
        "SELECT min(epoch(b.sent_at) - epoch(a.done_at)) FROM '{0}' a JOIN '{0}' b
         ON a.session_id = b.session_id AND b.turn = a.turn + 1",
        out.to_string_lossy()
    ));
    let g: f64 = gaps
        .trim()
        .trim_matches(|c| c == '(' || c == ')' || c == ',')
        .parse()
        .unwrap();
    assert!(
        g >= 0.299,
        "turn k+1 left {g} s after turn k's reply; think time is 0.3 s"
    );
}
