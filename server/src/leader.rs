//! Which `hmas serve` process runs the reconcilers. Every process serves the dashboard, `/api`
//! and `/v1`; exactly one at a time drives the hub toward the database.
//!
//! On PostgreSQL the leader holds a session-level advisory lock on a connection of its own. The
//! lock lives exactly as long as that session: a leader killed with -9 loses it as soon as the
//! kernel closes its socket, with no lease to wait out, and the others (trying every second) take
//! over. The holder checks its session every second and stops leading the moment the check fails.
//! A Kubernetes Lease would add a second system to the one every replica already depends on.
//!
//! SQLite is the single-process embedded default: the process holds an exclusive lock on a file
//! beside the database, and a second one refuses to start instead of writing beside it.
use sqlx::{AnyConnection, Connection};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// The advisory lock's key: "hmas" in ASCII.
const LOCK_KEY: i64 = 0x686d_6173;
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Whether this process leads now.
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// A process that always leads (SQLite, tests).
    pub fn sole() -> Self {
        // With its sender gone the value can no longer change: leading for good.
        Self { rx: watch::channel(true).1 }
    }
}

/// What keeps the claim alive: the lock file, or the task holding the PostgreSQL session.
pub enum Claim {
    File(std::fs::File),
    Session(tokio::task::JoinHandle<()>),
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Claim::Session(t) = self {
            t.abort();
        }
    }
}

/// Claims the database for this process (SQLite) or joins the election (PostgreSQL).
pub async fn claim(database_url: &str, data_dir: &Path) -> Result<(Leadership, Claim), String> {
    if database_url.starts_with("sqlite:") {
        return Ok((Leadership::sole(), Claim::File(lock_file(&sqlite_lock_path(database_url, data_dir))?)));
    }
    let (tx, rx) = watch::channel(false);
    let url = database_url.to_string();
    Ok((Leadership { rx }, Claim::Session(tokio::spawn(elect(url, tx)))))
}

/// Beside the database file (`hmas.db.lock`), or in the data directory for an in-memory one.
fn sqlite_lock_path(database_url: &str, data_dir: &Path) -> PathBuf {
    match crate::store::sqlite_file(database_url) {
        Some(db) => PathBuf::from(format!("{}.lock", db.display())),
        None => data_dir.join("hmas.lock"),
    }
}

/// An exclusive `flock` on `path`, with this process's id written in it for whoever finds it held.
fn lock_file(path: &Path) -> Result<std::fs::File, String> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor this function owns; it only takes an advisory lock.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
        return Err(format!(
            "database: another `hmas serve`{who} is using this SQLite database ({}); SQLite serves one replica — run several on PostgreSQL",
            path.display()
        ));
    }
    let _ = f.set_len(0).and_then(|_| f.rewind()).and_then(|_| write!(f, "{}", std::process::id()));
    Ok(f)
}

async fn elect(url: String, tx: watch::Sender<bool>) {
    loop {
        match AnyConnection::connect(&url).await {
            Ok(mut conn) => {
                hold(&mut conn, &tx).await;
                let _ = conn.close().await;
            }
            Err(e) => tracing::warn!(error = %e, "leader election: cannot reach the database"),
        }
        if *tx.borrow() {
            tracing::warn!("lost leadership: the database session ended; reconcilers stop");
            let _ = tx.send(false);
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// Tries for the lock every second while another process holds it; once held, checks the
/// session every second. Returns when the session fails.
async fn hold(conn: &mut AnyConnection, tx: &watch::Sender<bool>) {
    loop {
        if *tx.borrow() {
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_err() {
                return;
            }
        } else {
            match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut *conn)
                .await
            {
                Ok(true) => {
                    tracing::info!("leading: this replica runs the reconcilers");
                    let _ = tx.send(true);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: lock query failed");
                    return;
                }
            }
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_process_is_refused_the_sqlite_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hmas.db").display());
        let path = sqlite_lock_path(&url, dir.path());
        assert_eq!(path, dir.path().join("hmas.db.lock"));
        assert_eq!(sqlite_lock_path("sqlite::memory:", dir.path()), dir.path().join("hmas.lock"));
        let held = lock_file(&path).unwrap();
        // flock locks belong to the open file description: a second open is a second claimant.
        let e = lock_file(&path).unwrap_err();
        assert!(e.contains("another `hmas serve`") && e.contains(&std::process::id().to_string()), "{e}");
        drop(held);
        assert!(lock_file(&path).is_ok(), "free again once the holder is gone");
    }
}
