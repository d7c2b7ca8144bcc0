use std::process::ExitCode;

use clap::Parser;
use splitdns::cli::{Cli, Command};
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
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::ImportDnsmasq { path, conf_dir } = command {
        let import = splitdns::import::import(&path, conf_dir.as_deref())?;
        import.warnings.iter().for_each(|w| eprintln!("{w}"));
        print!("{}", import.toml);
        return Ok(());
    }
    let config = Config::discover(cli.config.as_deref())?;
    match command {
        Command::Check => {
            let state = splitdns::build_state(&config, &splitdns::literal_listen_addrs(&config))?;
            println!("{}: ok", config.origin);
            print!("{}", state.router);
            Ok(())
        }
        Command::Run => {
            tracing::info!(config = %config.origin, "starting");
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            runtime.block_on(async {
                let server = Server::bind(config).await?;
                server.run(splitdns::signal::shutdown()).await
            })
        }
        Command::ImportDnsmasq { .. } => Ok(()),
    }
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
