//! `coldquery check`: configuration, connectivity, server version and role privileges as a
//! readable report on stderr; exit code 0 when the database is usable, 1 when not. Also
//! `coldquery health`, the container healthcheck.

use std::process::ExitCode;
use std::time::Duration;

use sqlx::{Connection, Row};

use crate::config::Config;

/// What we learn about the role we connect as. Superuser and BYPASSRLS defeat the point of a
/// guarded server, so they are warned about loudly.
const ROLE_QUERY: &str = "SELECT current_user::text, rolsuper, rolbypassrls, \
     current_setting('server_version'), current_database()::text \
     FROM pg_roles WHERE rolname = current_user";

/// Tables in user schemas that the role owns: an owner can ALTER or DROP them whatever the
/// grants say, so a shared database should use a non-owner role for ColdQuery.
const OWNED_TABLES: &str = "SELECT count(*) FROM pg_tables WHERE tableowner = current_user \
     AND schemaname NOT IN ('pg_catalog', 'information_schema', 'coldquery')";

/// Warn loudly at start-up when the role is a superuser, bypasses RLS, or owns tables
/// (contract §5 rule 7). Waits for the database, at most a minute.
pub async fn warn_about_privileges(pool: &sqlx::PgPool) {
    for _ in 0..12 {
        let role = sqlx::query(ROLE_QUERY).fetch_one(pool).await;
        let owned: Result<i64, _> = sqlx::query_scalar(OWNED_TABLES).fetch_one(pool).await;
        match (role, owned) {
            (Ok(row), Ok(owned)) => {
                let user: String = row.get(0);
                if row.get::<bool, _>(1) {
                    tracing::warn!(role = %user, "the database role is a SUPERUSER: ColdQuery's guards are only as strong as the role; use a least-privilege role (README, Security model)");
                }
                if row.get::<bool, _>(2) {
                    tracing::warn!(role = %user, "the database role has BYPASSRLS: row-level security policies do not apply to it");
                }
                if owned > 0 {
                    tracing::warn!(role = %user, tables = owned, "the database role owns tables: an owner can ALTER or DROP them regardless of grants; consider a non-owner role");
                }
                return;
            }
            _ => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
}

/// One caller role as the catalog sees it: whether it exists, whether the login role may
/// switch to it, and the attributes that defeat grants and row-level security. `$2` is the
/// privilege `pg_has_role` checks: `SET` on PostgreSQL 16 and later (where membership can be
/// granted without it), `MEMBER` before.
const CALLER_ROLE_QUERY: &str = "SELECT r.oid IS NOT NULL, \
     r.oid IS NOT NULL AND pg_has_role(current_user, r.oid, $2), \
     coalesce(r.rolsuper, false), coalesce(r.rolbypassrls, false) \
     FROM (SELECT $1::text AS name) n LEFT JOIN pg_roles r ON r.rolname = n.name";

/// How `coldquery check` grades a line of the caller-role report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grade {
    Ok,
    Warn,
    Fail,
}

/// Each caller role (`who` gets it: a token, a Tailscale login, the default role) as seen from
/// the login role `login`: exists, may be assumed (`SET ROLE`), superuser or BYPASSRLS. A
/// `Fail` line means the callers of that role would get an error on every call.
async fn role_report(
    conn: &mut sqlx::PgConnection,
    login: &str,
    roles: &[(String, crate::db::roles::Role)],
) -> Vec<(Grade, String)> {
    let mut out = Vec::new();
    if roles.is_empty() {
        return out;
    }
    let version: i32 = match sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            let e = crate::error::ToolError::from_sqlx(e, 0);
            out.push((Grade::Fail, format!("caller roles: {e}")));
            return out;
        }
    };
    let privilege = if version >= 160000 { "SET" } else { "MEMBER" };
    for (who, role) in roles {
        let name = role.name();
        let row = sqlx::query(CALLER_ROLE_QUERY)
            .bind(name)
            .bind(privilege)
            .fetch_one(&mut *conn)
            .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let e = crate::error::ToolError::from_sqlx(e, 0);
                out.push((Grade::Fail, format!("role {name} ({who}): {e}")));
                continue;
            }
        };
        let (exists, grantable, superuser, bypass): (bool, bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if !exists {
            out.push((
                Grade::Fail,
                format!(
                    "role {name} ({who}) does not exist: CREATE ROLE {role} NOLOGIN; GRANT {role} TO {login}"
                ),
            ));
            continue;
        }
        if !grantable {
            out.push((
                Grade::Fail,
                format!(
                    "role {name} ({who}): the login role {login} may not SET ROLE to it: GRANT {role} TO {login}"
                ),
            ));
            continue;
        }
        out.push((
            Grade::Ok,
            format!("role {name} ({who}): exists, {login} may SET ROLE to it"),
        ));
        if superuser {
            out.push((
                Grade::Warn,
                format!(
                    "role {name} ({who}) is a SUPERUSER: grants and row-level security do not bind it"
                ),
            ));
        }
        if bypass {
            out.push((
                Grade::Warn,
                format!(
                    "role {name} ({who}) has BYPASSRLS: row-level security does not apply to it"
                ),
            ));
        }
    }
    out
}

/// At start-up, warn about each caller role that is missing, cannot be assumed, is a
/// superuser or bypasses RLS: its callers' calls would fail, or not be bound by RLS.
pub async fn warn_about_caller_roles(
    pool: &sqlx::PgPool,
    roles: &[(String, crate::db::roles::Role)],
) {
    if roles.is_empty() {
        return;
    }
    let Ok(mut conn) = pool.acquire().await else {
        return;
    };
    let login: String = match sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *conn)
        .await
    {
        Ok(l) => l,
        Err(_) => return,
    };
    for (grade, line) in role_report(&mut conn, &login, roles).await {
        match grade {
            Grade::Ok => tracing::info!("caller {line}"),
            Grade::Warn => tracing::warn!("caller {line}"),
            Grade::Fail => tracing::warn!(
                "caller {line}; calls of its callers fail until this is fixed (coldquery check)"
            ),
        }
    }
}

/// Run the check and return the process exit code.
pub async fn run(config: &Config) -> ExitCode {
    eprintln!("coldquery {} check", env!("CARGO_PKG_VERSION"));
    eprintln!("  database: {}", config.database_label());
    let options = match config.connect_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("  FAIL configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let auth = match crate::http::auth::AuthConfig::from_config(config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("  FAIL configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let connect = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::PgConnection::connect_with(&options),
    )
    .await;
    let mut conn = match connect {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!(
                "  FAIL connect: {}",
                crate::error::ToolError::from_sqlx(e, 0)
            );
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("  FAIL connect: no answer within 5s");
            return ExitCode::FAILURE;
        }
    };
    match sqlx::query(ROLE_QUERY).fetch_one(&mut conn).await {
        Ok(row) => {
            let user: String = row.get(0);
            let superuser: bool = row.get(1);
            let bypass: bool = row.get(2);
            let version: String = row.get(3);
            let db: String = row.get(4);
            eprintln!("  ok   connected to PostgreSQL {version}, database {db}, role {user}");
            if superuser {
                eprintln!(
                    "  WARN role {user} is a SUPERUSER: the server's guards are only as strong as this role; use a least-privilege role (see README)"
                );
            }
            if bypass {
                eprintln!(
                    "  WARN role {user} has BYPASSRLS: row-level security does not apply to it"
                );
            }
            let mut roles_ok = true;
            for (grade, line) in role_report(&mut conn, &user, &auth.mapped_roles()).await {
                let tag = match grade {
                    Grade::Ok => "ok  ",
                    Grade::Warn => "WARN",
                    Grade::Fail => "FAIL",
                };
                roles_ok &= grade != Grade::Fail;
                eprintln!("  {tag} {line}");
            }
            let _ = conn.close().await;
            if !roles_ok {
                eprintln!("  result: NOT usable (a caller role cannot be used; see above)");
                return ExitCode::FAILURE;
            }
            eprintln!("  result: usable");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "  FAIL role query: {}",
                crate::error::ToolError::from_sqlx(e, 0)
            );
            ExitCode::FAILURE
        }
    }
}

/// `coldquery health`: ask the running server's `/health` on this machine and exit 0 on 200,
/// 1 otherwise. Made for container healthchecks, so the image needs no curl or wget.
pub async fn health(config: &Config) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut addr = config.listen;
    // A wildcard listen address is reached through loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::with_capacity(1024);
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(buf)) => {
            let text = String::from_utf8_lossy(&buf);
            let ok = text.starts_with("HTTP/1.1 200");
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
            eprintln!("{body}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(Err(e)) => {
            eprintln!("health: cannot reach {addr}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("health: no answer from {addr} within 3s");
            ExitCode::FAILURE
        }
    }
}
