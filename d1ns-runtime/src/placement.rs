//! Where a key lives when a namespace spans several databases (S1-S3): rendezvous hashing over
//! (shard name, placement key), with Redis Cluster's hash tags.
//!
//! The hash is part of the storage format: it gives the same answer on every platform and in
//! every version, and a test pins the shard of a fixed set of keys. It is FNV-1a (64-bit) over the
//! shard name's UTF-8 bytes, one `0xFF` byte (which UTF-8 never contains, so no name and key run
//! into each other) and the placement key's bytes, then MurmurHash3's 64-bit finalizer, so that
//! names and keys that differ in one byte score far apart. A key goes to the shard with the
//! highest score; a tie goes to the name first in byte order.

/// The part of a key that decides its shard (S3): with a `{` and a later `}` with at least one
/// character between them, the text between the first `{` and the first `}` after it; else the
/// whole key. `user:{42}:cart` and `user:{42}:prefs` share `42`, so they share a shard and can be
/// in one atomic commit.
///
/// ```
/// use d1ns_runtime::placement::placement_key;
///
/// assert_eq!(placement_key("user:{42}:cart"), "42");
/// assert_eq!(placement_key("user:{}:cart"), "user:{}:cart"); // empty tag: the whole key
/// assert_eq!(placement_key("{a}{b}"), "a");
/// ```
pub fn placement_key(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.find('}')
            && close > 0
        {
            return &rest[..close];
        }
    }
    key
}

/// The score of `key` on the shard `name`; the highest score wins.
pub fn score(name: &str, key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let bytes = name
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(placement_key(key).as_bytes());
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    // MurmurHash3's fmix64.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The index in `names` of the shard `key` lives on (S2); `None` only for no names. The answer
/// depends on the names, not their order: the same key goes to the same name whatever the list's
/// order, and adding a shard moves only the keys the new shard wins (about 1 in N).
///
/// ```
/// use d1ns_runtime::placement::shard_for;
///
/// let a = shard_for(&["DB1", "DB2", "DB3"], "user:42").unwrap();
/// let b = shard_for(&["DB3", "DB1", "DB2"], "user:42").unwrap();
/// assert_eq!(["DB1", "DB2", "DB3"][a], ["DB3", "DB1", "DB2"][b]);
/// ```
pub fn shard_for<S: AsRef<str>>(names: &[S], key: &str) -> Option<usize> {
    let mut best: Option<(u64, &str, usize)> = None;
    for (index, name) in names.iter().enumerate() {
        let name = name.as_ref();
        let score = score(name, key);
        let wins = match best {
            None => true,
            Some((best_score, best_name, _)) => {
                score > best_score || (score == best_score && name < best_name)
            }
        };
        if wins {
            best = Some((score, name, index));
        }
    }
    best.map(|(_, _, index)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S3: the tag rules, as Redis Cluster's.
    #[test]
    fn hash_tags() {
        assert_eq!(placement_key("user:{42}:cart"), "42");
        assert_eq!(placement_key("{user}"), "user");
        assert_eq!(placement_key("a{b}c{d}e"), "b");
        assert_eq!(
            placement_key("a{}b{c}"),
            "a{}b{c}",
            "an empty first tag: whole key"
        );
        assert_eq!(placement_key("a{b"), "a{b");
        assert_eq!(placement_key("a}b{c}"), "c");
        assert_eq!(placement_key("{{x}}"), "{x");
        assert_eq!(placement_key("plain"), "plain");
        assert_eq!(placement_key("{é}"), "é");
    }

    /// S1: the order of the names does not matter; S2: keys spread over every shard.
    #[test]
    fn placement_follows_names_not_order_and_spreads() {
        let names = ["DB1", "DB2", "DB3"];
        let reversed = ["DB3", "DB2", "DB1"];
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            let key = format!("key:{i}");
            let a = shard_for(&names, &key).unwrap();
            let b = shard_for(&reversed, &key).unwrap();
            assert_eq!(names[a], reversed[b]);
            counts[a] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "{counts:?}");
        }
        assert_eq!(shard_for::<&str>(&[], "k"), None);
        assert_eq!(shard_for(&["only"], "k"), Some(0));
    }

    /// Rendezvous: adding a shard moves only keys to the new shard.
    #[test]
    fn adding_a_shard_moves_keys_only_to_it() {
        let two = ["DB1", "DB2"];
        let three = ["DB1", "DB2", "DB3"];
        let mut moved = 0;
        for i in 0..3000 {
            let key = format!("k{i}");
            let before = two[shard_for(&two, &key).unwrap()];
            let after = three[shard_for(&three, &key).unwrap()];
            if before != after {
                assert_eq!(after, "DB3");
                moved += 1;
            }
        }
        assert!((800..1200).contains(&moved), "{moved}");
    }
}
