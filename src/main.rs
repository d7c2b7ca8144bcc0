use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use splitdns::cli::{Cli, Command};
use splitdns::config::{LogConfig, LogFormat};
use splitdns::privilege::Outcome;
use splitdns::{Config, Server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("splitdns: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), splitdns::Error> {
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::ImportDnsmasq { path, conf_dir } = command {
        let import = splitdns::import::import(&path, conf_dir.as_deref())?;
        import.warnings.iter().for_each(|w| eprintln!("{w}"));
        print!("{}", import.toml);
        return Ok(());
    }
    let config = Config::discover(cli.config.as_deref())?;
    init_tracing(cli.log_level.as_deref(), config.log);
    match command {
        Command::Check => {
            let metrics = splitdns::metrics::Metrics::default();
            let listen = splitdns::literal_listen_addrs(&config);
            let state = splitdns::build_state(&config, &listen, &metrics)?;
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
        Command::ImportDnsmasq { .. } => Ok(()),
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

/// The config is read first so that its `[log]` table can choose the format;
/// a config error is printed by `main` on its own line either way.
fn init_tracing(level: Option<&str>, log: LogConfig) {
    use tracing_subscriber::EnvFilter;
    let mut filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    if log.queries {
        // Asked for in the config: shown whatever the general level.
        let directive = format!("{}=info", splitdns::querylog::TARGET);
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    // Colours only for a person at a terminal, not for journald or a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
