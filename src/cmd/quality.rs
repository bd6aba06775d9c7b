//! `quality`: score an evaluation set through an endpoint with log probabilities (one row per
//! passage position and per task item, the `quality` contract), or compare a variant's rows
//! with its baseline's (`--baseline BASE VARIANT`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::http::Client;
use crate::client::protocol::Api;
use crate::client::tls::TlsOptions;
use crate::endpoint::Endpoint;
use crate::engine::state::EngineState;
use crate::io::write::Sink;
use crate::meta::Meta;
use crate::quality::compare::{
    META_ENGINE, META_LABEL, META_MODEL, META_QUANT, META_SET, META_SET_SHA256, compare_files,
};
use crate::quality::logprobs::{
    LLAMACPP_TOKENIZE, LogprobError, Piece, default_top_k, llamacpp_position, llamacpp_position_body,
    llamacpp_tokenize_body, llamacpp_tokens, parse, path as route, request_body, scores_per_position, scores_prompt,
};
use crate::quality::measures::{Position, exact_match};
use crate::schema::{QUALITY, QualityRow, Rows};

/// The checked-in evaluation set.
pub const DEFAULT_SET: &str = "configs/quality/eval.jsonl";

#[derive(Parser, Debug)]
#[command(
    name = "quality",
    about = "Measure a served model's quality through its endpoint: teacher-forced log probabilities of an evaluation set's passages and greedy answers to its task items (one row each, the quality contract); with --baseline, compare a variant's rows with its baseline's",
    after_help = "Examples:\n  quality --url http://127.0.0.1:8000 --api completions --model M --engine vllm --quant fp16 -o base.parquet\n  quality --engine vllm -o fp8.parquet\n  quality --baseline base.parquet fp8.parquet\n\n--baseline prints one JSON object: top-1 disagreement, mean KL (nats) and the perplexity ratio, each with its 95% interval (a bootstrap over blocks of 8 consecutive passage positions), greedy agreement, and the accuracy change in points with its 95% paired bootstrap interval over task items. The files carry the engine and quantization (from engine-up's state, or --engine and --quant) by which report matches them to the speed runs.\n\nExit status: 0 done; 2 bad arguments, a malformed set (naming its line), an engine that returns no log probabilities (naming the field and the engine), an endpoint that fails, or two files measured on different sets."
)]
pub struct Args {
    /// Endpoint base URL
    #[arg(long)]
    pub url: Option<String>,
    /// Engine started by engine-up (URL, model and quantization come from its state file);
    /// with --url, its state file is used where there is one, else only the name is recorded
    #[arg(long)]
    pub engine: Option<String>,
    /// Quantization variant recorded in the output (default: the engine's, from its state file)
    #[arg(long)]
    pub quant: Option<String>,
    /// Label recorded in the output (default: ENGINE-QUANT)
    #[arg(long)]
    pub label: Option<String>,
    /// Directory of engine-up state files
    #[arg(long, env = "SERVEBENCH_STATE_DIR", default_value = ".servebench/engines")]
    pub state_dir: PathBuf,
    /// Protocol: completions (scores passages with echo; vLLM's prompt_logprobs), chat, tgi, sglang, llamacpp (scores passages one request per position); chat cannot score a given text: task rows only
    #[arg(long, default_value = "completions")]
    pub api: String,
    /// Model name sent in OpenAI requests (default: the engine's served model)
    #[arg(long)]
    pub model: Option<String>,
    /// Log probabilities per position [default: the most the protocol's engines return by
    /// default: 20 (vLLM's --max-logprobs, OpenAI chat's top_logprobs; SGLang and llama.cpp,
    /// which cap only at the vocabulary), 5 for tgi (TGI's --max-top-n-tokens)]
    #[arg(long)]
    pub top_k: Option<u32>,
    /// Evaluation set (JSONL: {"id","kind":"passage","text"} or {"id","kind":"task","prompt","answer"})
    #[arg(long, default_value = DEFAULT_SET)]
    pub set: PathBuf,
    /// Tokens a task answer may take
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Output file (.parquet, .csv, .jsonl); stdout when absent
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Compare: the baseline's rows, then the variant's (positional)
    #[arg(long, value_name = "BASE")]
    pub baseline: Option<PathBuf>,
    /// The variant's rows (with --baseline)
    pub variant: Option<PathBuf>,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// llamacpp: positions scored per passage (one request each, the first N after the first
    /// token); the rest of a longer passage is left out
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_positions: u32,
    /// llamacpp: requests in flight at once while scoring a passage's positions
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// One item of the evaluation set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub answer: Option<String>,
}

/// Read an evaluation set; a malformed item names its line. Returns the items and the file's
/// SHA-256 (hex).
pub fn load_set(path: &Path) -> anyhow::Result<(Vec<Item>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the evaluation set {}", path.display()))?;
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    let mut items = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let it: Item =
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{}:{n}: malformed item: {e}", path.display()))?;
        let ok = match it.kind.as_str() {
            "passage" => {
                it.text.as_deref().is_some_and(|t| !t.trim().is_empty()) && it.prompt.is_none() && it.answer.is_none()
            }
            "task" => {
                it.prompt.as_deref().is_some_and(|t| !t.trim().is_empty())
                    && it.answer.as_deref().is_some_and(|t| !t.trim().is_empty())
                    && it.text.is_none()
            }
            _ => false,
        };
        if !ok {
            bail!(
                "{}:{n}: malformed item {:?}: a passage has a non-empty \"text\"; a task has a non-empty \"prompt\" and \"answer\"; kind is passage or task",
                path.display(),
                it.id
            );
        }
        if !ids.insert(it.id.clone()) {
            bail!("{}:{n}: item id {:?} appears twice", path.display(), it.id);
        }
        items.push(it);
    }
    if items.is_empty() {
        bail!("{}: the evaluation set has no items", path.display());
    }
    Ok((items, sha))
}

/// Exit status 2 with the message (bad input).
struct Usage(String);

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(base) = &args.baseline {
        let Some(var) = &args.variant else {
            eprintln!("quality: --baseline BASE needs the variant's file after it");
            return Ok(ExitCode::from(2));
        };
        return match compare_files(base, var) {
            Ok(c) => {
                println!("{}", c.to_json());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("quality: {e:#}");
                Ok(ExitCode::from(2))
            }
        };
    }
    match measure(&args) {
        Ok(code) => Ok(code),
        Err(e) => match e.downcast::<UsageError>() {
            Ok(u) => {
                eprintln!("quality: {}", u.0);
                Ok(ExitCode::from(2))
            }
            Err(e) => Err(e),
        },
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

impl From<Usage> for anyhow::Error {
    fn from(u: Usage) -> anyhow::Error {
        UsageError(u.0).into()
    }
}

fn measure(args: &Args) -> anyhow::Result<ExitCode> {
    let api = Api::from_name(&args.api).ok_or_else(|| Usage(format!("unknown --api {:?}", args.api)))?;
    let top_k = args.top_k.unwrap_or_else(|| default_top_k(api));
    if top_k == 0 {
        return Err(Usage("--top-k must be at least 1".into()).into());
    }
    let (items, sha) = load_set(&args.set).map_err(|e| Usage(format!("{e:#}")))?;
    let state = match (&args.engine, &args.url) {
        (Some(name), None) => Some(EngineState::load(&args.state_dir, name).map_err(|e| Usage(e.to_string()))?),
        // with --url the engine's state is used when there is one; the name is recorded anyway
        (Some(name), Some(_)) => EngineState::load(&args.state_dir, name).ok(),
        (None, _) => None,
    };
    let url = match (&args.url, &state) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.url.clone(),
        (None, None) => {
            return Err(Usage(
                "say where to send requests: --url http://HOST:PORT, or --engine NAME after engine-up".into(),
            )
            .into());
        }
    };
    let who = args.engine.clone().unwrap_or_else(|| url.clone());
    let model = args.model.clone().or_else(|| {
        state
            .as_ref()
            .map(|s| s.served_model.clone().unwrap_or(s.model.clone()))
    });
    if api.needs_model() && model.is_none() {
        return Err(Usage(format!("the {} protocol needs --model", api.name())).into());
    }
    let target = Endpoint::parse(&url).map_err(|e| Usage(e.to_string()))?;
    let client = Client::new(target, Vec::new(), true, &TlsOptions::default()).map_err(|e| Usage(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let per_position = scores_per_position(api);
    if per_position && (args.max_positions == 0 || args.concurrency == 0) {
        return Err(Usage("--max-positions and --concurrency must be at least 1".into()).into());
    }
    let score = scores_prompt(api) || per_position;
    if per_position {
        eprintln!(
            "quality: the {} protocol scores a passage one request per position (its first {} positions, {} requests in flight; a prefix of the next, cached by the server)",
            api.name(),
            args.max_positions,
            args.concurrency
        );
    } else if !score {
        eprintln!(
            "quality: the {} protocol cannot score a given text: teacher-forced agreement, KL and perplexity are missing; task rows only",
            api.name()
        );
    }
    if api == Api::Tgi {
        eprintln!(
            "quality: TGI scores the prompt without alternatives (decoder_input_details): perplexity only; teacher-forced agreement and KL are missing"
        );
    }
    let mut rows: Vec<QualityRow> = Vec::new();
    let timeout = Duration::from_secs(args.timeout.max(1));
    // llama.cpp: scored positions, and those whose observed token was outside the top k
    let (mut scored_positions, mut outside) = (0usize, 0usize);
    for it in &items {
        if per_position && it.kind == "passage" {
            let text = it.text.as_deref().unwrap_or_default();
            let ps = rt
                .block_on(teacher_force(&client, text, top_k, args, timeout))
                .with_context(|| format!("item {}: {who}", it.id))?
                .map_err(|e| Usage(format!("{who}: item {}: {e}", it.id)))?;
            for (i, p) in ps.into_iter().enumerate() {
                if i > 0 {
                    scored_positions += 1;
                    outside += usize::from(p.logprob.is_none());
                }
                rows.push(QualityRow {
                    item_id: it.id.clone(),
                    item_kind: it.kind.clone(),
                    top_k,
                    api: api.name().to_string(),
                    position: Some(i as u32),
                    position_token: Some(p.token),
                    token_logprob: p.logprob,
                    top_logprobs_json: Some(json!(p.top).to_string()),
                    ..Default::default()
                });
            }
            continue;
        }
        let (prompt, max_tokens, passage) = match it.kind.as_str() {
            "passage" if score => (it.text.as_deref().unwrap_or_default(), 1, true),
            "passage" => continue,
            _ => (it.prompt.as_deref().unwrap_or_default(), args.max_tokens, false),
        };
        let body = request_body(api, model.as_deref(), prompt, max_tokens, top_k, passage);
        let resp = rt
            .block_on(post(&client, route(api), &body, timeout))
            .with_context(|| format!("item {}: {who}", it.id))?;
        let scored =
            parse(api, &resp, passage).map_err(|e: LogprobError| Usage(format!("{who}: item {}: {e}", it.id)))?;
        let base = QualityRow {
            item_id: it.id.clone(),
            item_kind: it.kind.clone(),
            top_k,
            api: api.name().to_string(),
            ..Default::default()
        };
        if passage {
            for (i, p) in scored.prompt.unwrap_or_default().into_iter().enumerate() {
                rows.push(QualityRow {
                    position: Some(i as u32),
                    position_token: Some(p.token),
                    token_logprob: p.logprob,
                    top_logprobs_json: Some(json!(p.top).to_string()),
                    ..base.clone()
                });
            }
        } else {
            let answer = it.answer.clone().unwrap_or_default();
            let toks: Vec<&str> = scored.generated.iter().map(|p| p.token.as_str()).collect();
            rows.push(QualityRow {
                correct: Some(exact_match(&scored.text, &answer)),
                output_tokens_json: Some(json!(toks).to_string()),
                output_text: Some(scored.text),
                expected: Some(answer),
                ..base
            });
        }
    }
    let mut meta = Meta::for_output(&QUALITY, false);
    meta.set(META_SET, args.set.display().to_string());
    meta.set(META_SET_SHA256, sha);
    let engine = state.as_ref().map(|s| s.name.clone()).or_else(|| args.engine.clone());
    let quant = args
        .quant
        .clone()
        .or_else(|| state.as_ref().and_then(|s| s.quant.clone()));
    if let Some(e) = &engine {
        meta.set(META_ENGINE, e.clone());
    }
    if let Some(q) = &quant {
        meta.set(META_QUANT, q.clone());
    }
    if let Some(m) = &model {
        meta.set(META_MODEL, m.clone());
    }
    let label = args.label.clone().or_else(|| match (&engine, &quant) {
        (Some(e), Some(q)) => Some(format!("{e}-{q}")),
        (e, _) => e.clone(),
    });
    if let Some(l) = label {
        meta.set(META_LABEL, l);
    }
    let mut sink = Sink::create(args.output.as_deref(), None, QUALITY.schema(), &meta)?;
    sink.write(&QualityRow::encode(&rows, &()))?;
    let n = sink.finish()?;
    if per_position && outside > 0 {
        eprintln!(
            "quality: at {outside} of {scored_positions} scored positions the passage's token was not among the top {top_k}: no log probability there (its mass is in the KL's tail bucket; perplexity leaves those positions out)"
        );
    }
    eprintln!("quality: {n} rows from {} items ({who})", items.len());
    Ok(ExitCode::SUCCESS)
}

/// Teacher-force one passage on llama.cpp (see `quality::logprobs`): tokenize it with the
/// server's tokenizer, then score positions 1..=--max-positions, one `/completion` each,
/// `--concurrency` at a time, in order. Position 0 comes first, unscored. The inner `Err` is a
/// response without the expected fields (exit 2).
async fn teacher_force(
    client: &Client,
    text: &str,
    k: u32,
    args: &Args,
    timeout: Duration,
) -> anyhow::Result<Result<Vec<Position>, LogprobError>> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let tb = post(client, LLAMACPP_TOKENIZE, &llamacpp_tokenize_body(text), timeout).await?;
    let toks: Vec<Piece> = match llamacpp_tokens(&tb) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let ids: Vec<i64> = toks.iter().map(|t| t.id).collect();
    let last = toks.len().saturating_sub(1).min(args.max_positions as usize);
    let bodies: Vec<Value> = (1..=last).map(|i| llamacpp_position_body(&ids[..i], k)).collect();
    let path = route(Api::Llamacpp);
    let resps: Vec<Value> = stream::iter(bodies.iter().map(|b| post(client, path, b, timeout)))
        .buffered(args.concurrency)
        .try_collect()
        .await?;
    let mut out = Vec::with_capacity(last + 1);
    if let Some(first) = toks.first() {
        out.push(Position {
            token: first.piece.clone(),
            ..Default::default()
        });
    }
    for (i, r) in resps.iter().enumerate() {
        match llamacpp_position(r, &toks[i + 1]) {
            Ok(p) => out.push(p),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(out))
}

async fn post(client: &Client, path: &str, body: &Value, timeout: Duration) -> anyhow::Result<Value> {
    let bytes = serde_json::to_vec(body)?;
    let fut = async {
        let mut s = client
            .stream(path, &bytes)
            .await
            .map_err(|e| anyhow::anyhow!("POST {path}: {e}"))?;
        let (b, _) = s.read_to_end(64 << 20).await;
        if s.status != 200 {
            bail!(
                "POST {path}: HTTP {}: {}",
                s.status,
                String::from_utf8_lossy(&b[..b.len().min(500)])
            );
        }
        serde_json::from_slice::<Value>(&b).map_err(|e| anyhow::anyhow!("POST {path}: the response is not JSON: {e}"))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("POST {path}: no answer within {timeout:?}"))?
}
