//! The runners behind `vrrp_script`, `track_file` and `vrrp_track_process`: one per defined
//! tracker however many instances track it (as in keepalived), each publishing its
//! [`Reading`] on a `watch` channel. Instances subscribe through the [`TrackerHub`]; a runner
//! stops by itself once nobody subscribes any more, so a reload that drops a tracker ends it.
//!
//! * A script runs every `interval`, killed after `timeout`; `rise`/`fall` debounce it
//!   ([`ScriptCounter`]). Runner: the [`ScriptRunner`] actor.
//! * A file is watched (inotify on its directory, so replacing it by rename works) and read
//!   again on every change.
//! * Processes are counted from /proc every [`PROCESS_POLL`]; a change of quorum is applied
//!   once it has lasted `fork_delay` (more processes) or `terminate_delay` (fewer).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla_config::model::global::ScriptUser;
use flotilla_config::model::vrrp::{self as model, TrackFile, TrackProcess, VrrpScript};
use flotilla_net::file_watch::FileWatch;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use crate::track::{ParamMatch, Reading, ScriptCounter, Source, file_value, process_matches};

/// How often tracked processes are counted.
pub const PROCESS_POLL: Duration = Duration::from_millis(500);
/// How often an idle file watcher checks whether anyone still subscribes.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A tracker's definition; two equal definitions share one runner.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackerDef {
    Script(VrrpScript),
    File(TrackFile),
    Process(TrackProcess),
}

impl TrackerDef {
    pub fn source(&self) -> Source {
        match self {
            TrackerDef::Script(s) => Source::Script(s.name.clone()),
            TrackerDef::File(f) => Source::File(f.name.clone()),
            TrackerDef::Process(p) => Source::Process(p.name.clone()),
        }
    }
}

type Runners = Arc<Mutex<Vec<(TrackerDef, watch::Sender<Reading>)>>>;

/// Starts runners on first subscription and shares them.
#[derive(Clone, Default)]
pub struct TrackerHub {
    runners: Runners,
    script_user: Option<ScriptUser>,
}

impl TrackerHub {
    /// `script_user`: global_defs' default user for scripts that name none.
    pub fn new(script_user: Option<ScriptUser>) -> TrackerHub {
        TrackerHub {
            runners: Runners::default(),
            script_user,
        }
    }

    /// The tracker's readings, starting its runner if none runs this definition.
    pub async fn subscribe(&self, def: &TrackerDef) -> watch::Receiver<Reading> {
        let tx = {
            let mut runners = self.runners.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, tx)) = runners.iter().find(|(d, _)| d == def) {
                return tx.subscribe();
            }
            let initial = match def {
                TrackerDef::Script(s) => ScriptCounter::new(s.rise, s.fall, s.init_fail).reading(),
                TrackerDef::File(f) => {
                    init_file(f);
                    Reading::Value(read_file(&f.file))
                }
                TrackerDef::Process(p) => Reading::Up(have_quorum(p, count_processes(p))),
            };
            let (tx, _) = watch::channel(initial);
            runners.push((def.clone(), tx.clone()));
            tx
        };
        let rx = tx.subscribe();
        let runners = self.runners.clone();
        match def.clone() {
            TrackerDef::Script(s) => {
                let args = ScriptArgs {
                    script: s,
                    tx,
                    runners,
                    default_user: self.script_user.clone(),
                };
                if let Err(e) = Actor::spawn(None, ScriptRunner, args).await {
                    tracing::error!(error = %e, "cannot start a script runner");
                }
            }
            TrackerDef::File(f) => {
                tokio::spawn(watch_file(f, tx, runners));
            }
            TrackerDef::Process(p) => {
                tokio::spawn(poll_processes(p, tx, runners));
            }
        }
        rx
    }
}

/// Whether the runner of `tx` should go on: someone subscribes. Checked under the hub's lock
/// so a subscription cannot slip in between the check and the runner's end.
fn still_wanted(runners: &Runners, tx: &watch::Sender<Reading>) -> bool {
    let mut r = runners.lock().unwrap_or_else(|p| p.into_inner());
    if tx.receiver_count() > 0 {
        return true;
    }
    r.retain(|(_, t)| !t.same_channel(tx));
    false
}

/// The `vrrp_script` runner.
pub struct ScriptRunner;

pub struct ScriptArgs {
    script: VrrpScript,
    tx: watch::Sender<Reading>,
    runners: Runners,
    default_user: Option<ScriptUser>,
}

pub struct ScriptState {
    args: ScriptArgs,
    counter: ScriptCounter,
    last: Option<String>,
}

pub enum ScriptMsg {
    Run,
}

impl Actor for ScriptRunner {
    type Msg = ScriptMsg;
    type State = ScriptState;
    type Arguments = ScriptArgs;

    async fn pre_start(
        &self,
        me: ActorRef<ScriptMsg>,
        args: ScriptArgs,
    ) -> Result<ScriptState, ActorProcessingErr> {
        let s = &args.script;
        let counter = ScriptCounter::new(s.rise, s.fall, s.init_fail);
        me.cast(ScriptMsg::Run)?;
        Ok(ScriptState {
            args,
            counter,
            last: None,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<ScriptMsg>,
        ScriptMsg::Run: ScriptMsg,
        st: &mut ScriptState,
    ) -> Result<(), ActorProcessingErr> {
        if !still_wanted(&st.args.runners, &st.args.tx) {
            me.stop(None);
            return Ok(());
        }
        let s = &st.args.script;
        let started = Instant::now();
        let outcome = crate::script::run(
            &s.script,
            &[],
            Duration::from_micros(s.timeout.0),
            st.args.default_user.as_ref(),
        )
        .await;
        let said = outcome.to_string();
        if st.last.as_deref() != Some(said.as_str()) {
            tracing::info!(script = %s.name, outcome = %said, "vrrp_script result");
            st.last = Some(said);
        }
        if let Some(r) = st.counter.record(outcome.success()) {
            tracing::info!(script = %s.name, reading = ?r, "vrrp_script now {}", if r == Reading::Up(true) { "succeeding" } else { "failing" });
            st.args.tx.send_replace(r);
        }
        let interval = Duration::from_micros(s.interval.0).max(Duration::from_millis(10));
        me.send_after(interval.saturating_sub(started.elapsed()), || {
            ScriptMsg::Run
        });
        Ok(())
    }
}

/// `init_file [VALUE] [overwrite]`: written when the tracker starts.
fn init_file(f: &TrackFile) {
    let Some(init) = &f.init_file else {
        return;
    };
    if f.file.exists() && !init.overwrite {
        return;
    }
    if let Err(e) = std::fs::write(&f.file, format!("{}\n", init.value)) {
        tracing::warn!(file = %f.file.display(), error = %e, "cannot write track_file init_file");
    }
}

/// The file's number; a missing or unreadable file is 0, as in keepalived.
fn read_file(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .map(|t| file_value(&t))
        .unwrap_or(0)
}

async fn watch_file(f: TrackFile, tx: watch::Sender<Reading>, runners: Runners) {
    let watch = match FileWatch::new(&f.file) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(file = %f.file.display(), error = %e, "cannot watch track_file; reading it every second instead");
            None
        }
    };
    loop {
        match &watch {
            Some(w) => {
                tokio::select! {
                    r = w.changed() => if let Err(e) = r {
                        tracing::warn!(file = %f.file.display(), error = %e, "track_file watch failed");
                        tokio::time::sleep(IDLE_CHECK).await;
                    },
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
            }
            None => tokio::time::sleep(IDLE_CHECK).await,
        }
        if !still_wanted(&runners, &tx) {
            return;
        }
        let v = Reading::Value(read_file(&f.file));
        if *tx.borrow() != v {
            tracing::info!(track_file = %f.name, reading = ?v, "track_file changed");
            tx.send_replace(v);
        }
    }
}

fn param_match(p: &TrackProcess) -> ParamMatch {
    match p.param_match {
        model::ParamMatch::Exact => ParamMatch::Exact,
        model::ParamMatch::Initial => ParamMatch::Initial,
        model::ParamMatch::Partial => ParamMatch::Partial,
    }
}

fn have_quorum(p: &TrackProcess, n: u32) -> bool {
    n >= p.quorum && n <= p.quorum_max
}

/// Live (non-zombie) processes matching `p`.
fn count_processes(p: &TrackProcess) -> u32 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let how = param_match(p);
    let mut n = 0;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S …": comm may hold spaces and parentheses; the last ')' ends it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        if stat[close + 1..].trim_start().starts_with('Z') {
            continue;
        }
        // Read the command line only when the name could match.
        if !p.full_command && p.process.first().is_some_and(|w| w != comm) {
            continue;
        }
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if process_matches(&p.process, p.full_command, how, comm, &argv) {
            n += 1;
        }
    }
    n
}

async fn poll_processes(p: TrackProcess, tx: watch::Sender<Reading>, runners: Runners) {
    let mut pending: Option<(bool, Instant)> = None;
    let mut count = count_processes(&p);
    loop {
        tokio::time::sleep(PROCESS_POLL).await;
        if !still_wanted(&runners, &tx) {
            return;
        }
        let n = count_processes(&p);
        let quorum = have_quorum(&p, n);
        let published = *tx.borrow() == Reading::Up(true);
        if quorum == published {
            pending = None;
        } else {
            let since = match pending {
                Some((q, t)) if q == quorum => t,
                _ => {
                    let now = Instant::now();
                    pending = Some((quorum, now));
                    now
                }
            };
            let delay = if n > count || quorum {
                p.fork_delay.max(p.delay)
            } else {
                p.terminate_delay.max(p.delay)
            };
            if since.elapsed() >= Duration::from_micros(delay.0) {
                tracing::info!(process = %p.name, count = n, quorum, "tracked process quorum changed");
                tx.send_replace(Reading::Up(quorum));
                pending = None;
            }
        }
        count = n;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use flotilla_config::model::{Micros, Origin, Script};

    use super::*;

    fn script(text: &str, rise: u32, fall: u32) -> VrrpScript {
        VrrpScript {
            name: "chk".into(),
            script: Script {
                argv: vec!["/bin/sh".into(), "-c".into(), text.into()],
                user: None,
                group: None,
            },
            interval: Micros(50_000),
            timeout: Micros(1_000_000),
            weight: 0,
            reverse: false,
            rise,
            fall,
            init_fail: false,
            origin: Origin::default(),
        }
    }

    async fn wait_for(rx: &mut watch::Receiver<Reading>, want: Reading) {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|r| *r == want))
            .await
            .map(|r| r.is_ok());
        assert_eq!(got, Ok(true), "no {want:?}; last {:?}", *rx.borrow());
    }

    #[tokio::test]
    async fn a_script_is_shared_follows_its_check_and_stops_when_unwanted() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ok");
        let def = TrackerDef::Script(script(&format!("test -f {}", flag.display()), 2, 2));
        let hub = TrackerHub::new(None);
        let mut a = hub.subscribe(&def).await;
        let mut b = hub.subscribe(&def).await;
        assert_eq!(
            hub.runners.lock().unwrap().len(),
            1,
            "one runner per tracker"
        );
        wait_for(&mut a, Reading::Up(false)).await;
        std::fs::write(&flag, "").unwrap();
        wait_for(&mut a, Reading::Up(true)).await;
        wait_for(&mut b, Reading::Up(true)).await;
        std::fs::remove_file(&flag).unwrap();
        wait_for(&mut b, Reading::Up(false)).await;
        drop((a, b));
        for _ in 0..100 {
            if hub.runners.lock().unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the runner did not stop without subscribers");
    }

    #[tokio::test]
    async fn a_file_is_read_at_once_and_on_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weight");
        let def = TrackerDef::File(TrackFile {
            name: "tf".into(),
            file: path.clone(),
            weight: 1,
            reverse: false,
            init_file: Some(model::InitFile {
                value: 5,
                overwrite: false,
            }),
            origin: Origin::default(),
        });
        let hub = TrackerHub::new(None);
        let mut rx = hub.subscribe(&def).await;
        assert_eq!(
            *rx.borrow(),
            Reading::Value(5),
            "init_file written and read"
        );
        std::fs::write(&path, "-20\n").unwrap();
        wait_for(&mut rx, Reading::Value(-20)).await;
        // Replaced by rename, as configuration tools do.
        let tmp = dir.path().join("weight.new");
        std::fs::write(&tmp, "7").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        wait_for(&mut rx, Reading::Value(7)).await;
        std::fs::remove_file(&path).unwrap();
        wait_for(&mut rx, Reading::Value(0)).await;
    }

    #[tokio::test]
    async fn processes_are_counted_against_the_quorum() {
        // A uniquely named process: a copy of sleep under a name of this test run's own (two
        // runs at once must not count each other's processes; comm is at most 15 bytes).
        let name = format!("ftt{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let def = TrackProcess {
            name: "p".into(),
            process: vec![name.clone()],
            param_match: model::ParamMatch::Exact,
            weight: 0,
            reverse: false,
            quorum: 2,
            quorum_max: 65535,
            delay: Micros(0),
            terminate_delay: Micros(0),
            fork_delay: Micros(0),
            full_command: false,
            origin: Origin::default(),
        };
        let hub = TrackerHub::new(None);
        let mut rx = hub.subscribe(&TrackerDef::Process(def)).await;
        assert_eq!(*rx.borrow(), Reading::Up(false));
        let mut one = tokio::process::Command::new(&exe)
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut two = tokio::process::Command::new(&exe)
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for(&mut rx, Reading::Up(true)).await;
        two.kill().await.unwrap();
        wait_for(&mut rx, Reading::Up(false)).await;
        one.kill().await.unwrap();
    }
}
