//! The engines.toml loader: any text is a config or one error, and every engine of a
//! config that loads resolves (or says why not) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::engine::config::{EnginesFile, LaunchReq};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let f = match EnginesFile::parse("fuzz.toml", text) {
        Ok(f) => f,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for (name, e) in &f.engines {
        let extra = vec!["--x".to_string(), "{model}".to_string()];
        let mut reqs = vec![LaunchReq::default()];
        for m in e.models.keys() {
            for q in e.quants.keys().map(Some).chain([None]) {
                reqs.push(LaunchReq {
                    model: Some(m),
                    quant: q.map(|s| s.as_str()),
                    port: Some(8000),
                    host: Some("127.0.0.1"),
                    extra_args: &extra,
                    ..Default::default()
                });
            }
        }
        for r in reqs.iter().take(16) {
            if let Ok(l) = e.resolve(name, r) {
                assert!(!l.argv.is_empty(), "{name}: an empty argv resolved");
            }
        }
    }
});
