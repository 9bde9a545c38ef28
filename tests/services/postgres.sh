#!/bin/sh
# PostgreSQL for the clinic server's tests, idempotently:
#   1. Debian's postgresql, installed when missing;
#   2. a cluster, created when there is none, listening on 127.0.0.1 only, started;
#   3. a role onshi_test (LOGIN CREATEDB, a random password made here) and its database; the
#      role may signal backends, so that dropping a test database WITH (FORCE) can end an
#      autovacuum worker that happens to be in it.
# The connection URL goes to $ONSHI_TEST_PG_URL_FILE (default /run/onshi-test-postgres.url);
# the tests read it from there (or from $ONSHI_TEST_DATABASE_URL). Run as root.
set -eu

url_file=${ONSHI_TEST_PG_URL_FILE:-/run/onshi-test-postgres.url}
role=onshi_test
port=5432

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends postgresql
fi

version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if [ -z "$(pg_lsclusters -h | awk -v v="$version" '$1 == v')" ]; then
    pg_createcluster "$version" main -p "$port" -- --auth-local=peer --auth-host=scram-sha-256
fi
cluster_port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
conf_dir=/etc/postgresql/$version/main/conf.d
mkdir -p "$conf_dir"
printf "listen_addresses = '127.0.0.1'\n" > "$conf_dir/onshi-test.conf"
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    pg_ctlcluster "$version" main start
fi

# wait until it answers
i=0
until su postgres -c "psql -p $cluster_port -tAc 'SELECT 1'" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 50 ]; then
        echo "PostgreSQL did not start" >&2
        exit 1
    fi
    sleep 0.2
done

password=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
exists=$(su postgres -c "psql -p $cluster_port -tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$role'\"")
if [ "$exists" = "1" ]; then
    verb=ALTER
else
    verb=CREATE
fi
su postgres -c "psql -p $cluster_port -q -v ON_ERROR_STOP=1" <<SQL
$verb ROLE $role LOGIN CREATEDB PASSWORD '$password';
GRANT pg_signal_backend TO $role;
SQL
if [ "$(su postgres -c "psql -p $cluster_port -tAc \"SELECT 1 FROM pg_database WHERE datname = '$role'\"")" != "1" ]; then
    su postgres -c "createdb -p $cluster_port -O $role $role"
fi

umask 077
printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' "$role" "$password" "$cluster_port" "$role" > "$url_file"
echo "PostgreSQL $version on 127.0.0.1:$cluster_port; test URL in $url_file"
