//! Offline operations on an installation: backups and master key rotation. Each is one CLI
//! command; the steps around them are in docs/operations.md.
use crate::config::Settings;
use crate::secrets::{write_private, Sealer};
use std::io::Write;
use std::path::Path;

/// Writes the backup to `to`, or to standard output for `-` (through a file in the data
/// directory, removed afterwards: SQLite writes a backup only to a file).
pub async fn backup(settings: &Settings, to: &Path) -> Result<String, String> {
    let store = crate::serve::open_store(settings).await?;
    if to != Path::new("-") {
        store.backup_to(to).await.map_err(|e| e.to_string())?;
        let size = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
        return Ok(format!("backup written to {} ({size} bytes)", to.display()));
    }
    let tmp = settings.data_dir.join(format!("backup-{}.db.partial", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = async {
        store.backup_to(&tmp).await.map_err(|e| e.to_string())?;
        // Streamed: a database can be larger than the memory a pod is given.
        let mut file = std::fs::File::open(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let mut out = std::io::stdout().lock();
        let n = std::io::copy(&mut file, &mut out).map_err(|e| format!("stdout: {e}"))?;
        out.flush().map_err(|e| format!("stdout: {e}"))?;
        Ok::<_, String>(format!("backup written to standard output ({n} bytes)"))
    }
    .await;
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Re-seals every credential with the new key, all in one transaction. The key file (when the
/// key comes from one) is replaced only after the database committed; `master.key.new` holds
/// the new key from before the commit, so a crash in between loses nothing.
pub async fn rotate_master_key(settings: &Settings, new_key_file: Option<&Path>) -> Result<String, String> {
    let env_key = std::env::var("HMAS_MASTER_KEY").ok().filter(|k| !k.is_empty());
    let key_file = settings.data_dir.join("master.key");
    if env_key.is_none() && !key_file.exists() {
        return Err(format!("no current key: neither HMAS_MASTER_KEY nor {} exists", key_file.display()));
    }
    if env_key.is_some() && new_key_file.is_none() {
        return Err("new-key-file: required when the key comes from HMAS_MASTER_KEY (the new key must go into \
it, so it has to exist outside H-MAS first)"
            .into());
    }
    let old = Sealer::load(env_key.as_deref(), &settings.data_dir)?;
    let (new, new_text) = match new_key_file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("new-key-file {}: {e}", p.display()))?;
            (Sealer::from_hex(&text).map_err(|e| format!("new-key-file: {e}"))?, text.trim().to_string())
        }
        None => Sealer::generate(),
    };
    let staged = settings.data_dir.join("master.key.new");
    if env_key.is_none() {
        let _ = std::fs::remove_file(&staged);
        write_private(&staged, &new_text)?;
    }
    let store = crate::serve::open_store(settings).await?;
    let count = store
        .reseal_credentials(|_, sealed| old.open(sealed).map(|plain| new.seal(&plain)))
        .await
        .map_err(|e| format!("{e}; nothing was changed"));
    let count = match count {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    if env_key.is_none() {
        std::fs::rename(&staged, &key_file).map_err(|e| {
            format!(
                "credentials re-encrypted, but {} could not replace the key file: {e}; move it there by hand",
                staged.display()
            )
        })?;
        Ok(format!("{count} cluster credential(s) re-encrypted; {} holds the new key", key_file.display()))
    } else {
        Ok(format!(
            "{count} cluster credential(s) re-encrypted; set HMAS_MASTER_KEY to the new key before starting H-MAS"
        ))
    }
}
