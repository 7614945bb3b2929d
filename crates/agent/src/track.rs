//! `track_interface` (keepalived.md §2.2): what the interfaces an instance tracks say about
//! it. An entry of weight 0 puts the instance in FAULT while its interface is down (with
//! `reverse`, while it is up); a positive weight is added to the priority while the interface
//! is up, a negative one while it is down (`reverse` swaps the two). An interface that does
//! not exist counts as down.

use std::collections::HashMap;

/// One tracked interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedIf {
    pub name: String,
    pub weight: i32,
    pub reverse: bool,
}

/// What the tracked interfaces say now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    pub fault: bool,
    /// Added to the configured priority (the state machine clamps to 1–254).
    pub delta: i32,
}

/// Evaluates `tracked` against the interfaces' current states (`up` by name).
pub fn evaluate(tracked: &[TrackedIf], up: &HashMap<String, bool>) -> Verdict {
    let mut v = Verdict::default();
    for t in tracked {
        let is_up = up.get(&t.name).copied().unwrap_or(false);
        let good = is_up != t.reverse;
        match t.weight {
            0 => v.fault |= !good,
            w if w > 0 && good => v.delta += w,
            w if w < 0 && !good => v.delta += w,
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, weight: i32, reverse: bool) -> TrackedIf {
        TrackedIf {
            name: name.into(),
            weight,
            reverse,
        }
    }

    fn links(list: &[(&str, bool)]) -> HashMap<String, bool> {
        list.iter().map(|(n, u)| (n.to_string(), *u)).collect()
    }

    #[test]
    fn weight_zero_means_fault_while_down() {
        let tr = [t("eth0", 0, false)];
        assert_eq!(evaluate(&tr, &links(&[("eth0", true)])), Verdict::default());
        assert!(evaluate(&tr, &links(&[("eth0", false)])).fault);
        assert!(
            evaluate(&tr, &links(&[])).fault,
            "a missing interface is down"
        );
        let rev = [t("eth0", 0, true)];
        assert!(evaluate(&rev, &links(&[("eth0", true)])).fault);
        assert!(!evaluate(&rev, &links(&[("eth0", false)])).fault);
    }

    #[test]
    fn weights_move_the_priority() {
        let tr = [t("a", 10, false), t("b", -20, false), t("c", 5, true)];
        let all_up = links(&[("a", true), ("b", true), ("c", true)]);
        assert_eq!(
            evaluate(&tr, &all_up),
            Verdict {
                fault: false,
                delta: 10
            }
        );
        let all_down = links(&[("a", false), ("b", false), ("c", false)]);
        assert_eq!(
            evaluate(&tr, &all_down),
            Verdict {
                fault: false,
                delta: -20 + 5
            }
        );
    }
}
