//! The Workers backend: Cloudflare D1 through `worker::D1Database` (workers-rs).
//!
//! What D1 does to values, seen through workers-rs, shapes this file: every JavaScript number binds
//! as REAL (d1ns's integers are milliseconds, exact in a double), BLOBs come back as arrays of
//! numbers, and rows come back as JS objects keyed by column name.
//!
//! A JS object is not a list of columns: integer-like names (`1`) move before the others and
//! equal names collapse into one. So d1ns names every selected column by its position, `c0`,
//! `c1`, ... (see the `sql` module), and a row whose names are exactly `c0..cN` is read by those
//! names, whatever order the properties come in. Other rows (statements others send through this
//! backend) are read in property order, which is the column order when the names are distinct
//! and not integer-like; a row of several columns with an integer-like name is refused rather
//! than read out of order.

use std::fmt;
use std::future::Future;
use std::sync::LazyLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use worker::js_sys::{self, Reflect, Uint8Array};
use worker::send::SendFuture;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, D1DatabaseSession, D1PreparedStatement};

use super::{Backend, QueryResult, Session, Statement, Value, next_database_id};
use crate::error::DatabaseError;

/// The property d1ns stamps on a `D1Database` object to tell bindings apart (K34).
const DATABASE_ID_PROPERTY: &str = "__d1ns_database_id";

#[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
impl Backend for D1Database {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        run_batch(self, statements)
    }

    fn database_id(&self) -> u64 {
        let this: &JsValue = self.as_ref();
        let key = JsValue::from_str(DATABASE_ID_PROPERTY);
        if let Some(id) = Reflect::get(this, &key).ok().and_then(|v| v.as_f64()) {
            return id as u64;
        }
        let id = next_database_id();
        // If the object refuses the property, every operation simply sends its schema
        // statements again: slower, never wrong.
        let _ = Reflect::set(this, &key, &JsValue::from_f64(id as f64));
        id
    }

    /// The binding object carries its id: the same binding given twice is one database.
    fn id_is_identity(&self) -> bool {
        true
    }
}

/// A D1 session (R1): reads may be served by a replica at least as new as the session's
/// bookmark, writes go to the primary, and a batch is atomic as on the binding.
///
/// A session does not tell which database it belongs to, and a Worker makes one per request, so
/// every session shares one entry of the schema registry (K34): a namespace made over a new
/// session sends no schema statements once its table is known (R3). With several databases, the
/// first operation on one whose table is missing costs a failed statement and a retry, once.
#[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
impl Backend for D1DatabaseSession {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        run_batch(self, statements)
    }

    fn database_id(&self) -> u64 {
        static SESSIONS: LazyLock<u64> = LazyLock::new(next_database_id);
        *SESSIONS
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
impl Session for D1DatabaseSession {
    fn bookmark(&self) -> Result<Option<String>, DatabaseError> {
        self.get_bookmark().map_err(database_error)
    }
}

/// What the binding and a session have in common: preparing a statement and sending a batch.
trait D1Target: Sync {
    fn prepare_sql(&self, sql: &str) -> D1PreparedStatement;
    fn send(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> impl Future<Output = worker::Result<Vec<worker::D1Result>>>;
}

impl D1Target for D1Database {
    fn prepare_sql(&self, sql: &str) -> D1PreparedStatement {
        self.prepare(sql)
    }
    fn send(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> impl Future<Output = worker::Result<Vec<worker::D1Result>>> {
        D1Database::batch(self, statements)
    }
}

impl D1Target for D1DatabaseSession {
    fn prepare_sql(&self, sql: &str) -> D1PreparedStatement {
        self.prepare(sql)
    }
    fn send(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> impl Future<Output = worker::Result<Vec<worker::D1Result>>> {
        D1DatabaseSession::batch(self, statements)
    }
}

fn run_batch<'a, D: D1Target>(
    db: &'a D,
    statements: &[Statement<'_>],
) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send + 'a {
    let prepared: Result<Vec<D1PreparedStatement>, DatabaseError> = statements
        .iter()
        .map(|statement| prepare(db, statement))
        .collect();
    let query = matches!(statements, [statement] if returns_rows(statement.sql));
    // A Worker runs on one thread, so the JS promise never crosses threads: SendFuture only
    // states that to the type system.
    SendFuture::new(async move {
        let prepared = prepared?;
        // A lone query goes with `all()`, as a hand-written Worker sends it. Writes stay in
        // `batch()`: in workerd a `batch()` of one write is faster than `run()`.
        if query && let [statement] = prepared.as_slice() {
            let result = statement.all().await.map_err(database_error)?;
            return Ok(vec![query_result(&result)?]);
        }
        let results = db.send(prepared).await.map_err(database_error)?;
        results.iter().map(query_result).collect()
    })
}

/// Whether a statement is a query (`SELECT`, `WITH`), which goes alone with `all()` when it is
/// the whole batch. `all()` and `batch()` give the same rows and meta, so a wrong guess only
/// picks the other path.
fn returns_rows(sql: &str) -> bool {
    let word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    word.eq_ignore_ascii_case("SELECT") || word.eq_ignore_ascii_case("WITH")
}

fn prepare<D: D1Target>(
    db: &D,
    statement: &Statement<'_>,
) -> Result<D1PreparedStatement, DatabaseError> {
    let params: Vec<JsValue> = statement.params.iter().map(to_js).collect();
    db.prepare_sql(statement.sql)
        .bind(&params)
        .map_err(database_error)
}

fn to_js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::null(),
        // Exact: d1ns binds only integers below 2^53 (milliseconds, limits, counts).
        Value::Integer(i) => JsValue::from_f64(*i as f64),
        Value::Real(r) => JsValue::from_f64(*r),
        Value::Text(t) => JsValue::from_str(t),
        Value::Blob(b) => Uint8Array::from(b.as_slice()).into(),
    }
}

fn query_result(result: &worker::D1Result) -> Result<QueryResult, DatabaseError> {
    let rows: Vec<Row> = result.results().map_err(database_error)?;
    // The figures are for counting only: a meta that does not decode must not turn a write D1
    // has committed into an error.
    let meta = result.meta().ok().flatten();
    let count = |n: Option<usize>| n.map(|n| n as u64);
    Ok(QueryResult {
        rows: rows.into_iter().map(|row| row.0).collect(),
        rows_read: meta.as_ref().and_then(|m| count(m.rows_read)),
        rows_written: meta.as_ref().and_then(|m| count(m.rows_written)),
        changes: meta.as_ref().and_then(|m| count(m.changes)),
    })
}

fn database_error(e: worker::Error) -> DatabaseError {
    match e {
        worker::Error::D1(e) => DatabaseError::new(d1_message(e.as_ref())),
        // `all()` passes D1's error on as a plain JS error: the same text as from `batch()`.
        worker::Error::UnknownJsError {
            original, message, ..
        } => DatabaseError::new(match original.dyn_ref::<js_sys::Error>() {
            Some(error) => d1_message(error),
            None => message,
        }),
        other => DatabaseError::new(other.to_string()),
    }
}

/// D1's own message ("D1_ERROR: no such table: ...: SQLITE_ERROR"), with its cause when it has
/// one. Not `D1Error`'s `Display`: in workers-rs 0.8.7 that unwraps `cause` as a string and
/// throws when D1 gives no cause, as local D1 does for a failing batch, which leaves the request
/// hanging instead of returning the error.
fn d1_message(error: &js_sys::Error) -> String {
    let message = String::from(error.message());
    let cause = error.cause();
    let cause = cause.as_string().or_else(|| {
        cause
            .dyn_ref::<js_sys::Error>()
            .map(|cause| String::from(cause.message()))
    });
    match cause {
        Some(cause) if !cause.is_empty() && !message.contains(&cause) => {
            format!("{message}: {cause}")
        }
        _ => message,
    }
}

/// A row object, read as its values in column order (see the module docs).
struct Row(Vec<Value>);

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a D1 row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut cells = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(cell) = map.next_entry::<ColumnName, Cell>()? {
                    cells.push(cell);
                }
                in_column_order(cells).map(Row).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

/// The values of a row in column order: by alias when every name is one, else as they came.
fn in_column_order(cells: Vec<(ColumnName, Cell)>) -> Result<Vec<Value>, String> {
    let count = cells.len();
    let aliased = cells
        .iter()
        .all(|(name, _)| matches!(name, ColumnName::Alias(_)));
    if !aliased {
        if count > 1
            && let Some((ColumnName::IntegerLike(name), _)) = cells
                .iter()
                .find(|(name, _)| matches!(name, ColumnName::IntegerLike(_)))
        {
            return Err(format!(
                "column {name:?} of a row of {count}: an integer-like name loses its place in a \
                 JS object; name the columns c0, c1, ..."
            ));
        }
        return Ok(cells.into_iter().map(|(_, Cell(value))| value).collect());
    }
    let mut values: Vec<Option<Value>> = vec![None; count];
    for (name, Cell(value)) in cells {
        let ColumnName::Alias(position) = name else {
            continue;
        };
        match values.get_mut(position) {
            Some(slot @ None) => *slot = Some(value),
            _ => {
                return Err(format!(
                    "column c{position} does not fit a row of {count} columns named c0 to c{}",
                    count.saturating_sub(1)
                ));
            }
        }
    }
    // `count` distinct positions below `count`: every slot is filled.
    Ok(values.into_iter().flatten().collect())
}

/// A column name as it bears on the column's place in the row.
enum ColumnName {
    /// `c0`, `c1`, ...: the column's position.
    Alias(usize),
    /// A name JS orders before all others (an array index such as `0` or `42`).
    IntegerLike(String),
    /// Any other name: its place is where it came.
    Other,
}

impl ColumnName {
    fn parse(name: &str) -> ColumnName {
        // Digits without a leading zero, so that each position has one spelling.
        fn number(digits: &str) -> Option<u64> {
            let canonical = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            canonical.then(|| digits.parse().ok()).flatten()
        }
        let alias = name.strip_prefix('c').and_then(number);
        if let Some(position) = alias.and_then(|p| usize::try_from(p).ok()) {
            return ColumnName::Alias(position);
        }
        match number(name) {
            // JS array indices: 0 to 2^32 - 2.
            Some(index) if index < u64::from(u32::MAX) => ColumnName::IntegerLike(name.to_owned()),
            _ => ColumnName::Other,
        }
    }
}

impl<'de> Deserialize<'de> for ColumnName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = ColumnName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ColumnName, E> {
                Ok(ColumnName::parse(v))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// One column value of a D1 row.
struct Cell(Value);

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CellVisitor;
        impl<'de> Visitor<'de> for CellVisitor {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a D1 column value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell(Value::Null))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Cell, E> {
                Ok(Cell(Value::Integer(i64::from(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell(Value::Integer(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
                Ok(i64::try_from(v)
                    .map_or(Cell(Value::Real(v as f64)), |i| Cell(Value::Integer(i))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell(Value::Real(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell(Value::Text(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Cell, E> {
                Ok(Cell(Value::Text(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Cell, E> {
                Ok(Cell(Value::Blob(v.to_vec())))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Cell, E> {
                Ok(Cell(Value::Blob(v)))
            }
            // D1 returns a BLOB as an array of numbers.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(Cell(Value::Blob(bytes)))
            }
        }
        deserializer.deserialize_any(CellVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row as D1 hands it over: a JSON-like object whose keys follow the selected columns
    /// (parsed from text, so the order is kept).
    fn row(object: &str) -> Vec<Value> {
        serde_json::from_str::<Row>(object).unwrap().0
    }

    /// A row whose columns are all aliased `c0..cN` is read by the aliases: JS may hand the
    /// properties over in any order.
    #[test]
    fn aliased_columns_are_placed_by_their_alias_whatever_the_property_order() {
        let got = row(r#"{"c2": null, "c0": -1, "c3": 5.0, "c1": "v"}"#);
        assert_eq!(
            got,
            [
                Value::Integer(-1),
                Value::Text("v".into()),
                Value::Null,
                Value::Real(5.0)
            ]
        );
        let eleven: String = (0..11)
            .rev()
            .map(|i| format!(r#""c{i}": {i}"#))
            .collect::<Vec<_>>()
            .join(", ");
        let got = row(&format!("{{{eleven}}}"));
        assert_eq!(got, (0..11).map(Value::Integer).collect::<Vec<_>>());
    }

    /// Aliases that do not number the columns 0 to N-1 once each (a collapsed duplicate, a gap)
    /// are a broken statement, not a row.
    #[test]
    fn aliases_with_a_gap_are_refused() {
        for object in [r#"{"c0": 1, "c2": 2}"#, r#"{"c1": 1}"#] {
            let error = serde_json::from_str::<Row>(object).err();
            assert!(error.is_some(), "{object} was read as a row");
        }
    }

    /// JS moves integer-like names first, so such a row cannot be put back in column order:
    /// refused, never read with its values swapped.
    #[test]
    fn an_integer_like_column_name_in_a_row_of_several_is_refused() {
        let error = serde_json::from_str::<Row>(r#"{"1": "moved first", "value": "v"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("\"1\""), "{error}");
        assert_eq!(row(r#"{"1": 1}"#), [Value::Integer(1)]);
    }

    /// Rows of statements without aliases (sent by others through this backend) keep their
    /// property order, which is the column order for distinct names that are not integer-like.
    #[test]
    fn unaliased_rows_keep_their_property_order() {
        let got = row(r#"{"-1": -1, "value": "v", "c0": null, "expiration": 5.0}"#);
        assert_eq!(
            got,
            [
                Value::Integer(-1),
                Value::Text("v".into()),
                Value::Null,
                Value::Real(5.0)
            ]
        );
        assert_eq!(
            row(r#"{"z": 1, "a": 2}"#),
            [Value::Integer(1), Value::Integer(2)]
        );
    }

    #[test]
    fn queries_are_told_from_writes() {
        assert!(returns_rows("SELECT c0 FROM t"));
        assert!(returns_rows("  with x AS (SELECT 1) SELECT * FROM x"));
        assert!(!returns_rows("INSERT INTO t VALUES (1)"));
        assert!(!returns_rows(
            "DELETE FROM t WHERE (a) IN (SELECT a FROM t)"
        ));
        assert!(!returns_rows(""));
    }

    #[test]
    fn blobs_arrive_as_arrays_of_numbers() {
        assert_eq!(
            row(r#"{"value": [0, 1, 255]}"#),
            [Value::Blob(vec![0, 1, 255])]
        );
        assert!(serde_json::from_str::<Row>(r#"{"value": [256]}"#).is_err());
    }

    #[test]
    fn numbers_decode_as_integers_or_reals_and_read_back_as_counts() {
        let got = row(r#"{"a": 1700000000000, "b": 2.5, "c": 18446744073709551615, "d": 3.0}"#);
        assert_eq!(got[0].as_u64(), Some(1_700_000_000_000));
        assert_eq!(got[1], Value::Real(2.5));
        assert_eq!(got[1].as_u64(), None);
        assert_eq!(got[2], Value::Real(u64::MAX as f64));
        assert_eq!(got[3].as_u64(), Some(3));
    }
}
