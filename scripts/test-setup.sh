#!/usr/bin/env bash
# Makes sure what the test suite talks to is there: Postgres on 127.0.0.1:5432 and headless
# Chromium for the browser tests. Fails with a message that says how to fix it.
set -euo pipefail

pg_host=${BACKLINE_TEST_PG_HOST:-127.0.0.1}
pg_port=${BACKLINE_TEST_PG_PORT:-5432}

pg_up() { pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; }

if ! pg_up; then
  echo "test-setup: Postgres is not answering on $pg_host:$pg_port; starting the local cluster"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  if ! pg_up; then
    echo "test-setup: ERROR: Postgres is still not reachable on $pg_host:$pg_port." >&2
    echo "  Start it (e.g. 'pg_ctlcluster --skip-systemctl-redirect 15 main start') or point" >&2
    echo "  BACKLINE_TEST_PG_HOST / BACKLINE_TEST_PG_PORT at a server with trust auth for 'postgres'." >&2
    exit 1
  fi
fi
echo "test-setup: Postgres answers on $pg_host:$pg_port"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing Debian chromium for the browser tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "test-setup: ERROR: chromium is missing; install Debian's 'chromium' package (as root:" >&2
    echo "  apt-get install -y chromium) so the browser tests can run." >&2
    exit 1
  fi
fi
echo "test-setup: $(chromium --version 2>/dev/null | head -n1)"
