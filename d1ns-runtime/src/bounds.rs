//! The numbers of the KV rules, re-exported by [`limits`](crate::limits): a leaf module, so
//! that error messages can name them without depending on the checks that raise the errors.

/// Longest key, in bytes of UTF-8 (K1).
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes (K6).
pub const MAX_VALUE_BYTES: usize = 26_214_400;
/// Largest value kept in the entry's own row; longer ones are stored as chunks in a second table,
/// so that the rows every look-up walks stay small (see the `sql` module).
pub const MAX_IN_ROW_VALUE_BYTES: usize = 1024;
/// Longest chunk of a value stored in chunks: a D1 row holds at most 2,000,000 bytes (K9), and
/// the chunk's row also carries the namespace and the key.
pub const MAX_CHUNK_BYTES: usize = 1_900_000;
/// Largest metadata, in bytes of serialized JSON (K11).
pub const MAX_METADATA_BYTES: usize = 1024;
/// Fewest and most keys of one `get_bulk` (K19).
pub const MAX_BULK_KEYS: usize = 100;
/// Default and largest `list` limit (K28).
pub const MAX_LIST_LIMIT: u64 = 1000;
/// Smallest `cache_ttl` KV accepts (K18).
pub const MIN_CACHE_TTL: u64 = 30;
/// Most checks in one atomic commit (A10). They travel as one statement, whatever their number.
pub const MAX_ATOMIC_CHECKS: usize = 100;
/// Most mutations in one atomic commit (A10). Each is one statement of the commit's batch (a
/// value over 1 KiB takes 2 more, plus 1 per 1.4 MB), and D1 allows 1,000 queries per Worker
/// invocation on the paid plan, 50 on the free plan.
pub const MAX_ATOMIC_MUTATIONS: usize = 100;
/// Most bytes of keys, values and metadata in one atomic commit (A10): one value of the largest
/// size KV allows, and room besides.
pub const MAX_ATOMIC_BYTES: usize = 32 * 1024 * 1024;
