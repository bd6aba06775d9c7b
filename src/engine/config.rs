//! `configs/engines.toml`: how each engine starts, when it is ready, where its version is,
//! how it stops, and its per-model and per-quantization variants.
//!
//! Launch argv is a list of words with `{name}` placeholders filled by name (never through a
//! shell): `{model}`, `{served_model}`, `{host}`, `{port}`, `{bin_dir}`, `{state_dir}`,
//! `{name}`, and any key of the chosen model or quant variant's `vars`. A word that is
//! exactly one placeholder whose value is empty is dropped.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in engines file.
pub const BUILTIN: &str = include_str!("../../configs/engines.toml");

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
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnginesFile {
    #[serde(default)]
    pub engines: BTreeMap<String, EngineConfig>,
}

/// One engine.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default)]
    pub description: String,
    /// A process (argv) ...
    #[serde(default)]
    pub command: Vec<String>,
    /// ... or a container.
    #[serde(default)]
    pub container: Option<Container>,
    pub port: u16,
    #[serde(default = "default_host")]
    pub host: String,
    pub ready: Ready,
    #[serde(default)]
    pub version: Option<VersionSpec>,
    /// Protocol replay should use.
    pub api: String,
    /// Prometheus endpoint (path on the engine's port, or a full URL with {host}/{port}).
    #[serde(default)]
    pub metrics: Option<String>,
    #[serde(default = "default_signal")]
    pub stop_signal: String,
    /// Seconds to wait after the stop signal before SIGKILL.
    #[serde(default = "default_grace")]
    pub grace_s: f64,
    /// Seconds to wait for readiness.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_s: f64,
    pub default_model: String,
    #[serde(default)]
    pub default_quant: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
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
    /// Arguments to `docker run` before the image (GPU, IPC, volumes); placeholders apply.
    #[serde(default)]
    pub docker_args: Vec<String>,
    /// Arguments after the image.
    #[serde(default)]
    pub args: Vec<String>,
    /// Port inside the container.
    pub container_port: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub path: String,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Optional text the body must contain (e.g. `"ok"`).
    #[serde(default)]
    pub body_contains: Option<String>,
}

fn default_status() -> u16 {
    200
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    pub path: String,
    /// Dotted path of the field holding the version in the JSON answer.
    pub field: String,
}

/// A model or quantization variant: values for placeholders and extra arguments.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default)]
    pub description: String,
    /// The model id to launch (defaults to the variant's name for models).
    #[serde(default)]
    pub model: Option<String>,
    /// The name clients send (defaults to the model id).
    #[serde(default)]
    pub served_model: Option<String>,
    /// Arguments appended to the launch (after the base command).
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

impl EnginesFile {
    pub fn parse(path: &str, text: &str) -> Result<EnginesFile, ConfigError> {
        let f: EnginesFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            msg: e.to_string().replace('\n', " "),
        })?;
        for (name, e) in &f.engines {
            if e.command.is_empty() == e.container.is_none() {
                return Err(ConfigError::Parse {
                    path: path.into(),
                    msg: format!("engine {name}: give exactly one of `command` or `container`"),
                });
            }
            if crate::client::protocol::Api::from_name(&e.api).is_none() {
                return Err(ConfigError::Parse {
                    path: path.into(),
                    msg: format!(
                        "engine {name}: api {:?} is not one of chat, completions, tgi, sglang, llamacpp, ollama",
                        e.api
                    ),
                });
            }
            if !matches!(e.stop_signal.as_str(), "SIGTERM" | "SIGINT" | "SIGQUIT") {
                return Err(ConfigError::Parse {
                    path: path.into(),
                    msg: format!("engine {name}: stop_signal must be SIGTERM, SIGINT or SIGQUIT"),
                });
            }
            if !(e.grace_s.is_finite() && e.grace_s >= 0.0 && e.ready_timeout_s.is_finite() && e.ready_timeout_s > 0.0)
            {
                return Err(ConfigError::Parse {
                    path: path.into(),
                    msg: format!("engine {name}: grace_s and ready_timeout_s must be positive numbers"),
                });
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

/// A fully resolved launch: what engine-up runs and records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub name: String,
    pub model: String,
    pub served_model: String,
    pub quant: Option<String>,
    pub host: String,
    pub port: u16,
    /// The argv to exec (for containers: the whole `docker run ...` command).
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Container name, for containers.
    pub container: Option<String>,
}

/// Inputs to [`EngineConfig::resolve`].
#[derive(Debug, Clone, Default)]
pub struct LaunchReq<'a> {
    pub model: Option<&'a str>,
    pub quant: Option<&'a str>,
    pub port: Option<u16>,
    pub host: Option<&'a str>,
    pub extra_args: &'a [String],
    pub bin_dir: String,
    pub state_dir: String,
}

impl EngineConfig {
    /// Choose the model and quant variants and render the argv.
    pub fn resolve(&self, name: &str, r: &LaunchReq<'_>) -> Result<Launch, ConfigError> {
        let model_key = r.model.unwrap_or(&self.default_model).to_string();
        // A model not listed is used as a literal id with no extra arguments.
        let mv = self.models.get(&model_key).cloned().unwrap_or_default();
        let quant_key = r.quant.map(str::to_string).or_else(|| self.default_quant.clone());
        let qv = match &quant_key {
            Some(q) => Some(self.quants.get(q).cloned().ok_or_else(|| ConfigError::UnknownVariant {
                engine: name.into(),
                what: "quant",
                name: q.clone(),
                known: self.quants.keys().cloned().collect::<Vec<_>>().join(", "),
            })?),
            None => None,
        };
        let model = qv
            .as_ref()
            .and_then(|q| q.model.clone())
            .or_else(|| mv.model.clone())
            .unwrap_or_else(|| model_key.clone());
        let served = qv
            .as_ref()
            .and_then(|q| q.served_model.clone())
            .or_else(|| mv.served_model.clone())
            .unwrap_or_else(|| model.clone());
        let host = r.host.unwrap_or(&self.host).to_string();
        let port = r.port.unwrap_or(self.port);
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("name".into(), name.into());
        vars.insert("model".into(), model.clone());
        vars.insert("served_model".into(), served.clone());
        vars.insert("host".into(), host.clone());
        vars.insert("port".into(), port.to_string());
        vars.insert("bin_dir".into(), r.bin_dir.clone());
        vars.insert("state_dir".into(), r.state_dir.clone());
        vars.insert("quant".into(), quant_key.clone().unwrap_or_default());
        for (k, v) in mv.vars.iter().chain(qv.iter().flat_map(|q| q.vars.iter())) {
            vars.insert(k.clone(), v.clone());
        }
        let render = |words: &[String]| -> Result<Vec<String>, ConfigError> {
            let mut out = Vec::new();
            for w in words {
                if let Some(v) = expand(w, &vars).map_err(|p| ConfigError::Placeholder {
                    engine: name.into(),
                    name: p,
                    word: w.clone(),
                    known: vars.keys().cloned().collect::<Vec<_>>().join(", "),
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
            if let Some(v) = expand(&v, &vars).map_err(|p| ConfigError::Placeholder {
                engine: name.into(),
                name: p,
                word: v.clone(),
                known: vars.keys().cloned().collect::<Vec<_>>().join(", "),
            })? {
                env_r.insert(k, v);
            }
        }
        let (argv, container) = match &self.container {
            None => {
                let mut a = render(&self.command)?;
                a.extend(tail);
                (a, None)
            }
            Some(c) => {
                let cname = format!("servebench-{name}-{port}");
                let mut a: Vec<String> = vec![
                    "docker".into(),
                    "run".into(),
                    "--rm".into(),
                    "--name".into(),
                    cname.clone(),
                ];
                a.push("-p".into());
                a.push(format!("{host}:{port}:{}", c.container_port));
                for (k, v) in &env_r {
                    a.push("-e".into());
                    a.push(format!("{k}={v}"));
                }
                a.extend(render(&c.docker_args)?);
                a.push(c.image.clone());
                a.extend(render(&c.args)?);
                a.extend(tail);
                (a, Some(cname))
            }
        };
        Ok(Launch {
            name: name.into(),
            model,
            served_model: served,
            quant: quant_key,
            host,
            port,
            argv,
            env: if self.container.is_some() {
                BTreeMap::new()
            } else {
                env_r
            },
            container,
        })
    }
}

/// Fill `{placeholders}` in one word. A word that is exactly one placeholder with an empty
/// value becomes None (dropped). `{{` and `}}` are literal braces.
pub fn expand(word: &str, vars: &BTreeMap<String, String>) -> Result<Option<String>, String> {
    let mut out = String::new();
    let mut chars = word.char_indices().peekable();
    let mut only_placeholder = true;
    let mut any_placeholder = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if word[i + 1..].starts_with('{') => {
                chars.next();
                out.push('{');
                only_placeholder = false;
            }
            '}' if word[i + 1..].starts_with('}') => {
                chars.next();
                out.push('}');
                only_placeholder = false;
            }
            '{' => {
                let end = word[i + 1..].find('}').ok_or_else(|| word.to_string())?;
                let key = &word[i + 1..i + 1 + end];
                let v = vars.get(key).ok_or_else(|| key.to_string())?;
                out.push_str(v);
                any_placeholder = true;
                for _ in 0..end + 1 {
                    chars.next();
                }
            }
            c => {
                out.push(c);
                only_placeholder = false;
            }
        }
    }
    if any_placeholder && only_placeholder && out.is_empty() {
        return Ok(None);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_words() {
        let mut v = BTreeMap::new();
        v.insert("a".to_string(), "x y".to_string());
        v.insert("e".to_string(), String::new());
        assert_eq!(expand("--m={a}", &v).unwrap(), Some("--m=x y".into()));
        assert_eq!(expand("{e}", &v).unwrap(), None);
        assert_eq!(expand("{{lit}}", &v).unwrap(), Some("{lit}".into()));
        assert_eq!(expand("{nope}", &v).unwrap_err(), "nope");
        assert_eq!(expand("$(rm -rf /); {a}", &v).unwrap(), Some("$(rm -rf /); x y".into()));
    }

    #[test]
    fn builtin_parses() {
        let f = EnginesFile::load(None).unwrap();
        assert!(f.engines.contains_key("mock"));
    }
}
