//! The `d1ns` tool as a user runs it (M10): an import of a `wrangler kv bulk put` file, then a
//! move to another shard layout, checked through the library.

use std::path::{Path, PathBuf};
use std::process::Command;

use d1ns::{D1Namespace, SqliteBackend};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("d1ns-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `wrangler kv bulk put` file `bulk.json` of `count` small keys, k00, k01, ...
fn write_bulk(dir: &TempDir, count: usize) {
    let entries: Vec<_> = (0..count)
        .map(|i| serde_json::json!({"key": format!("k{i:02}"), "value": "v"}))
        .collect();
    let text = serde_json::to_string(&entries).unwrap();
    std::fs::write(dir.0.join("bulk.json"), text).unwrap();
}

fn d1ns(args: &[&str], dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_d1ns"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test]
async fn import_then_move_keeps_every_value_metadata_and_expiration() {
    let dir = TempDir::new("move");
    let far = 4_000_000_000u64;
    let mut entries = Vec::new();
    for i in 0..300 {
        entries.push(serde_json::json!({"key": format!("k{i:03}"), "value": format!("v{i}"), "metadata": {"i": i}}));
    }
    entries.push(
        serde_json::json!({"key": "bin", "value": "AP8B", "base64": true, "expiration": far}),
    );
    entries.push(serde_json::json!({"key": "ttl", "value": "t", "expiration_ttl": 3600}));
    std::fs::write(
        dir.0.join("bulk.json"),
        serde_json::to_string(&entries).unwrap(),
    )
    .unwrap();

    let (ok, text) = d1ns(
        &[
            "import",
            "bulk.json",
            "--to",
            "a.db",
            "--namespace",
            "users",
        ],
        &dir.0,
    );
    assert!(ok, "{text}");
    assert!(text.contains("imported 302 keys"), "{text}");

    let (ok, text) = d1ns(
        &[
            "move",
            "--from",
            "a=a.db",
            "--to",
            "a=a.db",
            "--to",
            "b=b.db",
            "--to",
            "c=c.db",
            "--namespace",
            "users",
            "--step",
            "37",
        ],
        &dir.0,
    );
    assert!(ok, "{text}");
    assert!(text.contains("looked at 302 keys"), "{text}");
    assert!(
        text.contains("0 written in the old layout after their copy"),
        "{text}"
    );

    let kv = D1Namespace::sharded([
        ("a", SqliteBackend::open(dir.path("a.db")).unwrap()),
        ("b", SqliteBackend::open(dir.path("b.db")).unwrap()),
        ("c", SqliteBackend::open(dir.path("c.db")).unwrap()),
    ])
    .namespace("users")
    .build()
    .unwrap();
    for i in 0..300 {
        let key = format!("k{i:03}");
        let (value, meta) = kv
            .get(&key)
            .text_with_metadata::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!(value, Some(format!("v{i}")), "{key}");
        assert_eq!(meta, Some(serde_json::json!({"i": i})), "{key}");
    }
    let bin = kv
        .get("bin")
        .bytes_entry::<serde_json::Value>()
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bin.value, bin.expiration), (vec![0, 255, 1], Some(far)));
    assert!(
        kv.get("ttl")
            .text_entry::<()>()
            .await
            .unwrap()
            .unwrap()
            .expiration
            .is_some()
    );
    // Every key on its own shard, none left elsewhere.
    for (index, (name, backend)) in kv.shards().enumerate() {
        let alone = D1Namespace::builder(backend)
            .namespace("users")
            .build()
            .unwrap();
        for key in alone.list().execute().await.unwrap().keys {
            assert_eq!(kv.shard_of(&key.name), index, "{} on {name}", key.name);
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = TempDir::new("errors");
    std::fs::write(dir.0.join("bad.json"), r#"[{"key": "k"}]"#).unwrap();
    let (ok, text) = d1ns(&["import", "bad.json", "--to", "a.db"], &dir.0);
    assert!(!ok);
    assert!(text.contains("kv bulk put"), "{text}");
    std::fs::write(
        dir.0.join("b64.json"),
        r#"[{"key": "k", "value": "!!", "base64": true}]"#,
    )
    .unwrap();
    let (ok, text) = d1ns(&["import", "b64.json", "--to", "a.db"], &dir.0);
    assert!(!ok);
    assert!(
        text.contains("entry 0 (key \"k\")") && text.contains("base64"),
        "{text}"
    );
    let (ok, text) = d1ns(
        &["move", "--from", "a.db", "--to", "x.db", "--to", "y.db"],
        &dir.0,
    );
    assert!(!ok);
    assert!(text.contains("NAME=PATH"), "{text}");
}

#[test]
fn paths_that_vanish_at_exit_are_refused_and_from_never_creates_a_file() {
    let dir = TempDir::new("paths");
    std::fs::write(dir.0.join("bulk.json"), r#"[{"key": "k", "value": "v"}]"#).unwrap();
    let (ok, text) = d1ns(&["import", "bulk.json", "--to", "a.db"], &dir.0);
    assert!(ok, "{text}");
    for (args, what) in [
        (vec!["import", "bulk.json", "--to", ""], "an empty path"),
        (vec!["import", "bulk.json", "--to", ":memory:"], ":memory:"),
        (
            vec!["move", "--from", "a.db", "--to", "b="],
            "an empty path",
        ),
        (
            vec!["move", "--from", "a.db", "--to", "b=:memory:"],
            ":memory:",
        ),
        (
            vec!["move", "--from", "a.db", "--to", "b=file:b.db?mode=memory"],
            "a URI",
        ),
    ] {
        let (ok, text) = d1ns(&args, &dir.0);
        assert!(!ok, "{args:?} succeeded: {text}");
        assert!(
            text.contains(what) && text.contains("give the path of a file"),
            "{args:?}: {text}"
        );
    }
    // The source is untouched by the refused moves.
    let (ok, text) = d1ns(&["move", "--from", "typo.db", "--to", "c.db"], &dir.0);
    assert!(!ok, "a move from a missing file succeeded: {text}");
    assert!(
        text.contains("typo.db") && text.contains("no database file"),
        "{text}"
    );
    assert!(
        !dir.0.join("typo.db").exists(),
        "--from created the file it names"
    );
    // A mistyped --namespace creates no table in the source.
    let (ok, text) = d1ns(
        &[
            "move",
            "--from",
            "a.db",
            "--to",
            "d.db",
            "--namespace",
            "typo",
        ],
        &dir.0,
    );
    assert!(
        !ok,
        "a move of a namespace the source has not succeeded: {text}"
    );
    assert!(
        text.contains("no table \"typo_kv_entries\" for namespace \"typo\""),
        "{text}"
    );
    let conn = d1ns::rusqlite::Connection::open(dir.0.join("a.db")).unwrap();
    let typo: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'typo%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(typo, 0, "a table was created in --from");
    assert!(
        !dir.0.join("c.db").exists(),
        "--to was created though --from failed"
    );
}

#[tokio::test]
async fn done_is_said_only_when_the_old_layout_holds_nothing_live() {
    let dir = TempDir::new("done");
    write_bulk(&dir, 50);
    assert!(d1ns(&["import", "bulk.json", "--to", "old.db"], &dir.0).0);
    // A cursor from elsewhere (here: after the 49th key) leaves keys behind: not "done".
    let old = D1Namespace::new(SqliteBackend::open(dir.path("old.db")).unwrap());
    let cursor = old.list().limit(49).await.unwrap().cursor.unwrap();
    let args = [
        "move", "--from", "old.db", "--to", "a=a.db", "--to", "b=b.db",
    ];
    let (ok, text) = d1ns(&[&args[..], &["--cursor", &cursor]].concat(), &dir.0);
    assert!(ok, "{text}");
    assert!(
        text.contains("looked at 1 keys")
            && text.contains("not done: the old layout still holds 49 live keys"),
        "{text}"
    );
    // Run again from the start: the 49 keys left are moved, and now it is done.
    let (ok, text) = d1ns(&args, &dir.0);
    assert!(ok, "{text}");
    assert!(
        text.contains("looked at 49 keys") && text.contains("done: drop"),
        "{text}"
    );
}

#[tokio::test]
async fn a_layout_naming_one_database_twice_is_refused_and_nothing_is_removed() {
    let dir = TempDir::new("twice");
    write_bulk(&dir, 40);
    assert!(d1ns(&["import", "bulk.json", "--to", "d.db"], &dir.0).0);
    for args in [
        vec!["move", "--from", "d.db", "--to", "x=d.db", "--to", "y=d.db"],
        vec![
            "move", "--from", "a=d.db", "--from", "b=d.db", "--to", "a=d.db",
        ],
        vec![
            "move", "--from", "d.db", "--to", "x=d.db", "--to", "y=./d.db",
        ],
    ] {
        let (ok, text) = d1ns(&args, &dir.0);
        assert!(!ok, "{args:?} succeeded: {text}");
        assert!(text.contains("are the same database"), "{args:?}: {text}");
    }
    let kv = D1Namespace::new(SqliteBackend::open(dir.path("d.db")).unwrap());
    assert_eq!(
        kv.list().await.unwrap().keys.len(),
        40,
        "every key is still there"
    );
}
