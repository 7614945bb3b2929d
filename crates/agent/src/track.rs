//! Trackers (keepalived.md §2.2): what the interfaces, `vrrp_script`s, `track_file`s and
//! `vrrp_track_process`es an instance tracks say about it, with keepalived's arithmetic
//! (vrrp_track.c) so a priority computed here equals keepalived's for the same inputs.
//!
//! * Up/down trackers (interface, script, process). Weight 0: FAULT while down (with
//!   `reverse`, while up). A positive weight counts while up, a negative one while down;
//!   `reverse` negates the contribution, it does not swap the condition.
//! * A script that has not reported yet contributes nothing; with weight 0 it holds the
//!   instance down until its first result (keepalived's "script init" state).
//! * A file's value is multiplied by its weight (negated with `reverse`); ≤ −254 means FAULT,
//!   above 253 counts as 253. With weight 0 a non-zero value (a zero one with `reverse`) means
//!   FAULT.
//!
//! The state machine clamps the sum to 1–254.

use std::collections::HashMap;

/// What is tracked, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Interface(String),
    Script(String),
    File(String),
    Process(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Interface(n) => write!(f, "interface {n}"),
            Source::Script(n) => write!(f, "script {n}"),
            Source::File(n) => write!(f, "file {n}"),
            Source::Process(n) => write!(f, "process {n}"),
        }
    }
}

/// One tracked object with the weight this instance gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub source: Source,
    pub weight: i32,
    pub reverse: bool,
}

impl Tracked {
    pub fn interface(name: &str, weight: i32, reverse: bool) -> Tracked {
        Tracked {
            source: Source::Interface(name.into()),
            weight,
            reverse,
        }
    }
}

/// What a tracker says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A script that has not finished its first run.
    Unknown,
    Up(bool),
    /// A tracked file's number.
    Value(i64),
}

/// What the trackers say together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The first tracker that puts the instance in FAULT, if any.
    pub fault: Option<Source>,
    /// Added to the configured priority (the state machine clamps to 1–254).
    pub delta: i32,
}

/// File status at or below this is FAULT (vrrp_track.c).
const FILE_FAULT: i64 = -254;
/// A file's contribution is capped here.
const FILE_MAX: i64 = 253;

/// Evaluates `tracked` against the current readings. A missing reading is "down" for an
/// interface (it does not exist) and "not reported yet" for the others.
pub fn evaluate(tracked: &[Tracked], readings: &HashMap<Source, Reading>) -> Verdict {
    let mut v = Verdict::default();
    for t in tracked {
        let reading = readings.get(&t.source).copied().unwrap_or(match t.source {
            Source::Interface(_) => Reading::Up(false),
            _ => Reading::Unknown,
        });
        let sign = if t.reverse { -1 } else { 1 };
        let faulty = match reading {
            Reading::Unknown => t.weight == 0,
            Reading::Up(up) if t.weight == 0 => up == t.reverse,
            Reading::Up(up) => {
                if (up && t.weight > 0) || (!up && t.weight < 0) {
                    v.delta = v.delta.saturating_add(t.weight * sign);
                }
                false
            }
            Reading::Value(n) if t.weight == 0 => (n != 0) != t.reverse,
            Reading::Value(n) => {
                let status = n.saturating_mul(i64::from(t.weight * sign));
                if status <= FILE_FAULT {
                    true
                } else {
                    // Bounded to -253..=253 above, so it fits.
                    v.delta = v.delta.saturating_add(status.min(FILE_MAX) as i32);
                    false
                }
            }
        };
        if faulty && v.fault.is_none() {
            v.fault = Some(t.source.clone());
        }
    }
    v
}

/// A `vrrp_script`'s result with `rise` and `fall` (keepalived's counter, vrrp_scheduler.c):
/// good after `rise` successes in a row, bad after `fall` failures in a row. Without
/// `init_fail` the first result decides at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCounter {
    rise: u32,
    fall: u32,
    /// 0 ..= rise + fall − 1; good from `rise` up.
    result: u32,
    reading: Reading,
}

impl ScriptCounter {
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> ScriptCounter {
        let (rise, fall) = (rise.max(1), fall.max(1));
        ScriptCounter {
            rise,
            fall,
            result: if init_fail { 0 } else { rise - 1 },
            reading: if init_fail {
                Reading::Up(false)
            } else {
                Reading::Unknown
            },
        }
    }

    pub fn reading(&self) -> Reading {
        self.reading
    }

    /// Counts one run; returns the new reading when it changed.
    pub fn record(&mut self, success: bool) -> Option<Reading> {
        let top = self.rise + self.fall - 1;
        let before = self.reading;
        if success {
            if self.result < self.rise - 1 {
                self.result += 1;
            } else {
                self.result = top;
                self.reading = Reading::Up(true);
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            self.result = 0;
            self.reading = Reading::Up(false);
        }
        (self.reading != before).then_some(self.reading)
    }
}

/// How a tracked process's arguments are compared (`param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamMatch {
    /// The arguments are exactly the configured ones.
    Exact,
    /// The arguments start with the configured ones, whole words.
    Partial,
    /// As `Partial`, but the last configured word may be a prefix of the argument.
    Initial,
}

/// Whether a process with `comm` (the kernel's 15-character name) and command line `argv`
/// is one `vrrp_track_process` counts. `want[0]` is the name (the full path of `argv[0]` with
/// `full_command`), the rest the parameters; none given matches any arguments.
pub fn process_matches(
    want: &[String],
    full_command: bool,
    how: ParamMatch,
    comm: &str,
    argv: &[String],
) -> bool {
    let Some((name, params)) = want.split_first() else {
        return false;
    };
    let proc_name = if full_command {
        argv.first().map(String::as_str).unwrap_or("")
    } else {
        comm
    };
    if proc_name != name {
        return false;
    }
    if params.is_empty() {
        return true;
    }
    let args = argv.get(1..).unwrap_or(&[]);
    match how {
        ParamMatch::Exact => args == params,
        ParamMatch::Partial => args.len() >= params.len() && args[..params.len()] == *params,
        ParamMatch::Initial => {
            let n = params.len();
            args.len() >= n
                && args[..n - 1] == params[..n - 1]
                && args[n - 1].starts_with(params[n - 1].as_str())
        }
    }
}

/// The number in a tracked file: keepalived reads a leading integer (strtol); anything else,
/// or an empty or missing file, is 0.
pub fn file_value(text: &str) -> i64 {
    let t = text.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    // Too many digits saturate, as strtol does.
    let n = digits[..end]
        .parse::<i64>()
        .unwrap_or(if end > 0 { i64::MAX } else { 0 });
    if neg { n.saturating_neg() } else { n }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ifc(name: &str, weight: i32, reverse: bool) -> Tracked {
        Tracked::interface(name, weight, reverse)
    }

    fn tr(source: Source, weight: i32, reverse: bool) -> Tracked {
        Tracked {
            source,
            weight,
            reverse,
        }
    }

    fn links(list: &[(&str, bool)]) -> HashMap<Source, Reading> {
        list.iter()
            .map(|(n, u)| (Source::Interface(n.to_string()), Reading::Up(*u)))
            .collect()
    }

    #[test]
    fn weight_zero_means_fault_while_down() {
        let t = [ifc("eth0", 0, false)];
        assert_eq!(evaluate(&t, &links(&[("eth0", true)])), Verdict::default());
        assert!(evaluate(&t, &links(&[("eth0", false)])).fault.is_some());
        assert_eq!(
            evaluate(&t, &links(&[])).fault,
            Some(Source::Interface("eth0".into())),
            "a missing interface is down"
        );
        let rev = [ifc("eth0", 0, true)];
        assert!(evaluate(&rev, &links(&[("eth0", true)])).fault.is_some());
        assert!(evaluate(&rev, &links(&[("eth0", false)])).fault.is_none());
    }

    #[test]
    fn weights_count_while_up_or_down_and_reverse_negates() {
        let t = [ifc("a", 10, false), ifc("b", -20, false), ifc("c", 5, true)];
        let all_up = links(&[("a", true), ("b", true), ("c", true)]);
        // c: positive weight, up, reversed → −5 (keepalived: weight × multiplier).
        assert_eq!(evaluate(&t, &all_up).delta, 10 - 5);
        let all_down = links(&[("a", false), ("b", false), ("c", false)]);
        assert_eq!(evaluate(&t, &all_down).delta, -20);
        let neg_rev = [ifc("d", -30, true)];
        assert_eq!(evaluate(&neg_rev, &links(&[("d", false)])).delta, 30);
        assert_eq!(evaluate(&neg_rev, &links(&[("d", true)])).delta, 0);
    }

    #[test]
    fn an_unreported_script_holds_weight_zero_down_and_adds_nothing_otherwise() {
        let s = Source::Script("chk".into());
        let none = HashMap::new();
        assert_eq!(
            evaluate(&[tr(s.clone(), 0, false)], &none).fault,
            Some(s.clone())
        );
        assert_eq!(
            evaluate(&[tr(s.clone(), 20, false)], &none),
            Verdict::default()
        );
        let ok: HashMap<_, _> = [(s.clone(), Reading::Up(true))].into();
        assert_eq!(evaluate(&[tr(s.clone(), 20, false)], &ok).delta, 20);
        assert_eq!(evaluate(&[tr(s, 0, false)], &ok), Verdict::default());
    }

    #[test]
    fn file_values_multiply_the_weight() {
        let f = Source::File("f".into());
        let at = |n: i64| -> HashMap<Source, Reading> { [(f.clone(), Reading::Value(n))].into() };
        let w = |weight, reverse| [tr(f.clone(), weight, reverse)];
        assert_eq!(evaluate(&w(1, false), &at(0)), Verdict::default());
        assert_eq!(evaluate(&w(1, false), &at(-10)).delta, -10);
        assert_eq!(evaluate(&w(2, false), &at(7)).delta, 14);
        assert_eq!(evaluate(&w(1, false), &at(1000)).delta, 253, "capped");
        assert_eq!(evaluate(&w(1, true), &at(7)).delta, -7, "reverse negates");
        assert_eq!(evaluate(&w(1, false), &at(-253)).delta, -253);
        assert_eq!(evaluate(&w(1, false), &at(-254)).fault, Some(f.clone()));
        assert_eq!(
            evaluate(&w(100, false), &at(i64::MIN)).fault,
            Some(f.clone())
        );
        // Weight 0: any non-zero value is FAULT; with reverse, zero is.
        assert!(evaluate(&w(0, false), &at(3)).fault.is_some());
        assert!(evaluate(&w(0, false), &at(0)).fault.is_none());
        assert!(evaluate(&w(0, true), &at(0)).fault.is_some());
        assert!(evaluate(&w(0, true), &at(3)).fault.is_none());
        // Not read yet: nothing.
        assert_eq!(evaluate(&w(5, false), &HashMap::new()), Verdict::default());
    }

    #[test]
    fn the_first_fault_is_named() {
        let t = [ifc("a", 0, false), ifc("b", 0, false)];
        let v = evaluate(&t, &links(&[("a", true)]));
        assert_eq!(v.fault, Some(Source::Interface("b".into())));
    }

    #[test]
    fn script_counter_rise_and_fall() {
        // Without init_fail the first result decides.
        let mut c = ScriptCounter::new(3, 2, false);
        assert_eq!(c.reading(), Reading::Unknown);
        assert_eq!(c.record(true), Some(Reading::Up(true)));
        assert_eq!(c.record(false), None, "one failure of fall 2");
        assert_eq!(c.record(false), Some(Reading::Up(false)));
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), Some(Reading::Up(true)), "rise 3");
        let mut c = ScriptCounter::new(3, 2, false);
        assert_eq!(c.record(false), Some(Reading::Up(false)));
        // With init_fail: failed from the start, `rise` successes needed.
        let mut c = ScriptCounter::new(2, 1, true);
        assert_eq!(c.reading(), Reading::Up(false));
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), Some(Reading::Up(true)));
        assert_eq!(c.record(false), Some(Reading::Up(false)), "fall 1");
    }

    proptest! {
        /// From any history, `fall` failures in a row make it bad; from there exactly `rise`
        /// successes in a row make it good, and exactly `fall` failures bad again.
        #[test]
        fn script_counter_needs_rise_or_fall_in_a_row(
            rise in 1u32..6, fall in 1u32..6, init_fail: bool,
            history in proptest::collection::vec(any::<bool>(), 0..40),
        ) {
            let mut c = ScriptCounter::new(rise, fall, init_fail);
            for h in &history {
                c.record(*h);
            }
            for _ in 0..fall {
                c.record(false);
            }
            prop_assert_eq!(c.reading(), Reading::Up(false));
            for _ in 1..rise {
                prop_assert_eq!(c.record(true), None);
            }
            prop_assert_eq!(c.record(true), Some(Reading::Up(true)));
            for _ in 1..fall {
                prop_assert_eq!(c.record(false), None);
            }
            prop_assert_eq!(c.record(false), Some(Reading::Up(false)));
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn processes_match_by_name_and_parameters() {
        let argv = s(&["/usr/sbin/nginx", "-g", "daemon off;"]);
        let m = |want: &[&str], full, how| process_matches(&s(want), full, how, "nginx", &argv);
        assert!(
            m(&["nginx"], false, ParamMatch::Exact),
            "no parameters: any"
        );
        assert!(!m(&["nginx"], true, ParamMatch::Exact));
        assert!(m(&["/usr/sbin/nginx"], true, ParamMatch::Exact));
        assert!(m(&["nginx", "-g", "daemon off;"], false, ParamMatch::Exact));
        assert!(!m(&["nginx", "-g"], false, ParamMatch::Exact));
        assert!(m(&["nginx", "-g"], false, ParamMatch::Partial));
        assert!(!m(&["nginx", "-g", "daemon"], false, ParamMatch::Partial));
        assert!(m(&["nginx", "-g", "daemon"], false, ParamMatch::Initial));
        assert!(!m(&["nginx", "-x"], false, ParamMatch::Initial));
        assert!(!m(&["haproxy"], false, ParamMatch::Exact));
        assert!(!m(&[], false, ParamMatch::Exact));
    }

    #[test]
    fn file_values_read_like_strtol() {
        assert_eq!(file_value("42\n"), 42);
        assert_eq!(file_value("  -7 apples"), -7);
        assert_eq!(file_value("+3"), 3);
        assert_eq!(file_value(""), 0);
        assert_eq!(file_value("abc"), 0);
        assert_eq!(file_value("99999999999999999999999"), i64::MAX);
        assert_eq!(file_value("-99999999999999999999999"), -i64::MAX);
    }
}
