#!/usr/bin/env bash
# Install (Debian's postgresql) and start a local PostgreSQL on 127.0.0.1, create a test role and
# database, and print the SQLAlchemy URL for NEXUS_TEST_POSTGRES_URL. Needs root (CI runs as root).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "start-postgres: not root, skipping PostgreSQL (tests will run on SQLite only)" >&2
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
read -r ver name port _ < <(pg_lsclusters -h | head -n 1)
pg_ctlcluster "$ver" "$name" start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
runuser -u postgres -- psql -q -p "$port" -c "DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nexus_test') THEN
    CREATE ROLE nexus_test LOGIN SUPERUSER PASSWORD 'nexus_test';
  END IF; END\$\$;" >&2
runuser -u postgres -- psql -q -p "$port" -tc "SELECT 1 FROM pg_database WHERE datname = 'nexus_test'" | grep -q 1 \
  || runuser -u postgres -- createdb -p "$port" -O nexus_test nexus_test >&2
echo "postgresql+psycopg://nexus_test:nexus_test@127.0.0.1:${port}/nexus_test"
