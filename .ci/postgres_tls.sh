#!/usr/bin/env bash
# Turns on TLS in the local PostgreSQL cluster with a server certificate
# from a test CA, so the database TLS tests (tests/tests/e2e/postgres_tls.rs:
# sslmode=verify-full) run. Prints the CA's path: .ci/run exports it as
# ROLLCALL_TEST_PG_TLS_ROOT. Runs as root; idempotent (keeps an existing CA).
#   ROLLCALL_TEST_PG_TLS_ROOT=$(bash .ci/postgres_tls.sh)
set -euo pipefail
url="${ROLLCALL_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
dir=/var/lib/postgresql/rollcall-test-tls
mkdir -p "$dir"
cd "$dir"
if [ ! -s ca.pem ] || [ ! -s server.pem ] || [ ! -s server.key ]; then
    # The CA: P-256, a v3 CA certificate (rustls checks the extensions).
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 3650 -subj "/CN=rollcall test database CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        >/dev/null 2>&1
    # The server: names what the tests connect to, 127.0.0.1 and localhost.
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=localhost" >/dev/null 2>&1
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile server.ext -out server.pem >/dev/null 2>&1
    rm -f server.csr server.ext ca.srl
fi
# PostgreSQL refuses a key others can read.
chown postgres:postgres server.key server.pem
chmod 0600 server.key ca.key
chmod 0644 ca.pem server.pem
psql "$url" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER SYSTEM SET ssl_cert_file = '$dir/server.pem';
ALTER SYSTEM SET ssl_key_file = '$dir/server.key';
ALTER SYSTEM SET ssl = on;
SELECT pg_reload_conf();
SQL
# The reload is asynchronous: wait until the server presents the new certificate.
for _ in $(seq 1 50); do
    if [ "$(psql "$url" -Atc "SHOW ssl_cert_file")" = "$dir/server.pem" ]; then
        break
    fi
    sleep 0.1
done
echo "$dir/ca.pem"
