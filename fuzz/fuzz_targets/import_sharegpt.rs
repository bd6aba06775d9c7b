//! ShareGPT importer (streaming JSON array parser), with and without sessions and sampling.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servebench::trace::import::sharegpt::{Options, ThinkTime, import};
use servebench::trace::synth::Arrival;
use servebench::trace::tokenizer::TokenCounter;
use servebench_fuzz::{Rows, as_file, check_error};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let path = as_file(body, "json");
    let opts = Options {
        sessions: mode & 1 == 1,
        count: (mode & 2 == 2).then_some(u64::from(mode >> 4) + 1),
        seed: u64::from(mode),
        arrival: if mode & 4 == 4 {
            Arrival::Poisson { rate: 5.0 }
        } else {
            Arrival::Batch
        },
        think: if mode & 8 == 8 {
            ThinkTime::Exp(2.0)
        } else {
            ThinkTime::Fixed(1.0)
        },
    };
    let mut rows = Rows::default();
    if let Err(e) = import(&path, &opts, &TokenCounter::Approx, &mut rows) {
        check_error(&e, &path);
    }
});
