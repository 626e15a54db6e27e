//! The baseline for the size d1ns adds to a Worker: a tiny key-value Worker on D1 (`PUT /key`
//! stores the body, `GET /key` reads it), its D1 work written by hand, or with `--features d1ns`
//! done through d1ns. Built exactly like the suite's Worker (scripts/workerd-e2e.sh).

use worker::{Context, Env, Method, Request, Response, Result, event};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let db = env.d1("DB")?;
    let key = req.path();
    if req.method() == Method::Put {
        let value = req.text().await?;
        store::put(db, &key, &value).await?;
        return Response::ok("stored");
    }
    match store::get(db, &key).await? {
        Some(value) => Response::ok(value),
        None => Response::error("not found", 404),
    }
}

#[cfg(not(feature = "d1ns"))]
mod store {
    use serde::Deserialize;
    use worker::{D1Database, Result};

    const CREATE: &str =
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

    pub async fn put(db: worker::D1Database, key: &str, value: &str) -> Result<()> {
        let upsert = db
            .prepare("INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(&[key.into(), value.into()])?;
        db.batch(vec![db.prepare(CREATE), upsert]).await?;
        Ok(())
    }

    pub async fn get(db: D1Database, key: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct Row {
            value: String,
        }
        let select = db
            .prepare("SELECT value FROM kv WHERE key = ?1")
            .bind(&[key.into()])?;
        let results = db.batch(vec![db.prepare(CREATE), select]).await?;
        let rows: Vec<Row> = match results.get(1) {
            Some(result) => result.results()?,
            None => Vec::new(),
        };
        Ok(rows.into_iter().next().map(|row| row.value))
    }
}

#[cfg(feature = "d1ns")]
mod store {
    use worker::{D1Database, Result};

    pub async fn put(db: D1Database, key: &str, value: &str) -> Result<()> {
        d1ns::D1Namespace::new(db).put(key, value)?.await?;
        Ok(())
    }

    pub async fn get(db: D1Database, key: &str) -> Result<Option<String>> {
        Ok(d1ns::D1Namespace::new(db).get(key).text().await?)
    }
}
