use std::process::ExitCode;

use clap::Parser;
use splitdns::cli::{Cli, Command};
use splitdns::privilege::Outcome;
use splitdns::{Config, Server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_level.as_deref());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("splitdns: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), splitdns::Error> {
    let config = Config::discover(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => {
            let state = splitdns::build_state(&config, &splitdns::literal_listen_addrs(&config));
            println!("{}: ok", config.origin);
            print!("{}", state.router);
            Ok(())
        }
        Command::Run => {
            tracing::info!(config = %config.origin, "starting");
            // Before the runtime exists: its threads inherit what is kept.
            if let Some(user) = &config.user {
                switch_user(user)?;
            }
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            let path = cli.config.clone();
            runtime.block_on(async {
                let server = Server::bind(config)
                    .await?
                    .reload_from(Box::new(move || Config::discover(path.as_deref())));
                server.serve(splitdns::signal::controls()).await
            })
        }
    }
}

fn switch_user(user: &str) -> Result<(), splitdns::Error> {
    match splitdns::privilege::drop_to(user)? {
        Outcome::Switched { uid, gid } => {
            tracing::info!(
                user,
                uid,
                gid,
                "running as {user}, keeping only CAP_NET_BIND_SERVICE"
            )
        }
        Outcome::NotRoot => {
            tracing::info!(user, "not started as root: [server] user does not apply")
        }
    }
    Ok(())
}

fn init_tracing(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
