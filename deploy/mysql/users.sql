-- The database users of blog_app, each with only what its job needs:
--   blog_migrate  schema changes and rows on the app's database: the migrations (Kubernetes: the
--                 Job in deploy/kubernetes/migrate; Compose: the one-shot `migrate` service)
--   blog_app      rows only (SELECT, INSERT, UPDATE, DELETE), plus the performance_schema tables
--                 the per-span DB server timings read; the app runs with DB_MIGRATE_ON_START=false
--   blog_monitor  the collector's mysql receiver: server status and performance_schema, no rows
-- Run once as an administrator, after setting the passwords in the same session (the mysql
-- client keeps lines with PASSWORD out of its history):
--   mysql -h <host> -u <admin> -p
--   mysql> SET @blog_app_password = '...', @blog_migrate_password = '...', @blog_monitor_password = '...';
--   mysql> SOURCE deploy/mysql/users.sql
-- Optional, before SOURCE: @blog_database (default blog_db), @blog_host (default '%', the hosts
-- the users may connect from), @blog_app_user, @blog_migrate_user, @blog_monitor_user; leave
-- @blog_monitor_password unset to skip the monitoring user. Running it again resets the three
-- users' passwords and grants to exactly these. Compose runs it at the database's first start
-- (deploy/mysql/compose-init.sh); test/app/scale/db-users.test.ts runs it against MariaDB.

SET @db = CONCAT('`', REPLACE(COALESCE(@blog_database, 'blog_db'), '`', '``'), '`');
SET @host = QUOTE(COALESCE(@blog_host, '%'));
SET @app = CONCAT(QUOTE(COALESCE(@blog_app_user, 'blog_app')), '@', @host);
SET @migrate = CONCAT(QUOTE(COALESCE(@blog_migrate_user, 'blog_migrate')), '@', @host);
SET @monitor = CONCAT(QUOTE(COALESCE(@blog_monitor_user, 'blog_monitor')), '@', @host);

-- A missing password fails here with "Unknown column '<what to do>'" (SIGNAL needs a procedure),
-- and every statement below does nothing (the mysql client goes on after an error in SOURCE).
SET @ok = COALESCE(@blog_app_password, '') <> '' AND COALESCE(@blog_migrate_password, '') <> '';
SET @s = IF(COALESCE(@blog_app_password, '') = '', 'SELECT `Set @blog_app_password before running deploy/mysql/users.sql`', 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(COALESCE(@blog_migrate_password, '') = '', 'SELECT `Set @blog_migrate_password before running deploy/mysql/users.sql`', 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;

-- The migrations: tables, indexes, foreign keys and the rows they move; CREATE on the database
-- also lets `db.js migrate` create it when it is missing.
SET @s = IF(@ok, CONCAT('CREATE USER IF NOT EXISTS ', @migrate, ' IDENTIFIED BY ', QUOTE(@blog_migrate_password)), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('ALTER USER ', @migrate, ' IDENTIFIED BY ', QUOTE(@blog_migrate_password)), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('REVOKE ALL PRIVILEGES, GRANT OPTION FROM ', @migrate), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES, LOCK TABLES ON ', @db, '.* TO ', @migrate), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;

-- The app: rows only. A schema change it tried would be refused.
SET @s = IF(@ok, CONCAT('CREATE USER IF NOT EXISTS ', @app, ' IDENTIFIED BY ', QUOTE(@blog_app_password)), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('ALTER USER ', @app, ' IDENTIFIED BY ', QUOTE(@blog_app_password)), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('REVOKE ALL PRIVILEGES, GRANT OPTION FROM ', @app), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('GRANT SELECT, INSERT, UPDATE, DELETE ON ', @db, '.* TO ', @app), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
-- DB_SERVER_TIMINGS: the statement history of the app's own connections, joined through threads.
SET @s = IF(@ok, CONCAT('GRANT SELECT ON performance_schema.setup_consumers TO ', @app), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('GRANT SELECT ON performance_schema.threads TO ', @app), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('GRANT SELECT ON performance_schema.events_statements_history TO ', @app), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok, CONCAT('GRANT SELECT ON performance_schema.events_statements_history_long TO ', @app), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;

-- The collector's mysql receiver (SHOW GLOBAL STATUS, InnoDB metrics, statement digests).
SET @s = IF(@ok AND COALESCE(@blog_monitor_password, '') <> '', CONCAT('CREATE USER IF NOT EXISTS ', @monitor, ' IDENTIFIED BY ', QUOTE(@blog_monitor_password)), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok AND COALESCE(@blog_monitor_password, '') <> '', CONCAT('ALTER USER ', @monitor, ' IDENTIFIED BY ', QUOTE(@blog_monitor_password)), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok AND COALESCE(@blog_monitor_password, '') <> '', CONCAT('REVOKE ALL PRIVILEGES, GRANT OPTION FROM ', @monitor), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok AND COALESCE(@blog_monitor_password, '') <> '', CONCAT('GRANT PROCESS, REPLICATION CLIENT ON *.* TO ', @monitor), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;
SET @s = IF(@ok AND COALESCE(@blog_monitor_password, '') <> '', CONCAT('GRANT SELECT ON performance_schema.* TO ', @monitor), 'DO 0');
PREPARE stmt FROM @s; EXECUTE stmt;

DEALLOCATE PREPARE stmt;

