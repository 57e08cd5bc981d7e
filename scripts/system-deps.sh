#!/usr/bin/env bash
# Install and start the system services the tests need, if they are missing. Idempotent.
set -euo pipefail
need_apt=()
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
# Email intake tests poll a real IMAP server on loopback.
command -v dovecot >/dev/null || need_apt+=(dovecot-imapd)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing system packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
fi
# PostgreSQL on 127.0.0.1:5432 with trust auth, as the test fixtures expect.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  cluster=$(ls /etc/postgresql | head -n1)
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
