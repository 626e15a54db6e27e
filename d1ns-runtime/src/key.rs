//! [`OwnedKey`]: the key a read's builder keeps until it runs, without a heap allocation for
//! the short keys most applications use.

use std::fmt;

/// Keys up to this many bytes are kept inline.
const INLINE_BYTES: usize = 38;

/// A key owned by a builder (builders own their inputs, as `KvStore`'s do, so that their
/// futures can outlive the call that made them).
#[derive(Clone)]
pub(crate) enum OwnedKey {
    Inline { len: u8, bytes: [u8; INLINE_BYTES] },
    Heap(String),
}

impl OwnedKey {
    pub(crate) fn new(key: &str) -> Self {
        if key.len() > INLINE_BYTES {
            return OwnedKey::Heap(key.to_owned());
        }
        let mut bytes = [0; INLINE_BYTES];
        bytes[..key.len()].copy_from_slice(key.as_bytes());
        OwnedKey::Inline {
            len: key.len() as u8,
            bytes,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Whole UTF-8 text copied in `new`: it always reads back.
            OwnedKey::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            OwnedKey::Heap(key) => key,
        }
    }
}

impl fmt::Debug for OwnedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_whatever_their_length() {
        for key in [
            "",
            "k",
            "user:00001234",
            &"é".repeat(19),
            &"x".repeat(39),
            &"y".repeat(512),
        ] {
            assert_eq!(OwnedKey::new(key).as_str(), key);
        }
        assert!(matches!(
            OwnedKey::new(&"x".repeat(38)),
            OwnedKey::Inline { .. }
        ));
        assert!(matches!(OwnedKey::new(&"x".repeat(39)), OwnedKey::Heap(_)));
    }
}
