//! Tests of the config as a whole: the built-in default, keys every table
//! rejects or must document, and values that span tables. Each table's own
//! tests are in its file.

use super::*;

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"))
}

#[test]
fn builtin_default_is_valid() {
    let c = Config::builtin();
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.routes.len(), 1);
}

/// The first command of the README runs the built-in default as any user, on a desktop
/// too: its port must be free there. 5353 is mDNS (RFC 6762, avahi-daemon), 5355 LLMNR
/// (RFC 4795, systemd-resolved), 53 needs root, 8600 is Consul's DNS port, 5335 and 8053
/// are where other local resolvers are commonly put.
#[test]
fn builtin_default_listens_where_no_known_service_does() {
    for listen in Config::builtin().listen {
        let Listen::Addr(addr) = listen else {
            panic!("{listen}: the built-in default listens on addresses");
        };
        assert!(addr.ip().is_loopback(), "{addr}");
        assert!(
            ![53, 5353, 5355, 8600, 5335, 8053].contains(&addr.port()),
            "{addr}"
        );
        assert_eq!(addr.port(), 5380, "the README names 5380");
    }
}

#[test]
fn unknown_keys_are_rejected_in_every_table() {
    for text in [
        "bogus = 1",
        "[server]\nlisten = []\nbogus = 1",
        "[upstream]\nbogus = 1",
        "[[route]]\nzones = [\"a\"]\nbogus = 1",
        "[cache]\nbogus = 1",
        "[metrics]\nlisten = \"127.0.0.1:5381\"\nbogus = 1",
        "[log]\nbogus = 1",
        "[local]\nbogus = 1",
        "[[record]]\nname = \"a\"\ntype = \"A\"\nvalue = \"192.0.2.1\"\nbogus = 1",
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{text}: {err}");
    }
}

/// The keys a table accepts, as serde lists them when it rejects an
/// unknown one (`unknown field `x`, expected one of `a`, `b``), so the
/// list comes from the types themselves.
fn accepted_keys(table: &str) -> Vec<String> {
    let probe = "not_a_key_of_any_table";
    let text = match table {
        "" => format!("{probe} = 1"),
        t => format!("{t}\n{probe} = 1"),
    };
    let Err(err) = toml::from_str::<RawConfig>(&text) else {
        panic!("{text}: accepted");
    };
    let message = err.to_string();
    let (_, expected) = message
        .split_once(&format!("unknown field `{probe}`"))
        .unwrap_or_else(|| panic!("{text}: {message}"));
    let expected = expected.lines().next().unwrap_or_default();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_key_reference_lists_every_key_and_no_other() {
    use reference::KEYS;
    let mut documented: Vec<String> = KEYS.iter().map(|k| k.name()).collect();
    let tables: Vec<&str> = KEYS
        .iter()
        .map(|k| k.table)
        .filter(|t| !t.is_empty())
        .collect();
    let mut accepted = Vec::new();
    for name in accepted_keys("") {
        let table = tables
            .iter()
            .find(|t| t.trim_matches(['[', ']']) == name)
            .copied();
        match table {
            Some(table) => accepted.extend(
                accepted_keys(table)
                    .into_iter()
                    .map(|key| format!("{table} {key}")),
            ),
            // Not a documented table: a top-level key (or an undocumented table).
            None => accepted.push(name),
        }
    }
    documented.sort();
    documented.dedup();
    accepted.sort();
    let missing: Vec<_> = accepted
        .iter()
        .filter(|k| !documented.contains(k))
        .collect();
    let unknown: Vec<_> = documented
        .iter()
        .filter(|k| !accepted.contains(k))
        .collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "add to KEYS in src/config/reference.rs: {missing:?}; \
         in KEYS but not accepted by the config types: {unknown:?}"
    );
}

#[test]
fn reliability_keys_and_their_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.cache.serve_stale, 3600);
    assert!(!c.cache.prefetch);
    assert!(!c.guard.rebind_protection);
    assert_eq!(c.guard.rate_limit, 0);
    assert_eq!(c.tcp, TcpConfig::default());
    assert_eq!(c.upstream.strategy, Strategy::Failover);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        c.threads,
        (cores / 2).max(1),
        "half the cores, at least one"
    );
    assert_eq!(parse("[server]\nthreads = 3").unwrap().threads, 3);
    let c = parse(
        "[upstream]\nstrategy = \"fastest\"\n[[route]]\nzones = [\"a\"]\nstrategy = \"parallel\"\n[cache]\nserve_stale = \"0s\"",
    )
    .unwrap();
    assert_eq!(c.upstream.strategy, Strategy::Fastest);
    assert_eq!(c.routes[0].strategy, Some(Strategy::Parallel));
    assert_eq!(c.cache.serve_stale, 0);
}

#[test]
fn bad_reliability_values_name_key_and_line() {
    for (text, key) in [
        ("[upstream]\nstrategy = \"random\"", "[upstream] strategy"),
        (
            "[[route]]\nzones = [\"a\"]\nstrategy = \"fast\"",
            "[[route]] #1 strategy",
        ),
        ("[cache]\nserve_stale = \"forever\"", "[cache] serve_stale"),
        (
            "[server]\ntcp_idle_timeout = \"1ms\"",
            "[server] tcp_idle_timeout",
        ),
        (
            "[server]\nrebind_allow = [\"a..b\"]",
            "[server] rebind_allow",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains("test.toml:"),
            "{text}: {err}"
        );
    }
    let err = parse("[server]\nthreads = 0").unwrap_err().to_string();
    assert!(
        err.contains("[server] threads") && err.contains("test.toml:2"),
        "{err}"
    );
    let err = parse("[server]\ntcp_max_queries = 0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tcp_max_queries"), "{err}");
}

#[test]
fn builtin_default_includes_conf_d_only_when_it_exists() {
    assert!(!builtin_text(None).contains("include"));
    let text = builtin_text(Some("/nonexistent/conf.d"));
    let c = Config::from_toml(&text, Path::new("<built-in default>")).unwrap();
    assert!(
        c.warnings[0].contains("/nonexistent/conf.d"),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.routes[0].action, Config::builtin().routes[0].action);
}
