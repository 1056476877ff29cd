//! Timestamps as the API server stores them (RFC 3339), read without failing.

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Deserializer};

/// A timestamp read leniently. The API server accepts times the client's time type cannot hold
/// (after 9999-12-30T22:00Z); those are [`LenientTime::FarFuture`] (or `FarPast`), and anything
/// else unreadable is [`LenientTime::Unreadable`], never an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LenientTime {
    At(Timestamp),
    FarFuture,
    FarPast,
    #[default]
    Unreadable,
}

impl LenientTime {
    pub fn parse(text: &str) -> Self {
        if let Ok(at) = text.parse::<Timestamp>() {
            return LenientTime::At(at);
        }
        // RFC 3339 with a 4-digit year that the parser could not place: outside its range.
        match text.get(..4).and_then(|y| y.parse::<u32>().ok()) {
            Some(year) if year >= 9999 => LenientTime::FarFuture,
            Some(year) if year <= 1 => LenientTime::FarPast,
            _ => LenientTime::Unreadable,
        }
    }

    pub fn timestamp(self) -> Option<Timestamp> {
        match self {
            LenientTime::At(at) => Some(at),
            _ => None,
        }
    }

    /// Seconds since the Unix epoch, saturating for times out of range.
    pub fn as_second(self) -> Option<i64> {
        match self {
            LenientTime::At(at) => Some(at.as_second()),
            LenientTime::FarFuture => Some(i64::MAX),
            LenientTime::FarPast => Some(i64::MIN),
            LenientTime::Unreadable => None,
        }
    }
}

impl<'de> Deserialize<'de> for LenientTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Any JSON value: a string is parsed, anything else is unreadable.
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value.as_str() {
            Some(text) => LenientTime::parse(text),
            None => LenientTime::Unreadable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_the_client_cannot_hold_are_kept_as_such() {
        assert!(matches!(
            LenientTime::parse("2026-11-30T10:00:00Z"),
            LenientTime::At(_)
        ));
        assert_eq!(LenientTime::parse("9999-12-31T23:59:59Z"), LenientTime::FarFuture);
        assert!(matches!(
            LenientTime::parse("0000-01-01T00:00:00Z"),
            LenientTime::At(_)
        ));
        assert_eq!(LenientTime::parse("yesterday"), LenientTime::Unreadable);
        let from_json: LenientTime = serde_json::from_str("42").expect("never fails");
        assert_eq!(from_json, LenientTime::Unreadable);
        assert_eq!(LenientTime::FarFuture.as_second(), Some(i64::MAX));
    }
}
