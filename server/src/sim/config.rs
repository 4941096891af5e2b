//! Timings of the simulation. Real-world durations, multiplied by `time_scale` (1.0 = real time).
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub time_scale: f64,
    /// Seconds to pull a runtime image the first time on a node.
    pub image_pull_seconds: f64,
    pub download_mb_per_second: f64,
    /// Seconds from model on disk to serving.
    pub model_load_seconds: f64,
    /// Generation speed of simulated model servers (not scaled: it is what clients measure).
    pub tokens_per_second: f64,
    pub ttft_ms: u64,
    /// Address nodes report and NodePorts listen on.
    pub node_ip: String,
    /// How often the control loops run.
    pub tick_ms: u64,
    /// Karmada's cluster failover switched on (controller manager `--feature-gates=Failover=true
    /// --enable-no-execute-taint-eviction=true`, webhook `--allow-no-execute-taint-policy=true`),
    /// as docs/install.md has operators run their hub; off is `karmadactl init`'s default.
    pub hub_failover: bool,
    /// Seconds from a member's last answer to `Ready=False` (`--cluster-failure-threshold` 30 s
    /// plus the 10 s status period); scaled like every other duration.
    pub cluster_failure_seconds: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            time_scale: 0.2,
            image_pull_seconds: 20.0,
            download_mb_per_second: 250.0,
            model_load_seconds: 8.0,
            tokens_per_second: 40.0,
            ttft_ms: 120,
            node_ip: "127.0.0.1".into(),
            tick_ms: 100,
            hub_failover: true,
            cluster_failure_seconds: 40.0,
        }
    }
}

impl SimConfig {
    pub fn scaled(&self, seconds: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64((seconds * self.time_scale).max(0.0))
    }

    /// As fast as the control loops allow: for tests.
    pub fn fast() -> Self {
        SimConfig { time_scale: 0.01, tokens_per_second: 2000.0, ttft_ms: 5, tick_ms: 25, ..Default::default() }
    }
}
