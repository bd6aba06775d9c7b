//! engines.toml's placeholders: `{name}` in a word or in every string of a JSON value.

use std::collections::BTreeMap;

/// Fill placeholders in every string of a JSON value.
pub(super) fn expand_json<E>(
    v: &serde_json::Value,
    f: &dyn Fn(&str) -> Result<String, E>,
) -> Result<serde_json::Value, E> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => Value::String(f(s)?),
        Value::Array(a) => Value::Array(a.iter().map(|x| expand_json(x, f)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), expand_json(x, f)?)))
                .collect::<Result<_, E>>()?,
        ),
        other => other.clone(),
    })
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
                for _ in 0..key.chars().count() + 1 {
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
        v.insert("file:x.yaml".to_string(), "/s/x.yaml".to_string());
        assert_eq!(expand("--m={a}", &v).unwrap(), Some("--m=x y".into()));
        assert_eq!(expand("{e}", &v).unwrap(), None);
        assert_eq!(expand("{{lit}}", &v).unwrap(), Some("{lit}".into()));
        assert_eq!(expand("{nope}", &v).unwrap_err(), "nope");
        assert_eq!(expand("$(rm -rf /); {a}", &v).unwrap(), Some("$(rm -rf /); x y".into()));
        assert_eq!(expand("{file:x.yaml}:/c", &v).unwrap(), Some("/s/x.yaml:/c".into()));
        assert_eq!(expand("é{a}é", &v).unwrap(), Some("éx yé".into()));
    }
}
