//! FILE_CHECK: a number in a file sets the real server's weight or faults it
//! (`track_file.c`, `check_file.c`).
//!
//! keepalived reads up to 127 bytes and parses them with `strtol(buf, NULL, 0)`; a missing or
//! empty file reads 0, an out-of-range number is ignored (the last value stays). Then, with
//! the checker's `weight` w and `reverse`:
//!
//! * w = 0: a non-zero value is a fault (with `reverse`, zero is);
//! * otherwise the value × w (negated with `reverse`) is added to the configured weight, and
//!   only the lowest offset (−2³¹) is a fault. The IPVS weight is clamped to 0..=2³¹−1.

use std::path::PathBuf;
use std::sync::Mutex;

use tokio::io::AsyncReadExt;

use flotilla_config::model::lvs::MAX_WEIGHT;

use super::{Pass, ProbeError};

#[derive(Debug)]
pub struct FileProbe {
    path: PathBuf,
    weight: i32,
    reverse: bool,
    base: u32,
    /// The last value read, kept when a read is out of range (keepalived "ignoring").
    last: Mutex<i64>,
}

impl FileProbe {
    pub(super) fn new(path: PathBuf, weight: i32, reverse: bool, base: u32) -> Self {
        FileProbe {
            path,
            weight,
            reverse,
            base,
            last: Mutex::new(0),
        }
    }

    pub(super) async fn run(&self) -> Result<Pass, ProbeError> {
        let read = read_value(&self.path).await;
        let value = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = read {
                *last = v;
            }
            *last
        };
        self.verdict(value)
    }

    fn verdict(&self, value: i64) -> Result<Pass, ProbeError> {
        let path = self.path.display().to_string();
        if self.weight == 0 {
            return if (value != 0) != self.reverse {
                Err(ProbeError::FileFault {
                    path,
                    value,
                    why: if self.reverse {
                        "zero is a fault (weight 0 reverse)"
                    } else {
                        "non-zero is a fault (weight 0)"
                    },
                })
            } else {
                Ok(Pass {
                    reason: format!("{path} reads {value}"),
                    weight: None,
                })
            };
        }
        let sign = if self.reverse { -1 } else { 1 };
        let offset = i128::from(value) * i128::from(self.weight) * sign;
        let offset = offset.clamp(i128::from(i32::MIN), i128::from(i32::MAX));
        if offset == i128::from(i32::MIN) {
            return Err(ProbeError::FileFault {
                path,
                value,
                why: "the weight offset is at its minimum",
            });
        }
        let weight = (i128::from(self.base) + offset).clamp(0, i128::from(MAX_WEIGHT));
        let weight = u32::try_from(weight).unwrap_or(0);
        Ok(Pass {
            reason: format!("{path} reads {value}: weight {weight}"),
            weight: Some(weight),
        })
    }
}

/// The number in `path` as keepalived reads it: `None` when out of range (ignored).
async fn read_value(path: &std::path::Path) -> Option<i64> {
    let mut buf = [0u8; 127];
    let n = match tokio::fs::File::open(path).await {
        Ok(mut f) => f.read(&mut buf).await.unwrap_or(0),
        Err(_) => 0,
    };
    // keepalived accepts INT32_MIN..=INT32_MAX + 1.
    strtol(buf.get(..n).unwrap_or_default())
        .filter(|v| (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1).contains(v))
}

/// C's `strtol(s, NULL, 0)`: leading space, a sign, `0x` hex or `0` octal, digits up to the
/// first non-digit; no digits is 0. `None` on overflow (ERANGE).
fn strtol(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while s.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let hex_digit_follows = s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit());
    let radix = if s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && hex_digit_follows
    {
        i += 2;
        16
    } else if s.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).and_then(|c| char::from(*c).to_digit(radix)) {
        v = v.checked_mul(i64::from(radix))?.checked_add(i64::from(d))?;
        i += 1;
    }
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_strtol() {
        assert_eq!(strtol(b"42\n"), Some(42));
        assert_eq!(strtol(b"  -7 trailing"), Some(-7));
        assert_eq!(strtol(b"0x1F"), Some(31));
        assert_eq!(strtol(b"010"), Some(8));
        assert_eq!(strtol(b"0x"), Some(0));
        assert_eq!(strtol(b""), Some(0));
        assert_eq!(strtol(b"abc"), Some(0));
        assert_eq!(strtol(b"99999999999999999999"), None);
    }

    fn probe(weight: i32, reverse: bool) -> FileProbe {
        FileProbe::new("/f".into(), weight, reverse, 10)
    }

    #[test]
    fn weight_zero_faults_on_non_zero() {
        assert!(probe(0, false).verdict(0).is_ok());
        assert!(probe(0, false).verdict(3).is_err());
        assert!(probe(0, true).verdict(0).is_err());
        assert!(probe(0, true).verdict(3).is_ok());
        assert_eq!(probe(0, false).verdict(0).ok().and_then(|p| p.weight), None);
    }

    #[test]
    fn weighted_values_offset_the_configured_weight() {
        let w = |p: &FileProbe, v| p.verdict(v).ok().and_then(|p| p.weight);
        assert_eq!(w(&probe(2, false), 3), Some(16));
        assert_eq!(w(&probe(2, true), 3), Some(4));
        // Clamped at 0, not a fault.
        assert_eq!(w(&probe(5, true), 100), Some(0));
        // The lowest offset is a fault.
        assert!(probe(1, false).verdict(i64::from(i32::MIN)).is_err());
    }
}
