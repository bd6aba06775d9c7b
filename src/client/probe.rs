//! Ask a server what it is: models, engine, version, and which protocol to speak.
//!
//! Endpoints (ENGINES.md): `/v1/models` (OpenAI-compatible servers; `owned_by` names vLLM,
//! SGLang, llama.cpp...), `/version` (vLLM, TensorRT-LLM), `/info` (TGI), `/server_info`
//! (SGLang), `/props` (llama.cpp `build_info`), `/api/version` (Ollama).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::http::Client;
use super::protocol::Api;

/// What the server said about itself.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub models: Vec<String>,
    pub engine: Option<String>,
    pub version: Option<String>,
    /// The protocol `--api auto` chooses.
    pub api: Option<Api>,
    /// Raw facts for provenance (endpoint -> short JSON).
    pub facts: BTreeMap<String, String>,
}

async fn get_json(c: &Client, path: &str, t: Duration) -> Option<Value> {
    match c.get(path, t).await {
        Ok((200, body)) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 400 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(400).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// Probe the server (each endpoint with a short timeout, all at once).
pub async fn probe(c: &Client, timeout: Duration) -> ServerInfo {
    let (models, version, info, server_info, props, ollama) = tokio::join!(
        get_json(c, "/v1/models", timeout),
        get_json(c, "/version", timeout),
        get_json(c, "/info", timeout),
        get_json(c, "/server_info", timeout),
        get_json(c, "/props", timeout),
        get_json(c, "/api/version", timeout),
    );
    let mut si = ServerInfo::default();
    let str_of = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    if let Some(m) = &models {
        if let Some(data) = m.get("data").and_then(|d| d.as_array()) {
            for d in data {
                if let Some(id) = d.get("id").and_then(|x| x.as_str()) {
                    si.models.push(id.to_string());
                }
                if si.engine.is_none() {
                    si.engine = d
                        .get("owned_by")
                        .and_then(|x| x.as_str())
                        .filter(|o| matches!(*o, "vllm" | "sglang" | "llamacpp" | "servebench" | "tensorrt_llm"))
                        .map(str::to_string);
                }
            }
        }
        si.facts.insert("/v1/models".into(), short(m));
    }
    if let Some(v) = &info {
        si.facts.insert("/info".into(), short(v));
        if v.get("model_id").is_some() {
            si.engine.get_or_insert_with(|| "tgi".into());
            si.version = si.version.or_else(|| str_of(v, "version"));
            if si.models.is_empty()
                && let Some(m) = str_of(v, "model_id")
            {
                si.models.push(m);
            }
        }
    }
    if let Some(v) = &server_info {
        si.facts.insert("/server_info".into(), short(v));
        si.engine.get_or_insert_with(|| "sglang".into());
        si.version = si.version.or_else(|| str_of(v, "version"));
    }
    if let Some(v) = &props {
        si.facts.insert("/props".into(), short(v));
        if v.get("build_info").is_some() || v.get("default_generation_settings").is_some() {
            si.engine.get_or_insert_with(|| "llamacpp".into());
            si.version = si.version.or_else(|| str_of(v, "build_info"));
        }
    }
    if let Some(v) = &ollama {
        si.facts.insert("/api/version".into(), short(v));
        si.engine.get_or_insert_with(|| "ollama".into());
        si.version = si.version.or_else(|| str_of(v, "version"));
    }
    if let Some(v) = &version {
        si.facts.insert("/version".into(), short(v));
        si.version = si.version.or_else(|| str_of(v, "version"));
    }
    si.api = if !si.models.is_empty() && models.is_some() {
        Some(Api::Chat)
    } else if info.as_ref().is_some_and(|v| v.get("model_id").is_some()) {
        Some(Api::Tgi)
    } else if server_info.is_some() {
        Some(Api::Sglang)
    } else if props.is_some() {
        Some(Api::Llamacpp)
    } else if ollama.is_some() {
        Some(Api::Ollama)
    } else {
        None
    };
    si
}
