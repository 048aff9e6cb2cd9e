//! Unit tests of `config.rs`, in a file of their own so that the module reads as one concern.

use super::*;

/// Runs itself again as a child process with `COLDQUERY_POOL_SIZE` set (no `set_var` in a
/// threaded test binary): the command line takes the variable, `with_database_url` does not.
#[test]
fn with_database_url_reads_no_environment_variable() {
    const CHILD: &str = "COLDQUERY_TEST_CONFIG_CHILD";
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(Cli::parse_from(["coldquery"]).config.pool_size, 3);
        let c = Config::with_database_url("postgres://u@h/d");
        assert_eq!(
            c.pool_size, 10,
            "the environment reached Config::with_database_url"
        );
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "config::tests::with_database_url_reads_no_environment_variable",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("COLDQUERY_POOL_SIZE", "3")
        .status()
        .expect("the test binary runs itself");
    assert!(status.success(), "the child run failed: {status}");
}

#[test]
fn durations_parse_in_every_documented_form() {
    let cases = [
        ("30m", 1_800_000),
        ("3s", 3000),
        ("500ms", 500),
        ("10", 10_000),
        ("1h", 3_600_000),
        ("1.5s", 1500),
    ];
    for (input, ms) in cases {
        assert_eq!(parse_duration(input).unwrap().as_millis(), ms, "{input}");
    }
    for bad in ["", "abc", "10x", "-1s", "1e999s"] {
        let e = parse_duration(bad).unwrap_err();
        assert!(e.contains("expected e.g. 30s"), "{bad}: {e}");
    }
}

#[test]
fn sizes_parse_in_every_documented_form() {
    assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
    assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
    assert_eq!(parse_size("65536").unwrap(), 65536);
    assert!(parse_size("lots").unwrap_err().contains("256KiB"));
    assert!(parse_result_bytes("2MiB").unwrap_err().contains("400KiB"));
}

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn database_url_wins_then_pg_then_legacy_db_variables() {
    let url: Secret = "postgres://alice:pw@db.example:6000/app".into();
    let o = connect_options(Some(&url), &env_of(&[("PGHOST", "ignored")])).unwrap();
    assert_eq!((o.get_host(), o.get_port()), ("db.example", 6000));
    assert_eq!(o.get_database(), Some("app"));

    let env = env_of(&[
        ("PGHOST", "pg.example"),
        ("DB_HOST", "legacy.example"),
        ("DB_PORT", "6543"),
        ("DB_USER", "bob"),
        ("DB_DATABASE", "legacy"),
    ]);
    let o = connect_options(None, &env).unwrap();
    assert_eq!(o.get_host(), "pg.example");
    assert_eq!(o.get_port(), 6543);
    assert_eq!(o.get_username(), "bob");
    assert_eq!(o.get_database(), Some("legacy"));

    let o = connect_options(None, &env_of(&[])).unwrap();
    assert_eq!(
        (o.get_host(), o.get_port(), o.get_username()),
        ("127.0.0.1", 5432, "postgres")
    );
    assert!(matches!(
        o.get_ssl_mode(),
        sqlx::postgres::PgSslMode::Disable
    ));
    let remote: Secret = "postgres://u@db.example/app".into();
    let r = connect_options(Some(&remote), &env_of(&[])).unwrap();
    assert!(matches!(
        r.get_ssl_mode(),
        sqlx::postgres::PgSslMode::Prefer
    ));
    let asked: Secret = "postgres://u@127.0.0.1/app?sslmode=require".into();
    let r = connect_options(Some(&asked), &env_of(&[])).unwrap();
    assert!(matches!(
        r.get_ssl_mode(),
        sqlx::postgres::PgSslMode::Require
    ));
    assert_eq!(o.get_database(), Some("postgres"));
}

#[test]
fn a_bad_url_error_never_echoes_the_password() {
    let url: Secret = "postgres://alice:s3cret@host:notaport/db".into();
    let e = connect_options(Some(&url), &env_of(&[])).unwrap_err();
    assert!(!e.0.contains("s3cret"));
    assert!(e.0.contains("postgres://user:password@host:5432/dbname"));
}

#[test]
fn secrets_do_not_print() {
    let s: Secret = "postgres://u:hunter2@h/d".into();
    assert!(!format!("{s:?}").contains("hunter2"));
}
