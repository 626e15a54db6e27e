//! What the table's rows mean: the entry a read finds, and the decoders that turn the rows of
//! the read statements into it. A decoder is a [`RowSink`]: embedded SQLite hands it each row
//! borrowed (it copies only the columns the read asked for), D1's owned rows are moved into it.

use crate::backend::{RowSink, Value, ValueRef};
use crate::chunk;
use crate::error::{DatabaseError, Error};

/// A live entry as stored: its value (text or bytes), metadata JSON and expiration.
#[derive(Debug)]
pub(crate) struct StoredEntry {
    pub value: Value,
    pub metadata: Option<String>,
    /// In milliseconds since the Unix epoch, as stored.
    pub expiration_ms: Option<u64>,
    /// The `version` column, read into a [`Versionstamp`](crate::Versionstamp) only by the
    /// reads that return it, so that a hand-edited column never fails a plain read.
    pub version: Value,
}

/// What a home has under a key: a live entry, a row that is not live (expired, or a tombstone:
/// the key was here and is gone), or nothing at all.
pub(crate) enum Found {
    Live(StoredEntry),
    Dead,
    Absent,
}

impl Found {
    pub(crate) fn live(self) -> Option<StoredEntry> {
        match self {
            Found::Live(entry) => Some(entry),
            Found::Dead | Found::Absent => None,
        }
    }
}

/// Which columns besides the value a read copies out of the entry's row: `text()` needs
/// neither, `_with_metadata` the metadata, `_entry` reads, the edge cache and the mover both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Columns {
    pub metadata: bool,
    pub version: bool,
}

impl Columns {
    pub(crate) const VALUE: Columns = Columns {
        metadata: false,
        version: false,
    };
    pub(crate) const ALL: Columns = Columns {
        metadata: true,
        version: true,
    };
}

/// A decoder of one statement's rows; `owned_row` takes a row a backend already copied (D1's,
/// through `batch`), so that nothing is copied twice.
pub(crate) trait Decode: RowSink {
    fn owned_row(&mut self, statement: usize, row: Vec<Value>) {
        let cells: Vec<ValueRef<'_>> = row.iter().map(Value::as_ref).collect();
        self.row(statement, &cells);
    }
}

/// The part number `MoveSql` gives the row of an entry that is not live.
pub(crate) fn is_dead_marker(part: ValueRef<'_>) -> bool {
    match part {
        ValueRef::Integer(part) => part == -1,
        ValueRef::Real(part) => part == -1.0,
        _ => false,
    }
}

/// The columns of the entry's own row (part `NULL`) of `Sql::get` and `MoveSql::get`.
struct EntryRow {
    value: Value,
    metadata: Option<String>,
    expiration: Option<u64>,
    count: Value,
    size: Value,
    version: Value,
}

/// The decoder of `Sql::get` and `MoveSql::get`: `part, value, metadata, expiration, chunks,
/// size, version`, the entry's row (part `NULL`) and its chunks (part 0, 1, ...) in any order;
/// `MoveSql`'s row of an entry that is not live has part `-1`.
pub(crate) struct EntryRows<'k> {
    key: &'k str,
    columns: Columns,
    entry: Option<EntryRow>,
    dead: bool,
    chunks: Vec<(Value, Value)>,
    error: Option<Error>,
}

const ENTRY_COLUMNS: usize = 7;

impl<'k> EntryRows<'k> {
    pub(crate) fn new(key: &'k str, columns: Columns) -> Self {
        EntryRows {
            key,
            columns,
            entry: None,
            dead: false,
            chunks: Vec::new(),
            error: None,
        }
    }

    /// What the rows say is under the key.
    pub(crate) fn finish(self) -> Result<Found, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let Some(row) = self.entry else {
            // No live row: the entry is missing, expired or a tombstone.
            return Ok(if self.dead {
                Found::Dead
            } else {
                Found::Absent
            });
        };
        Ok(Found::Live(StoredEntry {
            value: assemble(self.key, row.value, &row.count, &row.size, self.chunks)?,
            metadata: row.metadata,
            expiration_ms: row.expiration,
            version: row.version,
        }))
    }

    fn wrong_width(&mut self, got: usize) {
        self.error
            .get_or_insert_with(|| wrong_column_count(ENTRY_COLUMNS, got));
    }
}

impl RowSink for EntryRows<'_> {
    fn row(&mut self, _statement: usize, columns: &[ValueRef<'_>]) {
        let &[part, value, metadata, expiration, count, size, version] = columns else {
            return self.wrong_width(columns.len());
        };
        match part {
            ValueRef::Null => {
                self.entry = Some(EntryRow {
                    value: value.to_owned_value(),
                    metadata: self.columns.metadata.then(|| text_ref(metadata)).flatten(),
                    expiration: expiration.as_u64(),
                    count: count.to_owned_value(),
                    size: size.to_owned_value(),
                    version: if self.columns.version {
                        version.to_owned_value()
                    } else {
                        Value::Null
                    },
                });
            }
            part if is_dead_marker(part) => self.dead = true,
            part => self
                .chunks
                .push((part.to_owned_value(), value.to_owned_value())),
        }
    }
}

impl Decode for EntryRows<'_> {
    fn owned_row(&mut self, _statement: usize, row: Vec<Value>) {
        let got = row.len();
        let Ok([part, value, metadata, expiration, count, size, version]) =
            <[Value; ENTRY_COLUMNS]>::try_from(row)
        else {
            return self.wrong_width(got);
        };
        match part {
            Value::Null => {
                self.entry = Some(EntryRow {
                    value,
                    metadata: text_column(metadata),
                    expiration: expiration.as_u64(),
                    count,
                    size,
                    version,
                });
            }
            part if is_dead_marker(part.as_ref()) => self.dead = true,
            part => self.chunks.push((part, value)),
        }
    }
}

/// The entry from the owned rows of `Sql::get` or `MoveSql::get`.
pub(crate) fn decode_found(key: &str, rows: Vec<Vec<Value>>) -> Result<Found, Error> {
    let mut decoder = EntryRows::new(key, Columns::ALL);
    for row in rows {
        decoder.owned_row(0, row);
    }
    decoder.finish()
}

/// An entry's value from its row's `value`, `chunks` and `size` columns and its chunks (part
/// number, data) in any order. Anything d1ns could not have written is [`chunk::damaged`].
pub(crate) fn assemble(
    key: &str,
    value: Value,
    count: &Value,
    size: &Value,
    chunks: Vec<(Value, Value)>,
) -> Result<Value, Error> {
    match (count, count.as_u64()) {
        (Value::Null, _) if matches!(size, Value::Null) => Ok(value),
        (Value::Null, _) => Err(chunk::damaged(key, "it records a size but no chunks")),
        (_, Some(count)) if count > 0 => {
            // Rows numbered below 0 are not the value's (stray rows, left by hand).
            let mut chunks: Vec<(u64, Value)> = chunks
                .into_iter()
                .filter_map(|(part, data)| Some((part.as_u64().filter(|&p| p < count)?, data)))
                .collect();
            chunks.sort_unstable_by_key(|(part, _)| *part);
            // Each chunk once (a unique index): anything but 0..count is a damaged entry.
            if (0..)
                .zip(&chunks)
                .any(|(expected, (part, _))| *part != expected)
                || chunks.len() as u64 != count
            {
                return Err(chunk::damaged(
                    key,
                    &format!("{} of its {count} chunks are stored", chunks.len()),
                ));
            }
            let data = chunks.into_iter().map(|(_, data)| data).collect();
            chunk::join(key, value, data, size.as_u64())
        }
        (count, _) => Err(chunk::damaged(
            key,
            &format!("its chunk count is {count:?}"),
        )),
    }
}

/// A row's columns, when the statement selected exactly `N`.
pub(crate) fn columns<const N: usize>(row: Vec<Value>) -> Result<[Value; N], Error> {
    let got = row.len();
    row.try_into().map_err(|_| wrong_column_count(N, got))
}

fn wrong_column_count(expected: usize, got: usize) -> Error {
    Error::Database(DatabaseError::new(format!(
        "expected {expected} columns in a row, got {got}"
    )))
}

/// A nullable TEXT column (metadata).
pub(crate) fn text_column(value: Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t),
        Value::Blob(b) => String::from_utf8(b).ok(),
        _ => None,
    }
}

/// A nullable TEXT column (metadata), borrowed.
pub(crate) fn text_ref(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Text(t) => Some(t.to_owned()),
        ValueRef::Blob(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        _ => None,
    }
}

/// An entry as `Sql::get_bulk` and `MoveSql::get_bulk` give it.
pub(crate) struct BulkRow {
    /// The value when the statement carries it, or the empty stand-in of a value in chunks.
    pub value: Value,
    pub metadata: Option<String>,
    pub count: Value,
    pub size: Value,
    /// The length in bytes of the value in the row.
    pub length: Value,
    pub expiration: Option<u64>,
    pub version: Value,
}

/// The decoder of a batch of `Sql::get_bulk` or `MoveSql::get_bulk`, one statement per key:
/// `part, value, metadata, chunks, size, length, expiration, version, stand-in`. An entry
/// whose chunks the statement carries comes as its chunks (part 0, 1, ... in any order, each
/// with the entry's columns and the stand-in of its value); any other live entry as one row
/// (part `NULL`); from `MoveSql`, an entry that is not live as one row with part `-1`.
pub(crate) struct BulkRows {
    columns: Columns,
    /// Per statement (key), in the batch's order.
    pub entries: Vec<Option<BulkRow>>,
    pub chunks: Vec<Vec<(Value, Value)>>,
    pub dead: Vec<bool>,
    error: Option<Error>,
}

const BULK_COLUMNS: usize = 9;

impl BulkRows {
    pub(crate) fn new(columns: Columns, statements: usize) -> Self {
        BulkRows {
            columns,
            entries: (0..statements).map(|_| None).collect(),
            chunks: vec![Vec::new(); statements],
            dead: vec![false; statements],
            error: None,
        }
    }

    /// The rows as read, or the first problem with them.
    pub(crate) fn finish(self) -> Result<Self, Error> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }

    fn add(
        &mut self,
        statement: usize,
        part: Value,
        value: Value,
        row: impl FnOnce(Value) -> BulkRow,
    ) {
        let (Some(entry), Some(chunks), Some(dead)) = (
            self.entries.get_mut(statement),
            self.chunks.get_mut(statement),
            self.dead.get_mut(statement),
        ) else {
            self.error.get_or_insert_with(|| {
                Error::Database(DatabaseError::new(format!(
                    "a row of statement {statement}, in a batch of fewer"
                )))
            });
            return;
        };
        match part {
            Value::Null => *entry = Some(row(value)),
            part if is_dead_marker(part.as_ref()) => *dead = true,
            part => {
                if entry.is_none() {
                    *entry = Some(row(Value::Null));
                }
                chunks.push((part, value));
            }
        }
    }
}

impl RowSink for BulkRows {
    fn row(&mut self, statement: usize, columns: &[ValueRef<'_>]) {
        let &[
            part,
            value,
            metadata,
            count,
            size,
            length,
            expiration,
            version,
            stand_in,
        ] = columns
        else {
            self.error
                .get_or_insert_with(|| wrong_column_count(BULK_COLUMNS, columns.len()));
            return;
        };
        let wanted = self.columns;
        let chunk = !matches!(part, ValueRef::Null);
        self.add(
            statement,
            part.to_owned_value(),
            value.to_owned_value(),
            |value| BulkRow {
                // A chunk's row: the entry's value is the stand-in; its chunk is `value`.
                value: if chunk {
                    stand_in.to_owned_value()
                } else {
                    value
                },
                metadata: wanted.metadata.then(|| text_ref(metadata)).flatten(),
                count: count.to_owned_value(),
                size: size.to_owned_value(),
                length: length.to_owned_value(),
                expiration: expiration.as_u64(),
                version: if wanted.version {
                    version.to_owned_value()
                } else {
                    Value::Null
                },
            },
        );
    }
}

impl Decode for BulkRows {
    fn owned_row(&mut self, statement: usize, row: Vec<Value>) {
        let got = row.len();
        let Ok(
            [
                part,
                value,
                metadata,
                count,
                size,
                length,
                expiration,
                version,
                stand_in,
            ],
        ) = <[Value; BULK_COLUMNS]>::try_from(row)
        else {
            self.error
                .get_or_insert_with(|| wrong_column_count(BULK_COLUMNS, got));
            return;
        };
        let chunk = !matches!(part, Value::Null);
        self.add(statement, part, value, |value| BulkRow {
            value: if chunk { stand_in } else { value },
            metadata: text_column(metadata),
            count,
            size,
            length,
            expiration: expiration.as_u64(),
            version,
        });
    }
}

/// The columns of an entry of a look-up page.
pub(crate) struct FoundRow {
    /// The value, or for a value in chunks an empty text standing in for it.
    pub value: Value,
    pub metadata: Option<String>,
    pub expiration: Value,
    pub count: Value,
    pub size: Value,
    pub version: Value,
}

/// The decoder of `IndexSql::find`: `key, part, value, metadata, expiration, chunks, size,
/// version`, each matching entry's row (part `NULL`) or, for a value in chunks, its chunks,
/// each with the entry's columns.
pub(crate) struct FoundRows {
    pub found: Vec<(String, FoundRow)>,
    pub chunks: std::collections::HashMap<String, Vec<(Value, Value)>>,
    error: Option<Error>,
}

const FOUND_COLUMNS: usize = 8;

impl FoundRows {
    pub(crate) fn new() -> Self {
        FoundRows {
            found: Vec::new(),
            chunks: std::collections::HashMap::new(),
            error: None,
        }
    }

    /// The rows as read, or the first problem with them.
    pub(crate) fn finish(self) -> Result<Self, Error> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self),
        }
    }
}

impl RowSink for FoundRows {
    fn row(&mut self, _statement: usize, columns: &[ValueRef<'_>]) {
        let &[key, part, value, metadata, expiration, count, size, version] = columns else {
            self.error
                .get_or_insert_with(|| wrong_column_count(FOUND_COLUMNS, columns.len()));
            return;
        };
        let ValueRef::Text(key) = key else { return };
        let row = |value: Value| FoundRow {
            value,
            metadata: text_ref(metadata),
            expiration: expiration.to_owned_value(),
            count: count.to_owned_value(),
            size: size.to_owned_value(),
            version: version.to_owned_value(),
        };
        if let ValueRef::Null = part {
            self.found
                .push((key.to_owned(), row(value.to_owned_value())));
            return;
        }
        // A chunk, with its entry's columns: the first one stands for the entry. Its row's
        // value is text (the index holds only rows whose value is text), so the chunks join
        // into text.
        let own = self.chunks.entry(key.to_owned()).or_default();
        if own.is_empty() {
            self.found
                .push((key.to_owned(), row(Value::Text(String::new()))));
        }
        own.push((part.to_owned_value(), value.to_owned_value()));
    }
}

impl Decode for FoundRows {}
