//! Passwords: argon2id hashes, checked on a few dedicated threads that each keep one argon2
//! working memory (~19 MiB) for good. Hashing through the allocator instead left a 19 MiB block
//! in every thread's malloc arena that ever ran a check: a sign-in flood grew the process by
//! hundreds of megabytes and never gave it back.
use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};

/// A hash's memory beyond this is refused rather than allocated (H-MAS's own use 19 MiB).
const MAX_BLOCKS: usize = 64 * 1024;

/// A new argon2id hash (H-MAS's default parameters) of `password`, in PHC string form.
pub fn hash_in(password: &str, memory: &mut Vec<Block>) -> String {
    let params = Params::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut raw = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut raw).expect("a generated salt decodes");
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks(memory, &params))
        .expect("argon2 with default parameters");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("default parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("32 bytes is a valid output")),
    }
    .to_string()
}

/// Whether `password` matches the PHC string `hash` (compared in constant time).
pub fn verify_in(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) =
        (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed), parsed.hash, parsed.salt)
    else {
        return false;
    };
    let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from);
    let (Ok(version), true) = (version, params.block_count() <= MAX_BLOCKS) else { return false };
    let mut raw = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut raw) else { return false };
    let mut out = vec![0u8; expected.len()];
    let ok = Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks(memory, &params))
        .is_ok();
    ok && Output::new(&out).is_ok_and(|o| o == expected)
}

fn blocks<'a>(memory: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let n = params.block_count();
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    &mut memory[..n]
}

/// The same work as a real check, so an unknown username takes as long as a wrong password.
pub fn verify_dummy_in(password: &str, memory: &mut Vec<Block>) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let h = DUMMY.get_or_init(|| hash_in("not a password anyone has", &mut Vec::new()));
    let _ = verify_in(password, h, memory);
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

struct Hasher {
    jobs: Mutex<mpsc::Sender<Job>>,
    queued: AtomicUsize,
}

fn hasher() -> &'static Hasher {
    static H: OnceLock<Hasher> = OnceLock::new();
    H.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        // One per core (at most four): password checks are CPU-bound, and each thread's memory is
        // kept, so this is also the bound on what hashing can take.
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
        for i in 0..n {
            let rx = rx.clone();
            let _ = std::thread::Builder::new().name(format!("hmas-hash-{i}")).spawn(move || {
                let mut memory = Vec::new();
                loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { return };
                    job(&mut memory);
                    hasher().queued.fetch_sub(1, Ordering::AcqRel);
                }
            });
        }
        Hasher { jobs: Mutex::new(tx), queued: AtomicUsize::new(0) }
    })
}

/// Password work waiting or running now.
pub fn queued() -> usize {
    hasher().queued.load(Ordering::Acquire)
}

/// Runs `f` on a hashing thread with its argon2 memory. A caller that stops waiting does not
/// stop the work, which stays counted in `queued` until done.
pub async fn on_hasher<T: Send + 'static>(f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let h = hasher();
    h.queued.fetch_add(1, Ordering::AcqRel);
    let job: Job = Box::new(move |memory| {
        let _ = tx.send(f(memory));
    });
    if h.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).is_err() {
        h.queued.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    rx.await.ok()
}

/// 20 characters from an alphabet without look-alikes (~115 bits).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let mut m = Vec::new();
        let h = hash_in("correct horse battery", &mut m);
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_in("correct horse battery", &h, &mut m));
        assert!(!verify_in("wrong", &h, &mut m));
        assert!(!verify_in("x", "not a hash", &mut m));
        assert_ne!(hash_in("same", &mut m), hash_in("same", &mut m), "salted");
        // Hashes made by the argon2 crate's own API (every earlier version of H-MAS) still verify.
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default().hash_password(b"from before", &salt).unwrap().to_string();
        assert!(verify_in("from before", &old, &mut m));
        assert!(!verify_in("from after", &old, &mut m));
        let greedy = old.replace("m=19456", "m=1048576");
        assert!(!verify_in("from before", &greedy, &mut m), "memory beyond the cap is refused");
    }

    #[tokio::test]
    async fn the_hasher_threads_answer() {
        let h = on_hasher(|m| hash_in("pw-on-a-thread", m)).await.unwrap();
        let ok = on_hasher(move |m| verify_in("pw-on-a-thread", &h, m)).await.unwrap();
        assert!(ok);
    }

    #[test]
    fn generated_passwords_pass_policy() {
        let p = generate();
        assert_eq!(p.len(), 20);
        assert!(app::models::user::validate_new_password(&p).is_ok());
        assert_ne!(generate(), p);
    }
}
