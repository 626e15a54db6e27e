//! `POST /sql`: one statement run straight on a D1 binding, bypassing d1ns. The suite uses it to
//! see how d1ns's values are stored (`typeof(expiration)` must be `integer`, not `real`) and to
//! drop a table behind d1ns's back (K34).

use serde::Deserialize;
use serde_json::{Value, json};
use worker::Env;
use worker::wasm_bindgen::JsValue;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    #[serde(default = "default_binding")]
    binding: String,
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

fn default_binding() -> String {
    "DB".to_owned()
}

pub async fn run(env: &Env, request: SqlRequest) -> Result<Value, String> {
    let db = env.d1(&request.binding).map_err(|e| e.to_string())?;
    let params: Vec<JsValue> = request
        .params
        .iter()
        .map(|p| match p {
            Value::Null => Ok(JsValue::NULL),
            Value::Bool(b) => Ok(JsValue::from_bool(*b)),
            Value::Number(n) => n
                .as_f64()
                .map(JsValue::from_f64)
                .ok_or_else(|| format!("parameter {n} is not a number D1 can bind")),
            Value::String(s) => Ok(JsValue::from_str(s)),
            other => Err(format!("parameter {other} cannot be bound")),
        })
        .collect::<Result<_, _>>()?;
    let statement = db
        .prepare(request.sql.as_str())
        .bind(&params)
        .map_err(|e| e.to_string())?;
    let result = statement.all().await.map_err(|e| e.to_string())?;
    let rows: Vec<Value> = result.results().map_err(|e| e.to_string())?;
    let meta = result.meta().map_err(|e| e.to_string())?;
    Ok(json!({
        "rows": rows,
        "rows_read": meta.as_ref().and_then(|m| m.rows_read),
        "rows_written": meta.as_ref().and_then(|m| m.rows_written),
    }))
}
