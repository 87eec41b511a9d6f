#!/usr/bin/env bash
# Services the test suite talks to over real connections: Redis at 127.0.0.1:6379.
# Starts it if it is not answering; installs it from Debian's packages when missing (root).
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 6379; then
  if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    else
      echo "NOTE: redis-server is missing and we are not root: install it to run the Redis tests" >&2
      exit 0
    fi
  fi
  mkdir -p /tmp/mpt-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/mpt-redis --logfile /tmp/mpt-redis/redis.log
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi
