//! Command line, `HMAS_*` environment and an optional TOML file, resolved once into `Settings`.
//! Precedence: flag or environment variable, then the file, then the default.
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "hmas",
    version,
    about = "H-MAS: serve AI models on GPU clusters through a Karmada hub",
    long_about = "H-MAS registers Kubernetes clusters into a Karmada hub, deploys model servers to them and \
puts one authenticated, OpenAI-compatible endpoint in front of every model.\n\n\
Without a command it runs `serve`. Every option can also come from an HMAS_* environment variable \
or from a TOML file given with --config (keys are the option names with '_' for '-').\n\n\
Secrets come only from the environment: HMAS_MASTER_KEY (64 hexadecimal characters; without it the key \
file <data-dir>/master.key, created on first start) encrypts cluster credentials, and HMAS_ADMIN_PASSWORD \
sets the first admin's password (else one is printed once). HMAS_LOG sets the log filter \
(default: info,sqlx=warn,tower_http=info).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// TOML file with settings (lowest precedence after built-in defaults).
    #[arg(long, env = "HMAS_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the dashboard, the API and the embedded services (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Write a consistent copy of the SQLite database while H-MAS runs (PostgreSQL: use pg_dump).
    Backup(BackupArgs),
    /// Re-encrypt every stored cluster credential with a new master key (stop H-MAS first).
    RotateMasterKey(RotateArgs),
    /// Run the simulated Karmada hub and member clusters on their own, for kubectl and other tools.
    Sim(SimArgs),
    /// Run a model server inside H-MAS's wrapper image: start the runtime, fetch the model with
    /// progress, serve /healthz, /readyz and /metrics, forward signals, shut down cleanly.
    Agent(AgentArgs),
    /// Run one simulated model server (or a simulated Hugging Face Hub) as its own process, to try
    /// `hmas agent` without a GPU: `hmas agent --runtime ollama --model llama3.2:1b -- hmas sim-runtime ollama`.
    SimRuntime(SimRuntimeArgs),
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "Example, as the wrapper images run it:\n  \
HMAS_RUNTIME=vllm HMAS_MODEL=Qwen/Qwen2.5-1.5B-Instruct hmas agent -- vllm serve Qwen/Qwen2.5-1.5B-Instruct --port 8000")]
pub struct AgentArgs {
    /// The model server the command starts: ollama, vllm, tgi, llama_cpp or sglang.
    #[arg(long, env = "HMAS_RUNTIME", value_name = "RUNTIME")]
    pub runtime: String,
    /// The model to fetch and serve (an Ollama name, a Hugging Face id, or repo:QUANT for GGUF).
    #[arg(long, env = "HMAS_MODEL", value_name = "MODEL")]
    pub model: String,
    /// The port the runtime listens on. Default: the runtime's usual port.
    #[arg(long, env = "HMAS_RUNTIME_PORT", value_name = "PORT")]
    pub runtime_port: Option<u16>,
    /// Where the agent serves /healthz, /readyz and /metrics. Default: 0.0.0.0:9400
    #[arg(long, env = "HMAS_AGENT_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// The model directory (the cache volume). Default: /models
    #[arg(long, env = "HMAS_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Hugging Face endpoint for model downloads. Default: https://huggingface.co
    #[arg(long, env = "HF_ENDPOINT", value_name = "URL")]
    pub hf_endpoint: Option<String>,
    /// Hugging Face token, for gated models.
    #[arg(long, env = "HF_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub hf_token: Option<String>,
    /// The pod to publish progress and readiness on (the downward API sets it in wrapper pods).
    #[arg(long, env = "HMAS_POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,
    /// The pod's namespace.
    #[arg(long, env = "HMAS_POD_NAMESPACE", value_name = "NAMESPACE")]
    pub pod_namespace: Option<String>,
    /// Kubeconfig to publish with. Default: the pod's service account.
    #[arg(long, env = "HMAS_AGENT_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Seconds the runtime gets to stop after SIGTERM before it is killed. Default: 50
    #[arg(long, env = "HMAS_SHUTDOWN_GRACE_SECS", value_name = "SECONDS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Fetch the model into the model directory and exit (cache pre-load Jobs).
    #[arg(long)]
    pub fetch_only: bool,
    /// The runtime's command line.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct SimRuntimeArgs {
    /// ollama, vllm, tgi, llama_cpp, sglang, or hf-hub (a simulated Hugging Face Hub).
    pub kind: String,
    /// Port to listen on (127.0.0.1). Default: the runtime's usual port.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// How fast models download (Ollama pulls, Hub files), in MB per second. Default: 50
    #[arg(long, value_name = "RATE")]
    pub download_mb_per_second: Option<f64>,
    /// Size of every model, in MB. Default: what the model's name suggests.
    #[arg(long, value_name = "MB")]
    pub model_size_mb: Option<u64>,
    /// How fast answers are written, in tokens per second. Default: 40
    #[arg(long, value_name = "RATE")]
    pub tokens_per_second: Option<f64>,
    /// The runtime's own arguments (model flags, as the official image takes them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Args, Debug, Default, Clone)]
pub struct SimOptions {
    /// YAML file describing the member clusters and their nodes. Default: three members
    /// (H100/A100 NVLink, T4/L4, CPU-only).
    #[arg(long = "sim-topology", env = "HMAS_SIM_TOPOLOGY", value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Multiplier for simulated durations (image pulls, model downloads): 1 is real time. Default: 0.2
    #[arg(long = "sim-time-scale", env = "HMAS_SIM_TIME_SCALE", value_name = "FACTOR")]
    pub time_scale: Option<f64>,
    /// How fast the simulated model servers write answers, in tokens per second. Default: 40
    #[arg(long = "sim-tokens-per-second", env = "HMAS_SIM_TOKENS_PER_SECOND", value_name = "RATE")]
    pub tokens_per_second: Option<f64>,
    /// Run the simulated Karmada as `karmadactl init` leaves it: cluster failover switched off
    /// (no `Failover` gate, NoExecute taint policies refused). Default: switched on, as
    /// docs/install.md has operators run their hub.
    #[arg(long = "sim-hub-defaults", env = "HMAS_SIM_HUB_DEFAULTS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub hub_defaults: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Where to write hub.kubeconfig and one kubeconfig per member.
    #[arg(long, value_name = "DIR")]
    pub kubeconfig_dir: PathBuf,
    /// Address of the hub's API server. Default: a free port on 127.0.0.1
    #[arg(long, value_name = "HOST:PORT")]
    pub hub_addr: Option<SocketAddr>,
    /// Register every member in the hub at start (as `karmadactl join` would).
    #[arg(long)]
    pub join: bool,
    #[command(flatten)]
    pub sim: SimOptions,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The file to write (it must not exist), or - for standard output.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "The current key is HMAS_MASTER_KEY, else <data-dir>/master.key. With the key file, the new key \
replaces it (written first as master.key.new). With HMAS_MASTER_KEY, give --new-key-file and put that key in the \
variable (its Secret) before starting H-MAS again."
)]
pub struct RotateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// A file holding the new key (64 hex characters). Default: a new random key.
    #[arg(long, value_name = "FILE")]
    pub new_key_file: Option<PathBuf>,
}

#[derive(Args, Debug, Default, Clone)]
pub struct DbArgs {
    /// Where H-MAS keeps its data (SQLite database, keys). Default: ./data
    #[arg(long, env = "HMAS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://FILE or postgres://USER@HOST/DB. Default: SQLite in the data directory.
    #[arg(long, env = "HMAS_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on. Default: 127.0.0.1:3000
    #[arg(long, env = "HMAS_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// Directory with the built site (pkg/, favicon). Default: target/site
    #[arg(long, env = "HMAS_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,
    /// Log format. Default: text
    #[arg(long, env = "HMAS_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Mark session cookies Secure (set this when H-MAS is served over HTTPS).
    #[arg(long, env = "HMAS_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub secure_cookies: Option<bool>,
    /// How long a sign-in lasts, in hours. Default: 12
    #[arg(long, env = "HMAS_SESSION_TTL_HOURS", value_name = "HOURS")]
    pub session_ttl_hours: Option<u64>,
    /// Require `Authorization: Bearer <token>` on /metrics.
    #[arg(long, env = "HMAS_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Kubeconfig of a real Karmada API server. Without it, H-MAS starts its simulated hub.
    #[arg(long, env = "HMAS_HUB_KUBECONFIG", value_name = "FILE")]
    pub hub_kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub sim: SimOptions,
    /// A model server outside H-MAS's clusters to put behind the gateway, as NAME=http://HOST:PORT
    /// (clients call it with `model: NAME`). Repeatable; comma-separated in the variable.
    #[arg(long = "gateway-upstream", env = "HMAS_GATEWAY_UPSTREAMS", value_delimiter = ',', value_name = "NAME=URL")]
    pub gateway_upstreams: Vec<String>,
    /// How long the gateway waits for a model server's response headers, in seconds. Default: 600
    #[arg(long, env = "HMAS_GATEWAY_TIMEOUT_SECS", value_name = "SECONDS")]
    pub gateway_timeout_secs: Option<u64>,
    /// Days of request log and usage kept. Default: 30
    #[arg(long, env = "HMAS_USAGE_RETENTION_DAYS", value_name = "DAYS")]
    pub usage_retention_days: Option<u32>,
    /// The URL people open H-MAS at (http(s)://HOST[:PORT]). When set, a browser's state-changing
    /// request must come from exactly this origin and name this host.
    #[arg(long, env = "HMAS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Wrong passwords for one account before its sign-in is locked for a while. Default: 5
    #[arg(long, env = "HMAS_SIGN_IN_ACCOUNT_FAILURES", value_name = "N")]
    pub sign_in_account_failures: Option<u32>,
    /// Wrong passwords from one address (any accounts) before it is locked. Default: 20
    #[arg(long, env = "HMAS_SIGN_IN_ADDRESS_FAILURES", value_name = "N")]
    pub sign_in_address_failures: Option<u32>,
    /// The first lock's length in seconds; it doubles with each further failure, up to 15 minutes.
    /// Default: 30
    #[arg(long, env = "HMAS_SIGN_IN_LOCK_SECS", value_name = "SECONDS")]
    pub sign_in_lock_secs: Option<u64>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or CIDR ranges), for the
    /// per-address sign-in throttle. Repeatable; comma-separated in the variable. Default: none
    #[arg(long = "trusted-proxy", env = "HMAS_TRUSTED_PROXIES", value_delimiter = ',', value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
    /// Open connections at most; more wait until one closes. Default: 1024
    #[arg(long, env = "HMAS_HTTP_MAX_CONNECTIONS", value_name = "N")]
    pub http_max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers. Default: 10
    #[arg(long, env = "HMAS_HTTP_HEADER_TIMEOUT_SECS", value_name = "SECONDS")]
    pub http_header_timeout_secs: Option<u64>,
    /// Longest pause, in seconds, while a request body arrives. Default: 30
    #[arg(long, env = "HMAS_HTTP_BODY_TIMEOUT_SECS", value_name = "SECONDS")]
    pub http_body_timeout_secs: Option<u64>,
    /// Seconds a connection with no request in flight stays open. Default: 75
    #[arg(long, env = "HMAS_HTTP_IDLE_TIMEOUT_SECS", value_name = "SECONDS")]
    pub http_idle_timeout_secs: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The TOML file's shape. Unknown keys are an error, so a typo does not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    site_root: Option<PathBuf>,
    log_format: Option<LogFormat>,
    secure_cookies: Option<bool>,
    session_ttl_hours: Option<u64>,
    metrics_token: Option<String>,
    hub_kubeconfig: Option<PathBuf>,
    sim_topology: Option<PathBuf>,
    sim_time_scale: Option<f64>,
    sim_tokens_per_second: Option<f64>,
    gateway_upstreams: Option<Vec<String>>,
    gateway_timeout_secs: Option<u64>,
    usage_retention_days: Option<u32>,
    public_url: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    sign_in_account_failures: Option<u32>,
    sign_in_address_failures: Option<u32>,
    sign_in_lock_secs: Option<u64>,
    http_max_connections: Option<usize>,
    http_header_timeout_secs: Option<u64>,
    http_body_timeout_secs: Option<u64>,
    http_idle_timeout_secs: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub site_root: PathBuf,
    pub log_format: LogFormat,
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    pub metrics_token: Option<String>,
    pub hub: HubSettings,
    pub gateway: crate::gateway::GatewayConfig,
    pub usage_retention_days: u32,
    pub http: crate::http::listen::Limits,
    pub sign_in: crate::auth::throttle::ThrottlePolicy,
    pub trusted_proxies: crate::http::client_addr::TrustedProxies,
}

#[derive(Clone, Debug)]
pub enum HubSettings {
    Kubeconfig(PathBuf),
    Simulated { topology: Option<PathBuf>, time_scale: f64, tokens_per_second: f64, hub_failover: bool },
}

impl SimOptions {
    pub fn time_scale(&self) -> Result<f64, String> {
        let t = self.time_scale.unwrap_or(0.2);
        if !(0.001..=10.0).contains(&t) {
            return Err("sim-time-scale: must be between 0.001 and 10".into());
        }
        Ok(t)
    }

    pub fn tokens_per_second(&self) -> Result<f64, String> {
        let t = self.tokens_per_second.unwrap_or(40.0);
        if !(0.1..=100_000.0).contains(&t) {
            return Err("sim-tokens-per-second: must be between 0.1 and 100000".into());
        }
        Ok(t)
    }
}

impl Settings {
    pub fn resolve(config: Option<&Path>, args: &ServeArgs) -> Result<Settings, String> {
        let file = match config {
            None => FileConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| format!("config file {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("config file {}: {e}", p.display()))?
            }
        };
        let http = http_limits(args, &file)?;
        let trusted_proxies = crate::http::client_addr::TrustedProxies::parse(if args.trusted_proxies.is_empty() {
            file.trusted_proxies.as_deref().unwrap_or_default()
        } else {
            &args.trusted_proxies
        })?;
        let sign_in = sign_in_policy(args, &file)?;
        let data_dir = args.db.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("data"));
        let database_url = args
            .db
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("hmas.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres:")
            || database_url.starts_with("postgresql:"))
        {
            return Err("database-url: must start with sqlite:// or postgres://".into());
        }
        let ttl_hours = args.session_ttl_hours.or(file.session_ttl_hours).unwrap_or(12);
        if !(1..=24 * 90).contains(&ttl_hours) {
            return Err("session-ttl-hours: must be between 1 and 2160".into());
        }
        let upstreams = if args.gateway_upstreams.is_empty() {
            file.gateway_upstreams.unwrap_or_default()
        } else {
            args.gateway_upstreams.clone()
        };
        let upstreams = upstreams.iter().map(|u| parse_upstream(u)).collect::<Result<Vec<_>, _>>()?;
        let timeout = args.gateway_timeout_secs.or(file.gateway_timeout_secs).unwrap_or(600);
        if !(1..=3600).contains(&timeout) {
            return Err("gateway-timeout-secs: must be between 1 and 3600".into());
        }
        let retention = args.usage_retention_days.or(file.usage_retention_days).unwrap_or(30);
        if !(1..=3650).contains(&retention) {
            return Err("usage-retention-days: must be between 1 and 3650".into());
        }
        let secure_cookies = args.secure_cookies.or(file.secure_cookies).unwrap_or(false);
        let origin = crate::http::origin::OriginPolicy::new(
            args.public_url.as_deref().or(file.public_url.as_deref()),
            secure_cookies,
        )?;
        Ok(Settings {
            trusted_proxies,
            sign_in,
            http,
            gateway: crate::gateway::GatewayConfig { timeout: Duration::from_secs(timeout), upstreams, origin },
            usage_retention_days: retention,
            addr: args.addr.or(file.addr).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000))),
            data_dir,
            database_url,
            site_root: args.site_root.clone().or(file.site_root).unwrap_or_else(|| PathBuf::from("target/site")),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            secure_cookies,
            session_ttl: Duration::from_secs(ttl_hours * 3600),
            metrics_token: args.metrics_token.clone().or(file.metrics_token).filter(|t| !t.is_empty()),
            hub: match args.hub_kubeconfig.clone().or(file.hub_kubeconfig) {
                Some(p) => HubSettings::Kubeconfig(p),
                None => {
                    let opts = SimOptions {
                        topology: args.sim.topology.clone().or(file.sim_topology),
                        time_scale: args.sim.time_scale.or(file.sim_time_scale),
                        tokens_per_second: args.sim.tokens_per_second.or(file.sim_tokens_per_second),
                        hub_defaults: args.sim.hub_defaults,
                    };
                    HubSettings::Simulated {
                        time_scale: opts.time_scale()?,
                        tokens_per_second: opts.tokens_per_second()?,
                        topology: opts.topology,
                        hub_failover: !opts.hub_defaults,
                    }
                }
            },
        })
    }
}

fn sign_in_policy(args: &ServeArgs, file: &FileConfig) -> Result<crate::auth::throttle::ThrottlePolicy, String> {
    let d = crate::auth::throttle::ThrottlePolicy::default();
    let account = args.sign_in_account_failures.or(file.sign_in_account_failures).unwrap_or(d.account_failures);
    let address = args.sign_in_address_failures.or(file.sign_in_address_failures).unwrap_or(d.address_failures);
    let lock = args.sign_in_lock_secs.or(file.sign_in_lock_secs).unwrap_or(d.first_lock.as_secs());
    if !(1..=1_000_000).contains(&account) {
        return Err("sign-in-account-failures: must be between 1 and 1000000".into());
    }
    if !(1..=1_000_000).contains(&address) {
        return Err("sign-in-address-failures: must be between 1 and 1000000".into());
    }
    if !(1..=d.max_lock.as_secs()).contains(&lock) {
        return Err(format!("sign-in-lock-secs: must be between 1 and {}", d.max_lock.as_secs()));
    }
    Ok(crate::auth::throttle::ThrottlePolicy {
        account_failures: account,
        address_failures: address,
        first_lock: Duration::from_secs(lock),
        ..d
    })
}

fn http_limits(args: &ServeArgs, file: &FileConfig) -> Result<crate::http::listen::Limits, String> {
    let d = crate::http::listen::Limits::default();
    let secs = |flag: Option<u64>, file: Option<u64>, default: Duration, name: &str, max: u64| {
        let s = flag.or(file).unwrap_or(default.as_secs());
        if !(1..=max).contains(&s) {
            return Err(format!("{name}: must be between 1 and {max}"));
        }
        Ok(Duration::from_secs(s))
    };
    let max_connections = args.http_max_connections.or(file.http_max_connections).unwrap_or(d.max_connections);
    if !(1..=1_000_000).contains(&max_connections) {
        return Err("http-max-connections: must be between 1 and 1000000".into());
    }
    Ok(crate::http::listen::Limits {
        max_connections,
        header_timeout: secs(
            args.http_header_timeout_secs,
            file.http_header_timeout_secs,
            d.header_timeout,
            "http-header-timeout-secs",
            600,
        )?,
        body_timeout: secs(
            args.http_body_timeout_secs,
            file.http_body_timeout_secs,
            d.body_timeout,
            "http-body-timeout-secs",
            3600,
        )?,
        idle_timeout: secs(
            args.http_idle_timeout_secs,
            file.http_idle_timeout_secs,
            d.idle_timeout,
            "http-idle-timeout-secs",
            3600,
        )?,
    })
}

/// `NAME=http://HOST:PORT` → (name, base URL).
fn parse_upstream(s: &str) -> Result<(String, String), String> {
    let bad = |m: &str| format!("gateway-upstream {s}: {m}");
    let (name, url) = s.split_once('=').ok_or_else(|| bad("expected NAME=http://HOST:PORT"))?;
    let name = name.trim();
    app::models::validate::dns1035_label(name).map_err(|m| bad(&format!("name {m}")))?;
    let uri: http::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() || !uri.path().trim_end_matches('/').is_empty() {
        return Err(bad("URL must be http://HOST:PORT with no path"));
    }
    Ok((name.to_string(), url.trim().trim_end_matches('/').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn upstreams_parse_or_name_the_problem() {
        assert_eq!(
            parse_upstream("mock=http://127.0.0.1:9000/").unwrap(),
            ("mock".into(), "http://127.0.0.1:9000".into())
        );
        assert!(parse_upstream("mock").unwrap_err().contains("NAME="));
        assert!(parse_upstream("Mock=http://a:1").unwrap_err().contains("name"));
        assert!(parse_upstream("m=https://a:1").unwrap_err().contains("http://"));
        assert!(parse_upstream("m=http://a:1/v1").unwrap_err().contains("no path"));
        let args = ServeArgs { gateway_upstreams: vec!["a=http://127.0.0.1:1".into()], ..Default::default() };
        assert_eq!(Settings::resolve(None, &args).unwrap().gateway.upstreams.len(), 1);
    }

    #[test]
    fn flags_beat_file_beat_defaults() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "addr = \"127.0.0.1:4000\"\ndata_dir = \"/tmp/x\"\nsession_ttl_hours = 2").unwrap();
        let args = ServeArgs { addr: Some("127.0.0.1:5000".parse().unwrap()), ..Default::default() };
        let s = Settings::resolve(Some(f.path()), &args).unwrap();
        assert_eq!(s.addr.port(), 5000);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.database_url, "sqlite:///tmp/x/hmas.db");
        assert_eq!(s.session_ttl, Duration::from_secs(7200));
        let d = Settings::resolve(None, &ServeArgs::default()).unwrap();
        assert_eq!(d.addr.port(), 3000);
        assert!(!d.secure_cookies);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "adress = \"x\"").unwrap();
        let e = Settings::resolve(Some(f.path()), &ServeArgs::default()).unwrap_err();
        assert!(e.contains("adress"), "{e}");
        let args = ServeArgs {
            db: DbArgs { database_url: Some("mysql://x".into()), ..Default::default() },
            ..Default::default()
        };
        assert!(Settings::resolve(None, &args).unwrap_err().starts_with("database-url"));
        let args = ServeArgs { session_ttl_hours: Some(0), ..Default::default() };
        assert!(Settings::resolve(None, &args).unwrap_err().starts_with("session-ttl-hours"));
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["hmas", "serve", "--addr", "127.0.0.1:1"]).unwrap();
        assert!(matches!(c.command, Some(Command::Serve(_))));
        let c = Cli::try_parse_from(["hmas", "--addr", "127.0.0.1:2"]).unwrap();
        assert!(c.command.is_none() && c.serve.addr.is_some());
        assert!(Cli::try_parse_from(["hmas", "--addr", "nope"]).is_err());
    }
}
