//! The agent is PID 1 in its container, so processes orphaned below it (workers whose launcher
//! died, helpers a runtime started in the background) become its children; unreaped, each stays
//! a zombie until the pod goes. Outside a container it asks to be their subreaper, so they come
//! to it all the same. The runtime itself is left to its `Child`, whose exit code the agent
//! passes on: reaping it here would steal that code.
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Orphans of the runtime's tree are handed to the agent instead of to init.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Reaps every exited child but `runtime`, on each SIGCHLD (and every 30 s, since signals
/// arriving together are delivered once). Runs until the agent ends.
pub async fn orphans(runtime: u32) {
    let Ok(mut chld) = signal(SignalKind::child()) else { return };
    loop {
        for pid in zombie_children(std::process::id()).into_iter().filter(|p| *p != runtime) {
            // SAFETY: waitpid on one child that is a zombie; the status is not read.
            let r = unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
            if r > 0 {
                tracing::debug!(pid, "reaped an orphaned process");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), chld.recv()).await;
    }
}

/// Children of `parent` that have exited and wait to be reaped, read from /proc.
fn zombie_children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (state, ppid) = state_and_parent(&stat)?;
        (state == 'Z' && ppid == parent).then_some(pid)
    })
    .collect()
}

/// `pid (comm) S ppid …`: the name may hold spaces and parentheses, so read after the last `)`.
fn state_and_parent(stat: &str) -> Option<(char, u32)> {
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_and_parent_whatever_the_name() {
        assert_eq!(state_and_parent("812 (python3) Z 1 812 812 0 -1"), Some(('Z', 1)));
        assert_eq!(state_and_parent("90 (a) b (c)) S 77 90 90 0"), Some(('S', 77)));
        assert_eq!(state_and_parent("garbage"), None);
    }
}
