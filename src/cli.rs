//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A DNS forwarder and split resolver for hosts that run Consul and Docker.
#[derive(Parser, Debug)]
#[command(name = "splitdns", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Config file [default: /etc/splitdns/splitdns.toml if present, else built in].
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list.
    /// Overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve DNS in the foreground until SIGTERM or SIGINT (the default).
    Run,
    /// Validate the config and print the routing table.
    Check {
        /// Also bind every listen address for a moment, as run would, to find
        /// out whether another program (dnsmasq, systemd-resolved) holds it.
        #[arg(long)]
        bind: bool,
    },
    /// Translate a dnsmasq config to splitdns TOML on stdout; what cannot be
    /// carried over is listed on stderr as FILE:LINE: OPTION: ignored (why).
    ImportDnsmasq {
        /// The dnsmasq config, e.g. /etc/dnsmasq.conf (conf-file, conf-dir and
        /// servers-file lines in it are followed).
        path: PathBuf,
        /// Also read this directory, as a conf-dir=DIR line would.
        #[arg(long, value_name = "DIR")]
        conf_dir: Option<PathBuf>,
        /// Keep the conf-dir layout: write each conf-dir file's rules to
        /// DIR/NAME.conf (new files only) and include DIR in the config printed.
        #[arg(long, value_name = "DIR")]
        split: Option<PathBuf>,
    },
    /// Ask the running splitdns over its control socket ([control] socket).
    Control {
        /// The control socket [default: [control] socket of the config, else
        /// /run/splitdns/control.sock].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        #[command(subcommand)]
        command: ControlCommand,
    },
    /// Write the man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    Generate {
        /// Written: DIR/man/*.8, DIR/man/splitdns.toml.5, DIR/completions/*.
        dir: PathBuf,
    },
}

/// What `splitdns control` asks for.
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// Reload the config and wait for the outcome: exit 0 when applied,
    /// else non-zero with the reason, worded as splitdns check words it.
    Reload,
    /// Drop the whole cache, or the entries at and under each ZONE or NAME;
    /// prints how many went.
    Flush {
        #[arg(value_name = "ZONE|NAME")]
        names: Vec<String>,
    },
    /// Cache size, hits, misses, and each upstream server's queries,
    /// failures and health: what SIGUSR1 logs.
    Stats,
    /// The routing table in force now, as splitdns check prints it.
    Routes,
}

impl ControlCommand {
    /// The request sent over the socket.
    pub fn request(&self) -> crate::serve::control::Request {
        use crate::serve::control::Request;
        match self {
            Self::Reload => Request::Reload,
            Self::Flush { names } => Request::Flush(names.clone()),
            Self::Stats => Request::Stats,
            Self::Routes => Request::Routes,
        }
    }
}
