//! `splitdns import-dnsmasq` on the dnsmasq configs of the Consul and Docker guides:
//! the output passes `check`, and run, answers the way dnsmasq did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use splitdns::config::{Config, Listen};
use tempfile::TempDir;

use crate::support::fixtures::{consul, internet};
use crate::support::harness::render;
use crate::support::{FakeUpstream, Splitdns, answer_ips, assert_rcode};

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
    let dir = TempDir::new().unwrap();
    let path = write(
        dir.path(),
        "dnsmasq.conf",
        "no-resolv\nserver=/consul/127.0.0.1#8600\n",
    );

    let (toml, warnings) = import_and_check(dir.path(), &[path.to_str().unwrap()]);

    assert!(warnings.is_empty(), "{warnings:?}");
    let config = Config::from_toml(&toml, Path::new("imported.toml")).unwrap();
    assert!(config.upstream.servers.is_empty());
    assert_eq!(config.upstream.resolv_conf, PathBuf::from("/dev/null"));
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
