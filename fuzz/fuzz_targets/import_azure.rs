//! Azure LLM inference trace importer (CSV, timestamps with 100 ns ticks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::trace::import::azure::import;
use servebench_fuzz::{Rows, as_file, check_error};

fuzz_target!(|data: &[u8]| {
    let path = as_file(data, "csv");
    let mut rows = Rows::default();
    if let Err(e) = import(&path, &mut rows) {
        check_error(&e, &path);
    }
});
