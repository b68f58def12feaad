#!/bin/sh
# Start MariaDB; on first start create the database and its user.
#   MARIADB_DATABASE        database to create (default: app)
#   MARIADB_USER            user to create with every right on that database (default: app)
#   MARIADB_PASSWORD_FILE   file holding that user's password, e.g. a Compose secret in /run/secrets
# The password is read from the file and never printed or passed on a command line.
set -eu

datadir=/var/lib/mysql
init_socket=/run/mysqld/init.sock

if [ ! -d "$datadir/mysql" ]; then
    database=${MARIADB_DATABASE:-app}
    user=${MARIADB_USER:-app}
    password_file=${MARIADB_PASSWORD_FILE:?set MARIADB_PASSWORD_FILE to a file with the password}
    [ -r "$password_file" ] || { echo "labkit-mariadb: cannot read $password_file" >&2; exit 1; }
    echo "labkit-mariadb: first start, creating database '$database' and user '$user'"
    mariadb-install-db --user="$(id -un)" --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=socket >/dev/null
    # A private socket and no TCP while setting up, so the healthcheck (default socket) and the apps
    # only see the server once the database and user exist.
    mariadbd --skip-networking --socket="$init_socket" &
    pid=$!
    tries=0
    until mariadb-admin --socket="$init_socket" ping --silent >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || { echo "labkit-mariadb: server did not start" >&2; exit 1; }
        sleep 0.5
    done
    escaped=$(sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g" "$password_file" | tr -d '\n')
    mariadb --socket="$init_socket" --user="$(id -un)" <<SQL
CREATE DATABASE IF NOT EXISTS \`$database\`;
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$escaped';
GRANT ALL PRIVILEGES ON \`$database\`.* TO '$user'@'%';
FLUSH PRIVILEGES;
SQL
    kill "$pid"
    wait "$pid" || true
    echo "labkit-mariadb: ready"
fi

exec mariadbd "$@"
