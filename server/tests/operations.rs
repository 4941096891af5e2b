//! The operator's offline commands against a real installation: a backup taken while H-MAS
//! runs restores a deleted cluster; rotating the master key keeps every credential usable and
//! refuses (changing nothing) when the current key is wrong.
mod common;

use common::fleet::register;
use common::{call, login, Hmas};
use serde_json::json;
use std::path::Path;
use std::process::Command;

const PW: &str = "admin-password-1";

fn hmas(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, Vec<u8>) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hmas"));
    c.args(args).arg("--data-dir").arg(data_dir).env_remove("HMAS_DATABASE_URL").env_remove("HMAS_MASTER_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned(), o.stdout)
}

async fn cluster_names(c: &reqwest::Client, h: &Hmas) -> Vec<(String, String)> {
    let (s, list) = call(c, h, "/api/clusters/list", json!({})).await;
    assert_eq!(s, 200);
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_string(), v["phase"].as_str().unwrap().to_string()))
        .collect()
}

/// Whether H-MAS can still use the stored credentials: releasing a cluster cleans its RBAC on
/// the member with them, and says what it could not remove.
async fn credentials_work(c: &reqwest::Client, h: &Hmas, name: &str) {
    let (s, v) = call(c, h, "/api/clusters/release", json!({"name": name})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["leftovers"], json!([]), "the member was reached with the stored credentials: {v}");
}

#[tokio::test]
async fn backup_restore_and_key_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backup = tmp.path().join("hmas-backup.db");
    let streamed = tmp.path().join("streamed.db");
    {
        let mut h = Hmas::start_in(&data, Some(PW));
        let admin = login(&h, "admin", PW).await;
        register(&admin, &h, "gpu-general", "b").await;
        register(&admin, &h, "edge-cpu", "b").await;
        // While it runs: one backup to a file, one through standard output.
        let (ok, err, _) = hmas(&data, &["backup", "--to", backup.to_str().unwrap()], &[]);
        assert!(ok, "{err}");
        assert!(err.contains("backup written to"), "{err}");
        let (ok, err, bytes) = hmas(&data, &["backup", "--to", "-"], &[]);
        assert!(ok, "{err}");
        assert!(bytes.starts_with(b"SQLite format 3\0"), "a SQLite file on stdout");
        std::fs::write(&streamed, &bytes).unwrap();
        let (ok, err, _) = hmas(&data, &["backup", "--to", backup.to_str().unwrap()], &[]);
        assert!(!ok && err.contains("exists"), "never overwrites: {err}");
        let (s, v) = call(&admin, &h, "/api/clusters/release", json!({"name": "edge-cpu"})).await;
        assert_eq!(s, 200, "{v}");
        assert!(h.terminate());
    }
    assert!(std::fs::read_dir(&data).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("partial")));

    // Restore: the file in place of the database, then start.
    std::fs::copy(&backup, data.join("hmas.db")).unwrap();
    for side in ["hmas.db-wal", "hmas.db-shm"] {
        let _ = std::fs::remove_file(data.join(side));
    }
    let key_before = std::fs::read_to_string(data.join("master.key")).unwrap();
    {
        let mut h = Hmas::start_in(&data, Some(PW));
        let admin = login(&h, "admin", PW).await;
        let names: Vec<String> = cluster_names(&admin, &h).await.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["edge-cpu", "gpu-general"], "the released cluster is back from the backup");
        assert!(h.terminate());
    }

    // Rotation with the key file: a new key, every credential re-sealed, still usable.
    let (ok, err, _) = hmas(&data, &["rotate-master-key"], &[]);
    assert!(ok, "{err}");
    assert!(err.contains("2 cluster credential(s) re-encrypted"), "{err}");
    let key_after = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert_ne!(key_before.trim(), key_after.trim());
    assert!(!data.join("master.key.new").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(data.join("master.key")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    {
        let mut h = Hmas::start_in(&data, Some(PW));
        let admin = login(&h, "admin", PW).await;
        credentials_work(&admin, &h, "edge-cpu").await;
        assert!(h.terminate());
    }

    // With the key in the environment: a wrong current key refuses and changes nothing; the
    // right one moves to the given new key.
    let new_key = tmp.path().join("new.key");
    std::fs::write(&new_key, "ab".repeat(32)).unwrap();
    let wrong = "cd".repeat(32);
    let (ok, err, _) = hmas(
        &data,
        &["rotate-master-key", "--new-key-file", new_key.to_str().unwrap()],
        &[("HMAS_MASTER_KEY", &wrong)],
    );
    assert!(!ok && err.contains("cannot decrypt") && err.contains("nothing was changed"), "{err}");
    let (ok, err, _) = hmas(&data, &["rotate-master-key"], &[("HMAS_MASTER_KEY", key_after.trim())]);
    assert!(!ok && err.contains("new-key-file"), "{err}");
    let (ok, err, _) = hmas(
        &data,
        &["rotate-master-key", "--new-key-file", new_key.to_str().unwrap()],
        &[("HMAS_MASTER_KEY", key_after.trim())],
    );
    assert!(ok, "{err}");
    assert!(err.contains("1 cluster credential(s) re-encrypted") && err.contains("set HMAS_MASTER_KEY"), "{err}");
    let mut h = common::Hmas::start_with_env(&data, Some(PW), &[("HMAS_MASTER_KEY", &"ab".repeat(32))]);
    let admin = login(&h, "admin", PW).await;
    credentials_work(&admin, &h, "gpu-general").await;
    assert!(h.terminate());
    // The streamed backup is a database too.
    let (ok, err, _) = hmas(
        &tmp.path().join("other"),
        &["migrate"],
        &[("HMAS_DATABASE_URL", &format!("sqlite://{}", streamed.display()))],
    );
    assert!(ok, "{err}");
}
