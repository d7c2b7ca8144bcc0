use std::process::ExitCode;

use clap::Parser;
use splitdns::cli::{Cli, Command};
use splitdns::{Config, Server};

/// The cache holds a hundred thousand small, long-lived answers among a
/// stream of short-lived buffers; glibc's malloc interleaves the two and a
/// full cache cost 40 MiB where jemalloc's size-class slabs keep it to 25.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let prefix = splitdns::logging::error_prefix();
            eprintln!("{prefix}splitdns: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), splitdns::Error> {
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::ImportDnsmasq {
        path,
        conf_dir,
        split,
    } = &command
    {
        use splitdns::import;
        let default_user = import::default_user(splitdns::process::user_exists);
        let import = import::import(path, conf_dir.as_deref(), split.as_deref(), default_user)?;
        import.warnings.iter().for_each(|w| eprintln!("{w}"));
        print!("{}", import.toml);
        return Ok(());
    }
    if let Command::Control { socket, command } = &command {
        let path = splitdns::control::socket_path(socket.as_deref(), cli.config.as_deref());
        print!("{}", splitdns::control::request(&path, &command.request())?);
        return Ok(());
    }
    if let Command::Generate { dir } = &command {
        let written =
            splitdns::docs::generate(dir).map_err(|source| splitdns::Error::Generate {
                dir: dir.display().to_string(),
                source,
            })?;
        written.iter().for_each(|p| println!("{}", p.display()));
        return Ok(());
    }
    let config = Config::discover(cli.config.as_deref())?;
    splitdns::logging::init(cli.log_level.as_deref(), config.log);
    config.warnings.iter().for_each(|w| tracing::warn!("{w}"));
    if let Command::Check { bind } = command {
        print!("{}", splitdns::check(&config)?);
        if bind {
            let free = splitdns::check_bind(&config)?;
            let free: Vec<String> = free.iter().map(ToString::to_string).collect();
            println!("free to listen on: {}", free.join(", "));
        }
        return Ok(());
    }
    tracing::info!(config = %config.origin, "starting");
    // While still root, so it can be created in a directory the user cannot
    // write to, and handed to the user.
    let control = splitdns::control::Socket::bind(&config)?;
    // Before the runtime exists: its threads inherit only what is kept.
    if let Some(user) = &config.user {
        splitdns::process::switch_to(user)?;
    }
    raise_open_files_limit();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let path = cli.config.clone();
        let server = Server::bind_with_control(config, control)
            .await?
            .reload_from(Box::new(move || Config::discover(path.as_deref())));
        Ok(server.serve(splitdns::process::controls()).await?)
    })
}

/// Every upstream query over UDP holds a socket of its own while it waits (a
/// source port per query), up to `max_inflight` per route, and a soft limit of
/// 1024 open files (systemd's and most shells' default) would cap them below
/// that. Raising the soft limit to the hard one needs no privilege.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(%error, soft, hard, "could not raise the limit on open files");
    }
}
