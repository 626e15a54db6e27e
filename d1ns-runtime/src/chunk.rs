//! Values longer than [`MAX_IN_ROW_VALUE_BYTES`](crate::limits::MAX_IN_ROW_VALUE_BYTES), as
//! chunks of at most [`MAX_CHUNK_BYTES`](crate::limits::MAX_CHUNK_BYTES) in their own table.
//!
//! Chunks are text: text values split at character boundaries, bytes values in base64 (D1 returns
//! BLOBs as JavaScript arrays of numbers, several times larger and slower than base64 text). The
//! entry's row keeps an empty value of the original kind, so reads know which it was, and the
//! value's length in bytes, so a read can tell a whole value from a damaged one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::backend::Value;
use crate::error::{DatabaseError, Error};
use crate::limits::{MAX_CHUNK_BYTES, MAX_IN_ROW_VALUE_BYTES};

/// Raw bytes per chunk of a bytes value: their base64 fits in a chunk.
const RAW_BYTES_PER_CHUNK: usize = MAX_CHUNK_BYTES / 4 * 3;

/// A value too long for the entry's row: what the row keeps, and the chunks.
#[derive(Debug)]
pub(crate) struct Chunked {
    /// An empty value of the original kind (text or bytes).
    pub stand_in: Value,
    /// The chunks, in order.
    pub chunks: Vec<String>,
    /// The value's length in bytes.
    pub size: usize,
}

/// The value's length in bytes.
pub(crate) fn len(value: &Value) -> usize {
    match value {
        Value::Text(t) => t.len(),
        Value::Blob(b) => b.len(),
        _ => 0,
    }
}

/// The value's chunks, or the value itself (`Err`) when it fits in its row. The first chunk of
/// a text keeps the text's own buffer, so a value of one chunk is never copied.
pub(crate) fn split(value: Value) -> Result<Chunked, Value> {
    let size = len(&value);
    if size <= MAX_IN_ROW_VALUE_BYTES {
        return Err(value);
    }
    match value {
        Value::Text(mut text) => {
            let end = |rest: &str| {
                let mut end = rest.len().min(MAX_CHUNK_BYTES);
                while !rest.is_char_boundary(end) {
                    end -= 1;
                }
                end
            };
            let first = end(&text);
            let mut chunks = Vec::with_capacity(text.len() / MAX_CHUNK_BYTES + 1);
            chunks.push(String::new());
            let mut rest = &text[first..];
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(end(rest));
                chunks.push(chunk.to_owned());
                rest = tail;
            }
            text.truncate(first);
            chunks[0] = text;
            Ok(Chunked {
                stand_in: Value::Text(String::new()),
                chunks,
                size,
            })
        }
        Value::Blob(bytes) => Ok(Chunked {
            stand_in: Value::Blob(Vec::new()),
            chunks: bytes
                .chunks(RAW_BYTES_PER_CHUNK)
                .map(|raw| STANDARD.encode(raw))
                .collect(),
            size,
        }),
        other => Err(other),
    }
}

/// The value from the row's stand-in and the chunks, in order; `size` is the length the row
/// recorded (rows written by d1ns 0.1 have none).
pub(crate) fn join(
    key: &str,
    stand_in: Value,
    chunks: Vec<Value>,
    size: Option<u64>,
) -> Result<Value, Error> {
    let texts = chunks.into_iter().map(|chunk| match chunk {
        Value::Text(text) => Ok(text),
        _ => Err(damaged(key, "a chunk is not text")),
    });
    let value = match stand_in {
        Value::Blob(_) => {
            let mut bytes = Vec::new();
            for text in texts {
                STANDARD
                    .decode_vec(text?, &mut bytes)
                    .map_err(|_| damaged(key, "a chunk is not base64"))?;
            }
            Value::Blob(bytes)
        }
        _ => Value::Text(texts.collect::<Result<String, Error>>()?),
    };
    match size {
        Some(size) if size != len(&value) as u64 => Err(damaged(
            key,
            &format!("its chunks hold {} bytes of its {size}", len(&value)),
        )),
        _ => Ok(value),
    }
}

/// A stored entry that cannot be read as it was written: an error naming the key, never a
/// different value.
pub(crate) fn damaged(key: &str, what: &str) -> Error {
    Error::Database(DatabaseError::new(format!(
        "the entry of key {key:?} is damaged: {what}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_values(chunked: &Chunked) -> Vec<Value> {
        chunked.chunks.iter().cloned().map(Value::Text).collect()
    }

    #[test]
    fn values_up_to_the_in_row_limit_are_not_split() {
        for (len, split_expected) in [
            (MAX_IN_ROW_VALUE_BYTES, false),
            (MAX_IN_ROW_VALUE_BYTES + 1, true),
        ] {
            assert_eq!(split(Value::Text("x".repeat(len))).is_ok(), split_expected);
            assert_eq!(split(Value::Blob(vec![0; len])).is_ok(), split_expected);
        }
    }

    #[test]
    fn text_splits_at_character_boundaries_and_joins_back() {
        // 4-byte characters never straddle a chunk boundary.
        let text = "a".repeat(3) + &"\u{10FFFF}".repeat(MAX_CHUNK_BYTES / 2);
        let chunked = split(Value::Text(text.clone())).unwrap();
        assert_eq!(chunked.stand_in, Value::Text(String::new()));
        assert_eq!(chunked.size, text.len());
        assert!(chunked.chunks.len() > 1);
        assert!(chunked.chunks.iter().all(|p| p.len() <= MAX_CHUNK_BYTES));
        let joined = join(
            "k",
            chunked.stand_in.clone(),
            chunk_values(&chunked),
            Some(text.len() as u64),
        );
        assert_eq!(joined.unwrap(), Value::Text(text));
    }

    #[test]
    fn bytes_split_into_base64_chunks_that_fit_a_row_and_join_back() {
        let bytes: Vec<u8> = (0..MAX_CHUNK_BYTES * 2).map(|i| (i % 251) as u8).collect();
        let chunked = split(Value::Blob(bytes.clone())).unwrap();
        assert_eq!(chunked.stand_in, Value::Blob(Vec::new()));
        assert!(chunked.chunks.iter().all(|p| p.len() <= MAX_CHUNK_BYTES));
        let joined = join(
            "k",
            chunked.stand_in.clone(),
            chunk_values(&chunked),
            Some(bytes.len() as u64),
        );
        assert_eq!(joined.unwrap(), Value::Blob(bytes));
    }

    #[test]
    fn corrupt_chunks_are_an_error_naming_the_key() {
        let error = join(
            "k",
            Value::Blob(Vec::new()),
            vec![Value::Text("!!".into())],
            None,
        );
        assert!(error.unwrap_err().to_string().contains("\"k\""));
    }

    #[test]
    fn a_value_shorter_than_its_recorded_size_is_damaged() {
        let chunks = vec![Value::Text("abc".into())];
        let error = join("k", Value::Text(String::new()), chunks.clone(), Some(4)).unwrap_err();
        assert!(error.to_string().contains("3 bytes of its 4"), "{error}");
        assert!(join("k", Value::Text(String::new()), chunks, Some(3)).is_ok());
    }
}
