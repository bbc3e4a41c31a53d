#!/bin/sh
# Stop PostgreSQL before disk1 is unmounted. A fast shutdown (rolls back open
# transactions); falls back to an immediate one so that the unmount never waits.
set -u

PGBIN=/usr/lib/postgresql/15/bin      # the same as in start.sh
PGDATA=/srv/pgdata/data
PGUSER=postgres

echo "postgres stop: factor=${CLP_FACTOR:-} lastaction=${CLP_LASTACTION:-}"

if ! runuser -u "$PGUSER" -- "$PGBIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; then
    echo "postgres stop: not running"
    exit 0
fi

if runuser -u "$PGUSER" -- "$PGBIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 120; then
    exit 0
fi
echo "postgres stop: fast shutdown did not finish, trying immediate" >&2
runuser -u "$PGUSER" -- "$PGBIN/pg_ctl" stop -D "$PGDATA" -m immediate -w -t 60
