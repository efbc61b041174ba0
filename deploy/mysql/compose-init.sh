# shellcheck shell=sh
# Compose's MySQL runs this once, when its data volume is new (docker-entrypoint-initdb.d; the
# entrypoint sources it, after initial_data.sql): the users of users.sql, with the passwords the
# compose file gives the db service. An existing volume is not touched; to add the users to one:
#   docker compose exec db sh /docker-entrypoint-initdb.d/users.sh
# The passwords go inside SQL quotes: refuse the two characters that would need escaping.
for v in "$BLOG_APP_DB_PASSWORD" "$BLOG_MIGRATE_DB_PASSWORD" "$BLOG_MONITOR_DB_PASSWORD"; do
  case "$v" in
    *\'* | *\\*) echo "compose-init.sh: a BLOG_*_DB_PASSWORD contains ' or \\" >&2; exit 1 ;;
  esac
done
# Sourced by the entrypoint: its docker_process_sql (root over the socket). Run by hand: mysql.
if command -v docker_process_sql >/dev/null 2>&1; then
  blog_sql() { docker_process_sql; }
else
  blog_sql() { mysql --protocol=socket -uroot --password="$MYSQL_ROOT_PASSWORD"; }
fi
{
  printf "SET @blog_app_password = '%s', @blog_migrate_password = '%s', @blog_monitor_password = '%s';\n" \
    "$BLOG_APP_DB_PASSWORD" "$BLOG_MIGRATE_DB_PASSWORD" "$BLOG_MONITOR_DB_PASSWORD"
  cat /etc/blog/users.sql
} | blog_sql
