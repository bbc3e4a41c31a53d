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

# A crash of the other server leaves its postmaster.pid on the shared disk; the
# disk is ours now (disk1 is active here), so a stale pid file is safe to remove
# when no local process owns it.
if [ -f "$PGDATA/postmaster.pid" ]; then
    pid=$(head -n 1 "$PGDATA/postmaster.pid")
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "postgres start: removing stale postmaster.pid (pid $pid)"
        rm -f "$PGDATA/postmaster.pid"
    fi
fi

exec runuser -u "$PGUSER" -- "$PGBIN/pg_ctl" start -D "$PGDATA" -w -t 240 -l "$PGDATA/../postgresql.log"
