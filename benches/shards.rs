//! S9: throughput grows with shards, because writes to different shards never wait for each
//! other (natively: one SQLite file, one connection, per shard).
//!
//! ```sh
//! cargo bench --bench shards    # prints a Markdown table of puts per second
//! D1NS_BENCH_SMOKE=1 cargo bench --bench shards   # CI: one short round, figures meaningless
//! ```
//!
//! The same writers put small values over 1, 2 and 4 shard files (WAL, SQLite's default
//! `synchronous = FULL`, so each put is a durable commit): each writer is a thread running its
//! own current-thread tokio runtime, as many Worker-like request handlers would. Every round
//! times each layout in turn, so all layouts see the same machine state; the table gives the
//! median over the rounds of each layout's puts per second, and its ratio to one shard.

use std::path::{Path, PathBuf};
use std::time::Instant;

use d1ns::{D1Namespace, SqliteBackend};

/// Writer threads, all putting at once.
const WRITERS: usize = 8;
/// Puts per writer per round and layout, and rounds, or their smoke-mode sizes.
fn puts() -> usize {
    if smoke() { 10 } else { 500 }
}

fn rounds() -> usize {
    if smoke() { 1 } else { 5 }
}

fn smoke() -> bool {
    std::env::var_os("D1NS_BENCH_SMOKE").is_some()
}
/// Shard files per layout.
const LAYOUTS: [usize; 3] = [1, 2, 4];
/// A small value, as a session or a counter would store.
const VALUE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                     0123456789abcdef0123456789abcdef";

fn main() {
    let dir = std::env::temp_dir().join(format!("d1ns-bench-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let layouts: Vec<(usize, D1Namespace<SqliteBackend>)> = LAYOUTS
        .iter()
        .map(|&shards| (shards, layout(&dir, shards)))
        .collect();
    let started = Instant::now();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
    for round in 0..rounds() {
        for ((_, kv), rates) in layouts.iter().zip(&mut rates) {
            rates.push(puts_per_second(kv, round));
        }
    }
    println!(
        "{WRITERS} writer threads x {} puts of {} bytes per round, {} rounds, \
         {:.1} s; {} cores",
        puts(),
        VALUE.len(),
        rounds(),
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!();
    println!("| shard files | puts/s (median) | min - max | puts/s / 1 shard |");
    println!("|---:|---:|---:|---:|");
    let medians: Vec<f64> = rates.iter_mut().map(|rates| median(rates)).collect();
    for (((shards, _), rates), median) in layouts.iter().zip(&rates).zip(&medians) {
        println!(
            "| {shards} | {median:.0} | {:.0} - {:.0} | {:.2} |",
            rates[0],
            rates[rates.len() - 1],
            median / medians[0]
        );
    }
    drop(layouts);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A namespace over `shards` fresh files named DB1.., with its tables made.
fn layout(dir: &Path, shards: usize) -> D1Namespace<SqliteBackend> {
    let dir = dir.join(format!("{shards}-shards"));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let files = (1..=shards).map(|i| {
        let name = format!("DB{i}");
        let path: PathBuf = dir.join(format!("{name}.sqlite"));
        (name, SqliteBackend::open(path).expect("database file"))
    });
    let kv = D1Namespace::sharded(files).build().expect("shard names");
    runtime().block_on(async {
        // A list asks every shard, so every table exists before timing.
        kv.list().limit(1).await.expect("list");
    });
    kv
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Every writer puts its keys at once; the puts per second of the whole.
fn puts_per_second(kv: &D1Namespace<SqliteBackend>, round: usize) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let kv = kv.clone();
            scope.spawn(move || {
                runtime().block_on(async {
                    for i in 0..puts() {
                        let key = format!("session:{round}:{writer}:{i:06}");
                        kv.put(&key, VALUE).expect("key").await.expect("put");
                    }
                });
            });
        }
    });
    (WRITERS * puts()) as f64 / start.elapsed().as_secs_f64()
}

/// Sorts `rates` and returns their median.
fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
