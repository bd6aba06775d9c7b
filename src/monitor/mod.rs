//! What the sampling tools (gpumon, enginemon) share beyond the [`crate::stop`] module and the
//! [`crate::recorder`]: their own CPU cost, and enginemon's scraper ([`scrape`], the only part
//! of engine metrics that knows HTTP; the rows, windows and loading are in
//! [`crate::enginemon`], which analysis reads).

pub mod scrape;

/// CPU seconds (user + system) of this process (`thread = false`) or of the calling thread.
pub fn cpu_seconds(thread: bool) -> f64 {
    let who = if thread { libc::RUSAGE_THREAD } else { libc::RUSAGE_SELF };
    // SAFETY: getrusage fills the struct we pass; `who` is a valid selector.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
