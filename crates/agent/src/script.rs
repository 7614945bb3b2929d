//! Running a configured script (notify scripts, `vrrp_script`) the way keepalived does: as the
//! script's `user [group]` (else `global_defs { script_user }`, else the agent's own user), in
//! its own process group so a timeout kills whatever it started too (TERM, then KILL after
//! 2 s), never blocking the caller for longer than the timeout plus that grace.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use flotilla_config::model::Script;
use flotilla_config::model::global::ScriptUser;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Group, Pid, User};
use tokio::process::{Child, Command};

/// How long a timed-out script gets between TERM and KILL (keepalived: 2 s).
const TERM_GRACE: Duration = Duration::from_secs(2);

/// How one run ended.
#[derive(Debug)]
pub enum Outcome {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    /// It could not be started (missing program, unknown user …).
    NotStarted(String),
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited(0))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(c) => write!(f, "exited with status {c}"),
            Outcome::Signalled(s) => write!(f, "killed by signal {s}"),
            Outcome::TimedOut => f.write_str("timed out and was killed"),
            Outcome::NotStarted(why) => write!(f, "could not start: {why}"),
        }
    }
}

/// Runs `script` with `extra` appended to its arguments.
pub async fn run(
    script: &Script,
    extra: &[String],
    timeout: Duration,
    default_user: Option<&ScriptUser>,
) -> Outcome {
    let Some((program, args)) = script.argv.split_first() else {
        return Outcome::NotStarted("empty command".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .args(extra)
        .process_group(0)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let (user, group) = match (&script.user, default_user) {
        (Some(u), _) => (Some(u.as_str()), script.group.as_deref()),
        (None, Some(d)) => (Some(d.user.as_str()), d.group.as_deref()),
        (None, None) => (None, None),
    };
    if let Err(e) = as_user(&mut cmd, user, group) {
        return Outcome::NotStarted(e);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::NotStarted(format!("{program}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => outcome(status),
        Ok(Err(e)) => Outcome::NotStarted(format!("{program}: {e}")),
        Err(_) => {
            kill_group(&mut child).await;
            Outcome::TimedOut
        }
    }
}

fn outcome(status: ExitStatus) -> Outcome {
    match (status.code(), status.signal()) {
        (Some(c), _) => Outcome::Exited(c),
        (None, Some(s)) => Outcome::Signalled(s),
        (None, None) => Outcome::Exited(-1),
    }
}

/// TERM to the whole group, KILL if it is still there after the grace.
async fn kill_group(child: &mut Child) {
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    let group = Pid::from_raw(pid);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(TERM_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // Whatever the script started and left in its group goes too.
    let _ = killpg(group, Signal::SIGKILL);
}

fn as_user(cmd: &mut Command, user: Option<&str>, group: Option<&str>) -> Result<(), String> {
    let Some(user) = user else {
        return Ok(());
    };
    let u = User::from_name(user)
        .map_err(|e| format!("cannot look up user {user}: {e}"))?
        .ok_or_else(|| format!("no such user {user}"))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("cannot look up group {g}: {e}"))?
                .ok_or_else(|| format!("no such group {g}"))?
                .gid
        }
        None => u.gid,
    };
    cmd.uid(u.uid.as_raw()).gid(gid.as_raw());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn sh(text: &str) -> Script {
        Script {
            argv: vec!["/bin/sh".into(), "-c".into(), text.into()],
            user: None,
            group: None,
        }
    }

    #[tokio::test]
    async fn exit_codes_and_arguments() {
        let s = sh("exit 3");
        assert!(matches!(
            run(&s, &[], Duration::from_secs(5), None).await,
            Outcome::Exited(3)
        ));
        // Extra arguments arrive as $0.. after -c TEXT.
        let s = sh("test \"$0 $1\" = \"INSTANCE VI_1\"");
        let extra = ["INSTANCE".to_string(), "VI_1".to_string()];
        assert!(
            run(&s, &extra, Duration::from_secs(5), None)
                .await
                .success()
        );
    }

    #[tokio::test]
    async fn a_missing_program_or_user_is_reported() {
        let s = Script {
            argv: vec!["/nonexistent/flotilla-test".into()],
            user: None,
            group: None,
        };
        let o = run(&s, &[], Duration::from_secs(5), None).await;
        assert!(matches!(o, Outcome::NotStarted(_)), "{o}");
        let mut s = sh("true");
        s.user = Some("no-such-user-flotilla".into());
        let o = run(&s, &[], Duration::from_secs(5), None).await;
        assert!(o.to_string().contains("no such user"), "{o}");
    }

    #[tokio::test]
    async fn a_hanging_script_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        // The child ignores nothing but outlives the shell unless the group is killed.
        let s = sh(&format!("sleep 60 & echo $! > {}; wait", pidfile.display()));
        let started = Instant::now();
        let o = run(&s, &[], Duration::from_millis(300), None).await;
        assert!(matches!(o, Outcome::TimedOut), "{o}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep went with the group (it may linger as a zombie of init).
        let gone = (0..50).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z"))
                .unwrap_or(false);
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(gone, "child {pid} still running");
    }

    #[tokio::test]
    async fn runs_as_the_configured_user_when_root() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let mut s = sh("test \"$(id -u)\" = 65534");
        s.user = Some("nobody".into());
        let o = run(&s, &[], Duration::from_secs(5), None).await;
        assert!(o.success(), "{o}");
        let d = ScriptUser {
            user: "nobody".into(),
            group: None,
        };
        let o = run(
            &sh("test \"$(id -u)\" = 65534"),
            &[],
            Duration::from_secs(5),
            Some(&d),
        )
        .await;
        assert!(
            o.success(),
            "script_user applies when the script names none: {o}"
        );
    }
}
