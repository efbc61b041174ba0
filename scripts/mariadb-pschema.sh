#!/usr/bin/env bash
# A throwaway MariaDB with performance_schema and the statement history on (what MySQL 8.4 has by
# default), for `npm run bench` runs that should show the database's own time per statement:
#   bash scripts/mariadb-pschema.sh 3307            # prints the admin URL; stop with: kill $(cat DIR/mysqld.pid)
#   npm run bench -- --admin-url mysql://root@127.0.0.1:3307 ...
# Needs the MariaDB server package (mariadbd, mariadb-install-db). Data lives in a temp dir.
set -euo pipefail
port=${1:-3307}
dir=$(mktemp -d /tmp/blog-mariadb-pschema.XXXXXX)
user=(); [ "$(id -u)" = 0 ] && user=(--user=root)
mariadb-install-db --no-defaults --datadir="$dir/data" "${user[@]}" --auth-root-authentication-method=normal --skip-test-db >/dev/null
# setsid + nohup: a server of its own, detached (start-stop-daemon would see the system's mariadbd).
setsid nohup mariadbd --no-defaults --datadir="$dir/data" \
  --port="$port" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
  --log-error="$dir/error.log" --skip-name-resolve --max-connections=300 "${user[@]}" \
  --performance-schema=ON --performance-schema-consumer-events-statements-current=ON \
  --performance-schema-consumer-events-statements-history=ON --performance-schema-consumer-events-statements-history-long=ON \
  >/dev/null 2>&1 < /dev/null &
for _ in $(seq 1 60); do mysqladmin --protocol=tcp -h127.0.0.1 -P"$port" -uroot ping >/dev/null 2>&1 && break; sleep 0.5; done
mysqladmin --protocol=tcp -h127.0.0.1 -P"$port" -uroot ping >/dev/null
echo "mysql://root@127.0.0.1:$port   (data and pid file in $dir)"
