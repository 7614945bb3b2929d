//! Value types shared by every part of the model.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::source::Span;

/// Where a model item was declared. It is provenance, not meaning: two items that differ only
/// in where they were written compare equal, so moving a block to another line or file is not
/// a configuration change (reload diffs rely on this). Never serialised.
#[derive(Debug, Clone, Copy, Default, Eq)]
pub struct Origin(pub Option<Span>);

impl PartialEq for Origin {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Origin {
    pub fn at(span: Span) -> Self {
        Origin(Some(span))
    }
}

/// A time value in microseconds: keepalived's `<TIMER>` (decimal seconds, up to six
/// fractional digits). Serialised as text in seconds, e.g. `"0.1s"`, so JSON stays readable
/// and exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub u64);

impl Micros {
    pub const fn from_secs(s: u64) -> Self {
        Micros(s * 1_000_000)
    }

    pub const fn from_millis(ms: u64) -> Self {
        Micros(ms * 1_000)
    }

    pub fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_micros(self.0)
    }

    /// Seconds as keepalived writes them: `1`, `0.1`, `2.000005`.
    pub fn keepalived_text(self) -> String {
        let whole = self.0 / 1_000_000;
        let frac = self.0 % 1_000_000;
        if frac == 0 {
            whole.to_string()
        } else {
            let f = format!("{frac:06}");
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.keepalived_text())
    }
}

/// Why a timer text is not a valid keepalived `<TIMER>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimerError {
    #[error("'{0}' is not a number of seconds")]
    NotANumber(String),
    #[error("'{0}' has more than 6 decimal places (the resolution is 1 µs)")]
    TooPrecise(String),
    #[error("'{0}' is too large")]
    TooLarge(String),
}

impl FromStr for Micros {
    type Err = TimerError;

    /// Parses decimal seconds (`1`, `0.25`, `3.000001`); a trailing `s` is accepted so that
    /// the serialised form parses back.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.strip_suffix('s').unwrap_or(s);
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
            return Err(TimerError::NotANumber(s.to_string()));
        }
        if frac.len() > 6 {
            return Err(TimerError::TooPrecise(s.to_string()));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| TimerError::TooLarge(s.to_string()))?
        };
        let mut frac_us: u64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_us += u64::from(b - b'0') * 10u64.pow(5 - i as u32);
        }
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(frac_us))
            .map(Micros)
            .ok_or_else(|| TimerError::TooLarge(s.to_string()))
    }
}

impl Serialize for Micros {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Micros {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A command run by flotilla (notify scripts, `vrrp_script`, `MISC_CHECK`, quorum hooks):
/// the argument vector after keepalived's quoting rules, and who runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Script {
    /// The value as written in a config file: `"cmd 'a b'" [user [group]]`.
    pub fn keepalived_text(&self) -> String {
        let mut s = format!("\"{}\"", crate::quote::join_quoted(&self.argv));
        for w in self.user.iter().chain(self.group.iter()) {
            s.push(' ');
            s.push_str(w);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_parse_like_keepalived() {
        assert_eq!("1".parse(), Ok(Micros(1_000_000)));
        assert_eq!("0.1".parse(), Ok(Micros(100_000)));
        assert_eq!(".5".parse(), Ok(Micros(500_000)));
        assert_eq!("2.000005".parse(), Ok(Micros(2_000_005)));
        assert_eq!("3s".parse(), Ok(Micros(3_000_000)));
        assert!(matches!(
            "1.0000001".parse::<Micros>(),
            Err(TimerError::TooPrecise(_))
        ));
        assert!(matches!(
            "-1".parse::<Micros>(),
            Err(TimerError::NotANumber(_))
        ));
        assert!(matches!(
            "".parse::<Micros>(),
            Err(TimerError::NotANumber(_))
        ));
        assert!(matches!(
            "1e3".parse::<Micros>(),
            Err(TimerError::NotANumber(_))
        ));
    }

    #[test]
    fn timer_text_round_trips() {
        for us in [0, 1, 10, 100_000, 1_000_000, 2_000_005, 40_950_000] {
            let m = Micros(us);
            assert_eq!(m.keepalived_text().parse(), Ok(m));
            assert_eq!(m.to_string().parse(), Ok(m));
        }
    }

    #[test]
    fn origins_never_make_items_differ() {
        let a = Origin::at(Span::new(crate::source::FileId(0), 1, 1));
        assert_eq!(a, Origin::default());
    }
}
