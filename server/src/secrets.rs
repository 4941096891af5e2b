//! Encryption at rest for credentials (cluster tokens, client keys). The master key comes from
//! `HMAS_MASTER_KEY` (64 hex characters) or a key file in the data directory, created with mode
//! 0600 on first start. Values are `v1:` + base64(nonce ‖ ChaCha20-Poly1305 ciphertext).
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, Nonce};
use std::path::Path;
use std::sync::Arc;

#[derive(Clone)]
pub struct Sealer {
    cipher: Arc<ChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

const PREFIX: &str = "v1:";

impl Sealer {
    pub fn from_key(key: &[u8; 32]) -> Sealer {
        Sealer { cipher: Arc::new(ChaCha20Poly1305::new(Key::from_slice(key))) }
    }

    /// The key from `HMAS_MASTER_KEY`, else from `<data_dir>/master.key`, else a new one written there.
    pub fn load(env_key: Option<&str>, data_dir: &Path) -> Result<Sealer, String> {
        if let Some(hexkey) = env_key.filter(|k| !k.is_empty()) {
            return Ok(Sealer::from_key(&parse_key(hexkey.trim()).map_err(|e| format!("HMAS_MASTER_KEY: {e}"))?));
        }
        let path = data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Sealer::from_key(&parse_key(text.trim()).map_err(|e| format!("{}: {e}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
                write_private(&path, &hex::encode(key))?;
                let mut k = [0u8; 32];
                k.copy_from_slice(&key);
                Ok(Sealer::from_key(&k))
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// From 64 hex characters (a key file's or the variable's text).
    pub fn from_hex(text: &str) -> Result<Sealer, String> {
        Ok(Sealer::from_key(&parse_key(text.trim())?))
    }

    /// A fresh random key, and its text for a key file.
    pub fn generate() -> (Sealer, String) {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        let mut k = [0u8; 32];
        k.copy_from_slice(&key);
        (Sealer::from_key(&k), hex::encode(key))
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self.cipher.encrypt(&nonce, plaintext.as_bytes()).expect("encryption of a bounded buffer");
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, String> {
        let raw = sealed.strip_prefix(PREFIX).ok_or("not a sealed value")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw).map_err(|_| "sealed value is not base64")?;
        if bytes.len() < 12 {
            return Err("sealed value is too short".into());
        }
        let (nonce, ct) = bytes.split_at(12);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| "cannot decrypt: wrong master key or damaged value")?;
        String::from_utf8(pt).map_err(|_| "decrypted value is not text".into())
    }
}

fn parse_key(hexkey: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hexkey).map_err(|_| "must be 64 hexadecimal characters")?;
    bytes.try_into().map_err(|_| "must be 64 hexadecimal characters (32 bytes)".to_string())
}

/// Writes a new file readable by its owner only; an existing file is an error.
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Makes an existing file readable by its owner only; a missing file is left alone.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            r => return r,
        }
    }
    #[allow(unreachable_code)]
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = Sealer::from_key(&[7u8; 32]);
        let sealed = s.seal("token-abc");
        assert!(sealed.starts_with("v1:") && !sealed.contains("token-abc"));
        assert_ne!(s.seal("token-abc"), sealed, "fresh nonce each time");
        assert_eq!(s.open(&sealed).unwrap(), "token-abc");
        assert!(Sealer::from_key(&[8u8; 32]).open(&sealed).is_err());
        let mut bad = sealed.clone();
        bad.pop();
        bad.push('A');
        assert!(s.open(&bad).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::load(None, dir.path()).unwrap();
        let sealed = a.seal("x");
        let b = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(b.open(&sealed).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Sealer::load(Some("zz"), dir.path()).unwrap_err().contains("HMAS_MASTER_KEY"));
    }
}
