//! Process settings that keep the operating system out of the measurements.

/// Prepares the process to hold many sockets: raises the soft open-files limit to the hard
/// limit (a client driving 1,024 streams needs more than the usual soft limit of 1,024), then
/// grows the kernel's file table once, up front, to room for `want` descriptors (capped by the
/// limit). Linux grows a multi-threaded process's file table by doubling it when a new
/// descriptor does not fit, and each growth waits for an RCU grace period (milliseconds to tens
/// of milliseconds) in whichever thread opened the socket: a stall in the middle of a run, at
/// 64, 128, 256, 512 ... open sockets, that shows up as scheduling lag and late first tokens.
/// Done here, before the runtime starts, it costs nothing. Returns the open-files limit in
/// force. Best effort: failures leave things as they were.
pub fn prepare_fds(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit on this process's RLIMIT_NOFILE, with a valid struct.
    let limit = unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
        r.rlim_cur
    };
    let top = want.min(limit.saturating_sub(1));
    if top > 64 {
        // SAFETY: opens /dev/null, duplicates it onto descriptor `top` (which makes the kernel
        // size the table for it) and closes both; no descriptor of the process is touched
        // unless it already was `top`, which F_GETFD rules out.
        unsafe {
            let fd = top as libc::c_int;
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if null >= 0 {
                    if libc::dup2(null, fd) == fd {
                        libc::close(fd);
                    }
                    libc::close(null);
                }
            }
        }
    }
    limit
}

/// Lowers the calling thread's CPU priority (nice 10), for bookkeeping threads (encoding and
/// writing rows, reading the trace): when the client machine's cores are busy they then yield to
/// the threads that send requests and time chunks instead of delaying them by a whole scheduler
/// time slice. Best effort: a failure leaves the priority as it was.
pub fn background_thread() {
    // SAFETY: on Linux the nice value is per thread; PRIO_PROCESS with the caller's thread id
    // changes only this thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// CPU seconds (user, system) and peak resident memory (MiB) of this process
/// (`thread = false`) or of the calling thread (peak memory is the process's either way).
pub fn usage(thread: bool) -> (f64, f64, f64) {
    let who = if thread { libc::RUSAGE_THREAD } else { libc::RUSAGE_SELF };
    // SAFETY: getrusage fills the struct we pass; `who` is a valid selector.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return (0.0, 0.0, 0.0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_fds_keeps_descriptors_usable() {
        let limit = prepare_fds(4096);
        assert!(limit >= 64);
        // The table was grown, not filled: new descriptors still come from the bottom.
        let f = std::fs::File::open("/dev/null").expect("open");
        use std::os::fd::AsRawFd;
        assert!((f.as_raw_fd() as u64) < 4096.min(limit));
    }
}
