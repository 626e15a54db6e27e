//! `d1ns`: the command-line tool of d1ns (M10), for namespaces in SQLite files.
//!
//! - `d1ns import FILE --to PATH`: writes a file in the format of `wrangler kv bulk put` (a JSON
//!   array of `{key, value, base64?, expiration?, expiration_ttl?, metadata?}`) into a namespace,
//!   as `wrangler kv bulk put` writes it into Workers KV.
//! - `d1ns move --from NAME=PATH... --to NAME=PATH...`: moves a namespace from one shard layout to
//!   another, with d1ns's mover (`D1Namespace::move_step`): resumable, safe to run while other
//!   processes use the namespace, and safe to run again.
//!
//! A shard is `NAME=PATH`; a lone `PATH` is an unsharded namespace. Both commands show a progress
//! bar and end with a summary.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, Subcommand};
use d1ns::{D1Namespace, D1NamespaceBuilder, PreviousHome, SqliteBackend};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

#[derive(Parser)]
#[command(
    name = "d1ns",
    version,
    about = "Moves and imports d1ns namespaces in SQLite files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which namespace: its name and table, as `D1Namespace::builder` takes them.
#[derive(clap::Args)]
struct Names {
    /// The namespace name (default: the default namespace "").
    #[arg(long, default_value = "")]
    namespace: String,
    /// The table (default: `{namespace}_kv_entries`).
    #[arg(long)]
    table: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a `wrangler kv bulk put` JSON file into a namespace.
    Import {
        /// The JSON file: an array of {key, value, base64?, expiration?, expiration_ttl?, metadata?}.
        file: PathBuf,
        /// The namespace's databases: `NAME=PATH` per shard, or one `PATH`.
        #[arg(long = "to", required = true, value_name = "NAME=PATH")]
        to: Vec<String>,
        #[command(flatten)]
        names: Names,
    },
    /// Moves a namespace from one shard layout to another (resharding).
    Move {
        /// The layout the keys are in now: `NAME=PATH` per shard, or one `PATH`.
        #[arg(long = "from", required = true, value_name = "NAME=PATH")]
        from: Vec<String>,
        /// The layout to move them to. A database in both layouts must have the same name in both.
        #[arg(long = "to", required = true, value_name = "NAME=PATH")]
        to: Vec<String>,
        /// Keys per step (1 to 1000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1000))]
        step: u64,
        /// Where to resume: a cursor a failed run printed. Optional: running again from the
        /// start is always safe, only slower.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        names: Names,
    },
}

/// One entry of a `wrangler kv bulk put` file. Other fields are ignored, with a warning, as
/// wrangler does.
#[derive(Deserialize)]
struct BulkEntry {
    key: String,
    value: String,
    #[serde(default)]
    base64: bool,
    expiration: Option<u64>,
    expiration_ttl: Option<u64>,
    metadata: Option<serde_json::Value>,
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, serde_json::Value>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Import { file, to, names } => import(&file, &to, &names).await,
            Command::Move {
                from,
                to,
                step,
                cursor,
                names,
            } => move_layout(&from, &to, step, cursor, &names).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Whether a database is opened to read what it holds (`--from`: it must exist) or to write
/// into (`--to`: created when missing).
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Existing,
    OrCreate,
}

/// Refuses a path that names no file that outlives the tool: empty (an unset `$VAR`),
/// `:memory:`, or a URI, each of which SQLite would take for a database gone at exit.
fn file_path<'p>(path: &'p str, flag: &str, spec: &str) -> Result<&'p str, String> {
    let vanishing = if path.is_empty() {
        Some("an empty path")
    } else if path == ":memory:" {
        Some(":memory:")
    } else if path.starts_with("file:") {
        Some("a URI")
    } else {
        None
    };
    match vanishing {
        Some(what) => Err(format!(
            "--{flag} {spec:?}: {what} is not a database file (SQLite would take it for a \
             database that vanishes when the tool exits); give the path of a file"
        )),
        None => Ok(path),
    }
}

/// The shards of `--to`/`--from` as given: `NAME=PATH` each, or one lone `PATH` (unnamed),
/// each path one of a file.
fn specs<'s>(specs: &'s [String], flag: &str) -> Result<Vec<(&'s str, &'s str)>, String> {
    let lone = matches!(specs, [spec] if !spec.contains('='));
    specs
        .iter()
        .map(|spec| {
            let (name, path) = match spec.split_once('=') {
                Some(named) => named,
                None if lone => ("", spec.as_str()),
                None => {
                    return Err(format!(
                        "--{flag} {spec:?}: with several databases, give each as NAME=PATH"
                    ));
                }
            };
            Ok((name, file_path(path, flag, spec)?))
        })
        .collect()
}

/// The shards of `--to`/`--from`, opened.
fn shards(
    specs_given: &[String],
    flag: &str,
    open: Open,
) -> Result<Vec<(String, SqliteBackend)>, String> {
    specs(specs_given, flag)?
        .into_iter()
        .map(|(name, path)| {
            let backend = match open {
                Open::Existing => SqliteBackend::open_existing(path),
                Open::OrCreate => SqliteBackend::open(path),
            }
            .map_err(|e| match name {
                "" => format!("--{flag} {path:?}: cannot open it: {e}"),
                name => format!("--{flag} {name}={path}: cannot open {path:?}: {e}"),
            })?;
            Ok((name.to_owned(), backend))
        })
        .collect()
}

/// The builder of a namespace over `shards` with `names`.
fn builder(
    shards: Vec<(String, SqliteBackend)>,
    names: &Names,
) -> D1NamespaceBuilder<SqliteBackend> {
    let mut builder = match <[_; 1]>::try_from(shards) {
        Ok([(name, backend)]) if name.is_empty() => D1Namespace::builder(backend),
        Ok(one) => D1Namespace::sharded(one),
        Err(shards) => D1Namespace::sharded(shards),
    };
    builder = builder.namespace(names.namespace.clone());
    if let Some(table) = &names.table {
        builder = builder.table(table.clone());
    }
    builder
}

/// The live keys a namespace holds (every page of its list).
async fn live_keys(kv: &D1Namespace<SqliteBackend>) -> Result<u64, String> {
    let mut total = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let mut list = kv.list().limit(1000);
        if let Some(cursor) = cursor.take() {
            list = list.cursor(cursor);
        }
        let page = list.execute().await.map_err(|e| e.to_string())?;
        total += page.keys.len() as u64;
        match page.cursor {
            Some(next) if !page.list_complete => cursor = Some(next),
            _ => return Ok(total),
        }
    }
}

fn bar(length: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    let template = format!(
        "{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left) {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn import(file: &PathBuf, to: &[String], names: &Names) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file:?}: {e}"))?;
    let entries: Vec<BulkEntry> = serde_json::from_str(&text).map_err(|e| {
        format!("{file:?} is not a `wrangler kv bulk put` file (a JSON array of {{key, value, base64?, expiration?, expiration_ttl?, metadata?}}): {e}")
    })?;
    let kv = builder(shards(to, "to", Open::OrCreate)?, names)
        .build()
        .map_err(|e| e.to_string())?;
    let ignored: std::collections::BTreeSet<&str> = entries
        .iter()
        .flat_map(|entry| entry.other.keys().map(String::as_str))
        .collect();
    if !ignored.is_empty() {
        eprintln!("warning: ignoring fields wrangler does not know either: {ignored:?}");
    }
    let progress = bar(entries.len() as u64, "keys");
    let mut bytes = 0usize;
    for (index, entry) in entries.iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| {
            format!(
                "entry {index} (key {:?}): {e}\nthe {index} entries before it are written; fix it and run again (puts overwrite)",
                entry.key
            )
        };
        let mut put = if entry.base64 {
            let value = STANDARD
                .decode(&entry.value)
                .map_err(|e| at(&format!("value is not base64: {e}")))?;
            bytes += value.len();
            kv.put_bytes(&entry.key, &value).map_err(|e| at(&e))?
        } else {
            bytes += entry.value.len();
            kv.put(&entry.key, entry.value.as_str())
                .map_err(|e| at(&e))?
        };
        if let Some(expiration) = entry.expiration {
            put = put.expiration(expiration);
        }
        if let Some(ttl) = entry.expiration_ttl {
            put = put.expiration_ttl(ttl);
        }
        if let Some(metadata) = &entry.metadata {
            put = put.metadata(metadata).map_err(|e| at(&e))?;
        }
        put.execute().await.map_err(|e| at(&e))?;
        progress.inc(1);
    }
    progress.finish();
    println!(
        "imported {} keys ({bytes} bytes of values) into namespace {:?}, table {:?}",
        progress.position(),
        kv.namespace(),
        kv.table()
    );
    Ok(())
}

async fn move_layout(
    from: &[String],
    to: &[String],
    step: u64,
    cursor: Option<String>,
    names: &Names,
) -> Result<(), String> {
    // Every argument is checked before any database is opened.
    specs(from, "from")?;
    specs(to, "to")?;
    // How many keys there are to look at: a list of the old layout, for the progress bar. It
    // creates nothing there: a mistyped --namespace or --table is an error, not a new table.
    let old = builder(shards(from, "from", Open::Existing)?, names)
        .auto_create(false)
        .build()
        .map_err(|e| e.to_string())?;
    let missing = |e: d1ns::Error| match &e {
        d1ns::Error::Database(db) if db.is_missing_table() => format!(
            "--from has no table {:?} for namespace {:?} ({e}): check --namespace and --table; \
             the tool creates nothing in --from",
            old.table(),
            old.namespace()
        ),
        _ => e.to_string(),
    };
    let mut total = 0u64;
    let mut page_cursor = cursor.clone();
    loop {
        let mut list = old.list().limit(1000);
        if let Some(cursor) = page_cursor {
            list = list.cursor(cursor);
        }
        let page = list.execute().await.map_err(missing)?;
        total += page.keys.len() as u64;
        if page.list_complete {
            break;
        }
        page_cursor = page.cursor;
    }
    let previous = PreviousHome::shards(shards(from, "from", Open::Existing)?);
    let kv = builder(shards(to, "to", Open::OrCreate)?, names)
        .previous_home(previous)
        .build()
        .map_err(|e| e.to_string())?;
    let progress = bar(total, "keys");
    let mut cursor = cursor;
    let mut sum = d1ns::MoveProgress::default();
    loop {
        let done = kv
            .move_step(cursor.clone(), step)
            .await
            .map_err(|e| match &cursor {
                Some(cursor) => format!(
                    "{e}\nresume with --cursor {cursor:?} (or run again from the start: it is always safe)"
                ),
                None => format!("{e}\nrun again: the mover is safe to run again"),
            })?;
        sum.add(&done);
        progress.inc(done.scanned);
        progress.set_message(format!("{} copied, {} in place", sum.copied, sum.in_place));
        if done.done {
            break;
        }
        cursor = done.cursor;
    }
    progress.finish();
    println!(
        "looked at {} keys: {} copied, {} already there, {} already home, {} old copies removed, {} written in the old layout after their copy (left there: stop its writers; the next run removes them)",
        sum.scanned, sum.copied, sum.skipped, sum.in_place, sum.removed, sum.changed
    );
    // "done" only once the old layout is seen to hold nothing live of this namespace.
    let left = live_keys(&old).await?;
    if left == 0 {
        println!(
            "done: drop the previous layout from your configuration; databases only in the old layout hold nothing live of this namespace"
        );
    } else {
        println!(
            "not done: the old layout still holds {left} live keys of this namespace (written there after their copy, or by a writer still on it); stop its writers and run again"
        );
    }
    Ok(())
}
