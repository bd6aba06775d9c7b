//! `configs/engines.toml`: how each engine starts (a process, a container, or either), when it
//! is ready, where its version and metrics are, how it stops, and its per-model and
//! per-quantization variants.
//!
//! Launch words are lists with `{name}` placeholders filled by name (never through a shell):
//! the built-ins `{model}`, `{served_model}`, `{host}`, `{port}`, `{bin_dir}`, `{state_dir}`,
//! `{root}`, `{hf_cache}`, `{name}`, `{quant}`, `{form}`, the path of a generated file
//! `{file:NAME}`, and any key of the engine's, the model's or the quant's `vars` (or
//! `engine-up --set KEY=VALUE`). A word that is exactly one placeholder whose value is empty
//! is dropped. `{{` and `}}` are literal braces.
//!
//! Variants: `--model M` picks `models.M` (or uses M as a literal model id), `--quant Q` picks
//! the model's own `models.M.quants.Q` when it has one (it replaces the engine-wide entry),
//! else the engine-wide `quants.Q`. Arguments are appended in that order (model, quant,
//! then the extra arguments after `--`); env, vars and files are merged in the same order
//! (a variant's file content is appended to the engine's file of the same name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::expand::{expand, expand_json};
use crate::endpoint::{self, Endpoint, Scheme};

/// The built-in engines file.
pub const BUILTIN: &str = include_str!("../../configs/engines.toml");

/// Placeholder names engine-up fills itself; `vars` may not redefine them.
pub const BUILTINS: &[&str] = &[
    "name",
    "model",
    "served_model",
    "host",
    "port",
    "bin_dir",
    "state_dir",
    "root",
    "hf_cache",
    "quant",
    "form",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {msg}")]
    Parse { path: String, msg: String },
    #[error("unknown engine {name:?}; configured engines: {known}")]
    UnknownEngine { name: String, known: String },
    #[error("engine {engine}: unknown {what} {name:?}; choose one of: {known}")]
    UnknownVariant {
        engine: String,
        what: &'static str,
        name: String,
        known: String,
    },
    #[error("engine {engine}: placeholder {{{name}}} in {word:?} has no value; known: {known}")]
    Placeholder {
        engine: String,
        name: String,
        word: String,
        known: String,
    },
    #[error("engine {engine}: {msg}")]
    Launch { engine: String, msg: String },
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnginesFile {
    #[serde(default)]
    pub engines: BTreeMap<String, EngineConfig>,
}

/// How an engine runs: a process on this host, or a Docker container.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Process,
    Container,
}

impl Form {
    pub fn name(self) -> &'static str {
        match self {
            Form::Process => "process",
            Form::Container => "container",
        }
    }
}

/// One engine.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default)]
    pub description: String,
    /// The process form: argv (variants' `args` are appended).
    #[serde(default)]
    pub command: Vec<String>,
    /// The container form.
    #[serde(default)]
    pub container: Option<Container>,
    /// The form used without --process/--container [default: process when `command` is set].
    #[serde(default)]
    pub form: Option<Form>,
    /// Default port on the host.
    pub port: u16,
    #[serde(default = "default_host")]
    pub host: String,
    pub ready: Ready,
    #[serde(default)]
    pub version: Option<VersionSpec>,
    /// Protocol replay uses (chat, completions, tgi, sglang, llamacpp, ollama).
    pub api: String,
    /// Prometheus endpoint: a path on the engine's port, or a full URL with placeholders.
    #[serde(default)]
    pub metrics: Option<String>,
    /// The engine serves HTTPS (its own TLS flags are in `command`, e.g. vLLM's
    /// `--ssl-certfile`/`--ssl-keyfile`): its URL is `https://`, and engine-up checks
    /// readiness over TLS (trusting what `--cacert`/`--insecure` say).
    #[serde(default)]
    pub tls: bool,
    #[serde(default = "default_signal")]
    pub stop_signal: String,
    /// Seconds to wait after the stop signal before SIGKILL (and `docker stop -t`).
    #[serde(default = "default_grace")]
    pub grace_s: f64,
    /// Seconds to wait for readiness.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_s: f64,
    pub default_model: String,
    #[serde(default)]
    pub default_quant: Option<String>,
    /// Price of one GPU-hour in USD, for sweep's cost per million output tokens at capacity
    /// (`sweep --gpu-hour-cost` overrides it).
    #[serde(default)]
    pub cost_per_gpu_hour: Option<f64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Files engine-up writes before the launch (name -> content), referred to as `{file:NAME}`.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// A request sent once the engine is ready (e.g. Ollama loads models lazily).
    #[serde(default)]
    pub warmup: Option<Warmup>,
    #[serde(default)]
    pub models: BTreeMap<String, Variant>,
    #[serde(default)]
    pub quants: BTreeMap<String, Variant>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_signal() -> String {
    "SIGTERM".into()
}
fn default_grace() -> f64 {
    30.0
}
fn default_ready_timeout() -> f64 {
    900.0
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub image: String,
    /// Arguments to `docker run` before the image (GPUs, IPC, volumes); placeholders apply.
    #[serde(default)]
    pub docker_args: Vec<String>,
    /// Arguments after the image (variants' `args` are appended).
    #[serde(default)]
    pub args: Vec<String>,
    /// The port the engine listens on inside the container.
    pub container_port: u16,
}

/// Readiness: `GET path` answers `status` (and the body holds `body_contains`). Anything
/// else (refused connections, 503 while loading, a reset from docker's proxy) means "not yet".
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub path: String,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Text the body must contain (e.g. `"ok"`).
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Seconds one check may take (SGLang's /health runs a generation).
    #[serde(default = "default_check_timeout")]
    pub timeout_s: f64,
}

fn default_status() -> u16 {
    200
}
fn default_check_timeout() -> f64 {
    5.0
}

/// Where the engine reports its version: a JSON field (`field`, dotted), or a label of a
/// Prometheus metric (`metric` + `label`). `path` is a path on the engine's port or a full URL.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    pub path: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

/// A POST sent once after readiness; its JSON body's strings take placeholders.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    pub path: String,
    #[serde(default)]
    pub body: serde_json::Value,
    #[serde(default = "default_warmup_timeout")]
    pub timeout_s: f64,
}

fn default_warmup_timeout() -> f64 {
    600.0
}

/// A model or quantization variant.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default)]
    pub description: String,
    /// The model id or path to launch (defaults to the variant's name for models).
    #[serde(default)]
    pub model: Option<String>,
    /// The name clients send (defaults to the model id).
    #[serde(default)]
    pub served_model: Option<String>,
    /// Replaces the engine's `command`; such a variant runs only as a process.
    #[serde(default)]
    pub command: Vec<String>,
    /// Arguments appended to the launch.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Model variants only: quantizations of this model (checkpoints, arguments) that replace
    /// the engine-wide quant entry of the same name.
    #[serde(default)]
    pub quants: BTreeMap<String, Variant>,
}

fn err(path: &str, msg: String) -> ConfigError {
    ConfigError::Parse { path: path.into(), msg }
}

fn check_vars(path: &str, engine: &str, where_: &str, vars: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for k in vars.keys() {
        if BUILTINS.contains(&k.as_str()) || k.starts_with("file:") {
            return Err(err(
                path,
                format!("engine {engine}: {where_} var {k:?} is a built-in placeholder; choose another name"),
            ));
        }
    }
    Ok(())
}

impl EnginesFile {
    pub fn parse(path: &str, text: &str) -> Result<EnginesFile, ConfigError> {
        let f: EnginesFile = toml::from_str(text).map_err(|e| err(path, e.to_string().replace('\n', " ")))?;
        for (name, e) in &f.engines {
            if e.command.is_empty() && e.container.is_none() {
                return Err(err(
                    path,
                    format!("engine {name}: give `command` (a process), `container`, or both"),
                ));
            }
            match e.form {
                Some(Form::Process) if e.command.is_empty() => {
                    return Err(err(path, format!("engine {name}: form = \"process\" needs `command`")));
                }
                Some(Form::Container) if e.container.is_none() => {
                    return Err(err(
                        path,
                        format!("engine {name}: form = \"container\" needs `container`"),
                    ));
                }
                _ => {}
            }
            if crate::client::protocol::Api::from_name(&e.api).is_none() {
                return Err(err(
                    path,
                    format!(
                        "engine {name}: api {:?} is not one of chat, completions, tgi, sglang, llamacpp, ollama",
                        e.api
                    ),
                ));
            }
            if !matches!(e.stop_signal.as_str(), "SIGTERM" | "SIGINT" | "SIGQUIT") {
                return Err(err(
                    path,
                    format!("engine {name}: stop_signal must be SIGTERM, SIGINT or SIGQUIT"),
                ));
            }
            let pos = |x: f64| x.is_finite() && x > 0.0;
            if !(e.grace_s.is_finite() && e.grace_s >= 0.0 && pos(e.ready_timeout_s) && pos(e.ready.timeout_s)) {
                return Err(err(
                    path,
                    format!("engine {name}: grace_s, ready_timeout_s and ready.timeout_s must be positive numbers"),
                ));
            }
            if !e.ready.path.starts_with('/') {
                return Err(err(path, format!("engine {name}: ready.path must start with /")));
            }
            if let Some(v) = &e.version
                && v.field.is_some() == (v.metric.is_some() && v.label.is_some())
            {
                return Err(err(
                    path,
                    format!("engine {name}: version needs either `field` (JSON) or `metric` and `label` (Prometheus)"),
                ));
            }
            check_vars(path, name, "engine", &e.vars)?;
            for (k, v) in e.models.iter() {
                check_vars(path, name, &format!("model {k}"), &v.vars)?;
                for (qk, q) in &v.quants {
                    check_vars(path, name, &format!("model {k} quant {qk}"), &q.vars)?;
                    if !q.quants.is_empty() {
                        return Err(err(
                            path,
                            format!("engine {name}: model {k} quant {qk} cannot have quants of its own"),
                        ));
                    }
                }
            }
            for (k, v) in &e.quants {
                check_vars(path, name, &format!("quant {k}"), &v.vars)?;
                if !v.quants.is_empty() {
                    return Err(err(
                        path,
                        format!(
                            "engine {name}: quant {k} cannot have quants; put per-model quants under models.M.quants"
                        ),
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Load `path`, or the built-in file for None.
    pub fn load(path: Option<&Path>) -> Result<EnginesFile, ConfigError> {
        match path {
            None => EnginesFile::parse("configs/engines.toml (built in)", BUILTIN),
            Some(p) => {
                let name = p.to_string_lossy().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: name.clone(),
                    source: e,
                })?;
                EnginesFile::parse(&name, &text)
            }
        }
    }

    pub fn get(&self, name: &str) -> Result<&EngineConfig, ConfigError> {
        self.engines.get(name).ok_or_else(|| ConfigError::UnknownEngine {
            name: name.into(),
            known: self.engines.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

/// A fully resolved launch: what engine-up runs and records (`engine-up --dry-run` prints it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub name: String,
    pub form: Form,
    pub model: String,
    pub served_model: String,
    pub quant: Option<String>,
    pub host: String,
    pub port: u16,
    /// The base URL clients use.
    pub url: String,
    /// The argv to exec (for containers: the whole `docker run ...` command).
    pub argv: Vec<String>,
    /// Environment added to the process (containers get it as `docker run -e`).
    pub env: BTreeMap<String, String>,
    /// Container name, for containers.
    pub container: Option<String>,
    /// Files written before the launch: path -> content.
    pub files: BTreeMap<String, String>,
    pub ready: Ready,
    pub version: Option<VersionSpec>,
    pub metrics_url: Option<String>,
    /// Warm-up request: path and JSON body.
    pub warmup: Option<Warmup>,
    pub api: String,
    pub stop_signal: String,
    pub grace_s: f64,
    pub ready_timeout_s: f64,
}

/// Inputs to [`EngineConfig::resolve`].
#[derive(Debug, Clone, Default)]
pub struct LaunchReq<'a> {
    pub model: Option<&'a str>,
    pub quant: Option<&'a str>,
    pub port: Option<u16>,
    pub host: Option<&'a str>,
    /// Force a form (--process / --container).
    pub form: Option<Form>,
    pub extra_args: &'a [String],
    /// `--set KEY=VALUE` overrides of vars.
    pub set: &'a [(String, String)],
    pub bin_dir: String,
    pub state_dir: String,
    /// The project directory (`{root}`).
    pub root: String,
    /// The Hugging Face cache on the host (`{hf_cache}`).
    pub hf_cache: String,
}

/// The project root for `{root}`: `$SERVEBENCH_ROOT`, else the nearest ancestor of `bin_dir`
/// holding `configs/engines.toml` and `Cargo.toml` (target/debug -> the checkout), else the
/// current directory.
pub fn project_root(bin_dir: &Path) -> PathBuf {
    if let Some(r) = std::env::var_os("SERVEBENCH_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    for a in bin_dir.ancestors() {
        if a.join("configs/engines.toml").is_file() && a.join("Cargo.toml").is_file() {
            return a.to_path_buf();
        }
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// The Hugging Face cache for `{hf_cache}`: `$HF_HOME`, else `$HOME/.cache/huggingface`.
pub fn hf_cache() -> String {
    if let Some(h) = std::env::var_os("HF_HOME").filter(|h| !h.is_empty()) {
        return h.to_string_lossy().into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    format!("{home}/.cache/huggingface")
}

impl EngineConfig {
    /// The form used when none is asked for.
    pub fn default_form(&self) -> Form {
        self.form.unwrap_or(if self.command.is_empty() {
            Form::Container
        } else {
            Form::Process
        })
    }

    /// Every quant name usable with a model key.
    pub fn quant_names(&self, model_key: &str) -> Vec<String> {
        let mut v: Vec<String> = self.quants.keys().cloned().collect();
        if let Some(m) = self.models.get(model_key) {
            v.extend(m.quants.keys().cloned());
        }
        v.sort();
        v.dedup();
        v
    }

    /// Choose the form, the model and quant variants, and render everything.
    pub fn resolve(&self, name: &str, r: &LaunchReq<'_>) -> Result<Launch, ConfigError> {
        let lerr = |msg: String| ConfigError::Launch {
            engine: name.into(),
            msg,
        };
        let model_key = r.model.unwrap_or(&self.default_model).to_string();
        // A model not listed is used as a literal id with no extra arguments.
        let mv = self.models.get(&model_key).cloned().unwrap_or_default();
        let quant_key = r.quant.map(str::to_string).or_else(|| self.default_quant.clone());
        let qv = match &quant_key {
            Some(q) => Some(
                mv.quants
                    .get(q)
                    .or_else(|| self.quants.get(q))
                    .cloned()
                    .ok_or_else(|| ConfigError::UnknownVariant {
                        engine: name.into(),
                        what: "quant",
                        name: q.clone(),
                        known: self.quant_names(&model_key).join(", "),
                    })?,
            ),
            None => None,
        };
        let variant_command = qv
            .as_ref()
            .map(|q| q.command.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| Some(mv.command.clone()).filter(|c| !c.is_empty()));
        let form = r.form.unwrap_or(if variant_command.is_some() {
            Form::Process
        } else {
            self.default_form()
        });
        match form {
            Form::Process if self.command.is_empty() && variant_command.is_none() => {
                return Err(lerr("has no process form (`command`); run it with --container".into()));
            }
            Form::Container if self.container.is_none() => {
                return Err(lerr("has no container form; run it with --process".into()));
            }
            Form::Container if variant_command.is_some() => {
                return Err(lerr(format!(
                    "model {model_key} (or its quant) brings its own command and runs only as a process; drop --container"
                )));
            }
            _ => {}
        }
        let host = r.host.unwrap_or(&self.host).to_string();
        let port = r.port.unwrap_or(self.port);

        // Placeholders: built-ins first, then vars (whose values may use built-ins), then
        // model and served name (which may use both).
        let state_dir = r.state_dir.trim_end_matches('/').to_string();
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("name".into(), name.into());
        vars.insert("host".into(), host.clone());
        vars.insert("port".into(), port.to_string());
        vars.insert("bin_dir".into(), r.bin_dir.clone());
        vars.insert("state_dir".into(), state_dir.clone());
        vars.insert("root".into(), r.root.clone());
        vars.insert("hf_cache".into(), r.hf_cache.clone());
        vars.insert("quant".into(), quant_key.clone().unwrap_or_default());
        vars.insert("form".into(), form.name().into());
        // Files: the engine's, with the variants' content appended.
        let mut file_text: BTreeMap<String, String> = self.files.clone();
        for f in [Some(&mv), qv.as_ref()].into_iter().flatten() {
            for (k, v) in &f.files {
                file_text.entry(k.clone()).or_default().push_str(v);
            }
        }
        let mut files = BTreeMap::new();
        for (k, v) in &file_text {
            if k.is_empty() || k.contains('/') || k.starts_with('.') {
                return Err(lerr(format!("file name {k:?} must be a plain file name")));
            }
            let p = format!("{state_dir}/{name}.files/{k}");
            vars.insert(format!("file:{k}"), p.clone());
            files.insert(p, v.clone());
        }
        let builtins = vars.clone();
        let mut user: BTreeMap<String, String> = self.vars.clone();
        for v in [Some(&mv), qv.as_ref()].into_iter().flatten() {
            user.extend(v.vars.clone());
        }
        for (k, v) in r.set {
            if builtins.contains_key(k) {
                return Err(lerr(format!("--set {k}: {k} is a built-in placeholder, not a var")));
            }
            user.insert(k.clone(), v.clone());
        }
        let known = |vars: &BTreeMap<String, String>| vars.keys().cloned().collect::<Vec<_>>().join(", ");
        let expand_one = |w: &str, vars: &BTreeMap<String, String>| -> Result<String, ConfigError> {
            expand(w, vars)
                .map(Option::unwrap_or_default)
                .map_err(|p| ConfigError::Placeholder {
                    engine: name.into(),
                    name: p,
                    word: w.into(),
                    known: known(vars),
                })
        };
        for (k, v) in &user {
            let e = expand_one(v, &builtins)?;
            vars.insert(k.clone(), e);
        }
        let model_raw = qv
            .as_ref()
            .and_then(|q| q.model.clone())
            .or_else(|| mv.model.clone())
            .unwrap_or_else(|| model_key.clone());
        let model = expand_one(&model_raw, &vars)?;
        let served_raw = qv
            .as_ref()
            .and_then(|q| q.served_model.clone())
            .or_else(|| mv.served_model.clone());
        let served = match served_raw {
            Some(s) => expand_one(&s, &vars)?,
            None => model.clone(),
        };
        vars.insert("model".into(), model.clone());
        vars.insert("served_model".into(), served.clone());

        let render = |words: &[String]| -> Result<Vec<String>, ConfigError> {
            let mut out = Vec::new();
            for w in words {
                if let Some(v) = expand(w, &vars).map_err(|p| ConfigError::Placeholder {
                    engine: name.into(),
                    name: p,
                    word: w.clone(),
                    known: known(&vars),
                })? {
                    out.push(v);
                }
            }
            Ok(out)
        };
        let mut tail: Vec<String> = Vec::new();
        tail.extend(render(&mv.args)?);
        if let Some(q) = &qv {
            tail.extend(render(&q.args)?);
        }
        tail.extend(r.extra_args.iter().cloned());
        let mut env = self.env.clone();
        env.extend(mv.env.clone());
        if let Some(q) = &qv {
            env.extend(q.env.clone());
        }
        let mut env_r = BTreeMap::new();
        for (k, v) in env {
            env_r.insert(k, expand_one(&v, &vars)?);
        }
        // A wildcard bind is reached on loopback.
        let url_host = if host == "0.0.0.0" || host == "::" {
            "127.0.0.1"
        } else {
            host.as_str()
        };
        let mut endpoint = Endpoint::new(url_host, port);
        if self.tls {
            endpoint.scheme = Scheme::Https;
        }
        let url = endpoint.to_string();
        let (argv, container) = match form {
            Form::Process => {
                let base = variant_command.unwrap_or_else(|| self.command.clone());
                let mut a = render(&base)?;
                a.extend(tail);
                (a, None)
            }
            Form::Container => {
                let c = self.container.as_ref().expect("checked above");
                let cname = format!("servebench-{name}-{port}");
                let mut a: Vec<String> = vec![
                    "docker".into(),
                    "run".into(),
                    "--rm".into(),
                    "--name".into(),
                    cname.clone(),
                    "-p".into(),
                    format!("{host}:{port}:{}", c.container_port),
                ];
                for (k, v) in &env_r {
                    a.push("-e".into());
                    a.push(format!("{k}={v}"));
                }
                a.extend(render(&c.docker_args)?);
                a.push(expand_one(&c.image, &vars)?);
                a.extend(render(&c.args)?);
                a.extend(tail);
                (a, Some(cname))
            }
        };
        if argv.is_empty() {
            return Err(lerr("the launch command is empty".into()));
        }
        let full = |p: &str| -> Result<String, ConfigError> {
            if endpoint::is_url(p) {
                expand_one(p, &vars)
            } else {
                Ok(endpoint.url_for(p))
            }
        };
        let metrics_url = self.metrics.as_deref().map(full).transpose()?;
        let version = match &self.version {
            Some(v) => Some(VersionSpec {
                path: full(&v.path)?,
                ..v.clone()
            }),
            None => None,
        };
        let warmup = match &self.warmup {
            Some(w) => Some(Warmup {
                path: w.path.clone(),
                body: expand_json(&w.body, &|s| expand_one(s, &vars))?,
                timeout_s: w.timeout_s,
            }),
            None => None,
        };
        Ok(Launch {
            name: name.into(),
            form,
            model,
            served_model: served,
            quant: quant_key,
            host,
            port,
            url,
            argv,
            env: if form == Form::Container {
                BTreeMap::new()
            } else {
                env_r
            },
            container,
            files,
            ready: self.ready.clone(),
            version,
            metrics_url,
            warmup,
            api: self.api.clone(),
            stop_signal: self.stop_signal.clone(),
            grace_s: self.grace_s,
            ready_timeout_s: self.ready_timeout_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>() -> LaunchReq<'a> {
        LaunchReq {
            bin_dir: "/b".into(),
            state_dir: "/s".into(),
            root: "/r".into(),
            hf_cache: "/hf".into(),
            ..Default::default()
        }
    }

    #[test]
    fn builtin_parses_and_every_engine_resolves() {
        let f = EnginesFile::load(None).unwrap();
        for e in [
            "mock", "vllm", "sglang", "tgi", "trtllm", "friendli", "llamacpp", "ollama",
        ] {
            let cfg = f.get(e).unwrap();
            let models: Vec<&str> = std::iter::once(cfg.default_model.as_str())
                .chain(cfg.models.keys().map(String::as_str))
                .collect();
            for m in models {
                for q in cfg.quant_names(m) {
                    let mut r = req();
                    r.model = Some(m);
                    r.quant = Some(&q);
                    let l = cfg.resolve(e, &r).unwrap_or_else(|x| panic!("{e} {m} {q}: {x}"));
                    assert!(!l.argv.is_empty());
                    assert!(!l.argv.iter().any(|w| w.contains('{')), "{e} {m} {q}: {:?}", l.argv);
                }
            }
        }
    }

    const SMALL: &str = r#"
[engines.e]
command = ["srv", "--model", "{model}", "--port", "{port}", "--opt", "{opt}", "{empty}"]
container = { image = "img:{tag}", docker_args = ["-v", "{file:c.yaml}:/c.yaml"], args = ["--model", "{model}"], container_port = 80 }
port = 9000
ready = { path = "/health" }
api = "chat"
default_model = "m"
vars = { opt = "1", empty = "", tag = "v1", mport = "9100" }
files = { "c.yaml" = "a: 1\n" }
metrics = "http://{host}:{mport}/metrics"
[engines.e.models.m]
model = "org/m-{size}"
vars = { size = "8b" }
[engines.e.models.m.quants.q8]
model = "org/m-q8"
args = ["--q8"]
files = { "c.yaml" = "b: 2\n" }
[engines.e.models.tiny]
command = ["{root}/py", "-m", "srv", "{model}"]
model = "{root}/build/tiny"
served_model = "tiny"
[engines.e.quants.q8]
args = ["--quantize", "q8"]
[engines.e.quants.fp16]
args = ["--dtype", "float16"]
"#;

    #[test]
    fn variants_forms_files_and_vars() {
        let f = EnginesFile::parse("t", SMALL).unwrap();
        let e = f.get("e").unwrap();
        let mut r = req();
        let l = e.resolve("e", &r).unwrap();
        assert_eq!(l.form, Form::Process);
        assert_eq!(l.argv, ["srv", "--model", "org/m-8b", "--port", "9000", "--opt", "1"]);
        assert_eq!(l.url, "http://127.0.0.1:9000");
        // the model's own quant replaces the engine-wide one; files append
        r.quant = Some("q8");
        let l = e.resolve("e", &r).unwrap();
        assert_eq!(l.model, "org/m-q8");
        assert_eq!(l.argv.last().unwrap(), "--q8");
        assert_eq!(l.files["/s/e.files/c.yaml"], "a: 1\nb: 2\n");
        // engine-wide quant for a model without its own
        r.quant = Some("fp16");
        let l = e.resolve("e", &r).unwrap();
        assert_eq!(&l.argv[l.argv.len() - 2..], ["--dtype", "float16"]);
        // a literal model id
        r.model = Some("other/x");
        r.quant = None;
        let set = [("opt".to_string(), "2".to_string())];
        r.set = &set;
        let l = e.resolve("e", &r).unwrap();
        assert_eq!(l.argv, ["srv", "--model", "other/x", "--port", "9000", "--opt", "2"]);
        // container form
        r.form = Some(Form::Container);
        r.model = None;
        r.port = Some(9001);
        let l = e.resolve("e", &r).unwrap();
        assert_eq!(
            l.argv,
            [
                "docker",
                "run",
                "--rm",
                "--name",
                "servebench-e-9001",
                "-p",
                "127.0.0.1:9001:80",
                "-v",
                "/s/e.files/c.yaml:/c.yaml",
                "img:v1",
                "--model",
                "org/m-8b"
            ]
        );
        assert_eq!(l.container.as_deref(), Some("servebench-e-9001"));
        assert_eq!(l.metrics_url.as_deref(), Some("http://127.0.0.1:9100/metrics"));
        // a variant with its own command is process-only
        r.model = Some("tiny");
        let x = e.resolve("e", &r).unwrap_err().to_string();
        assert!(x.contains("runs only as a process"), "{x}");
        r.form = None;
        let l = e.resolve("e", &r).unwrap();
        assert_eq!(l.argv, ["/r/py", "-m", "srv", "/r/build/tiny"]);
        assert_eq!(l.served_model, "tiny");
        // unknown quant names the choices
        r.quant = Some("awq");
        let x = e.resolve("e", &r).unwrap_err().to_string();
        assert!(x.contains("fp16, q8"), "{x}");
        // --set cannot redefine a built-in
        r.quant = None;
        let set = [("port".to_string(), "1".to_string())];
        r.set = &set;
        assert!(e.resolve("e", &r).is_err());
    }

    #[test]
    fn bad_files_are_reported() {
        for (bad, want) in [
            (SMALL.replace("api = \"chat\"", "api = \"grpc\""), "api"),
            (SMALL.replace("vars = { opt", "vars = { port = \"1\", opt"), "built-in"),
            (SMALL.replace("path = \"/health\"", "path = \"health\""), "ready.path"),
            (
                SMALL.replace("metrics = ", "version = { path = \"/v\" }\nmetrics = "),
                "version",
            ),
        ] {
            let e = EnginesFile::parse("t", &bad).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
