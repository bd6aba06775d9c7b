//! The layering of `src/`, kept as built (ARCHITECTURE.md draws it).
//!
//! A small scanner reads every `crate::`, `self::` and `super::` path of every library file
//! (comments and string literals left out; `use` groups expanded), resolves each to the file
//! that defines the module it names, and maps files to parts. The never-rules are then
//! asserted on those arrows. A new module must be given its part in [`PARTS`]; a violation that
//! another change is still removing is named, with why, in [`ALLOWED`], which is meant to be
//! empty: an entry that no longer matches anything fails the test too, so the list only
//! shrinks.

use std::collections::BTreeMap;
use std::path::Path;

/// Every top-level module of the crate and its part.
const PARTS: &[(&str, &str)] = &[
    // leaves
    ("schema", "schema"),
    ("units", "units"),
    ("endpoint", "endpoint"),
    ("os", "os"),
    ("timer", "timer"),
    ("meta", "meta"),
    ("stats", "stats"),
    ("prom", "prom"),
    ("stop", "stop"),
    // middle
    ("io", "io"),
    ("recorder", "recorder"),
    // parts
    ("trace", "trace"),
    ("client", "client"),
    ("engine", "engine"),
    ("gpu", "gpu"),
    ("monitor", "monitor"),
    ("enginemon", "monitor"),
    ("agg", "analysis"),
    ("analysis", "analysis"),
    ("chart", "chart"),
    ("report", "report"),
    ("mock", "mock"),
    ("capacity", "capacity"),
    ("quality", "quality"),
    ("peers", "peers"),
    // commands and the faces' shared module
    ("cmd", "cmd"),
    ("cli", "cli"),
];

/// Leaves: they import nothing of the project but other leaves (the contracts not even that).
const LEAVES: &[&str] = &[
    "schema", "units", "endpoint", "os", "timer", "meta", "stats", "prom", "stop",
];
/// The middle: it imports leaves only.
const MIDDLE: &[&str] = &["io", "recorder"];
/// Parts that never reach the client, directly or through a module that does (analysis never
/// knows HTTP; the mock never shares the client's code).
const NO_CLIENT: &[&str] = &["analysis", "chart", "report", "trace", "mock", "capacity", "peers"];
/// What the client never imports: it never draws or summarises.
const CLIENT_NEVER: &[&str] = &["analysis", "chart", "report"];
/// Only these call a command or the binaries' module.
const FACES: &[&str] = &["cmd", "cli"];

/// Violations other changes of issue 13 are removing: (file, the file it imports, why).
/// The lead empties this at merge; do not add to it.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// One arrow: `from` names `path` (resolved to the file `to`) at `line`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arrow {
    from: String,
    line: usize,
    path: String,
    to: String,
    to_part: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    from: String,
    to: String,
    line: usize,
    path: String,
    rule: String,
}

// ---- the scanner ----------------------------------------------------------------------------

/// The source with comments and the insides of string and char literals blanked (newlines
/// kept, so line numbers stay right).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r'))) && {
            let j = if c[i] == 'b' { i + 2 } else { i + 1 };
            let mut k = j;
            while c.get(k) == Some(&'#') {
                k += 1;
            }
            c.get(k) == Some(&'"')
        } {
            // raw string: r#"…"#
            let mut j = if c[i] == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            for ch in &c[i..=j] {
                out.push(*ch);
            }
            i = j + 1;
            while i < c.len() {
                if c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')) {
                    out.push('"');
                    for _ in 0..hashes {
                        out.push('#');
                    }
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\'' {
            // a char literal ('x', '\n', '\u{1F600}'), else a lifetime or a label
            let close = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len().min(i + 12)).find(|&k| c[k] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(k) => {
                    out.push('\'');
                    for ch in &c[i + 1..k] {
                        blank(&mut out, *ch);
                    }
                    out.push('\'');
                    i = k + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Identifiers, `::` and single punctuation, with their line numbers.
fn tokens(text: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((c[s..i].iter().collect(), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(("::".into(), line));
            i += 2;
        } else {
            out.push((ch.to_string(), line));
            i += 1;
        }
    }
    out
}

/// The paths of a path tree starting at `t[*i]` (segments after the first), `use` groups
/// expanded; `*` and `self` inside a group name the module itself.
fn path_tree(t: &[(String, usize)], i: &mut usize) -> Vec<Vec<String>> {
    let mut segs: Vec<String> = Vec::new();
    loop {
        let Some((tok, _)) = t.get(*i) else {
            return vec![segs];
        };
        if tok == "{" {
            *i += 1;
            let mut all = Vec::new();
            loop {
                match t.get(*i).map(|x| x.0.as_str()) {
                    None => return all,
                    Some("}") => {
                        *i += 1;
                        return all;
                    }
                    Some(",") => *i += 1,
                    Some(_) => {
                        for p in path_tree(t, i) {
                            let mut full = segs.clone();
                            full.extend(p.into_iter().filter(|s| s != "self"));
                            all.push(full);
                        }
                        // skip `as name` and anything else up to the item's end
                        while let Some((x, _)) = t.get(*i) {
                            if x == "," || x == "}" {
                                break;
                            }
                            *i += 1;
                        }
                    }
                }
            }
        }
        if tok == "*" {
            *i += 1;
            return vec![segs];
        }
        if tok.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') {
            segs.push(tok.clone());
            *i += 1;
            if t.get(*i).map(|x| x.0.as_str()) == Some("::") {
                *i += 1;
                continue;
            }
        }
        return vec![segs];
    }
}

/// The module path of a file under src/ (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`).
fn module_of(file: &str) -> Option<Vec<String>> {
    let rel = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    if rel == "lib" {
        return Some(Vec::new());
    }
    let mut segs: Vec<String> = rel.split('/').map(str::to_string).collect();
    if segs.last().map(String::as_str) == Some("mod") {
        segs.pop();
    }
    Some(segs)
}

/// Every arrow of every library file (binaries in src/bin are not scanned: they are on top).
fn arrows(files: &BTreeMap<String, String>) -> Vec<Arrow> {
    let modules: BTreeMap<Vec<String>, &str> = files
        .keys()
        .filter_map(|f| module_of(f).map(|m| (m, f.as_str())))
        .collect();
    let mut out = Vec::new();
    for (file, src) in files {
        let Some(me) = module_of(file) else { continue };
        let t = tokens(&strip(src));
        // inline modules (`mod tests { … }`) opened around the cursor
        let mut braces: Vec<Option<String>> = Vec::new();
        let mut k = 0;
        while k < t.len() {
            let tok = t[k].0.as_str();
            let line = t[k].1;
            match tok {
                "{" => {
                    let inline = (k >= 2 && t[k - 2].0 == "mod").then(|| t[k - 1].0.clone());
                    braces.push(inline);
                    k += 1;
                    continue;
                }
                "}" => {
                    braces.pop();
                    k += 1;
                    continue;
                }
                _ => {}
            }
            let starts = matches!(tok, "crate" | "self" | "super")
                && t.get(k + 1).map(|x| x.0.as_str()) == Some("::")
                && (k == 0 || t[k - 1].0 != "::");
            if !starts {
                k += 1;
                continue;
            }
            let mut base: Vec<String> = if tok == "crate" {
                Vec::new()
            } else {
                me.iter().cloned().chain(braces.iter().flatten().cloned()).collect()
            };
            let mut i = k + 2;
            if tok == "super" {
                base.pop();
                while t.get(i).map(|x| x.0.as_str()) == Some("super")
                    && t.get(i + 1).map(|x| x.0.as_str()) == Some("::")
                {
                    base.pop();
                    i += 2;
                }
            }
            for segs in path_tree(&t, &mut i) {
                let mut full = base.clone();
                full.extend(segs);
                let to = (0..=full.len())
                    .rev()
                    .find_map(|n| modules.get(&full[..n]))
                    .copied()
                    .unwrap_or("src/lib.rs");
                if to == file.as_str() {
                    continue;
                }
                out.push(Arrow {
                    from: file.clone(),
                    line,
                    path: format!("crate::{}", full.join("::")),
                    to: to.to_string(),
                    to_part: part_of(to).unwrap_or("?").to_string(),
                });
            }
            k = i.max(k + 1);
        }
    }
    out
}

/// The part of a file; None for a module given no part in [`PARTS`]; `root` for lib.rs.
fn part_of(file: &str) -> Option<&'static str> {
    let m = module_of(file)?;
    let Some(first) = m.first() else {
        return Some("root");
    };
    PARTS.iter().find(|(n, _)| n == first).map(|(_, p)| *p)
}

// ---- the rules ------------------------------------------------------------------------------

/// Every violation of the never-rules, and the files no part claims.
fn check(files: &BTreeMap<String, String>) -> (Vec<Violation>, Vec<String>) {
    let arrows = arrows(files);
    let unmapped: Vec<String> = files
        .keys()
        .filter(|f| module_of(f).is_some() && part_of(f).is_none())
        .cloned()
        .collect();
    // Files that reach the client: the client's own, then whoever imports one of them.
    // Each maps to the file through which it reaches the client (itself for the client's).
    let mut http: BTreeMap<String, String> = files
        .keys()
        .filter(|f| part_of(f) == Some("client"))
        .map(|f| (f.clone(), f.clone()))
        .collect();
    loop {
        let more: Vec<(String, String)> = arrows
            .iter()
            .filter(|a| http.contains_key(&a.to) && !http.contains_key(&a.from))
            .map(|a| (a.from.clone(), a.to.clone()))
            .collect();
        if more.is_empty() {
            break;
        }
        http.extend(more);
    }
    let chain = |start: &str| {
        let mut c = vec![start.to_string()];
        let mut f = start.to_string();
        while let Some(next) = http.get(&f).filter(|n| **n != f) {
            c.push(next.clone());
            f = next.clone();
        }
        c.join(" → ")
    };
    let mut out = Vec::new();
    for a in &arrows {
        let from = part_of(&a.from).unwrap_or("?");
        let to = a.to_part.as_str();
        if from == to || to == "root" {
            continue;
        }
        let mut rule = |r: String| {
            out.push(Violation {
                from: a.from.clone(),
                to: a.to.clone(),
                line: a.line,
                path: a.path.clone(),
                rule: r,
            })
        };
        if from == "schema" {
            rule("the contracts import nothing of the project".into());
        } else if LEAVES.contains(&from) && !LEAVES.contains(&to) {
            rule(format!("a leaf ({from}) imports only leaves, not {to}"));
        }
        if MIDDLE.contains(&from) && !LEAVES.contains(&to) && !MIDDLE.contains(&to) {
            rule(format!("the middle ({from}) imports only leaves, not {to}"));
        }
        if NO_CLIENT.contains(&from) && http.contains_key(&a.to) {
            rule(if to == "client" {
                format!("{from} never imports the client")
            } else {
                format!(
                    "{from} never imports the client, nor {} which reaches it ({})",
                    a.to,
                    chain(&a.to)
                )
            });
        }
        if from == "client" && CLIENT_NEVER.contains(&to) {
            rule(format!("the client never draws or summarises ({to})"));
        }
        if FACES.contains(&to) && !FACES.contains(&from) {
            rule(format!(
                "library code ({from}) never calls a command or the binaries' module ({to})"
            ));
        }
    }
    (out, unmapped)
}

fn read_src() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "bin") {
                    walk(&p, root, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeMap::new();
    walk(&root.join("src"), root, &mut out);
    out
}

#[test]
fn layers_keep_the_never_rules() {
    let files = read_src();
    assert!(files.contains_key("src/lib.rs") && files.len() > 20, "src/ not found");
    let (violations, unmapped) = check(&files);
    assert!(
        unmapped.is_empty(),
        "modules in no part: {unmapped:?}; give each its part in PARTS (tests/it/layers.rs) and ARCHITECTURE.md"
    );
    let allowed = |v: &Violation| ALLOWED.iter().any(|(f, t, _)| *f == v.from && *t == v.to);
    let new: Vec<String> = violations
        .iter()
        .filter(|v| !allowed(v))
        .map(|v| format!("{}:{}: `{}` ({}): {}", v.from, v.line, v.path, v.to, v.rule))
        .collect();
    assert!(
        new.is_empty(),
        "layering violations (see ARCHITECTURE.md):\n  {}",
        new.join("\n  ")
    );
    let stale: Vec<String> = ALLOWED
        .iter()
        .filter(|(f, t, _)| !violations.iter().any(|v| v.from == *f && v.to == *t))
        .map(|(f, t, _)| format!("({f:?}, {t:?})"))
        .collect();
    assert!(
        stale.is_empty(),
        "ALLOWED in tests/it/layers.rs names violations that are gone; remove: {}",
        stale.join(", ")
    );
}

// ---- the scanner and the rules, on made-up sources --------------------------------------------

fn fake(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(p, s)| (p.to_string(), s.to_string())).collect()
}

#[test]
fn scanner_reads_paths_not_comments_or_strings() {
    let files = fake(&[
        ("src/lib.rs", "pub mod a; pub mod io;"),
        ("src/io/mod.rs", "pub mod cols;"),
        ("src/io/cols.rs", ""),
        ("src/client/mod.rs", "pub mod http;"),
        ("src/client/http.rs", ""),
        ("src/schema.rs", ""),
        ("src/meta.rs", ""),
        (
            "src/a/mod.rs",
            r##"
//! uses crate::client in a comment
/* and crate::client /* nested */ crate::client */
use crate::{io::{self, cols::get}, schema::*};
use super::meta as m;
const S: &str = "crate::client::http";
const R: &str = r#"crate::client "quoted" "#;
fn f<'a>(x: &'a str) -> char { let _ = crate::meta::now(); '"' }
mod tests {
    use super::*;
    use crate::io::cols::f64_at;
}
"##,
        ),
    ]);
    let got: Vec<(usize, String, String)> = arrows(&files)
        .into_iter()
        .filter(|a| a.from == "src/a/mod.rs")
        .map(|a| (a.line, a.path, a.to))
        .collect();
    let want = [
        (4, "crate::io", "src/io/mod.rs"),
        (4, "crate::io::cols::get", "src/io/cols.rs"),
        (4, "crate::schema", "src/schema.rs"),
        (5, "crate::meta", "src/meta.rs"),
        (8, "crate::meta::now", "src/meta.rs"),
        (11, "crate::io::cols::f64_at", "src/io/cols.rs"),
    ];
    let want: Vec<(usize, String, String)> = want
        .iter()
        .map(|(l, p, t)| (*l, p.to_string(), t.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_new_violation_fails_and_reaching_http_indirectly_counts() {
    let base = [
        ("src/lib.rs", ""),
        ("src/client/mod.rs", ""),
        ("src/client/http.rs", ""),
        ("src/io/mod.rs", ""),
        ("src/schema.rs", ""),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        check(&fake(&v))
    };
    let (v, unmapped) = with(&[("src/chart/mod.rs", "use crate::io::Sink;")]);
    assert!(v.is_empty() && unmapped.is_empty(), "{v:?} {unmapped:?}");
    let rules = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        with(extra).0.into_iter().map(|v| (v.from, v.rule)).collect()
    };
    assert_eq!(
        rules(&[("src/chart/mod.rs", "fn f() { crate::client::http::get(); }")]),
        [(
            "src/chart/mod.rs".to_string(),
            "chart never imports the client".to_string()
        )]
    );
    // agg → monitor → client
    let r = rules(&[
        ("src/monitor.rs", "use crate::client::http::Client;"),
        ("src/agg.rs", "use crate::monitor::Rows;"),
    ]);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].1
            .ends_with("nor src/monitor.rs which reaches it (src/monitor.rs → src/client/http.rs)"),
        "{r:?}"
    );
    assert_eq!(
        rules(&[("src/schema.rs", "use crate::io::Format;")])[0].1,
        "the contracts import nothing of the project"
    );
    assert_eq!(
        rules(&[("src/units.rs", "use crate::io::Format;")])[0].1,
        "a leaf (units) imports only leaves, not io"
    );
    assert_eq!(
        rules(&[("src/cli.rs", ""), ("src/trace/mod.rs", "use crate::cli::Out;")])[0].1,
        "library code (trace) never calls a command or the binaries' module (cli)"
    );
    assert_eq!(
        rules(&[("src/mock/mod.rs", "use crate::client::sse::Framer;")])[0].1,
        "mock never imports the client"
    );
    assert_eq!(with(&[("src/newthing.rs", "")]).1, ["src/newthing.rs"]);
}

/// Literals that spell a column name but are not column references: JSON keys of the engines'
/// protocols, CLI keys, display labels, words. (file, literal, why). Meant to stay short: a
/// column is named through its contract's constants (`schema::<contract>::col::*`).
const NOT_COLUMNS: &[(&str, &str, &str)] = &[
    ("src/analysis/compare.rs", "a", "the verdict value \"a\" of Cmp::better"),
    ("src/analysis/compare.rs", "b", "the verdict value \"b\" of Cmp::better"),
    ("src/chart/kinds.rs", "concurrency", "a chart file name's slug"),
    ("src/client/http.rs", "connection", "the HTTP header"),
    ("src/client/protocol.rs", "error", "engines' JSON key"),
    (
        "src/client/protocol.rs",
        "finish_reason",
        "OpenAI stream JSON key (the borrowed event reader)",
    ),
    (
        "src/client/protocol.rs",
        "cached_tokens",
        "OpenAI usage JSON key (the borrowed event reader)",
    ),
    ("src/client/protocol.rs", "model", "OpenAI request JSON key"),
    (
        "src/client/protocol.rs",
        "reasoning_tokens",
        "OpenAI usage JSON key (the borrowed event reader)",
    ),
    (
        "src/mock/format.rs",
        "reasoning_tokens",
        "usage JSON key the mock writes",
    ),
    ("src/client/protocol.rs", "prompt", "completions request JSON key"),
    ("src/cmd/enginemon.rs", "engine", "key of enginemon's closing JSON line"),
    ("src/quality/logprobs.rs", "model", "OpenAI request JSON key"),
    ("src/quality/logprobs.rs", "prompt", "completions request JSON key"),
    (
        "src/cmd/enginemon.rs",
        "missed_ticks",
        "key of enginemon's closing JSON line",
    ),
    ("src/cmd/gpumon.rs", "gpu", "default file stem"),
    ("src/cmd/gpumon.rs", "missed_ticks", "key of gpumon's closing JSON line"),
    ("src/engine/config.rs", "engine", "engines.toml placeholder name"),
    ("src/engine/config.rs", "model", "engines.toml placeholder name"),
    ("src/engine/config.rs", "name", "engines.toml placeholder name"),
    ("src/engine/config.rs", "quant", "engines.toml placeholder name"),
    ("src/engine/mod.rs", "error", "engines' JSON key"),
    ("src/engine/mod.rs", "pid", "a ps column"),
    ("src/io/read.rs", "name", "a Debug field"),
    ("src/mock/fault.rs", "error", "the mock's JSON key"),
    ("src/mock/format.rs", "finish_reason", "the mock's JSON key"),
    ("src/mock/format.rs", "cached_tokens", "the mock's JSON key"),
    ("src/mock/format.rs", "model", "the mock's JSON key"),
    ("src/mock/prefix.rs", "prompt", "the mock's JSON key"),
    ("src/mock/logprobs.rs", "prompt", "the mock's JSON key"),
    ("src/mock/mod.rs", "error", "the mock's JSON key"),
    ("src/mock/mod.rs", "model", "the mock's JSON key"),
    ("src/mock/mod.rs", "prompt", "the mock's JSON key"),
    ("src/peers/sglang.rs", "concurrency", "SGLang bench_serving's JSON key"),
    ("src/peers/vllm.rs", "label", "vLLM bench serve's JSON key"),
    ("src/peers/guidellm.rs", "model", "GuideLLM's JSON key"),
    ("src/peers/guidellm.rs", "output_tokens", "GuideLLM's JSON key"),
    ("src/peers/guidellm.rs", "error", "GuideLLM's JSON key"),
    (
        "src/peers/guidellm.rs",
        "status",
        "text searched in GuideLLM's error message",
    ),
    ("src/peers/genai_bench.rs", "model", "genai-bench's JSON key"),
    ("src/peers/aiperf.rs", "value", "AIPerf's JSON key"),
    ("src/peers/aiperf.rs", "error", "AIPerf's JSON key"),
    ("src/peers/aiperf.rs", "warmup", "AIPerf's benchmark_phase value"),
    ("src/peers/aiperf.rs", "concurrency", "AIPerf's JSON key"),
    ("src/peers/inference_perf.rs", "error", "inference-perf's JSON key"),
    (
        "src/peers/inference_perf.rs",
        "status",
        "text searched in inference-perf's error message",
    ),
    (
        "src/peers/inference_perf.rs",
        "output_tokens",
        "inference-perf's JSON key",
    ),
    (
        "src/peers/inference_perf.rs",
        "input_tokens",
        "inference-perf's JSON key",
    ),
    ("src/report.rs", "api", "a provenance row's label"),
    ("src/report.rs", "engine", "a provenance row's label"),
    ("src/report.rs", "model", "a provenance row's label"),
    ("src/trace/import/csvmap.rs", "category", "a --columns key"),
    (
        "src/trace/import/csvmap.rs",
        "prompt",
        "a --columns key and the source file's default column",
    ),
    ("src/trace/import/csvmap.rs", "turn", "a --columns key"),
    ("src/trace/import/sharegpt.rs", "model", "ShareGPT's JSON key"),
    ("src/trace/tokens.rs", "better", "a word of the synthetic vocabulary"),
    ("src/trace/tokens.rs", "model", "a word of the synthetic vocabulary"),
    ("src/trace/tokens.rs", "name", "a word of the synthetic vocabulary"),
];

/// Where a file's inline test module (`#[cfg(test)]` then `mod x {`) starts, if it has one.
fn test_module_start(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]\n") {
        let at = from + i;
        let next = text[at..].lines().nth(1).unwrap_or("").trim();
        let is_mod = next.strip_prefix("pub(crate) ").unwrap_or(next).starts_with("mod ");
        if is_mod && next.ends_with('{') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Every column is named once, in its contract's declaration: outside `src/schema/` and the
/// tests, no string literal spells a column name (unless [`NOT_COLUMNS`] says why it is not
/// one), so a renamed column cannot leave a stale reader behind.
#[test]
fn column_names_are_spelled_only_in_the_contracts() {
    let names: std::collections::BTreeSet<&str> = servebench::schema::all()
        .iter()
        .flat_map(|c| c.columns.iter().map(|col| col.name))
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut stack = vec![root.join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut found: std::collections::BTreeSet<(String, String)> = Default::default();
    let mut lines: Vec<String> = Vec::new();
    for p in files {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&p).unwrap();
        // test-only files and modules (the convention here: `#[cfg(test)] mod x;` and test
        // modules at the end of a file)
        if rel.starts_with("src/schema/") || rel == "src/mock/read_back.rs" {
            continue;
        }
        let code = test_module_start(&text).map_or(text.as_str(), |i| &text[..i]);
        for (n, line) in code.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") {
                continue;
            }
            for (i, part) in line.split('"').enumerate() {
                if i % 2 == 1 && names.contains(part) {
                    found.insert((rel.clone(), part.to_string()));
                    if !NOT_COLUMNS.iter().any(|(f, l, _)| *f == rel && *l == part) {
                        lines.push(format!("{rel}:{}: \"{part}\"", n + 1));
                    }
                }
            }
        }
    }
    assert!(
        lines.is_empty(),
        "column names spelled outside src/schema (use schema::<contract>::col::*):\n{}",
        lines.join("\n")
    );
    let stale: Vec<_> = NOT_COLUMNS
        .iter()
        .filter(|(f, l, _)| !found.contains(&(f.to_string(), l.to_string())))
        .collect();
    assert!(stale.is_empty(), "NOT_COLUMNS names literals that are gone: {stale:?}");
}
