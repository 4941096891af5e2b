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
        }
    }
}

impl SimConfig {
    /// As fast as the control loops allow: for tests.
    pub fn fast() -> Self {
        SimConfig { time_scale: 0.01, tokens_per_second: 2000.0, ttft_ms: 5, tick_ms: 25, ..Default::default() }
    }
}
