use d1ns::d1_namespace;
use serde::{Deserialize, Serialize};

#[d1_namespace(name = "_cf_sessions")]
#[derive(Serialize, Deserialize)]
struct CfName;

#[d1_namespace(name = "ok", table = "sqlite_kv")]
#[derive(Serialize, Deserialize)]
struct SqliteTable;

fn main() {}
