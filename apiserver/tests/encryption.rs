//! Encryption at rest (`--encryption-provider-config`): a Secret's value is nowhere in the
//! database in clear or in base64 — SQLite files, MariaDB and PostgreSQL tables — reads give it
//! back, and keys rotate the kube way (new key first, old second, rewrite every Secret).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cellfed_store::Store;
use common::{Running, TempDir, start_with};

const SECRET_VALUE: &str = "hunter2-7f3a9c-never-in-clear";
const CONFIG_VALUE: &str = "plain-config-4b1e";
const KEY1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// An EncryptionConfiguration for Secrets: secretbox with `keys` in order, then identity.
fn write_config(dir: &Path, file: &str, keys: &[(&str, &str)], identity: bool) -> PathBuf {
    let mut text = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - secretbox:\n          keys:\n",
    );
    for (name, secret) in keys {
        text.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    if identity {
        text.push_str("      - identity: {}\n");
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

async fn server(storage: &str, prefix: &str, data: &Path, config: &Path) -> Running {
    let (storage, prefix, data, config) = (
        storage.to_owned(),
        prefix.to_owned(),
        data.to_path_buf(),
        config.to_path_buf(),
    );
    start_with("encryption", move |c| {
        c.storage_url = storage;
        c.table_prefix = prefix;
        c.data_dir = data;
        c.encryption_provider_config = Some(config);
    })
    .await
}

/// Creates the Secret and a ConfigMap, and checks the Secret reads back.
async fn write_both(srv: &Running) {
    srv.kubectl_ok(
        &[
            "create",
            "secret",
            "generic",
            "db",
            &format!("--from-literal=password={SECRET_VALUE}"),
        ],
        None,
    )
    .await;
    srv.kubectl_ok(
        &[
            "create",
            "configmap",
            "settings",
            &format!("--from-literal=mode={CONFIG_VALUE}"),
        ],
        None,
    )
    .await;
    assert_eq!(read_secret(srv).await, SECRET_VALUE);
}

async fn read_secret(srv: &Running) -> String {
    let b64 = srv
        .kubectl_ok(
            &["get", "secret", "db", "-o", "jsonpath={.data.password}"],
            None,
        )
        .await;
    String::from_utf8(STANDARD.decode(b64.trim()).unwrap()).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte of the database files in `dir`.
fn sqlite_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("state.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

/// The stored bytes of the Secret, read without the transformer.
async fn stored_secret(storage: &str, prefix: &str) -> Vec<u8> {
    let raw = Store::open_with(cellfed_store::Config::new(storage).with_table_prefix(prefix))
        .await
        .unwrap();
    raw.get("/registry/core/secrets/default/db", None)
        .await
        .unwrap()
        .unwrap()
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_secrets_are_encrypted_and_keys_rotate() {
    let dir = TempDir::new("enc-sqlite");
    let storage = format!("sqlite://{}/state.db?mode=rwc", dir.0.display());
    let k1 = write_config(&dir.0, "k1.yaml", &[("k1", KEY1)], true);
    let srv = server(&storage, "cellfed", &dir.0, &k1).await;
    write_both(&srv).await;
    drop(srv);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dir.0).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the data directory is its owner's alone");
    }

    let files = sqlite_bytes(&dir.0);
    assert!(
        contains(&files, CONFIG_VALUE),
        "the scan must see unencrypted resources, or it proves nothing"
    );
    assert!(
        !contains(&files, SECRET_VALUE),
        "the Secret value is stored in clear"
    );
    assert!(
        !contains(&files, &STANDARD.encode(SECRET_VALUE)),
        "the Secret value is stored in base64"
    );
    assert!(
        stored_secret(&storage, "cellfed")
            .await
            .starts_with(b"k8s:enc:secretbox:v1:k1:")
    );

    // rotation: the new key writes, the old one still reads, then every Secret is rewritten
    let k2k1 = write_config(&dir.0, "k2k1.yaml", &[("k2", KEY2), ("k1", KEY1)], true);
    let srv = server(&storage, "cellfed", &dir.0, &k2k1).await;
    assert_eq!(read_secret(&srv).await, SECRET_VALUE);
    // (kube's guide pipes `get secrets -A -o json`, a List: client-side validation of a List
    // needs /openapi/v2 in protobuf, which this server does not serve yet, so one object here)
    let secret = srv
        .kubectl_ok(&["get", "secret", "db", "-o", "json"], None)
        .await;
    srv.kubectl_ok(&["replace", "-f", "-"], Some(&secret)).await;
    assert!(
        stored_secret(&storage, "cellfed")
            .await
            .starts_with(b"k8s:enc:secretbox:v1:k2:"),
        "an unchanged Secret read with the old key is rewritten with the new one"
    );
    drop(srv);

    // the old key and identity are gone: everything still reads
    let k2 = write_config(&dir.0, "k2.yaml", &[("k2", KEY2)], false);
    let srv = server(&storage, "cellfed", &dir.0, &k2).await;
    assert_eq!(read_secret(&srv).await, SECRET_VALUE);
    let mode = srv
        .kubectl_ok(
            &[
                "get",
                "configmap",
                "settings",
                "-o",
                "jsonpath={.data.mode}",
            ],
            None,
        )
        .await;
    assert_eq!(mode, CONFIG_VALUE);
    drop(srv);

    // a server with none of the keys refuses to read the Secret and says nothing of its value
    let k3 = write_config(
        &dir.0,
        "k3.yaml",
        &[("k3", "cXdlcnR5dWlvcGFzZGZnaGprbHp4Y3Zibm0xMjM0NTY=")],
        false,
    );
    let srv = server(&storage, "cellfed", &dir.0, &k3).await;
    let (ok, out, err) = srv
        .kubectl(&["get", "secret", "db", "-o", "json"], None)
        .await;
    assert!(!ok, "read without the key: {out}");
    assert!(
        err.contains("InternalError") || err.contains("Internal error"),
        "{err}"
    );
    assert!(!err.contains(SECRET_VALUE) && !out.contains(SECRET_VALUE));
}

/// The Secret on a server database: encrypted in the log table, readable through the server.
async fn server_database(storage: &str, tag: &str) {
    let dir = TempDir::new(tag);
    let prefix = format!("enc{}_{tag}", std::process::id());
    let k1 = write_config(&dir.0, "k1.yaml", &[("k1", KEY1)], true);
    let srv = server(storage, &prefix, &dir.0, &k1).await;
    write_both(&srv).await;
    drop(srv);

    let raw = Store::open_with(cellfed_store::Config::new(storage).with_table_prefix(&prefix))
        .await
        .unwrap();
    let log = raw.log_table();
    let values: Vec<Vec<u8>> = sqlx::query_scalar(&format!(
        "SELECT value FROM {log} WHERE value IS NOT NULL \
         UNION ALL SELECT old_value FROM {log} WHERE old_value IS NOT NULL"
    ))
    .fetch_all(raw.pool())
    .await
    .unwrap();
    let all = values.concat();
    assert!(contains(&all, CONFIG_VALUE));
    assert!(!contains(&all, SECRET_VALUE));
    assert!(!contains(&all, &STANDARD.encode(SECRET_VALUE)));
    for table in ["log", "meta", "migrations"] {
        let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {prefix}_{table}"))
            .execute(raw.pool())
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_secrets_are_encrypted() {
    let url = std::env::var("CELLFED_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    server_database(&url, "mariadb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_secrets_are_encrypted() {
    let url = std::env::var("CELLFED_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    server_database(&url, "postgres").await;
}
