//! Runs the real `hmas` binary on a loopback port for a test, and stops it when dropped.
#![allow(dead_code)]
pub mod fleet;
pub mod sim;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Hmas {
    pub child: Child,
    pub base: String,
    pub stdout: Vec<String>,
    pub data_dir: std::path::PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Hmas {
    pub fn start(admin_password: Option<&str>) -> Hmas {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut h = Hmas::start_in(&data_dir, admin_password);
        h._tmp = Some(tmp);
        h
    }

    pub fn start_in(data_dir: &std::path::Path, admin_password: Option<&str>) -> Hmas {
        Hmas::start_logged(data_dir, admin_password, None)
    }

    /// With the simulated hub's clock at `time_scale` (slower than the default, to watch stages).
    pub fn start_scaled(admin_password: Option<&str>, time_scale: f64) -> Hmas {
        let tmp = tempfile::tempdir().unwrap();
        let mut h = Hmas::start_with(&tmp.path().join("data"), admin_password, None, time_scale);
        h._tmp = Some(tmp);
        h
    }

    /// With the log (the default filter, as operators get it) written to `log`, for tests that read it.
    pub fn start_logged(
        data_dir: &std::path::Path,
        admin_password: Option<&str>,
        log: Option<&std::path::Path>,
    ) -> Hmas {
        Hmas::start_with(data_dir, admin_password, log, 0.01)
    }

    pub fn start_with(
        data_dir: &std::path::Path,
        admin_password: Option<&str>,
        log: Option<&std::path::Path>,
        time_scale: f64,
    ) -> Hmas {
        Hmas::start_env(data_dir, admin_password, log, time_scale, &[])
    }

    /// With extra environment (e.g. HMAS_MASTER_KEY).
    pub fn start_with_env(data_dir: &std::path::Path, admin_password: Option<&str>, env: &[(&str, &str)]) -> Hmas {
        Hmas::start_env(data_dir, admin_password, None, 0.01, env)
    }

    fn start_env(
        data_dir: &std::path::Path,
        admin_password: Option<&str>,
        log: Option<&std::path::Path>,
        time_scale: f64,
        env: &[(&str, &str)],
    ) -> Hmas {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hmas"));
        cmd.env_remove("HMAS_MASTER_KEY");
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("HMAS_DATABASE_URL")
            .env_remove("HMAS_CONFIG")
            .env("HMAS_LOG", "warn")
            .env("HMAS_SIM_TIME_SCALE", time_scale.to_string())
            .stdout(Stdio::piped());
        // The test's own environment last: it may name the database or the log filter.
        for (k, v) in env {
            cmd.env(k, v);
        }
        match log {
            // The log an operator gets: the default filter (info, without per-request noise).
            Some(p) => cmd.env_remove("HMAS_LOG").stderr(std::fs::File::create(p).unwrap()),
            None => cmd.stderr(Stdio::inherit()),
        };
        match admin_password {
            Some(p) => cmd.env("HMAS_ADMIN_PASSWORD", p),
            None => cmd.env_remove("HMAS_ADMIN_PASSWORD"),
        };
        let mut child = cmd.spawn().expect("spawn hmas");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = Vec::new();
        let base = loop {
            let line = rx.recv_timeout(Duration::from_secs(30)).expect("hmas did not start in 30 s");
            stdout.push(line.clone());
            if let Some(addr) = line.strip_prefix("H-MAS is listening on ") {
                break addr.trim().to_string();
            }
        };
        Hmas { child, base, stdout, data_dir: data_dir.to_path_buf(), _tmp: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGTERM, then wait: returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Hmas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub async fn call(c: &reqwest::Client, h: &Hmas, endpoint: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = c.post(h.url(endpoint)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

pub async fn login(h: &Hmas, username: &str, password: &str) -> reqwest::Client {
    let c = client();
    let (s, body) =
        call(&c, h, "/api/auth/login", serde_json::json!({"username": username, "password": password})).await;
    assert_eq!(s, 200, "login {username}: {body}");
    c
}
