use clap::Parser;
use server::config::{Cli, Command, LogFormat, ServeArgs, Settings};
use std::process::ExitCode;

// The gateway allocates per request on every worker thread; glibc's malloc spent ~15 % of its CPU
// (scripts/bench-gateway under perf), mimalloc's thread-local pages a fraction of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The control plane's files (database, its WAL, backups, simulated kubeconfigs) hold secrets
    // sealed or not: private to the account from the first byte. The agent and the simulated
    // runtime write model files other containers read, so they keep the inherited mask.
    if !matches!(cli.command, Some(Command::Agent(_)) | Some(Command::SimRuntime(_))) {
        // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
        unsafe { libc::umask(0o077) };
    }
    let config = cli.config.as_deref();
    let (args, migrate_only) = match &cli.command {
        None => (cli.serve.clone(), false),
        Some(Command::Serve(a)) => (a.clone(), false),
        Some(Command::Migrate(db)) => (ServeArgs { db: db.clone(), ..Default::default() }, true),
        Some(Command::Backup(b)) => {
            return offline(config, &b.db, |s| async move { server::ops::backup(&s, &b.to).await });
        }
        Some(Command::RotateMasterKey(r)) => {
            return offline(config, &r.db, |s| async move {
                server::ops::rotate_master_key(&s, r.new_key_file.as_deref()).await
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
            let code = runtime().block_on(server::agent::run(cfg));
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
        Some(Command::SimRuntime(a)) => return report(server::serve::run_sim_runtime(a.clone())),
        Some(Command::Sim(a)) => {
            init_logging(LogFormat::Text);
            return report(server::serve::run_sim(a.clone()));
        }
    };
    let settings = match Settings::resolve(config, &args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hmas: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    report(async move {
        if migrate_only {
            server::serve::open_store(&settings).await.map(|_| println!("migrations applied"))
        } else {
            server::serve::run(settings).await
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// Runs a command to its end; a failure is printed and is the exit status.
fn report(work: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    match runtime().block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hmas: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an offline operation on the configured database; its report goes to stderr (stdout may
/// carry a backup).
fn offline<F: std::future::Future<Output = Result<String, String>>>(
    config: Option<&std::path::Path>,
    db: &server::config::DbArgs,
    op: impl FnOnce(Settings) -> F,
) -> ExitCode {
    match Settings::resolve(config, &ServeArgs { db: db.clone(), ..Default::default() }) {
        Ok(settings) => report(async move { op(settings).await.map(|done| eprintln!("{done}")) }),
        Err(e) => {
            eprintln!("hmas: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    server::logging::init(format);
}
