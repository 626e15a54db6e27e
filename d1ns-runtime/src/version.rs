//! [`Versionstamp`]: what identifies one write of a key (A1-A5).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DatabaseError, Error};

/// Identifies one write of a key: every put, atomic put and sum/min/max gives the entry a new
/// one, and all the mutations of one [`commit`](crate::AtomicOperation::commit) share theirs
/// (A1, A2).
///
/// It is opaque: 128 random bits, so two writes anywhere (other processes, isolates, databases)
/// never share one in practice. Stamps can only be compared for equality; they do not say which
/// write came first. It prints as 32 lowercase hex digits and parses back from exactly that
/// (serde uses the same text), so it can travel as an HTTP `ETag` or a form field:
///
/// ```
/// use d1ns_runtime::Versionstamp;
///
/// let stamp: Versionstamp = "0123456789abcdef0123456789abcdef".parse().unwrap();
/// assert_eq!(stamp.to_string(), "0123456789abcdef0123456789abcdef");
/// assert!("0123456789ABCDEF0123456789ABCDEF".parse::<Versionstamp>().is_err());
/// ```
///
/// Entries last written before versionstamps existed (by d1ns 0.1, or inserted by hand without
/// one) read with [`Versionstamp::ZERO`] until they are written again.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Versionstamp([u8; 16]);

/// Hex digits in a [`Versionstamp`]'s text.
const HEX_DIGITS: usize = 32;

impl Versionstamp {
    /// The stamp of entries written before versionstamps existed (A16): they keep it until
    /// their next write.
    pub const ZERO: Versionstamp = Versionstamp([0; 16]);

    /// A new stamp, from the system's random numbers.
    pub(crate) fn random() -> Result<Versionstamp, Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::Database(DatabaseError::new(format!(
                "no random numbers for a versionstamp: {e}"
            )))
        })?;
        Ok(Versionstamp(bytes))
    }

    /// The 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The stamp of these 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Versionstamp {
        Versionstamp(bytes)
    }

    /// The stamp as stored in the `version` column, where `NULL` means [`ZERO`](Self::ZERO).
    pub(crate) fn from_column(key: &str, column: &crate::backend::Value) -> Result<Self, Error> {
        use crate::backend::Value;
        match column {
            Value::Null => Ok(Versionstamp::ZERO),
            Value::Text(text) => text.parse().map_err(|_| {
                Error::Database(DatabaseError::new(format!(
                    "the version column of key {key:?} holds {text:?}, which d1ns did not write: \
                     set it to NULL (the entry then reads with the zero stamp until it is \
                     written again)"
                )))
            }),
            other => Err(Error::Database(DatabaseError::new(format!(
                "the version column of key {key:?} holds {other:?}, which d1ns did not write: \
                 set it to NULL"
            )))),
        }
    }
}

impl fmt::Display for Versionstamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Versionstamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Versionstamp({self})")
    }
}

/// Text that is not a [`Versionstamp`]: anything but 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseVersionstampError {
    text: String,
}

impl fmt::Display for ParseVersionstampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a versionstamp: expected {HEX_DIGITS} lowercase hex digits",
            self.text
        )
    }
}

impl std::error::Error for ParseVersionstampError {}

impl FromStr for Versionstamp {
    type Err = ParseVersionstampError;

    /// Parses exactly what `Display` prints (A1).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseVersionstampError {
            text: text.chars().take(64).collect(),
        };
        let digits = text.as_bytes();
        if digits.len() != HEX_DIGITS {
            return Err(error());
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let high = hex_digit(pair[0]).ok_or_else(error)?;
            let low = hex_digit(pair[1]).ok_or_else(error)?;
            *byte = high << 4 | low;
        }
        Ok(Versionstamp(bytes))
    }
}

/// A lowercase hex digit's value.
fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl Serialize for Versionstamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Versionstamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_nothing_else_parses() {
        // A1
        let stamp = Versionstamp::random().unwrap();
        let text = stamp.to_string();
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(text.parse::<Versionstamp>().unwrap(), stamp);
        for bad in [
            "",
            "0",
            &text[..31],
            &format!("{text}0"),
            &text.to_uppercase(),
            "g123456789abcdef0123456789abcdef",
            " 123456789abcdef0123456789abcdef",
            "é23456789abcdef0123456789abcde",
            "+123456789abcdef0123456789abcdef",
        ] {
            if bad == text {
                continue;
            }
            assert!(bad.parse::<Versionstamp>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            Versionstamp::ZERO.to_string(),
            "00000000000000000000000000000000"
        );
        assert_eq!(Versionstamp::from_bytes(stamp.to_bytes()), stamp);
    }

    #[test]
    fn serde_uses_the_text() {
        // A1
        let stamp = Versionstamp::random().unwrap();
        let json = serde_json::to_string(&stamp).unwrap();
        assert_eq!(json, format!("\"{stamp}\""));
        assert_eq!(serde_json::from_str::<Versionstamp>(&json).unwrap(), stamp);
        assert!(serde_json::from_str::<Versionstamp>("\"xyz\"").is_err());
        assert!(serde_json::from_str::<Versionstamp>("42").is_err());
    }

    #[test]
    fn random_stamps_differ() {
        // A2
        let stamps: std::collections::HashSet<_> = (0..10_000)
            .map(|_| Versionstamp::random().unwrap())
            .collect();
        assert_eq!(stamps.len(), 10_000);
    }
}
