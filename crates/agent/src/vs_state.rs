//! What one `virtual_server` should look like in IPVS given its real servers' health —
//! keepalived's rules (check/ipwrapper.c), pure so every case is tested without a kernel:
//!
//! * A real server is alive while every one of its checkers says up (one with no checker is
//!   always alive). At start it is alive unless `alpha` (then it waits for its first pass).
//! * A dead real server leaves the service, or stays at weight 0 with `inhibit_on_failure`.
//! * Quorum: the summed weight of live real servers must reach `quorum`; `hysteresis` widens
//!   the gap (lost below `quorum − hysteresis`, regained at `quorum + hysteresis`).
//! * Quorum lost and a `sorry_server` configured: the live real servers leave and the sorry
//!   server takes the traffic; regained: the real servers return and the sorry server goes
//!   (or stays at weight 0 with `sorry_server_inhibit`).
//! * Dynamic weights (MISC_CHECK `misc_dynamic`, FILE_CHECK) replace a server's weight.

use flotilla_config::model::lvs::VirtualServer;
use flotilla_ipvs::desired::{destination, service_keys, service_spec, sorry_destination};
use flotilla_ipvs::{DesiredError, ServiceKey, ServiceSpec};

use crate::virtual_server::VsSpec;

/// What changed, for logs and notify scripts (`notify_up/down`, `quorum_up/down`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsEvent {
    RealServerUp { rs: usize },
    RealServerDown { rs: usize, reason: String },
    QuorumUp { weight: u64 },
    QuorumDown { weight: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RsHealth {
    /// Per checker: passing now.
    checks: Vec<bool>,
    /// The weight in use: the configured one, or a checker's dynamic one.
    weight: u32,
}

impl RsHealth {
    fn alive(&self) -> bool {
        self.checks.iter().all(|c| *c)
    }
}

#[derive(Debug, Clone)]
pub struct VsState {
    /// The virtual server, in the shared configuration (not a copy of it).
    spec: VsSpec,
    keys: Vec<ServiceKey>,
    rs: Vec<RsHealth>,
    quorum_up: bool,
}

impl VsState {
    pub fn new(spec: &VsSpec) -> Result<VsState, DesiredError> {
        let vs = spec.vs();
        let keys = service_keys(&spec.config.lvs, vs)?;
        let rs = vs
            .real_servers
            .iter()
            .map(|r| RsHealth {
                // alpha: down until the first check passes.
                checks: vec![!(r.alpha || vs.alpha); r.checkers.len()],
                weight: r.weight,
            })
            .collect();
        let mut st = VsState {
            spec: spec.clone(),
            keys,
            rs,
            quorum_up: true,
        };
        // At start the plain threshold decides (no hysteresis yet).
        st.quorum_up = st.live_weight() >= u64::from(st.spec.vs().quorum);
        Ok(st)
    }

    pub fn virtual_server(&self) -> &VirtualServer {
        self.spec.vs()
    }

    pub fn keys(&self) -> &[ServiceKey] {
        &self.keys
    }

    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    pub fn alive(&self, rs: usize) -> bool {
        self.rs.get(rs).is_some_and(RsHealth::alive)
    }

    fn live_weight(&self) -> u64 {
        self.rs
            .iter()
            .filter(|r| r.alive())
            .map(|r| u64::from(r.weight))
            .sum()
    }

    /// Checker `check` of real server `rs` now says `up`.
    pub fn check(&mut self, rs: usize, check: usize, up: bool, reason: &str) -> Vec<VsEvent> {
        let Some(r) = self.rs.get_mut(rs) else {
            return Vec::new();
        };
        if check >= r.checks.len() {
            return Vec::new();
        }
        let before = r.alive();
        r.checks[check] = up;
        let after = r.alive();
        let mut events = Vec::new();
        if before != after {
            events.push(if after {
                VsEvent::RealServerUp { rs }
            } else {
                VsEvent::RealServerDown {
                    rs,
                    reason: reason.to_string(),
                }
            });
        }
        self.update_quorum(&mut events);
        events
    }

    /// A checker set the real server's weight (`misc_dynamic`, FILE_CHECK).
    pub fn set_weight(&mut self, rs: usize, weight: u32) -> Vec<VsEvent> {
        if let Some(r) = self.rs.get_mut(rs) {
            r.weight = weight;
        }
        let mut events = Vec::new();
        self.update_quorum(&mut events);
        events
    }

    fn update_quorum(&mut self, events: &mut Vec<VsEvent>) {
        let weight = self.live_weight();
        let (quorum, hyst) = (
            u64::from(self.spec.vs().quorum),
            u64::from(self.spec.vs().hysteresis),
        );
        if !self.quorum_up && weight >= quorum + hyst {
            self.quorum_up = true;
            events.push(VsEvent::QuorumUp { weight });
        } else if self.quorum_up && (weight == 0 || weight < quorum.saturating_sub(hyst)) {
            self.quorum_up = false;
            events.push(VsEvent::QuorumDown { weight });
        }
    }

    /// The IPVS services this virtual server should have now.
    pub fn desired(&self) -> Vec<ServiceSpec> {
        let vs = self.spec.vs();
        self.keys
            .iter()
            .map(|key| {
                let mut spec = service_spec(vs, *key);
                let sorry = sorry_destination(vs, *key);
                let inhibit_sorry = vs.sorry_server.as_ref().is_some_and(|s| s.inhibit);
                spec.destinations = if !self.quorum_up && sorry.is_some() {
                    sorry.into_iter().collect()
                } else {
                    let mut d: Vec<_> = vs
                        .real_servers
                        .iter()
                        .zip(&self.rs)
                        .filter_map(|(cfg, h)| {
                            let mut dest = destination(cfg);
                            if h.alive() {
                                dest.weight = h.weight;
                                Some(dest)
                            } else if cfg.inhibit_on_failure || vs.inhibit_on_failure {
                                dest.weight = 0;
                                Some(dest)
                            } else {
                                None
                            }
                        })
                        .collect();
                    if let Some(mut s) = sorry.filter(|_| inhibit_sorry) {
                        s.weight = 0;
                        d.push(s);
                    }
                    d
                };
                // A real server written twice keeps its first entry (the kernel refuses two).
                let mut seen = std::collections::HashSet::new();
                spec.destinations.retain(|d| seen.insert(d.key()));
                spec
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use flotilla_config::{LoadOptions, load_str};

    use super::*;

    fn state(extra_vs: &str, rs: &[(&str, u32, &str)]) -> VsState {
        let mut text =
            format!("virtual_server 10.0.0.100 80 {{\n lb_algo wrr\n lb_kind DR\n{extra_vs}\n");
        for (ip, w, rs_extra) in rs {
            text.push_str(&format!(
                " real_server {ip} 80 {{\n  weight {w}\n{rs_extra}\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n"
            ));
        }
        text.push_str("}\n");
        let l = load_str(Path::new("t.conf"), &text, &LoadOptions::default());
        assert!(l.is_ok(), "{}", l.report());
        VsState::new(&VsSpec::all(&Arc::new(l.config))[0]).unwrap()
    }

    fn weights(s: &VsState) -> Vec<(String, u32)> {
        s.desired()[0]
            .destinations
            .iter()
            .map(|d| (d.addr.to_string(), d.weight))
            .collect()
    }

    fn pair(extra: &str) -> VsState {
        state(extra, &[("10.0.1.1", 2, ""), ("10.0.1.2", 1, "")])
    }

    #[test]
    fn a_failed_server_leaves_and_returns() {
        let mut s = pair("");
        assert_eq!(
            weights(&s),
            [("10.0.1.1".into(), 2), ("10.0.1.2".into(), 1)]
        );
        let ev = s.check(0, 0, false, "connection refused");
        assert_eq!(
            ev,
            [VsEvent::RealServerDown {
                rs: 0,
                reason: "connection refused".into()
            }]
        );
        assert_eq!(weights(&s), [("10.0.1.2".into(), 1)]);
        assert_eq!(s.check(0, 0, true, "ok"), [VsEvent::RealServerUp { rs: 0 }]);
        assert_eq!(
            weights(&s),
            [("10.0.1.1".into(), 2), ("10.0.1.2".into(), 1)]
        );
        assert!(
            s.check(0, 0, true, "ok").is_empty(),
            "no transition, no event"
        );
    }

    #[test]
    fn inhibit_on_failure_keeps_it_at_weight_zero() {
        let mut s = pair(" inhibit_on_failure");
        s.check(1, 0, false, "timeout");
        assert_eq!(
            weights(&s),
            [("10.0.1.1".into(), 2), ("10.0.1.2".into(), 0)]
        );
    }

    #[test]
    fn alpha_starts_down_until_the_first_pass() {
        let mut s = pair(" alpha");
        assert!(weights(&s).is_empty());
        assert!(!s.quorum_up());
        let ev = s.check(1, 0, true, "ok");
        assert_eq!(
            ev,
            [
                VsEvent::RealServerUp { rs: 1 },
                VsEvent::QuorumUp { weight: 1 }
            ]
        );
        assert_eq!(weights(&s), [("10.0.1.2".into(), 1)]);
    }

    #[test]
    fn the_sorry_server_takes_over_when_everything_is_down() {
        let mut s = pair(" sorry_server 10.0.9.9 8080");
        s.check(0, 0, false, "x");
        let ev = s.check(1, 0, false, "x");
        assert!(ev.contains(&VsEvent::QuorumDown { weight: 0 }), "{ev:?}");
        assert_eq!(weights(&s), [("10.0.9.9".into(), 1)]);
        // keepalived's rule: a DR sorry server answers on the service's port.
        assert_eq!(s.desired()[0].destinations[0].port, 80);
        let ev = s.check(1, 0, true, "ok");
        assert!(ev.contains(&VsEvent::QuorumUp { weight: 1 }), "{ev:?}");
        assert_eq!(weights(&s), [("10.0.1.2".into(), 1)], "sorry server gone");
        let mut s = pair(" sorry_server 10.0.9.9 8080\n sorry_server_inhibit");
        assert_eq!(
            weights(&s),
            [
                ("10.0.1.1".into(), 2),
                ("10.0.1.2".into(), 1),
                ("10.0.9.9".into(), 0)
            ],
            "an inhibited sorry server waits at weight 0"
        );
        s.check(0, 0, false, "x");
        s.check(1, 0, false, "x");
        assert_eq!(weights(&s), [("10.0.9.9".into(), 1)]);
    }

    #[test]
    fn quorum_with_hysteresis_and_the_live_servers_leave_for_the_sorry_server() {
        let mut s = state(
            " quorum 4\n hysteresis 1\n sorry_server 10.0.9.9 80",
            &[
                ("10.0.1.1", 2, ""),
                ("10.0.1.2", 2, ""),
                ("10.0.1.3", 2, ""),
            ],
        );
        assert!(s.quorum_up());
        assert!(
            !s.check(0, 0, false, "x")
                .iter()
                .any(|e| matches!(e, VsEvent::QuorumDown { .. })),
            "4 ≥ 4 − 1"
        );
        let ev = s.check(1, 0, false, "x");
        assert!(
            ev.contains(&VsEvent::QuorumDown { weight: 2 }),
            "2 < 3: {ev:?}"
        );
        assert_eq!(
            weights(&s),
            [("10.0.9.9".into(), 1)],
            "the live one leaves too"
        );
        let ev = s.check(1, 0, true, "ok");
        assert!(
            !ev.iter().any(|e| matches!(e, VsEvent::QuorumUp { .. })),
            "4 < 4 + 1"
        );
        let ev = s.check(0, 0, true, "ok");
        assert!(ev.contains(&VsEvent::QuorumUp { weight: 6 }), "{ev:?}");
        assert_eq!(weights(&s).len(), 3);
    }

    #[test]
    fn dynamic_weights_replace_the_configured_one() {
        let mut s = pair("");
        s.set_weight(0, 7);
        assert_eq!(
            weights(&s),
            [("10.0.1.1".into(), 7), ("10.0.1.2".into(), 1)]
        );
    }

    #[test]
    fn a_real_server_without_checkers_is_always_alive() {
        let text = "virtual_server 10.0.0.100 80 {\n alpha\n real_server 10.0.1.1 80 {\n  weight 3\n }\n}\n";
        let l = load_str(Path::new("t.conf"), text, &LoadOptions::default());
        let s = VsState::new(&VsSpec::all(&Arc::new(l.config))[0]).unwrap();
        assert_eq!(weights(&s), [("10.0.1.1".into(), 3)]);
    }
}
