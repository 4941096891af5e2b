//! `hmas sim` as a separate process, with kubeconfigs for kubectl and kube-rs.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct SimProcess {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl SimProcess {
    pub fn start(extra: &[&str]) -> SimProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hmas"))
            .args(["sim", "--kubeconfig-dir"])
            .arg(dir.path())
            .args(extra)
            .env("HMAS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hmas sim");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        loop {
            let line = lines.next().expect("hmas sim exited").unwrap();
            if line.starts_with("Fault controls") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        SimProcess { child, dir }
    }

    pub fn kubeconfig(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.kubeconfig"))
    }

    pub fn kubectl(&self, cluster: &str, args: &[&str]) -> Output {
        kubectl(&self.kubeconfig(cluster), args, None)
    }

    pub fn kubectl_stdin(&self, cluster: &str, args: &[&str], stdin: &str) -> Output {
        kubectl(&self.kubeconfig(cluster), args, Some(stdin))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig).env("HOME", kubeconfig.parent().unwrap()).args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl is installed (scripts/bootstrap --test installs it)");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Polls `f` until it returns Some, or panics with `what` after `secs`.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            panic!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
