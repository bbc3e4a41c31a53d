#!/bin/sh
# Start PostgreSQL on the shared file system mounted by disk1 (/srv/pgdata).
# Runs as root, in its own session, with the CLP_* variables of docs/scripts.md.
# Exit 0 only when the server accepts connections (pg_ctl -w), so the group is
# Online when the database is.
set -eu

PGBIN=/usr/lib/postgresql/15/bin      # adjust to the installed major version
PGDATA=/srv/pgdata/data
PGUSER=postgres

echo "postgres start: event=${CLP_EVENT:-?} server=${CLP_SERVER_LOCAL:-?} group=${CLP_GROUPNAME:-?}"

if [ ! -f "$PGDATA/PG_VERSION" ]; then
    echo "postgres start: $PGDATA holds no cluster (is disk1 mounted?)" >&2
    exit 1
fi

# A postmaster.pid left by a server that crashed is PostgreSQL's own business: it
# removes a lock file whose process does not run here.
exec runuser -u "$PGUSER" -- "$PGBIN/pg_ctl" start -D "$PGDATA" -w -t 240 -l /var/log/postgresql/understudy-pg.log
