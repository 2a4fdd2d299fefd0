#!/usr/bin/env bash
# Install (Debian's postgresql) and start a local PostgreSQL on 127.0.0.1, create a test role and
# database, and print the SQLAlchemy URL for NEXUS_TEST_POSTGRES_URL. Needs root (CI runs as root); as root,
# any failure (install, start, role, database) exits non-zero, so that CI fails instead of skipping PostgreSQL.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "start-postgres: not root, skipping PostgreSQL (tests will run on SQLite only)" >&2
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
clusters="$(pg_lsclusters -h)"
[ -n "$clusters" ] || { echo "start-postgres: postgresql is installed but has no cluster" >&2; exit 1; }
read -r ver name port status _ <<< "$(head -n 1 <<< "$clusters")"
if [ "$status" != online ]; then
  pg_ctlcluster "$ver" "$name" start >&2 || { echo "start-postgres: cluster $ver/$name did not start" >&2; exit 1; }
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" \
  || { echo "start-postgres: PostgreSQL $ver/$name is not accepting connections on 127.0.0.1:$port" >&2; exit 1; }
runuser -u postgres -- psql -q -p "$port" -c "DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nexus_test') THEN
    CREATE ROLE nexus_test LOGIN SUPERUSER PASSWORD 'nexus_test';
  END IF; END\$\$;" >&2
runuser -u postgres -- psql -q -p "$port" -tc "SELECT 1 FROM pg_database WHERE datname = 'nexus_test'" | grep -q 1 \
  || runuser -u postgres -- createdb -p "$port" -O nexus_test nexus_test >&2
echo "postgresql+psycopg://nexus_test:nexus_test@127.0.0.1:${port}/nexus_test"
