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
    },
    /// Write the man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    Generate {
        /// Written: DIR/man/*.8, DIR/man/splitdns.toml.5, DIR/completions/*.
        dir: PathBuf,
    },
}
