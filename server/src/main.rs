use clap::Parser;
use server::config::{Cli, Command, LogFormat, ServeArgs, Settings};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, migrate_only) = match &cli.command {
        None => (cli.serve.clone(), false),
        Some(Command::Serve(a)) => (a.clone(), false),
        Some(Command::Migrate(db)) => (ServeArgs { db: db.clone(), ..Default::default() }, true),
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

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("HMAS_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().flatten_event(true).init(),
        LogFormat::Text => b.init(),
    }
}
