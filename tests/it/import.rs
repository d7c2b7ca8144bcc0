//! `splitdns import-dnsmasq` on the dnsmasq configs of the Consul and Docker guides:
//! the output passes `check`, and run, answers the way dnsmasq did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use splitdns::config::{Config, Listen, RouteAction};
use tempfile::TempDir;

use crate::support::client;
use crate::support::daemon::Daemon;
use crate::support::fixtures::{consul, internet};
use crate::support::harness::render;
use crate::support::prereq;
use crate::support::upstream::Mode;
use crate::support::{FakeUpstream, Splitdns, answer_ips, assert_rcode, query};

const BIN: &str = env!("CARGO_BIN_EXE_splitdns");

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn import(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("import-dnsmasq")
        .args(args)
        .output()
        .expect("run splitdns")
}

/// A dnsmasq setup in a temporary directory: `dnsmasq.d/` holding fragments, and a
/// `dnsmasq.conf` whose first line reads it; `splitdns.d/` is where `--split` writes.
struct ConfDir {
    dir: TempDir,
    conf_d: PathBuf,
    main: PathBuf,
    out: PathBuf,
}

impl ConfDir {
    /// `fragments` (file name, text) in `dnsmasq.d/`; `rest` follows `conf-dir=` in the main file.
    fn new(fragments: &[(&str, &str)], rest: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let conf_d = dir.path().join("dnsmasq.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        for (file, text) in fragments {
            write(&conf_d, file, text);
        }
        let main = write(
            dir.path(),
            "dnsmasq.conf",
            &format!("conf-dir={}\n{rest}", conf_d.display()),
        );
        let out = dir.path().join("splitdns.d");
        Self {
            dir,
            conf_d,
            main,
            out,
        }
    }

    /// `import-dnsmasq dnsmasq.conf --split splitdns.d`.
    fn split(&self) -> Output {
        import(&[
            self.main.to_str().unwrap(),
            "--split",
            self.out.to_str().unwrap(),
        ])
    }
}

/// Runs the import, checks its output with `splitdns check`, and returns (TOML, stderr lines).
fn import_and_check(dir: &Path, args: &[&str]) -> (String, Vec<String>) {
    let output = import(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "import failed: {stderr}");
    let toml = String::from_utf8(output.stdout).unwrap();
    let path = write(dir, "imported.toml", &toml);
    let check = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check rejected the import: {}\n{toml}",
        String::from_utf8_lossy(&check.stderr)
    );
    (toml, stderr.lines().map(str::to_string).collect())
}

/// `conf` written as the dnsmasq.conf of a temporary directory, imported and checked there.
fn import_conf(conf: &str) -> (String, Vec<String>) {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "dnsmasq.conf", conf);
    import_and_check(dir.path(), &[path.to_str().unwrap()])
}

/// Starts the internet fake and imports a dnsmasq.conf that forwards everything to it
/// (reading neither resolv.conf nor a hosts file), then has `lines`: the fake, the TOML and
/// the warnings.
async fn import_forwarding_to_internet(lines: &str) -> (FakeUpstream, String, Vec<String>) {
    let internet = FakeUpstream::start(internet()).await;
    let conf = render(
        "no-resolv\nno-hosts\nserver={internet#}\n",
        &[("internet", &internet)],
    );
    let (toml, warnings) = import_conf(&(conf + lines));
    (internet, toml, warnings)
}

/// The imported config with its listeners replaced by one ephemeral loopback port.
fn on_ephemeral_port(toml: &str) -> Config {
    let mut config = Config::from_toml(toml, Path::new("imported.toml")).unwrap();
    config.listen = vec![Listen::Addr("127.0.0.1:0".parse().unwrap())];
    config
}

/// The Consul DNS-forwarding guide's dnsmasq setup, with the extras hosts add to it.
const CONSUL_GUIDE: &str = "\
# Enable forward lookup of the 'consul' domain:
server=/consul/{consul#}
# Reverse lookups for the cluster's netblock
rev-server=10.0.0.0/8,{consul#}
listen-address=127.0.0.1
bind-interfaces
no-resolv
server={internet#}
cache-size=1000
domain-needed
bogus-priv
no-hosts
host-record=gw.lan,192.0.2.1
dhcp-range=192.168.0.50,192.168.0.150,12h
log-queries
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_guide_config_imports_checks_and_answers_like_dnsmasq() {
    let (consul, internet) = (
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(internet()).await,
    );
    let dir = TempDir::new().unwrap();
    let conf = render(
        CONSUL_GUIDE,
        &[("consul", &consul), ("internet", &internet)],
    );
    let path = write(dir.path(), "dnsmasq.conf", &conf);

    let (toml, warnings) = import_and_check(dir.path(), &[path.to_str().unwrap()]);

    assert_eq!(
        warnings,
        [format!(
            "{}:14: dhcp-range: ignored (DHCP, TFTP and router advertisements: splitdns serves DNS only)",
            path.display()
        )]
    );
    let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
    assert_eq!(config.cache.size, 1000);
    assert!(config.local.domain_needed && config.local.bogus_priv);
    assert!(config.log.queries, "log-queries: {toml}");
    assert!(config.local.hosts_files.is_empty(), "no-hosts: {toml}");
    assert_eq!(
        config.listen,
        [Listen::Addr("127.0.0.1:53".parse().unwrap())]
    );

    let dns = Splitdns::start_config(on_ephemeral_port(&toml)).await;
    let web = dns.ask("web.service.consul.", RecordType::A).await;
    let www = dns.ask("www.example.", RecordType::A).await;
    let ptr = dns.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    let private = dns.ask("1.1.168.192.in-addr.arpa.", RecordType::PTR).await;
    let plain = dns.ask("fileserver.", RecordType::A).await;
    let gw = dns.ask("gw.lan.", RecordType::A).await;

    assert_eq!(answer_ips(&web).len(), 2);
    assert_eq!(answer_ips(&www).len(), 1);
    assert_rcode(&ptr, ResponseCode::NoError);
    assert_rcode(&private, ResponseCode::NXDomain);
    assert_rcode(&plain, ResponseCode::NXDomain);
    assert_eq!(
        answer_ips(&gw),
        ["192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(consul.total(), 2, "web and the 10/8 PTR");
    assert_eq!(internet.total(), 1, "only www.example.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_guide_config_with_conf_dirs_imports_in_order() {
    let (consul, internet) = (
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(internet()).await,
    );
    let dir = TempDir::new().unwrap();
    let conf_d = dir.path().join("dnsmasq.d");
    let extra = dir.path().join("extra.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::create_dir_all(&extra).unwrap();
    let upstreams = [("consul", &consul), ("internet", &internet)];
    write(
        &conf_d,
        "20-docker.conf",
        "interface=docker0\nbind-interfaces\nenable-tftp\n",
    );
    write(
        &conf_d,
        "10-consul.conf",
        &render("server=/consul/{consul#}\n", &upstreams),
    );
    write(&conf_d, "10-consul.conf~", "server=/stale/192.0.2.1\n");
    write(&conf_d, "README", "this is not config\n");
    write(
        &extra,
        "infra.conf",
        "rewrite=/infra.local/service.consul/\nfilter-AAAA\n",
    );
    let main = render(
        &format!(
            "conf-dir={},*.conf\nlisten-address=172.17.0.1\nserver={{internet#}}\nno-resolv\nlocal-ttl=5\n",
            conf_d.display()
        ),
        &upstreams,
    );
    let path = write(dir.path(), "dnsmasq.conf", &main);

    let (toml, warnings) = import_and_check(
        dir.path(),
        &[
            path.to_str().unwrap(),
            "--conf-dir",
            extra.to_str().unwrap(),
        ],
    );

    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "{}:3: enable-tftp: ignored (",
            conf_d.join("20-docker.conf").display()
        )),
        "{warnings:?}"
    );
    let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
    let zones: Vec<String> = config
        .routes
        .iter()
        .map(|r| r.zones[0].to_string())
        .collect();
    assert_eq!(
        zones,
        ["consul.", "infra.local."],
        "10- before 20-, backups skipped: {toml}"
    );
    let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["172.17.0.1:53", "127.0.0.1:53", "docker0:53"]);
    assert!(config.upstream.filter_aaaa);
    assert_eq!(config.local.ttl, 5);
    assert_eq!(
        config.local.hosts_files,
        [PathBuf::from("/etc/hosts")],
        "hosts are read unless no-hosts"
    );

    let dns = Splitdns::start_config(on_ephemeral_port(&toml)).await;
    let rewritten = dns.ask("web.infra.local.", RecordType::A).await;
    assert_eq!(answer_ips(&rewritten).len(), 2);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
}

#[test]
fn no_resolv_without_servers_leaves_no_default_upstream() {
    let (toml, warnings) = import_conf("no-resolv\nserver=/consul/127.0.0.1#8600\n");

    assert!(warnings.is_empty(), "{warnings:?}");
    let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
    assert!(config.upstream.servers.is_empty());
    assert_eq!(config.upstream.resolv_conf, PathBuf::from("/dev/null"));
}

/// dnsmasq(8), `--server`: "IPv6 addresses may include an %interface scope-id, eg
/// fe80::1%eth0." Such lines come over as they are, without a warning, and route their zone
/// to the address on that interface (lo, index 1, which every Linux host has).
#[test]
fn server_lines_with_a_link_local_scope_come_over_as_they_are() {
    let (toml, warnings) =
        import_conf("no-resolv\nserver=/lan/fe80::1%lo#5353\nserver=/consul/127.0.0.1#8600\n");

    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        rules(&toml).contains(&"server=/lan/fe80::1%lo#5353".to_string()),
        "{toml}"
    );
    let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
    let lan = config
        .routes
        .iter()
        .find(|r| r.zones.iter().any(|z| z.to_string() == "lan."))
        .expect("a route for lan");
    let RouteAction::Forward(servers) = &lan.action else {
        panic!("lan is forwarded: {:?}", lan.action);
    };
    let scoped = std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 5353, 0, 1);
    assert_eq!(servers[0].addr, std::net::SocketAddr::V6(scoped));
}

#[test]
fn missing_dnsmasq_config_is_one_clear_line() {
    let output = import(&["/nonexistent/dnsmasq.conf"]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("splitdns: /nonexistent/dnsmasq.conf: cannot read the dnsmasq config"),
        "{stderr}"
    );
}

/// `rules` of an imported config, as written (read without `Config`, so the test
/// sees the lines themselves, not what the loader makes of them).
fn rules(toml: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(toml).unwrap();
    table["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// dnsmasq(8), `-q, --log-queries`: "Log the results of DNS queries handled by dnsmasq.
/// [...] If the argument "extra" is supplied, ie --log-queries=extra then the log has
/// extra information at the start of each line." splitdns's query log is `[log] queries`
/// (a log level alone does not turn it on); its lines always carry the client.
#[test]
fn log_queries_turns_on_the_query_log() {
    for line in ["log-queries", "log-queries=extra"] {
        let (toml, warnings) = import_conf(&format!("{line}\n"));

        assert!(warnings.is_empty(), "{line}: {warnings:?}");
        let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
        assert!(config.log.queries, "{line}: {toml}");
    }
}

/// The user the import writes without `user=`: splitdns's own when this host has it (the
/// package creates it), else `nobody`, as dnsmasq did.
fn default_user() -> &'static str {
    match nix::unistd::User::from_name("splitdns").unwrap() {
        Some(_) => "splitdns",
        None => "nobody",
    }
}

/// dnsmasq(8), `-u, --user`: "Specify the userid to which dnsmasq will change after
/// startup. [...] Normally this user is "nobody" but that can be over-ridden with this
/// switch." A user the operator named is kept as given; without one, the import writes a
/// user this host has (see [`default_user`]).
#[test]
fn user_is_kept_as_given_and_defaults_to_a_user_this_host_has() {
    let dir = TempDir::new().unwrap();
    let named = write(dir.path(), "named.conf", "user=dnsmasq\n");
    let unnamed = write(dir.path(), "unnamed.conf", "cache-size=10\n");

    let (named, named_warnings) = import_and_check(dir.path(), &[named.to_str().unwrap()]);
    let (unnamed, unnamed_warnings) = import_and_check(dir.path(), &[unnamed.to_str().unwrap()]);

    assert!(named_warnings.is_empty() && unnamed_warnings.is_empty());
    let named = Config::from_toml(&named, Path::new("named.toml")).unwrap();
    let unnamed_config = Config::from_toml(&unnamed, Path::new("unnamed.toml")).unwrap();
    assert_eq!(named.user.as_deref(), Some("dnsmasq"));
    assert_eq!(
        unnamed_config.user.as_deref(),
        Some(default_user()),
        "{unnamed}"
    );
}

/// dnsmasq(8), `-u, --user=<username>`: "Specify the userid to which dnsmasq will change
/// after startup. dnsmasq must normally be started as root, but it will drop root
/// privileges after startup by changing id to another user. Normally this user is "nobody"
/// but that can be over-ridden with this switch." (the option list: "defaults to nobody").
/// The config imported from a dnsmasq.conf without `user=` starts, as root, on the host it
/// was imported on, answers, and runs as the user it names: `splitdns` where that user
/// exists, `nobody` where it does not (with a comment saying how to switch to `splitdns`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_user_the_import_starts_here_as_root_and_drops_privileges() {
    if prereq::skip(
        "without_user_the_import_starts_here_as_root_and_drops_privileges",
        "root",
        prereq::not_root(),
    ) {
        return;
    }
    let (internet, toml, warnings) = import_forwarding_to_internet("").await;

    assert!(warnings.is_empty(), "{warnings:?}");
    let expected = default_user();
    let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
    assert_eq!(config.user.as_deref(), Some(expected), "{toml}");
    if expected == "nobody" {
        assert!(
            toml.lines()
                .any(|l| l.starts_with('#') && l.contains("user = \"splitdns\"")),
            "no comment on how to switch to the splitdns user:\n{toml}"
        );
    }

    // As imported, but on an ephemeral loopback port instead of every interface's port 53.
    let on_loopback: String = toml
        .lines()
        .map(|l| {
            if l.starts_with("listen = ") {
                "listen = [\"127.0.0.1:0\"]\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let daemon = Daemon::start(&on_loopback, None);
    let addr = daemon.wait_ready()[0];
    let reply = client::udp(addr, &query("www.example.", RecordType::A)).await;
    assert_eq!(answer_ips(&reply).len(), 1, "{}", daemon.stderr());
    assert_eq!(internet.count("www.example.", RecordType::A), 1);

    let uid = nix::unistd::User::from_name(expected)
        .unwrap()
        .unwrap()
        .uid
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    let ids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid: line")
        .split_whitespace()
        .collect();
    assert_eq!(
        ids,
        [uid.as_str(); 4],
        "real, effective, saved, fs: {status}"
    );
}

/// dnsmasq(8): `--stop-dns-rebind` "Reject (and log) addresses from upstream nameservers
/// which are in the private ranges"; `--rebind-domain-ok=[<domain>]|[[/<domain>/[<domain>/]`
/// "Do not detect and block dns-rebind on queries to these domains. The argument may be
/// either a single domain, or multiple domains surrounded by '/'". Both forms are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_dns_rebind_and_rebind_domain_ok_become_rebind_protection() {
    let (_internet, toml, warnings) = import_forwarding_to_internet(
        "stop-dns-rebind\nrebind-domain-ok=lan\nrebind-domain-ok=/corp.example/other.example/\n",
    )
    .await;

    assert!(warnings.is_empty(), "{warnings:?}");
    let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
    assert!(config.guard.rebind_protection, "{toml}");
    let allowed: Vec<String> = config
        .guard
        .rebind_allow
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(allowed, ["lan.", "corp.example.", "other.example."]);

    let dns = Splitdns::start_config(on_ephemeral_port(&toml)).await;
    let rebind = dns.ask("rebind.example.", RecordType::A).await;
    let lan = dns.ask("router.lan.", RecordType::A).await;
    assert_eq!(
        answer_ips(&rebind),
        ["192.0.2.7".parse::<std::net::Ipv4Addr>().unwrap()],
        "192.168.1.1 from the internet is rejected"
    );
    assert_eq!(
        answer_ips(&lan),
        ["192.168.1.1".parse::<std::net::Ipv4Addr>().unwrap()],
        "lan is rebind-domain-ok"
    );
}

/// Without `stop-dns-rebind` dnsmasq passes private addresses through (its man page lists
/// the option; nothing screens by default), and so does the import, whatever splitdns's
/// own default is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_stop_dns_rebind_private_answers_pass_as_in_dnsmasq() {
    let (_internet, toml, _) = import_forwarding_to_internet("").await;

    let dns = Splitdns::start_config(on_ephemeral_port(&toml)).await;
    let rebind = dns.ask("rebind.example.", RecordType::A).await;
    assert_eq!(answer_ips(&rebind).len(), 2, "{toml}");
}

/// dnsmasq(8), `--rebind-localhost-ok`: "Exempt 127.0.0.0/8 and ::1 from rebinding
/// checks." splitdns has no such exemption, so with `stop-dns-rebind` on, the line is
/// reported as not carried over; with protection off it changes nothing.
#[test]
fn rebind_localhost_ok_is_reported_when_protection_is_on() {
    let dir = TempDir::new().unwrap();
    let on = write(
        dir.path(),
        "on.conf",
        "rebind-localhost-ok\nstop-dns-rebind\n",
    );
    let off = write(dir.path(), "off.conf", "rebind-localhost-ok\n");

    let (_, on_warnings) = import_and_check(dir.path(), &[on.to_str().unwrap()]);
    let (_, off_warnings) = import_and_check(dir.path(), &[off.to_str().unwrap()]);

    assert_eq!(on_warnings.len(), 1, "{on_warnings:?}");
    assert!(
        on_warnings[0].starts_with(&format!(
            "{}:1: rebind-localhost-ok: ignored (",
            on.display()
        )),
        "{on_warnings:?}"
    );
    assert!(off_warnings.is_empty(), "{off_warnings:?}");
}

/// dnsmasq(8), `-S, --server`: "More than one of these is allowed"; lines for the same
/// domain give it several servers, asked in the order written under `strict-order`.
/// The import keeps the lines as they were, in order, and splitdns accumulates them into
/// one route whose servers are asked in that order: the first, failing, is asked first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_server_lines_come_out_as_the_rules_they_were() {
    let (first, second) = (
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(consul()).await,
    );
    first.set_mode(Mode::ServFail);
    let dir = TempDir::new().unwrap();
    let conf = render(
        "strict-order\nserver=/consul/{first#}\nserver=/Consul/{second#}\n",
        &[("first", &first), ("second", &second)],
    );
    let path = write(dir.path(), "dnsmasq.conf", &conf);

    let output = import(&[path.to_str().unwrap()]);
    let toml = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        rules(&toml),
        render(
            "server=/consul/{first#}\nserver=/Consul/{second#}",
            &[("first", &first), ("second", &second)],
        )
        .lines()
        .collect::<Vec<_>>()
    );
    assert!(!toml.contains("[[route]]"), "{toml}");

    let (toml, _) = import_and_check(dir.path(), &[path.to_str().unwrap()]);
    let dns = Splitdns::start_config(on_ephemeral_port(&toml)).await;
    let web = dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ips(&web).len(), 2);
    assert_eq!((first.total(), second.total()), (1, 1));
}

/// The fragment's rule lines: what is not blank or a comment.
fn fragment_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// dnsmasq(8), `--conf-dir`: "Read all the files in the given directory as configuration
/// files. [...] Any files whose names end in ~ or start with . or start and end with # are
/// always skipped. [...] Files are loaded in alphabetical order of filename." Consul's
/// guide has operators write `/etc/dnsmasq.d/10-consul`. With `--split DIR`, each such
/// file becomes `DIR/NAME.conf` holding its rule lines (splitdns reads `*.conf` fragments
/// of an `include` directory in name order); its other options go to the main config,
/// printed with `include = ["DIR"]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_keeps_the_conf_dir_layout_one_fragment_per_file() {
    let (consul, internet) = (
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(internet()).await,
    );
    let upstreams = [("consul", &consul), ("internet", &internet)];
    let consul_fragment = render(
        "# Enable forward lookup of the 'consul' domain:\nserver=/consul/{consul#}\n",
        &upstreams,
    );
    let setup = ConfDir::new(
        &[
            ("10-consul", &consul_fragment),
            (
                "20-docker.conf",
                "interface=docker0\nhost-record=gw.docker,172.17.0.1\nenable-tftp\n",
            ),
            ("10-consul~", "server=/stale/192.0.2.1\n"),
            (".20-docker.conf.swp", "server=/swap/192.0.2.1\n"),
        ],
        &render("no-resolv\nno-hosts\nserver={internet#}\n", &upstreams),
    );
    let (conf_d, out) = (&setup.conf_d, &setup.out);

    let output = setup.split();

    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with(&format!(
        "{}:3: enable-tftp: ignored (",
        conf_d.join("20-docker.conf").display()
    )));
    let toml = String::from_utf8(output.stdout).unwrap();
    let table: toml::Table = toml::from_str(&toml).unwrap();
    assert_eq!(
        table["include"],
        toml::Value::Array(vec![out.display().to_string().into()]),
        "{toml}"
    );
    assert_eq!(
        rules(&toml),
        [render("server={internet#}", &upstreams)],
        "only the main file's rules stay in it"
    );
    assert_eq!(file_names(out), ["10-consul.conf", "20-docker.conf"]);
    assert_eq!(
        fragment_lines(&out.join("10-consul.conf")),
        [render("server=/consul/{consul#}", &upstreams)]
    );
    assert_eq!(
        fragment_lines(&out.join("20-docker.conf")),
        ["host-record=gw.docker,172.17.0.1"]
    );

    // The main config with its fragments, as splitdns reads them.
    let main_path = write(setup.dir.path(), "splitdns.toml", &toml);
    let check = Command::new(BIN)
        .args(["check", "--config", main_path.to_str().unwrap()])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check rejected the split import: {}\n{toml}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut config = Config::load(&main_path).unwrap();
    let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["127.0.0.1:53", "docker0:53"]);
    config.listen = vec![Listen::Addr("127.0.0.1:0".parse().unwrap())];
    let dns = Splitdns::start_config(config).await;
    let web = dns.ask("web.service.consul.", RecordType::A).await;
    let gw = dns.ask("gw.docker.", RecordType::A).await;
    let www = dns.ask("www.example.", RecordType::A).await;
    assert_eq!(answer_ips(&web).len(), 2);
    assert_eq!(
        answer_ips(&gw),
        ["172.17.0.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(answer_ips(&www).len(), 1);
    assert_eq!((consul.total(), internet.total()), (1, 1));
}

/// `--split` writes new files only: a fragment already there (an earlier import, or the
/// operator's own) is not overwritten, and nothing at all is written or printed.
#[test]
fn split_never_overwrites_a_file() {
    let setup = ConfDir::new(
        &[
            ("05-lan", "local=/lan/\n"),
            ("10-consul", "server=/consul/127.0.0.1#8600\n"),
        ],
        "",
    );
    let out = &setup.out;
    std::fs::create_dir_all(out).unwrap();
    write(out, "10-consul.conf", "server=/consul/10.0.0.5#8600\n");

    let output = setup.split();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "splitdns: {}: already exists",
            out.join("10-consul.conf").display()
        )),
        "{stderr}"
    );
    assert_eq!(file_names(out), ["10-consul.conf"]);
    assert_eq!(
        fragment_lines(&out.join("10-consul.conf")),
        ["server=/consul/10.0.0.5#8600"]
    );
}

/// dnsmasq reads a conf-dir where its `conf-dir=` line stands, so a main-file line after
/// it comes later; splitdns reads the main file's rules before its includes. When that
/// changes the order of a zone's servers, the import says so.
#[test]
fn split_warns_when_a_zones_servers_would_change_order() {
    let setup = ConfDir::new(
        &[("10-consul", "server=/consul/10.0.0.5#8600\n")],
        "server=/consul/10.0.0.6#8600\nserver=/other/10.0.0.7\n",
    );

    let split = setup.split();
    let whole = import(&[setup.main.to_str().unwrap()]);

    let stderr = String::from_utf8_lossy(&split.stderr);
    assert!(split.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("consul."), "{stderr}");
    assert!(whole.stderr.is_empty(), "without --split the order is kept");
    assert_eq!(
        rules(&String::from_utf8(whole.stdout).unwrap()),
        [
            "server=/consul/10.0.0.5#8600",
            "server=/consul/10.0.0.6#8600",
            "server=/other/10.0.0.7"
        ]
    );
}

/// `10-consul` and `10-consul.conf` in one conf-dir are two files to dnsmasq, but both
/// would be the fragment `10-consul.conf`: the import stops rather than merge or drop one.
#[test]
fn split_refuses_two_files_that_would_share_a_fragment() {
    let setup = ConfDir::new(
        &[
            ("10-consul", "server=/consul/127.0.0.1#8600\n"),
            ("10-consul.conf", "server=/consul/127.0.0.2#8600\n"),
        ],
        "",
    );
    let out = &setup.out;

    let output = setup.split();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "would both be written to {}",
            out.join("10-consul.conf").display()
        )),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
}
