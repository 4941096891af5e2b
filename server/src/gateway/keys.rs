//! API keys: minting, hashing, and the in-memory table the gateway authenticates against.
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub const KEY_PREFIX: &str = "hmas-";
/// Characters of a key shown in lists (the `hmas-` marker and the first random ones).
const SHOWN: usize = KEY_PREFIX.len() + 8;

/// A new secret, the part of it that may be shown again, and what is stored.
pub fn mint() -> (String, String, String) {
    let body: String = rand::thread_rng().sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    let secret = format!("{KEY_PREFIX}{body}");
    let prefix = secret[..SHOWN].to_string();
    let hash = hash_hex(&secret);
    (secret, prefix, hash)
}

/// Keys are 238 random bits: a plain hash is enough (no salt, no stretching).
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn hash_hex(secret: &str) -> String {
    hex::encode(hash(secret))
}

pub struct KeyEntry {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub scope: Option<HashSet<String>>,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub owner_disabled: bool,
}

impl KeyEntry {
    pub fn allows(&self, deployment: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(deployment))
    }
}

#[derive(Default)]
pub struct KeyTable {
    by_hash: HashMap<[u8; 32], Arc<KeyEntry>>,
}

impl KeyTable {
    pub fn new(entries: impl IntoIterator<Item = ([u8; 32], KeyEntry)>) -> Self {
        Self { by_hash: entries.into_iter().map(|(h, e)| (h, Arc::new(e))).collect() }
    }

    pub fn get(&self, secret: &str) -> Option<Arc<KeyEntry>> {
        self.by_hash.get(&hash(secret)).cloned()
    }

    pub fn name_of(&self, id: &str) -> Option<String> {
        self.by_hash.values().find(|k| k.id == id).map(|k| k.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_hash_and_look_up() {
        let (secret, prefix, stored) = mint();
        assert!(secret.starts_with("hmas-") && secret.len() == 45 && secret.starts_with(&prefix));
        assert_eq!(stored, hash_hex(&secret));
        assert_ne!(mint().0, secret);
        let mut raw = [0u8; 32];
        hex::decode_to_slice(&stored, &mut raw).unwrap();
        let entry = KeyEntry {
            id: "k1".into(),
            name: "ci".into(),
            owner_id: "u".into(),
            scope: Some(["a".to_string()].into()),
            rpm: None,
            tpm: None,
            expires_at: None,
            revoked: false,
            owner_disabled: false,
        };
        let t = KeyTable::new([(raw, entry)]);
        let k = t.get(&secret).unwrap();
        assert!(k.allows("a") && !k.allows("b"));
        assert!(t.get("hmas-wrong").is_none());
        assert_eq!(t.name_of("k1").as_deref(), Some("ci"));
    }
}
