//! Drop-in files: `include = [...]` adds the rules, routes and records of `*.toml` files and
//! the dnsmasq lines of `*.conf` files; a reload reads them again; the config hash covers them.

use std::path::{Path, PathBuf};
use std::process::Command;

use hickory_proto::rr::RecordType;
use sha2::{Digest, Sha256};
use splitdns::config::{Config, RouteAction};
use tempfile::TempDir;

use crate::support::client;
use crate::support::daemon::{BIN, Daemon};
use crate::support::fixtures::{consul, internet};
use crate::support::harness::render;
use crate::support::{FakeUpstream, Splitdns, answer_ips, query};

const MAIN: &str = r#"
include = ["conf.d"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
timeout = "500ms"
"#;

/// A config directory: `main` as splitdns.toml, and `files` (name, text) under conf.d.
fn layout(main: &str, files: &[(&str, &str)]) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("conf.d").join(name), text).unwrap();
    }
    let path = dir.path().join("splitdns.toml");
    std::fs::write(&path, main).unwrap();
    (dir, path)
}

fn load(path: &Path) -> Config {
    Config::load(path).unwrap_or_else(|e| panic!("config rejected: {e}"))
}

fn load_err(path: &Path) -> String {
    Config::load(path).expect_err("config accepted").to_string()
}

/// Consul's DNS forwarding guide has dnsmasq users write `/etc/dnsmasq.d/10-consul` holding
/// `server=/consul/127.0.0.1#8600`: that file, name, comments and all, works unchanged as a
/// drop-in (dnsmasq's `conf-dir` reads it without any extension).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuls_dnsmasq_file_works_unchanged_as_a_drop_in() {
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let upstreams = [("consul", &consul), ("internet", &internet)];
    let guide = render(
        "# Enable forward lookup of the 'consul' domain:\nserver=/consul/{consul#}\n",
        &upstreams,
    );
    let (_dir, path) = layout(&render(MAIN, &upstreams), &[("10-consul", &guide)]);
    let dns = Splitdns::start_config(load(&path)).await;

    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(answer_ips(&reply).len(), 2);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

/// Files are read in name order, `*.toml`, `*.conf` and rule files without an extension
/// alike, after the main file; their lines accumulate with the main file's as dnsmasq's do;
/// other files are passed over (a package manager's `.dpkg-old` with a warning).
#[test]
fn drop_ins_add_rules_routes_and_records_in_name_order() {
    let main = "rules = [\"server=/consul/192.0.2.1\"]\ninclude = [\"conf.d\"]\n";
    let (_dir, path) = layout(
        main,
        &[
            ("30-late.conf", "server=/consul/192.0.2.3\n"),
            (
                "20-lan.toml",
                "rules = [\"server=/consul/192.0.2.2\"]\n[[route]]\nzones = [\"corp.example\"]\nservers = [\"192.0.2.53\"]\n[[record]]\nname = \"gw.lan\"\ntype = \"A\"\nvalue = \"192.0.2.1\"\n",
            ),
            ("10-consul", "server=/consul/192.0.2.9\n"),
            ("10-consul.dpkg-old", "server=/consul/192.0.2.8\n"),
            (".20-lan.toml.swp", "junk"),
            ("20-lan.toml~", "junk"),
        ],
    );

    let config = load(&path);

    let consul = config
        .routes
        .iter()
        .find(|r| r.zones[0].to_string() == "consul.")
        .unwrap();
    let servers = [
        "192.0.2.1:53",
        "192.0.2.9:53",
        "192.0.2.2:53",
        "192.0.2.3:53",
    ]
    .map(|s| s.parse().unwrap());
    assert_eq!(consul.action, RouteAction::Forward(servers.to_vec()));
    assert!(
        config
            .routes
            .iter()
            .any(|r| r.zones[0].to_string() == "corp.example.")
    );
    assert_eq!(config.local.records.len(), 1);
    let names: Vec<String> = config
        .included
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["10-consul", "20-lan.toml", "30-late.conf"]);
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(
        config.warnings[0].contains("10-consul.dpkg-old") && config.warnings[0].contains(".conf"),
        "a file that is not read is named, with how to have it read: {:?}",
        config.warnings
    );
}

#[test]
fn a_drop_in_that_sets_a_main_file_table_is_an_error_naming_file_and_line() {
    let (_dir, path) = layout(
        "include = [\"conf.d\"]\n",
        &[(
            "50-x.toml",
            "rules = [\"local=/lan/\"]\n\n[server]\nlisten = [\"127.0.0.1:53\"]\n",
        )],
    );

    let err = load_err(&path);

    assert!(err.contains("50-x.toml:3"), "{err}");
    assert!(
        err.contains("[server]") && err.contains("main config file"),
        "{err}"
    );
}

#[test]
fn a_bad_line_in_a_conf_drop_in_names_file_and_line() {
    let (_dir, path) = layout(
        "include = [\"conf.d\"]\n",
        &[(
            "10-consul.conf",
            "# comment\nserver=/consul/127.0.0.1#8600\nno-resolv\n",
        )],
    );

    let err = load_err(&path);

    assert!(err.contains("10-consul.conf:3: no-resolv"), "{err}");
}

#[test]
fn a_bad_value_in_a_toml_drop_in_names_file_and_line() {
    let (_dir, path) = layout(
        "include = [\"conf.d\"]\n",
        &[(
            "20-x.toml",
            "[[route]]\nzones = [\"corp.example\"]\ntimeout = \"soon\"\n",
        )],
    );

    let err = load_err(&path);

    assert!(err.contains("20-x.toml:3: [[route]] #1 timeout"), "{err}");
}

/// Rules never conflict with rules, but a zone that a `[[route]]` table defines as well is
/// still an error, naming both places, files included.
#[test]
fn a_zone_in_a_drop_in_route_and_in_main_rules_is_an_error_naming_both() {
    let (_dir, path) = layout(
        "rules = [\"server=/consul/192.0.2.1\"]\ninclude = [\"conf.d\"]\n",
        &[(
            "20-x.toml",
            "\n[[route]]\nzones = [\"consul\"]\nservers = [\"192.0.2.2\"]\n",
        )],
    );

    let err = load_err(&path);

    assert!(
        err.contains("rules[0] (line 1)") && err.contains("20-x.toml: [[route]] #1 (line 2)"),
        "{err}"
    );
}

#[test]
fn a_zone_in_two_route_tables_of_two_files_is_an_error_naming_both() {
    let route = "[[route]]\nzones = [\"corp.example\"]\nservers = [\"192.0.2.2\"]\n";
    let (_dir, path) = layout(
        &format!("include = [\"conf.d\"]\n{route}"),
        &[("20-x.toml", route)],
    );

    let err = load_err(&path);

    assert!(
        err.contains("[[route]] #1 (line 2)") && err.contains("20-x.toml: [[route]] #1 (line 1)"),
        "{err}"
    );
}

/// The packaged config includes /etc/splitdns/conf.d, which a host may not have: a missing
/// directory is a warning, not a reason to stop. Glob patterns pick files as the shell would.
#[test]
fn a_missing_directory_is_a_warning_and_globs_select_files() {
    let (_dir, path) = layout(
        "include = [\"nowhere.d\", \"conf.d/*-consul.conf\"]\n",
        &[
            ("10-consul.conf", "server=/consul/192.0.2.1\n"),
            ("20-other.conf", "server=/other/192.0.2.1\n"),
        ],
    );

    let config = load(&path);

    assert_eq!(config.included.len(), 1);
    assert_eq!(config.routes.len(), 1);
    assert!(
        config.warnings.iter().any(|w| w.contains("nowhere.d")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn check_prints_the_files_it_read_and_warns_about_a_missing_directory() {
    let (dir, path) = layout(
        "include = [\"conf.d\", \"missing.d\"]\n[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"192.0.2.53\"]\n",
        &[("10-consul.conf", "server=/consul/127.0.0.1#8600\n")],
    );

    let output = Command::new(BIN)
        .args(["check", "--config", path.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let fragment = dir.path().join("conf.d").join("10-consul.conf");
    assert!(
        stdout.contains(&format!("{}: ok", fragment.display())),
        "{stdout}"
    );
    assert!(stdout.contains("consul. -> 127.0.0.1:8600"), "{stdout}");
    assert!(stderr.contains("missing.d"), "{stderr}");
}

/// A reload reads the directory again: a changed file moves its zone, a new file adds one,
/// a removed file takes its zone away, and answers of routes that did not change stay cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reads_the_drop_in_directory_again() {
    let consul2 = FakeUpstream::start(consul()).await;
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let upstreams = [
        ("consul", &consul),
        ("consul2", &consul2),
        ("internet", &internet),
    ];
    let daemon = Daemon::start(&render(MAIN, &upstreams), None);
    daemon.wait_ready();
    let conf_d = daemon.config_path().parent().unwrap().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    let write = |name: &str, text: &str| {
        std::fs::write(conf_d.join(name), render(text, &upstreams)).unwrap();
    };
    write("10-consul.conf", "server=/consul/{consul#}\n");
    write("20-old.conf", "server=/old.example/{consul#}\n");
    let addr = daemon.reload()[0];
    let ask =
        |name: &'static str| async move { client::udp(addr, &query(name, RecordType::A)).await };
    ask("www.example.").await;
    ask("web.service.consul.").await;
    ask("x.old.example.").await;
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(consul.count("x.old.example.", RecordType::A), 1);

    write("10-consul.conf", "server=/consul/{consul2#}\n");
    write("30-new.conf", "server=/new.example/{consul2#}\n");
    std::fs::remove_file(conf_d.join("20-old.conf")).unwrap();
    daemon.reload();
    ask("www.example.").await;
    ask("web.service.consul.").await;
    ask("x.new.example.").await;
    ask("x.old.example.").await;

    assert_eq!(
        internet.count("www.example.", RecordType::A),
        1,
        "unchanged route: a cache hit"
    );
    assert_eq!(consul2.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(consul2.count("x.new.example.", RecordType::A), 1);
    assert_eq!(
        internet.count("x.old.example.", RecordType::A),
        1,
        "the removed file's zone is gone"
    );
    assert_eq!(consul.count("x.old.example.", RecordType::A), 1);
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `splitdns_config_info{hash}` is the SHA-256 of the bytes read, so a fleet can compare it
/// with `sha256sum splitdns.toml`: with one file, the two are equal; with drop-in files, it
/// covers the main file, then each drop-in file in the order read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_hash_is_the_sha256_of_the_files_read() {
    let internet = FakeUpstream::start(internet()).await;
    let main = render(
        "include = [\"conf.d\"]\n[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"{internet}\"]\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        &[("internet", &internet)],
    );
    let (_dir, path) = layout(&main, &[]);
    let dns = Splitdns::start_config(load(&path)).await;
    let (_, text) = crate::support::http::get(dns.metrics_addr(), "/metrics").await;
    let sha256sum = Command::new("sha256sum").arg(&path).output();
    let expected = sha256_hex(&[main.as_bytes()]);
    if let Ok(out) = sha256sum {
        let printed = String::from_utf8_lossy(&out.stdout);
        assert_eq!(printed.split_whitespace().next(), Some(expected.as_str()));
    }
    assert!(
        text.contains(&format!("splitdns_config_info{{hash=\"{expected}\"}} 1")),
        "{text}"
    );

    let a = "server=/consul/192.0.2.1\n";
    let b = "rules = [\"local=/lan/\"]\n";
    let (_dir, path) = layout(&main, &[("20-b.toml", b), ("10-a.conf", a)]);
    let config = load(&path);
    assert_eq!(
        config.hash,
        sha256_hex(&[main.as_bytes(), a.as_bytes(), b.as_bytes()])
    );
}
