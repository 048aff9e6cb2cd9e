#!/bin/sh
# Creates the role ColdQuery logs in as, in the bundled PostgreSQL (compose.yaml).
#
# The official postgres image runs /docker-entrypoint-initdb.d/* once, when it initialises an
# empty data volume; later changes to .env do not re-run it (see deploy/README.md for the SQL to
# change a running database). The role is not a superuser and cannot bypass row-level security,
# create databases or roles: ColdQuery warns loudly at start-up about roles that can.
#
#   COLDQUERY_DB_USER      role name [coldquery]
#   COLDQUERY_DB_PASSWORD  its password (required)
#   COLDQUERY_DB_ACCESS    what it may do in schema public of $POSTGRES_DB [write]:
#                            read   SELECT
#                            write  read + INSERT/UPDATE/DELETE and sequences
#                            ddl    write + CREATE in schema public (tables it creates are its
#                                   own, which `coldquery check` reports)
#
# In every case the role owns the schema `coldquery`, where ColdQuery keeps its audit log.
set -eu

: "${COLDQUERY_DB_PASSWORD:?set COLDQUERY_DB_PASSWORD in .env}"
role="${COLDQUERY_DB_USER:-coldquery}"
access="${COLDQUERY_DB_ACCESS:-write}"

case "$access" in
  read)  can_write=false; can_ddl=false ;;
  write) can_write=true;  can_ddl=false ;;
  ddl)   can_write=true;  can_ddl=true ;;
  *) echo "COLDQUERY_DB_ACCESS must be read, write or ddl, not '$access'" >&2; exit 1 ;;
esac

# psql quotes the values itself (:"identifier", :'literal'): nothing from .env is pasted into SQL.
# ALTER DEFAULT PRIVILEGES covers tables that $POSTGRES_USER (the admin) creates later.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v role="$role" -v pw="$COLDQUERY_DB_PASSWORD" -v db="$POSTGRES_DB" \
  -v can_write="$can_write" -v can_ddl="$can_ddl" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
CREATE SCHEMA coldquery AUTHORIZATION :"role";

GRANT USAGE ON SCHEMA public TO :"role";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO :"role";

\if :can_write
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT INSERT, UPDATE, DELETE ON TABLES TO :"role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"role";
\endif

\if :can_ddl
GRANT CREATE ON SCHEMA public TO :"role";
\endif
SQL

echo "coldquery-initdb: created role \"$role\" ($access) in database \"$POSTGRES_DB\""
