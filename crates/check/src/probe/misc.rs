//! MISC_CHECK: run a command; its exit status is the verdict (`check_misc.c`).
//!
//! Exit 0 passes and 1 fails; with `misc_dynamic`, 2–255 pass with weight = status − 2 and
//! 0 restores the configured weight. Without it, any non-zero status fails. The script runs
//! in its own process group so that on timeout the whole group is signalled (SIGTERM, then
//! SIGKILL after a grace period, as keepalived does), including anything it started.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Group, Pid, Uid, User};
use tokio::process::Command;

use flotilla_config::model::lvs::MiscCheck;

use super::{Pass, ProbeError, Secs, SpecError};

/// How long a timed-out script gets between SIGTERM and SIGKILL (keepalived: 2 s).
pub const TERM_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct MiscProbe {
    argv: Vec<String>,
    uid: Option<Uid>,
    gid: Option<Gid>,
    timeout: Duration,
    dynamic: bool,
    weight: u32,
}

impl MiscProbe {
    pub(super) fn new(m: &MiscCheck, weight: u32) -> Result<Self, SpecError> {
        if m.path.argv.first().is_none_or(|a| a.is_empty()) {
            return Err(SpecError::EmptyCommand);
        }
        let lookup = |name: &str, source| SpecError::UserLookup {
            name: name.to_owned(),
            source,
        };
        let user = match &m.path.user {
            Some(name) => Some(
                User::from_name(name)
                    .map_err(|e| lookup(name, e))?
                    .ok_or_else(|| SpecError::UnknownUser(name.clone()))?,
            ),
            None => None,
        };
        let gid = match &m.path.group {
            Some(name) => Some(
                Group::from_name(name)
                    .map_err(|e| lookup(name, e))?
                    .ok_or_else(|| SpecError::UnknownGroup(name.clone()))?
                    .gid,
            ),
            // A user without a group runs with the user's primary group.
            None => user.as_ref().map(|u| u.gid),
        };
        Ok(MiscProbe {
            argv: m.path.argv.clone(),
            uid: user.map(|u| u.uid),
            gid,
            timeout: m.timeout.as_duration(),
            dynamic: m.dynamic,
            weight,
        })
    }

    pub(super) async fn run(&self) -> Result<Pass, ProbeError> {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(gid) = self.gid {
            cmd.gid(gid.as_raw());
        }
        if let Some(uid) = self.uid {
            cmd.uid(uid.as_raw());
        }
        let mut child = cmd.spawn().map_err(ProbeError::Spawn)?;
        // The group leader's pid is the group id (process_group(0)).
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let mut guard = GroupGuard(group);
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.map_err(ProbeError::ScriptWait)?,
            Err(_) => {
                guard.signal(Signal::SIGTERM);
                if tokio::time::timeout(TERM_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    guard.signal(Signal::SIGKILL);
                    // Reap it; SIGKILL cannot be ignored.
                    let _ = child.wait().await;
                }
                // Whatever the script left behind in its group goes too.
                guard.signal(Signal::SIGKILL);
                guard.0 = None;
                return Err(ProbeError::ScriptTimeout(Secs(self.timeout)));
            }
        };
        // Exited normally: its group is its own business (keepalived leaves it too).
        guard.0 = None;
        self.verdict(status)
    }

    fn verdict(&self, status: ExitStatus) -> Result<Pass, ProbeError> {
        use std::os::unix::process::ExitStatusExt;
        match status.code() {
            Some(0) => Ok(Pass {
                reason: "script exited with status 0".into(),
                weight: self.dynamic.then_some(self.weight),
            }),
            Some(code @ 2..=255) if self.dynamic => Ok(Pass {
                reason: format!("script exited with status {code}"),
                weight: Some((code - 2).unsigned_abs()),
            }),
            Some(code) => Err(ProbeError::ScriptExit(code)),
            None => Err(ProbeError::ScriptSignal(status.signal().unwrap_or(0))),
        }
    }
}

/// Kills the script's process group if the probe is dropped (checker cancelled) while the
/// script runs; `kill_on_drop` alone would reach only the leader.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn signal(&self, sig: Signal) {
        if let Some(pid) = self.0 {
            // ESRCH (already gone) is the expected outcome of the later calls.
            let _ = killpg(pid, sig);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}
