//! Plans as an operator reads them (`flotilla placement plan`, `flotilla drain`):
//!
//! ```text
//! epoch 7 → 8: 2 moves, 1 deferred
//! UNIT   FROM  →  TO  WHY
//! VG_db  d2    →  d1  owner down
//! VI_9   d2    →  d3  owner down
//! VI_4   d1    →  d2  deferred: hold-down, in 29.5s
//! ```

use std::fmt;
use std::time::Duration;

use super::{MoveReason, Plan, Wait};

impl fmt::Display for MoveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MoveReason::Unowned => "had no owner",
            MoveReason::OwnerDown => "owner down",
            MoveReason::OwnerDrained => "owner drained",
            MoveReason::OwnerIneligible => "owner ineligible (tracker failing)",
            MoveReason::Pinned => "pinned",
            MoveReason::Rebalance => "rebalance",
        })
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wait::HoldDown => "hold-down",
            Wait::RateLimit => "rate limit",
        })
    }
}

/// Seconds as an operator writes them: `30s`, `29.5s`, `0.001s`.
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        format!("{whole}s")
    } else {
        let frac = format!("{frac:03}");
        format!("{whole}.{}s", frac.trim_end_matches('0'))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let epoch = self.assignment.epoch;
        match self.previous_epoch {
            Some(p) if p == epoch => write!(f, "epoch {epoch} (unchanged)")?,
            Some(p) => write!(f, "epoch {p} → {epoch}")?,
            None => write!(f, "epoch {epoch} (first)")?,
        }
        writeln!(
            f,
            ": {} moves, {} deferred",
            self.moves.len(),
            self.deferred.len()
        )?;
        let mut rows: Vec<[String; 4]> = vec![["UNIT", "FROM", "TO", "WHY"].map(String::from)];
        rows.extend(self.moves.iter().map(|m| {
            [
                m.unit.clone(),
                m.from.clone().unwrap_or_else(|| "-".to_string()),
                m.to.clone(),
                m.why.to_string(),
            ]
        }));
        rows.extend(self.deferred.iter().map(|d| {
            let wait = seconds(d.not_before.saturating_sub(self.at));
            [
                d.unit.clone(),
                d.from.clone(),
                d.to.clone(),
                format!("deferred: {}, in {wait}", d.why),
            ]
        }));
        if rows.len() > 1 {
            let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
            let (wu, wf, wt) = (width(0), width(1), width(2));
            for [unit, from, to, why] in &rows {
                writeln!(f, "{unit:wu$}  {from:wf$}  →  {to:wt$}  {why}")?;
            }
        }
        if !self.unplaced.is_empty() {
            writeln!(
                f,
                "no eligible director (nobody holds these): {}",
                self.unplaced.join(", ")
            )?;
        }
        for (unit, director) in &self.unhonoured_pins {
            writeln!(
                f,
                "pin not honoured: {unit} → {director} (unknown, or not eligible there)"
            )?;
        }
        if let Some(at) = self.next_wakeup {
            writeln!(f, "next look in {}", seconds(at.saturating_sub(self.at)))?;
        }
        Ok(())
    }
}
