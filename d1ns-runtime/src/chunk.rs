//! Values longer than a D1 row can hold (K9), as parts of at most
//! [`MAX_ROW_VALUE_BYTES`](crate::limits::MAX_ROW_VALUE_BYTES); bytes values already from
//! [`MAX_ROW_BLOB_BYTES`](crate::limits::MAX_ROW_BLOB_BYTES) up.
//!
//! Parts are text: text values split at character boundaries, bytes values in base64 (D1 returns
//! BLOBs as JavaScript arrays of numbers, several times larger and slower than base64 text). The
//! entry's row keeps an empty value of the original kind, so reads know which it was.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::backend::Value;
use crate::error::{DatabaseError, Error};
use crate::limits::{MAX_ROW_BLOB_BYTES, MAX_ROW_VALUE_BYTES};

/// Raw bytes per part of a bytes value: their base64 fits in a part.
const RAW_BYTES_PER_PART: usize = MAX_ROW_VALUE_BYTES / 4 * 3;

/// The value's length in bytes.
pub(crate) fn len(value: &Value) -> usize {
    match value {
        Value::Text(t) => t.len(),
        Value::Blob(b) => b.len(),
        _ => 0,
    }
}

/// `None` if the value fits in its row; otherwise the row's stand-in (an empty value of the same
/// kind) and the parts.
pub(crate) fn split(value: &Value) -> Option<(Value, Vec<String>)> {
    match value {
        Value::Text(text) if text.len() > MAX_ROW_VALUE_BYTES => {
            let mut parts = Vec::with_capacity(text.len() / MAX_ROW_VALUE_BYTES + 1);
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let mut end = rest.len().min(MAX_ROW_VALUE_BYTES);
                while !rest.is_char_boundary(end) {
                    end -= 1;
                }
                let (part, tail) = rest.split_at(end);
                parts.push(part.to_owned());
                rest = tail;
            }
            Some((Value::Text(String::new()), parts))
        }
        Value::Blob(bytes) if bytes.len() > MAX_ROW_BLOB_BYTES => {
            let parts = bytes
                .chunks(RAW_BYTES_PER_PART)
                .map(|raw| STANDARD.encode(raw))
                .collect();
            Some((Value::Blob(Vec::new()), parts))
        }
        _ => None,
    }
}

/// The value from the row's stand-in and the parts, in order.
pub(crate) fn join(key: &str, stand_in: Value, parts: Vec<Value>) -> Result<Value, Error> {
    let corrupt = |what: &str| {
        Error::Database(DatabaseError::new(format!(
            "the stored parts of key {key:?} are {what}"
        )))
    };
    let texts = parts.into_iter().map(|part| match part {
        Value::Text(text) => Ok(text),
        _ => Err(corrupt("not text")),
    });
    match stand_in {
        Value::Blob(_) => {
            let mut bytes = Vec::new();
            for text in texts {
                STANDARD
                    .decode_vec(text?, &mut bytes)
                    .map_err(|_| corrupt("not base64"))?;
            }
            Ok(Value::Blob(bytes))
        }
        _ => texts.collect::<Result<String, Error>>().map(Value::Text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_not_split() {
        assert!(split(&Value::Text("x".repeat(MAX_ROW_VALUE_BYTES))).is_none());
        assert!(split(&Value::Text("x".repeat(MAX_ROW_VALUE_BYTES + 1))).is_some());
        assert!(split(&Value::Blob(vec![0; MAX_ROW_BLOB_BYTES])).is_none());
        assert!(split(&Value::Blob(vec![0; MAX_ROW_BLOB_BYTES + 1])).is_some());
    }

    #[test]
    fn text_splits_at_character_boundaries_and_joins_back() {
        // 4-byte characters never straddle a part boundary.
        let text = "a".repeat(3) + &"\u{10FFFF}".repeat(MAX_ROW_VALUE_BYTES / 2);
        let (stand_in, parts) = split(&Value::Text(text.clone())).unwrap();
        assert_eq!(stand_in, Value::Text(String::new()));
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= MAX_ROW_VALUE_BYTES));
        let parts = parts.into_iter().map(Value::Text).collect();
        assert_eq!(join("k", stand_in, parts).unwrap(), Value::Text(text));
    }

    #[test]
    fn bytes_split_into_base64_parts_that_fit_a_row_and_join_back() {
        let bytes: Vec<u8> = (0..MAX_ROW_VALUE_BYTES * 2)
            .map(|i| (i % 251) as u8)
            .collect();
        let (stand_in, parts) = split(&Value::Blob(bytes.clone())).unwrap();
        assert_eq!(stand_in, Value::Blob(Vec::new()));
        assert!(parts.iter().all(|p| p.len() <= MAX_ROW_VALUE_BYTES));
        let parts = parts.into_iter().map(Value::Text).collect();
        assert_eq!(join("k", stand_in, parts).unwrap(), Value::Blob(bytes));
    }

    #[test]
    fn corrupt_parts_are_an_error_naming_the_key() {
        let error = join("k", Value::Blob(Vec::new()), vec![Value::Text("!!".into())]).unwrap_err();
        assert!(error.to_string().contains("\"k\""));
    }
}
