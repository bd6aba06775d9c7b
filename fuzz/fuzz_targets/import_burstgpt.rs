//! BurstGPT importer (v1 and v3 columns by name, model and log-type filters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::trace::import::burstgpt::{Filter, import};
use servebench_fuzz::{Rows, as_file, check_error};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let path = as_file(body, "csv");
    let filter = Filter {
        models: if mode & 1 == 1 {
            vec!["ChatGPT".into()]
        } else {
            Vec::new()
        },
        log_types: if mode & 2 == 2 {
            vec!["conversation".into()]
        } else {
            Vec::new()
        },
        keep_failed: mode & 4 == 4,
    };
    let mut rows = Rows::default();
    if let Err(e) = import(&path, &filter, &mut rows) {
        check_error(&e, &path);
    }
});
