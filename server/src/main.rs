use clap::Parser;
use server::config::{Cli, Command, LogFormat, ServeArgs, Settings};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, migrate_only) = match &cli.command {
        None => (cli.serve.clone(), false),
        Some(Command::Serve(a)) => (a.clone(), false),
        Some(Command::Migrate(db)) => (ServeArgs { db: db.clone(), ..Default::default() }, true),
        Some(Command::Backup(b)) => {
            return offline(cli.config.as_deref(), &b.db, |s| {
                Box::pin(async move { server::ops::backup(&s, &b.to).await })
            });
        }
        Some(Command::RotateMasterKey(r)) => {
            return offline(cli.config.as_deref(), &r.db, |s| {
                Box::pin(async move { server::ops::rotate_master_key(&s, r.new_key_file.as_deref()).await })
            });
        }
        Some(Command::Agent(a)) => {
            init_logging(LogFormat::Text);
            let cfg = match server::agent::AgentConfig::resolve(a) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("hmas agent: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            let code = rt.block_on(server::agent::run(cfg));
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
        Some(Command::SimRuntime(a)) => {
            // `--port` among the runtime's own arguments counts, as the runtime would read it.
            let in_args = a.args.iter().position(|w| w == "--port").and_then(|i| a.args.get(i + 1)?.parse().ok());
            let port = a.port.or(in_args).unwrap_or_else(|| {
                app::models::runtime::RuntimeKind::parse(&a.kind).map(|r| r.preset().port).unwrap_or(8080)
            });
            let opts = server::sim::standalone::Options {
                kind: a.kind.clone(),
                port,
                download_mb_per_second: a.download_mb_per_second.unwrap_or(50.0),
                model_size_mb: a.model_size_mb,
                tokens_per_second: a.tokens_per_second.unwrap_or(40.0),
                args: a.args.clone(),
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            return match rt.block_on(server::sim::standalone::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hmas sim-runtime: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Sim(a)) => {
            init_logging(LogFormat::Text);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            return match rt.block_on(server::serve::run_sim(a.clone())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hmas: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    let settings = match Settings::resolve(cli.config.as_deref(), &args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hmas: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async {
        if migrate_only {
            server::serve::open_store(&settings).await.map(|_| println!("migrations applied"))
        } else {
            server::serve::run(settings).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hmas: {e}");
            ExitCode::FAILURE
        }
    }
}

type OpFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + 'a>>;

/// Runs an offline operation on the configured database; its report goes to stderr (stdout may
/// carry a backup).
fn offline<'a>(
    config: Option<&std::path::Path>,
    db: &server::config::DbArgs,
    op: impl FnOnce(Settings) -> OpFuture<'a>,
) -> ExitCode {
    let settings = match Settings::resolve(config, &ServeArgs { db: db.clone(), ..Default::default() }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hmas: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(op(settings)) {
        Ok(report) => {
            eprintln!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hmas: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("HMAS_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal, never into container logs or files.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => b.json().flatten_event(true).init(),
        LogFormat::Text => b.init(),
    }
}
