#!/usr/bin/env bash
# Services the suite and the stack talk to over real connections: Redis at 127.0.0.1:6379 and
# PostgreSQL at 127.0.0.1:5432 with a login `mpt` (password `mpt`, may create databases) that
# owns a database `mpt`. Starts what is not answering; installs it from Debian's packages when
# missing (as root). Safe to run again.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "NOTE: $* missing and we are not root: install it to run the service tests" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server || exit 0
  mkdir -p /tmp/mpt-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/mpt-redis --logfile /tmp/mpt-redis/redis.log
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi

if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql || exit 0
  fi
  if [ "$(id -u)" -eq 0 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
  else
    echo "NOTE: PostgreSQL is not running and we are not root: start it to run the service tests" >&2
    exit 0
  fi
fi

# The login and database the catalog uses by default (DEFAULT_DATABASE_URL).
if [ "$(id -u)" -eq 0 ] && command -v psql >/dev/null; then
  as_pg() { runuser -u postgres -- "$@"; }
  if ! as_pg psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'mpt'" | grep -q 1; then
    as_pg psql -q -c "CREATE ROLE mpt LOGIN PASSWORD 'mpt' CREATEDB"
  fi
  if ! as_pg psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'mpt'" | grep -q 1; then
    as_pg psql -q -c "CREATE DATABASE mpt OWNER mpt"
  fi
fi
