//! The generic CSV / JSONL importer through a column mapping, and Splitwise's CSVs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::trace::import::csvmap::{Spec, TextFormat, import, splitwise};
use servebench::trace::tokenizer::TokenCounter;
use servebench_fuzz::{Rows, as_file, check_error};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let spec = if mode % 3 == 0 {
        splitwise()
    } else {
        let mut s = splitwise();
        s.mapping = "arrival=t,input=i,output=o,prompt=p,session=s,turn=n,category=c"
            .parse()
            .expect("mapping");
        if mode & 4 == 4 {
            s.mapping.input = None;
        }
        s.unit = [
            servebench::trace::import::csvmap::TimeUnit::S,
            servebench::trace::import::csvmap::TimeUnit::Ms,
            servebench::trace::import::csvmap::TimeUnit::Us,
            servebench::trace::import::csvmap::TimeUnit::Datetime,
        ][usize::from(mode >> 4) % 4];
        s.format = Some(if mode & 8 == 8 {
            TextFormat::Jsonl
        } else {
            TextFormat::Csv
        });
        s
    };
    let path = as_file(
        body,
        if spec.format == Some(TextFormat::Jsonl) {
            "jsonl"
        } else {
            "csv"
        },
    );
    let spec: Spec = spec;
    let mut rows = Rows::default();
    if let Err(e) = import(&path, &spec, &TokenCounter::Approx, &mut rows) {
        check_error(&e, &path);
    }
});
