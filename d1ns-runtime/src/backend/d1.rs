//! The Workers backend: Cloudflare D1 through `worker::D1Database` (workers-rs).
//!
//! What D1 does to values, seen through workers-rs, shapes this file: every JavaScript number binds
//! as REAL (d1ns's integers are milliseconds, exact in a double), BLOBs come back as arrays of
//! numbers, and rows come back as objects whose keys keep the order of the selected columns.

use std::fmt;
use std::future::Future;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use worker::js_sys::{self, Reflect, Uint8Array};
use worker::send::SendFuture;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{D1Database, D1PreparedStatement};

use super::{Backend, QueryResult, Statement, Value, next_database_id};
use crate::error::DatabaseError;

/// The property d1ns stamps on a `D1Database` object to tell bindings apart (K34).
const DATABASE_ID_PROPERTY: &str = "__d1ns_database_id";

#[cfg_attr(docsrs, doc(cfg(feature = "d1")))]
impl Backend for D1Database {
    fn batch(
        &self,
        statements: &[Statement<'_>],
    ) -> impl Future<Output = Result<Vec<QueryResult>, DatabaseError>> + Send {
        let prepared: Result<Vec<D1PreparedStatement>, DatabaseError> = statements
            .iter()
            .map(|statement| prepare(self, statement))
            .collect();
        // A Worker runs on one thread, so the JS promise never crosses threads: SendFuture only
        // states that to the type system.
        SendFuture::new(async move {
            let results = D1Database::batch(self, prepared?)
                .await
                .map_err(database_error)?;
            results.iter().map(query_result).collect()
        })
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
}

fn prepare(
    db: &D1Database,
    statement: &Statement<'_>,
) -> Result<D1PreparedStatement, DatabaseError> {
    let params: Vec<JsValue> = statement.params.iter().map(to_js).collect();
    db.prepare(statement.sql)
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

/// A row object, read as its values in column order.
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
                let mut values = Vec::new();
                while let Some((_, Cell(value))) = map.next_entry::<de::IgnoredAny, Cell>()? {
                    values.push(value);
                }
                Ok(Row(values))
            }
        }
        deserializer.deserialize_map(RowVisitor)
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

    #[test]
    fn rows_keep_the_column_order_of_the_statement() {
        let got = row(r#"{"-1": -1, "value": "v", "metadata": null, "expiration": 5.0}"#);
        assert_eq!(
            got,
            [
                Value::Integer(-1),
                Value::Text("v".into()),
                Value::Null,
                Value::Real(5.0)
            ]
        );
        let got = row(r#"{"z": 1, "a": 2}"#);
        assert_eq!(got, [Value::Integer(1), Value::Integer(2)]);
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
