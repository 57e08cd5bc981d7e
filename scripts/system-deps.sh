#!/usr/bin/env bash
# Install, configure and start the system services the tests and benches drive for real, on a
# machine that has never seen the project. Idempotent: a second run changes nothing.
#   PostgreSQL  on 127.0.0.1:5432, trust authentication for loopback TCP (the fixtures connect
#               as the postgres superuser without a password and create their own databases)
#   dovecot     the IMAP tests start their own instance on a free port; only the binary is needed
#   Kafka       Apache Kafka's jars from Maven Central (scripts/kafka-jars.sh, cached per version);
#               the test fixtures start a broker of their own on free ports
set -euo pipefail

log() { echo "system-deps: $*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "missing system packages: $* (run as root or install them)"
    exit 1
  fi
  if [ -z "${_apt_updated:-}" ]; then
    apt-get update -qq
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The server binary, not just the client: postgresql-common (which ships pg_ctlcluster) comes
# with psql alone on some images.
pg_server_bin() { ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n1; }

need=()
[ -n "$(pg_server_bin)" ] || need+=(postgresql)
command -v dovecot >/dev/null || need+=(dovecot-imapd)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt_install "${need[@]}"
fi

pg_bin=$(dirname "$(pg_server_bin)")
version=$(basename "$(dirname "$pg_bin")")

# A cluster to run: the packaged one if the package made it, else a fresh one.
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
  log "creating PostgreSQL $version cluster main"
  pg_createcluster "$version" main >/dev/null
fi
conf_dir=/etc/postgresql/$version/main
hba=$conf_dir/pg_hba.conf

# Trust on loopback TCP, placed first so it wins over the packaged scram lines. Tests only: this
# cluster listens on 127.0.0.1 alone (listen_addresses below), never on a routable address.
marker="# deskstream: trust loopback for the test fixtures"
changed=0
if ! grep -qF "$marker" "$hba"; then
  tmp=$(mktemp)
  {
    echo "$marker"
    echo "host    all    all    127.0.0.1/32    trust"
    echo "host    all    all    ::1/128         trust"
    cat "$hba"
  } >"$tmp"
  cat "$tmp" >"$hba"
  rm -f "$tmp"
  changed=1
fi
tuning=$conf_dir/conf.d/deskstream.conf
if [ ! -f "$tuning" ]; then
  # Loopback only; enough connections for the multi-process tests and benches.
  cat >"$tuning" <<'EOF'
listen_addresses = '127.0.0.1'
port = 5432
max_connections = 300
EOF
  changed=1
fi

status=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}')
if [ "$status" = online ]; then
  if [ "$changed" = 1 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  fi
else
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p 5432 -q && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null \
  || { log "PostgreSQL on 127.0.0.1 does not accept the postgres user without a password"; exit 1; }

bash "$(dirname "$0")/kafka-jars.sh" >/dev/null
