#!/usr/bin/env bash
# Makes sure the services the tests use are running: PostgreSQL on 127.0.0.1:5432 and
# Redis on 127.0.0.1:6379. Installs them with apt-get when missing (as root), starts them
# when stopped. Idempotent; prints what it did.
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- 3<&-; }
apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "ensure-services: need root to install $*" >&2; return 1; fi
  if [ $apt_updated = 0 ]; then apt-get update -qq >/dev/null && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL
if port_open 5432; then
  echo "ensure-services: PostgreSQL is up on 127.0.0.1:5432"
else
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "ensure-services: installing PostgreSQL"
    apt_install postgresql || exit 1
  fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
    pg_createcluster "$ver" main >/dev/null
  fi
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  conf=/etc/postgresql/$ver/main
  # Trust on loopback, as the tests expect (a CI machine, never production).
  if ! grep -q "flotilla-ci" "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust # flotilla-ci\nhost all all ::1/128 trust # flotilla-ci\nlocal all all trust # flotilla-ci' "$conf/pg_hba.conf"
  fi
  echo "ensure-services: starting PostgreSQL $ver"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || pg_ctlcluster "$ver" main start
  for _ in $(seq 1 50); do port_open 5432 && break; sleep 0.2; done
  port_open 5432 || { echo "ensure-services: PostgreSQL did not come up on 5432" >&2; exit 1; }
fi

# Redis / Valkey
if port_open 6379; then
  echo "ensure-services: Redis is up on 127.0.0.1:6379"
else
  if ! have redis-server && ! have valkey-server; then
    echo "ensure-services: installing redis-server"
    apt_install redis-server || exit 1
  fi
  server=$(command -v valkey-server || command -v redis-server)
  mkdir -p /var/lib/redis /var/log/redis
  echo "ensure-services: starting $server"
  "$server" --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do port_open 6379 && break; sleep 0.2; done
  port_open 6379 || { echo "ensure-services: Redis did not come up on 6379" >&2; exit 1; }
fi
exit 0
