//! Process limits a director needs raised.

use std::io;

/// Raises the soft limit on open files to the hard one (the hard limit is left alone), and
/// returns the soft limit before and after. Every health check holds a socket while it runs,
/// and many run at once when real servers are slow: at the usual soft limit of 1,024 a
/// configuration of a few thousand real servers runs out of descriptors, and each check
/// that cannot open its socket fails — a real server taken out for a local shortage (seen
/// with 10,000 HTTP_GET checks in a saturated guest). keepalived raises its limit too.
pub fn raise_open_files() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    get(&mut lim)?;
    let before = lim.rlim_cur;
    // An unlimited hard limit is not a valid soft one for open files: the kernel's ceiling
    // is fs.nr_open.
    let ceiling = if lim.rlim_max == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
            .unwrap_or(1 << 20)
    } else {
        lim.rlim_max
    };
    if before >= ceiling {
        return Ok((before, before));
    }
    lim.rlim_cur = ceiling;
    set(&lim)?;
    Ok((before, ceiling))
}

#[allow(unsafe_code)]
fn get(lim: &mut libc::rlimit) -> io::Result<()> {
    // SAFETY: `lim` is a valid, writable rlimit for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, lim) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn set(lim: &libc::rlimit) -> io::Result<()> {
    // SAFETY: `lim` is a valid rlimit, only read by the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_rises_to_the_hard_one_and_stays() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        get(&mut lim).expect("getrlimit");
        // Start from a low soft limit, as a login shell or a default unit gives.
        let low = lim.rlim_max.min(256);
        set(&libc::rlimit {
            rlim_cur: low,
            rlim_max: lim.rlim_max,
        })
        .expect("lower the soft limit");
        let (before, after) = raise_open_files().expect("raise");
        assert_eq!(before, low);
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        get(&mut now).expect("getrlimit");
        assert_eq!(now.rlim_cur, after);
        assert_eq!(now.rlim_max, lim.rlim_max, "the hard limit is left alone");
        assert!(after >= low);
        if lim.rlim_max != libc::RLIM_INFINITY {
            assert_eq!(after, lim.rlim_max);
        }
        // Again: nothing to do.
        assert_eq!(raise_open_files().expect("raise again"), (after, after));
    }
}
