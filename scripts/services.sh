#!/usr/bin/env bash
# Make sure the services the integration tests talk to are reachable: PostgreSQL on
# 127.0.0.1:5432, Redis on 127.0.0.1:6379, and Debian's Chromium for browser tests.
# Starts them when they are installed but stopped, and prints what to install otherwise.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 6379; then
    if command -v redis-server >/dev/null; then
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    else
        echo "Redis is not running on 127.0.0.1:6379 and redis-server is not installed (apt-get install redis-server)" >&2
        exit 1
    fi
fi
if ! port_open 5432; then
    if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    else
        echo "PostgreSQL is not running on 127.0.0.1:5432 (apt-get install postgresql, trust auth for 127.0.0.1)" >&2
        exit 1
    fi
fi
if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "Debian's chromium is missing; browser tests will be skipped (apt-get install chromium)" >&2
    fi
fi
