//! What the sampling tools (gpumon, enginemon) share beyond the [`crate::stop`] module and the
//! [`crate::recorder`]: their own CPU cost, and enginemon's scraper ([`scrape`], the only part
//! of engine metrics that knows HTTP; the rows, windows and loading are in
//! [`crate::enginemon`], which analysis reads).

pub mod scrape;

/// CPU seconds (user + system) of this process (`thread = false`) or of the calling thread.
pub fn cpu_seconds(thread: bool) -> f64 {
    let (user, sys, _) = crate::os::usage(thread);
    user + sys
}
