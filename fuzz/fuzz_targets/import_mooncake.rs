//! Mooncake JSONL importer (timestamps in ms, hash_ids prefix blocks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::trace::import::mooncake::import;
use servebench_fuzz::{Rows, as_file, check_error};

fuzz_target!(|data: &[u8]| {
    let path = as_file(data, "jsonl");
    let mut rows = Rows::default();
    if let Err(e) = import(&path, &mut rows) {
        check_error(&e, &path);
    }
});
