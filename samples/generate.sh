#!/bin/bash
# Regenerate the misdirect real-traffic sample corpus from scratch.
#
# Run as root:  sudo bash samples/generate.sh
#
# Debian packages needed (installed with apt-get install -y if missing):
#   tshark wireshark-common tcpdump apache2 nginx curl nghttp2-client vsftpd
#   chromium libnss3-tools ethtool openssl iproute2 python3
#
# Everything runs inside two network namespaces created here (only their
# loopback exists, so no traffic can leave the machine):
#   misdirect-lo    : loopback with default MTU (65536) and default offloads
#   misdirect-1500  : loopback with MTU 1500 and tso/gso/gro off, so TCP
#                     segments are Ethernet-sized
# Certificates, server configs, logs and scratch captures live in a fresh
# temporary directory that is removed at the end.  Servers, clients and
# tcpdump are started by this script and stopped by PID; the namespaces are
# deleted on exit, also on failure.
set -euo pipefail

SAMPLES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GEN=$SAMPLES/gen
NS_LO=misdirect-lo
NS_MTU=misdirect-1500

if [ "$(id -u)" != 0 ]; then
    echo "generate.sh must run as root" >&2
    exit 1
fi

# ---------------------------------------------------------------- packages
PKGS=(tshark wireshark-common tcpdump apache2 nginx curl nghttp2-client vsftpd
      chromium libnss3-tools ethtool openssl iproute2 python3)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# ---------------------------------------------------------------- plumbing
WORK=$(mktemp -d /tmp/misdirect-samples.XXXXXX)
chmod 755 "$WORK"          # the servers' worker users must read docroots
PIDS=()

log() { printf '\n=== %s\n' "$*"; }

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    sleep 0.5
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    for ns in "$NS_LO" "$NS_MTU"; do
        if ip netns list | grep -qw "$ns"; then
            # anything still inside one of *our* namespaces was started by us
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns"
        fi
    done
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_ns() { # NAME MTU(or "")
    local ns=$1 mtu=$2
    if ip netns list | grep -qw "$ns"; then   # left over from an aborted run
        for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
    fi
    ip netns add "$ns"
    if [ -n "$mtu" ]; then
        ip netns exec "$ns" ip link set lo mtu "$mtu"
    fi
    ip netns exec "$ns" ip link set lo up
    if [ -n "$mtu" ]; then
        ip netns exec "$ns" ethtool -K lo tso off gso off gro off >/dev/null
    fi
}

# run NS cmd... in the background, remember its PID (ip netns exec execs the
# command, so $! is the server process itself)
bg() { # NS LOGFILE cmd...
    local ns=$1 logf=$2; shift 2
    ip netns exec "$ns" "$@" >"$logf" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

stop_pid() { # PID
    local pid=$1
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

wait_port() { # NS PORT
    local ns=$1 port=$2
    for _ in $(seq 100); do
        if ip netns exec "$ns" ss -Hltn "sport = :$port" | grep -q LISTEN; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on port $port in $ns" >&2
    return 1
}

# tcpdump: -s 0 full packets, -U flush per packet, -Z root so it can write
# into the root-owned work dir after dropping privileges.  --immediate-mode
# matters: without it TPACKET_V3 hands packets over in blocks (1 s timeout)
# and a SIGINT right after a short exchange can leave "0 packets captured".
start_capture() { # NS IFACE OUTFILE FILTER [extra tcpdump args...]
    local ns=$1 ifc=$2 out=$3 filter=$4; shift 4
    ip netns exec "$ns" tcpdump --immediate-mode -i "$ifc" -s 0 -U -Z root "$@" -w "$out" "$filter" 2>"$out.tcpdump.log" &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    for _ in $(seq 100); do
        grep -q "listening on" "$out.tcpdump.log" 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.3
}

stop_capture() {
    sleep 0.7   # let FIN/ACK exchanges reach the capture
    kill -INT "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
}

publish() { # SRC DEST-NAME
    install -m 644 "$1" "$SAMPLES/$2"
    echo "wrote samples/$2 ($(stat -c %s "$SAMPLES/$2") bytes)"
}

# ---------------------------------------------------------------- PKI
log "test CA and server certificates"
PKI=$WORK/pki
mkdir -p "$PKI"
(
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 \
        -keyout ca.key -out ca.crt -subj "/O=misdirect test/CN=misdirect test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    leaf() { # NAME CN SAN
        openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
            -subj "/O=misdirect test/CN=$2" 2>/dev/null
        cat >"$1.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=$3
EOF
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
            -days 365 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
        openssl verify -CAfile ca.crt "$1.crt" >/dev/null
    }
    leaf a a.example.test "DNS:a.example.test"
    leaf b b.example.test "DNS:b.example.test"
    leaf wild "*.example.test" "DNS:*.example.test,DNS:example.test"
)
chmod 644 "$PKI"/*.crt

# ---------------------------------------------------------------- content
WWW=$WORK/www
mkdir -p "$WWW/a" "$WWW/b" "$WWW/cgi-bin"
printf 'hello from a.example.test\n' >"$WWW/a/index.html"
printf 'hello from b.example.test\n' >"$WWW/b/index.html"
printf 'small text on a\n' >"$WWW/a/hello.txt"
printf 'small text on b\n' >"$WWW/b/hello.txt"
cat >"$WWW/a/page.html" <<'EOF'
<!DOCTYPE html>
<html><head><title>a page</title>
<script src="https://b.example.test:7443/b.js"></script>
</head><body><p id="a">served by a.example.test</p></body></html>
EOF
printf 'document.title = "b.js loaded from b.example.test";\n' >"$WWW/b/b.js"
# ~20 KB deterministic, incompressible-looking body
python3 - "$WWW/a/body20k.txt" <<'EOF'
import hashlib, sys
out, h, n = [], b"misdirect", 0
while sum(len(x) for x in out) < 20480:
    h = hashlib.sha256(h).digest()
    out.append(h.hex() + "\n")
open(sys.argv[1], "w").write("".join(out)[:20480])
EOF
install -m 755 "$GEN/chunked.cgi" "$WWW/cgi-bin/chunked"
chmod -R a+rX "$WWW"

# ---------------------------------------------------------------- apache
# apache_conf DIR PORTS-SPEC VHOST-SNIPPET  -> writes DIR/httpd.conf
apache_conf() {
    local d=$1 listen=$2 vhosts=$3
    mkdir -p "$d"
    cat >"$d/httpd.conf" <<EOF
ServerRoot "$d"
ServerName localhost
PidFile "$d/httpd.pid"
DefaultRuntimeDir "$d"
Mutex file:$d default
$listen
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule cgid_module /usr/lib/apache2/modules/mod_cgid.so
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so
User www-data
Group www-data
ErrorLog "$d/error.log"
LogLevel info
LogFormat "client=%a:%{remote}p sni=%{SSL_TLS_SNI}x tls=%{SSL_PROTOCOL}x vhost=%v host=%{Host}i proto=%H \"%r\" status=%>s bytes=%B" misdirect
CustomLog "$d/access.log" misdirect
TypesConfig /etc/mime.types
AddDefaultCharset utf-8
DirectoryIndex index.html
KeepAliveTimeout 5
ScriptSock "$d/cgid.sock"
ScriptAlias /cgi-bin/ "$WWW/cgi-bin/"
SSLSessionCache "shmcb:$d/ssl_scache(512000)"
SSLProtocol all -SSLv3
<Directory />
    Require all denied
</Directory>
<Directory "$WWW">
    Require all granted
</Directory>
$vhosts
EOF
}

start_apache() { # NS DIR PORT...
    local ns=$1 d=$2; shift 2
    /usr/sbin/apache2 -t -f "$d/httpd.conf" >/dev/null 2>&1 || /usr/sbin/apache2 -t -f "$d/httpd.conf"
    bg "$ns" "$d/stdout.log" /usr/sbin/apache2 -f "$d/httpd.conf" -DFOREGROUND
    APACHE_PID=$LAST_PID
    for p in "$@"; do wait_port "$ns" "$p"; done
}

# ---------------------------------------------------------------- nginx
# nginx_conf DIR SERVER-BLOCKS -> writes DIR/nginx.conf
nginx_conf() {
    local d=$1 servers=$2
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user www-data;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format misdirect 'client=\$remote_addr:\$remote_port sni=\$ssl_server_name tls=\$ssl_protocol '
                         'server=\$server_name host=\$host proto=\$server_protocol "\$request" status=\$status bytes=\$body_bytes_sent';
    access_log $d/access.log misdirect;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_timeout 5;
    ssl_protocols TLSv1.2 TLSv1.3;
$servers
}
EOF
}

start_nginx() { # NS DIR PORT...
    local ns=$1 d=$2; shift 2
    ip netns exec "$ns" /usr/sbin/nginx -t -q -p "$d" -c "$d/nginx.conf"
    bg "$ns" "$d/stdout.log" /usr/sbin/nginx -p "$d" -c "$d/nginx.conf"
    NGINX_PID=$LAST_PID
    for p in "$@"; do wait_port "$ns" "$p"; done
}

# bodies go to stdout (discarded by the callers), the status line to stderr;
# num_connects 0 means the transfer reused an existing connection
CURL=(curl -sS --no-progress-meter --max-time 20 --cacert "$PKI/ca.crt"
      -w '%{stderr}  HTTP/%{http_version} %{response_code} %{url_effective} new_connections=%{num_connects}\n')

# verify CAPTURE KEYS PORT,PROTO FIELD VALUE MIN [EXTRA-FILTER]
# counts occurrences of FIELD == VALUE in the (decrypted) capture -- not
# packets, as one segment can carry several HTTP/2 HEADERS frames or
# pipelined HTTP/1.1 responses -- and aborts if there are fewer than MIN.
# tshark needs -d on these non-standard ports (PROTO tls, http or http2).
verify() {
    local f=$1 keys=$2 decode=$3 field=$4 value=$5 want=$6 extra=${7:-} n filter
    filter="$field == $value"
    [ -n "$extra" ] && filter="$filter && $extra"
    local args=(-r "$f" -d "tcp.port==$decode")
    [ -n "$keys" ] && args+=(-o "tls.keylog_file:$keys")
    n=$(tshark "${args[@]}" -Y "$filter" -T fields -e "$field" 2>/dev/null | tr ',' '\n' | tr -d '"' \
        | grep -cx "$(echo "$value" | tr -d '"')" || true)
    echo "  verify $(basename "$f"): $filter -> $n occurrence(s) (need >= $want)"
    [ "$n" -ge "$want" ] || { echo "VERIFY FAILED" >&2; exit 1; }
}

# run a command in a namespace, discarding its stdout (response bodies)
quiet() { local ns=$1; shift; ip netns exec "$ns" "$@" >/dev/null; }

mkdir -p "$WORK/cap"
C=$WORK/cap

make_ns "$NS_LO" ""
make_ns "$NS_MTU" 1500

# ================================================================ 1. http1-tls12 (Apache)
log "http1-tls12: curl -> Apache, HTTP/1.1, TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256"
D=$WORK/apache-http1-tls12
apache_conf "$D" "Listen 127.0.0.1:8443" "
<VirtualHost *:8443>
    ServerName a.example.test
    DocumentRoot \"$WWW/a\"
    SSLEngine on
    SSLCertificateFile \"$PKI/a.crt\"
    SSLCertificateKeyFile \"$PKI/a.key\"
    Protocols http/1.1
</VirtualHost>"
start_apache "$NS_LO" "$D" 8443
K=$C/http1-tls12.keys; rm -f "$K"
start_capture "$NS_LO" lo "$C/http1-tls12.pcap" "tcp port 8443"
quiet "$NS_LO" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http1.1 --tlsv1.2 --tls-max 1.2 \
    --ciphers ECDHE-RSA-AES128-GCM-SHA256 --resolve a.example.test:8443:127.0.0.1 \
    https://a.example.test:8443/ https://a.example.test:8443/hello.txt https://a.example.test:8443/missing.txt
stop_capture
stop_pid "$APACHE_PID"
cat "$D/access.log"
verify "$C/http1-tls12.pcap" "$K" 8443,tls http.response.code 200 2
verify "$C/http1-tls12.pcap" "$K" 8443,tls http.response.code 404 1
publish "$C/http1-tls12.pcap" http1-tls12.pcap
publish "$K" http1-tls12.keys

# ================================================================ 2. http1-tls13 (nginx)
log "http1-tls13: curl -> nginx, HTTP/1.1, TLS 1.3"
D=$WORK/nginx-http1-tls13
nginx_conf "$D" "
    server {
        listen 127.0.0.1:8443 ssl;
        server_name a.example.test;
        ssl_certificate $PKI/a.crt;
        ssl_certificate_key $PKI/a.key;
        root $WWW/a;
    }"
start_nginx "$NS_LO" "$D" 8443
K=$C/http1-tls13.keys; rm -f "$K"
start_capture "$NS_LO" lo "$C/http1-tls13.pcap" "tcp port 8443"
quiet "$NS_LO" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http1.1 --tlsv1.3 \
    --resolve a.example.test:8443:127.0.0.1 \
    https://a.example.test:8443/ https://a.example.test:8443/hello.txt
stop_capture
stop_pid "$NGINX_PID"
cat "$D/access.log"
verify "$C/http1-tls13.pcap" "$K" 8443,tls http.response.code 200 2
publish "$C/http1-tls13.pcap" http1-tls13.pcap
publish "$K" http1-tls13.keys

# ================================================================ 3. h2-tls12 (nginx)
log "h2-tls12: curl -> nginx, HTTP/2, TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384"
D=$WORK/nginx-h2-tls12
nginx_conf "$D" "
    server {
        listen 127.0.0.1:8443 ssl http2;
        server_name a.example.test;
        ssl_certificate $PKI/a.crt;
        ssl_certificate_key $PKI/a.key;
        root $WWW/a;
    }"
start_nginx "$NS_LO" "$D" 8443
K=$C/h2-tls12.keys; rm -f "$K"
start_capture "$NS_LO" lo "$C/h2-tls12.pcap" "tcp port 8443"
quiet "$NS_LO" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http2 --tlsv1.2 --tls-max 1.2 \
    --ciphers ECDHE-RSA-AES256-GCM-SHA384 --resolve a.example.test:8443:127.0.0.1 \
    https://a.example.test:8443/ https://a.example.test:8443/hello.txt
stop_capture
stop_pid "$NGINX_PID"
cat "$D/access.log"
verify "$C/h2-tls12.pcap" "$K" 8443,tls http2.headers.status 200 2
publish "$C/h2-tls12.pcap" h2-tls12.pcap
publish "$K" h2-tls12.keys

# ================================================================ 4. h2-tls13 (Apache)
log "h2-tls13: curl -> Apache, HTTP/2, TLS 1.3"
D=$WORK/apache-h2-tls13
apache_conf "$D" "Listen 127.0.0.1:8443" "
<VirtualHost *:8443>
    ServerName a.example.test
    DocumentRoot \"$WWW/a\"
    SSLEngine on
    SSLCertificateFile \"$PKI/a.crt\"
    SSLCertificateKeyFile \"$PKI/a.key\"
    Protocols h2 http/1.1
</VirtualHost>"
start_apache "$NS_LO" "$D" 8443
K=$C/h2-tls13.keys; rm -f "$K"
start_capture "$NS_LO" lo "$C/h2-tls13.pcap" "tcp port 8443"
quiet "$NS_LO" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http2 --tlsv1.3 \
    --resolve a.example.test:8443:127.0.0.1 \
    https://a.example.test:8443/ https://a.example.test:8443/hello.txt
stop_capture
stop_pid "$APACHE_PID"
cat "$D/access.log"
verify "$C/h2-tls13.pcap" "$K" 8443,tls http2.headers.status 200 2
publish "$C/h2-tls13.pcap" h2-tls13.pcap
publish "$K" h2-tls13.keys

# ================================================================ 5+6. h2c (Apache)
D=$WORK/apache-h2c
apache_conf "$D" "Listen 127.0.0.1:8080" "
<VirtualHost *:8080>
    ServerName a.example.test
    DocumentRoot \"$WWW/a\"
    Protocols h2c http/1.1
</VirtualHost>"
start_apache "$NS_LO" "$D" 8080

log "h2c-prior-knowledge: curl --http2-prior-knowledge, then nghttp (2 streams) -> Apache h2c"
# curl 7.88.1 cannot reuse a prior-knowledge connection (curl issue #10634,
# fixed in 7.89: it closes the connection and fails with "(16) Error in the
# HTTP2 framing layer"), so curl makes one request; nghttp then sends two
# concurrent streams (with PRIORITY frames) on a second connection.
start_capture "$NS_LO" lo "$C/h2c-prior-knowledge.pcap" "tcp port 8080"
quiet "$NS_LO" "${CURL[@]}" --http2-prior-knowledge --resolve a.example.test:8080:127.0.0.1 \
    http://a.example.test:8080/
sleep 0.3
quiet "$NS_LO" nghttp -n -H ':authority: a.example.test:8080' \
    http://127.0.0.1:8080/ http://127.0.0.1:8080/hello.txt
echo "  nghttp: exit $?"
stop_capture
verify "$C/h2c-prior-knowledge.pcap" "" 8080,http2 http2.headers.status 200 3
verify "$C/h2c-prior-knowledge.pcap" "" 8080,http2 http2.type 2 5

log "h2c-upgrade: curl --http2 http:// -> Upgrade: h2c -> 101 -> HTTP/2"
# Apache 2.4.71 (mod_http2 2.0.42) hands the upgraded connection back to the
# MPM once the upgraded stream is done and then closes it (GOAWAY
# last_stream=1, reason "timeout") unless curl's second request got there
# first (Apache then GOAWAYs even a stream 3 it has already received).  When
# curl loses that race it either opens a second connection with another
# Upgrade or fails with "(16) Error in the HTTP2 framing layer".  Sequential
# curl won only 20-90% of the time here; with --parallel (-Z) curl sends
# stream 3 right after the 101 while stream 1 is still open and wins ~75%.
# Keep the first attempt where both requests went over the one upgraded
# connection.
for attempt in 1 2 3 4 5 6 7 8; do
    start_capture "$NS_LO" lo "$C/h2c-upgrade.pcap" "tcp port 8080"
    rc=0
    quiet "$NS_LO" "${CURL[@]}" --parallel --http2 --resolve a.example.test:8080:127.0.0.1 \
        http://a.example.test:8080/ http://a.example.test:8080/hello.txt || rc=$?
    stop_capture
    n=$(tshark -r "$C/h2c-upgrade.pcap" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
    echo "  attempt $attempt: curl exit $rc, $n TCP connection(s)"
    [ "$rc" = 0 ] && [ "$n" = 1 ] && break
    sleep 1
done
[ "$rc" = 0 ] && [ "$n" = 1 ] || { echo "h2c-upgrade: curl never reused the upgraded connection" >&2; exit 1; }
stop_pid "$APACHE_PID"
cat "$D/access.log"
verify "$C/h2c-upgrade.pcap" "" 8080,http http.response.code 101 1
verify "$C/h2c-upgrade.pcap" "" 8080,http http2.headers.status 200 2
publish "$C/h2c-prior-knowledge.pcap" h2c-prior-knowledge.pcap
publish "$C/h2c-upgrade.pcap" h2c-upgrade.pcap

# ================================================================ 7. keep-alive reuse (Apache)
log "http1-keepalive-reuse: curl --next with other Host on one connection + python pipelining"
D=$WORK/apache-keepalive
apache_conf "$D" "Listen 127.0.0.1:8080" "
<VirtualHost *:8080>
    ServerName a.example.test
    DocumentRoot \"$WWW/a\"
</VirtualHost>
<VirtualHost *:8080>
    ServerName b.example.test
    DocumentRoot \"$WWW/b\"
</VirtualHost>"
start_apache "$NS_LO" "$D" 8080
start_capture "$NS_LO" lo "$C/http1-keepalive-reuse.pcap" "tcp port 8080"
quiet "$NS_LO" "${CURL[@]}" --http1.1 -H 'Host: a.example.test' http://127.0.0.1:8080/ \
    --next "${CURL[@]:1}" --http1.1 -H 'Host: b.example.test' http://127.0.0.1:8080/ \
    --next "${CURL[@]:1}" --http1.1 -H 'Host: b.example.test' http://127.0.0.1:8080/cgi-bin/chunked \
    --next "${CURL[@]:1}" --http1.1 -H 'Host: a.example.test' http://127.0.0.1:8080/hello.txt
sleep 0.3
ip netns exec "$NS_LO" python3 "$GEN/pipeline_client.py" 127.0.0.1 8080 | tail -1
stop_capture
stop_pid "$APACHE_PID"
cat "$D/access.log"
verify "$C/http1-keepalive-reuse.pcap" "" 8080,http http.response.code 200 7
verify "$C/http1-keepalive-reuse.pcap" "" 8080,http http.transfer_encoding '"chunked"' 2
publish "$C/http1-keepalive-reuse.pcap" http1-keepalive-reuse.pcap

# ================================================================ 8. Apache 421 SNI/Host mismatch
log "apache-421-sni-mismatch: SNI a.example.test, Host b.example.test, distinct certs"
D=$WORK/apache-421
apache_conf "$D" "Listen 127.0.0.1:9443" "
<VirtualHost *:9443>
    ServerName a.example.test
    DocumentRoot \"$WWW/a\"
    SSLEngine on
    SSLCertificateFile \"$PKI/a.crt\"
    SSLCertificateKeyFile \"$PKI/a.key\"
    Protocols h2 http/1.1
</VirtualHost>
<VirtualHost *:9443>
    ServerName b.example.test
    DocumentRoot \"$WWW/b\"
    SSLEngine on
    SSLCertificateFile \"$PKI/b.crt\"
    SSLCertificateKeyFile \"$PKI/b.key\"
    Protocols h2 http/1.1
</VirtualHost>"
start_apache "$NS_LO" "$D" 9443
K=$C/apache-421-sni-mismatch.keys; rm -f "$K"
start_capture "$NS_LO" lo "$C/apache-421-sni-mismatch.pcap" "tcp port 9443"
R=(--resolve a.example.test:9443:127.0.0.1)
# connection 1: HTTP/1.1, first Host a (200), then Host b on the same connection (421)
quiet "$NS_LO" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http1.1 "${R[@]}" https://a.example.test:9443/ \
    --next "${CURL[@]:1}" --http1.1 "${R[@]}" -H 'Host: b.example.test' https://a.example.test:9443/
sleep 0.3
# connection 2: HTTP/2, :authority a (200), then :authority b on the same connection (421)
quiet "$NS_LO" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http2 "${R[@]}" https://a.example.test:9443/ \
    --next "${CURL[@]:1}" --http2 "${R[@]}" -H 'Host: b.example.test' https://a.example.test:9443/
stop_capture
stop_pid "$APACHE_PID"
cat "$D/access.log"
grep -E 'AH02032' "$D/error.log" || { echo "no AH02032 in Apache error log" >&2; exit 1; }
SNI421_NOTE=$(python3 "$GEN/conn_summary.py" "$C/apache-421-sni-mismatch.pcap" 9443 "$D/access.log" --oneline)
echo "  $SNI421_NOTE"
verify "$C/apache-421-sni-mismatch.pcap" "$K" 9443,tls http.response.code 421 1
verify "$C/apache-421-sni-mismatch.pcap" "$K" 9443,tls http2.headers.status 421 1
publish "$C/apache-421-sni-mismatch.pcap" apache-421-sni-mismatch.pcap
publish "$K" apache-421-sni-mismatch.keys

# ================================================================ 9. Chromium coalescing -> 421 -> retry
log "chromium-coalesce-421: wildcard cert, different SSLCipherSuite per vhost, MTU 1500 namespace"
D=$WORK/apache-chromium
apache_conf "$D" "Listen 127.0.0.1:7443" "
<VirtualHost *:7443>
    ServerName a.example.test
    DocumentRoot \"$WWW/a\"
    SSLEngine on
    SSLCertificateFile \"$PKI/wild.crt\"
    SSLCertificateKeyFile \"$PKI/wild.key\"
    SSLCipherSuite ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384
    Protocols h2 http/1.1
</VirtualHost>
<VirtualHost *:7443>
    ServerName b.example.test
    DocumentRoot \"$WWW/b\"
    SSLEngine on
    SSLCertificateFile \"$PKI/wild.crt\"
    SSLCertificateKeyFile \"$PKI/wild.key\"
    SSLCipherSuite ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305
    Protocols h2 http/1.1
</VirtualHost>"
start_apache "$NS_MTU" "$D" 7443
CH=$WORK/chromium-home
mkdir -p "$CH/.pki/nssdb"
certutil -d "sql:$CH/.pki/nssdb" -N --empty-password
certutil -d "sql:$CH/.pki/nssdb" -A -t "C,," -n "misdirect test CA" -i "$PKI/ca.crt"
K=$C/chromium-coalesce-421.keys; rm -f "$K"
start_capture "$NS_MTU" lo "$C/chromium.pcap" "tcp port 7443"
ip netns exec "$NS_MTU" env HOME="$CH" SSLKEYLOGFILE="$K" chromium \
    --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --disable-extensions --no-default-browser-check \
    --user-data-dir="$CH/profile" \
    --host-resolver-rules='MAP *.example.test 127.0.0.1, MAP * ~NOTFOUND' \
    --dump-dom https://a.example.test:7443/page.html >"$WORK/chromium.dom" 2>"$WORK/chromium.stderr" || true
stop_capture
stop_pid "$APACHE_PID"
echo "  DOM title: $(grep -o '<title>[^<]*</title>' "$WORK/chromium.dom" || echo '(none)')"
cat "$D/access.log"
grep -E 'AH02032' "$D/error.log" || { echo "no AH02032 in Apache error log (no coalescing?)" >&2; exit 1; }
editcap -F pcapng "$C/chromium.pcap" "$C/chromium-coalesce-421.pcapng"
verify "$C/chromium-coalesce-421.pcapng" "$K" 7443,tls http2.headers.status 421 1
verify "$C/chromium-coalesce-421.pcapng" "$K" 7443,tls http2.headers.status 200 2
python3 "$GEN/conn_summary.py" "$C/chromium-coalesce-421.pcapng" 7443 "$D/access.log" | tee "$WORK/chromium.summary"
# the coalesced request: authority b on a connection whose SNI is a, refused;
# the retry: authority b on a connection whose SNI is b, served
grep -q '(SNI a.example.test):.*GET /b.js authority=b.example.test:7443 HTTP/2.0 -> 421' "$WORK/chromium.summary" \
    || { echo "Chromium did not coalesce b.example.test onto the a.example.test connection" >&2; exit 1; }
grep -q '(SNI b.example.test):.*GET /b.js authority=b.example.test:7443 HTTP/2.0 -> 200' "$WORK/chromium.summary" \
    || { echo "Chromium did not retry on a b.example.test connection" >&2; exit 1; }
CHROMIUM_NOTE=$(python3 "$GEN/conn_summary.py" "$C/chromium-coalesce-421.pcapng" 7443 "$D/access.log" --oneline)
n=$(tshark -r "$C/chromium-coalesce-421.pcapng" -d tcp.port==7443,tls -Y 'tls.handshake.type == 1 && tcp.segment.count >= 2' 2>/dev/null | wc -l)
echo "  ClientHellos reassembled from >= 2 TCP segments: $n"
[ "$n" -ge 2 ] || { echo "Chromium ClientHello did not span two segments" >&2; exit 1; }
publish "$C/chromium-coalesce-421.pcapng" chromium-coalesce-421.pcapng
publish "$K" chromium-coalesce-421.keys

# ================================================================ 10. IPv6 (nginx, TLS 1.3, HTTP/1.1)
log "ipv6-http1: curl -> nginx on [::1]:8443, HTTP/1.1 over TLS 1.3"
D=$WORK/nginx-ipv6
nginx_conf "$D" "
    server {
        listen [::1]:8443 ssl;
        server_name a.example.test;
        ssl_certificate $PKI/a.crt;
        ssl_certificate_key $PKI/a.key;
        root $WWW/a;
    }"
start_nginx "$NS_LO" "$D" 8443
K=$C/ipv6-http1.keys; rm -f "$K"
start_capture "$NS_LO" lo "$C/ipv6-http1.pcap" "tcp port 8443"
quiet "$NS_LO" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http1.1 --tlsv1.3 \
    --resolve 'a.example.test:8443:[::1]' \
    https://a.example.test:8443/ https://a.example.test:8443/hello.txt
stop_capture
stop_pid "$NGINX_PID"
cat "$D/access.log"
verify "$C/ipv6-http1.pcap" "$K" 8443,tls http.response.code 200 2 ipv6
publish "$C/ipv6-http1.pcap" ipv6-http1.pcap
publish "$K" ipv6-http1.keys

# ================================================================ 11. tcpdump -i any (SLL2)
log "sll2-any: tcpdump -i any, curl -> nginx cleartext HTTP/1.1"
D=$WORK/nginx-sll2
nginx_conf "$D" "
    server {
        listen 127.0.0.1:8080;
        server_name a.example.test;
        root $WWW/a;
    }"
start_nginx "$NS_LO" "$D" 8080
start_capture "$NS_LO" any "$C/sll2-any.pcap" "tcp port 8080"
quiet "$NS_LO" "${CURL[@]}" --http1.1 --resolve a.example.test:8080:127.0.0.1 \
    http://a.example.test:8080/ http://a.example.test:8080/hello.txt
stop_capture
stop_pid "$NGINX_PID"
cat "$D/access.log"
capinfos -E "$C/sll2-any.pcap" | grep -q 'Linux cooked-mode capture v2' || { echo "sll2-any.pcap is not SLL2" >&2; exit 1; }
verify "$C/sll2-any.pcap" "" 8080,http http.response.code 200 2
publish "$C/sll2-any.pcap" sll2-any.pcap

# ================================================================ 12. FTP 421 (vsftpd)
log "ftp-421: vsftpd max_clients=1, second control connection gets 421"
D=$WORK/vsftpd
mkdir -p "$D/empty" "$D/root"
chmod 755 "$D/empty" "$D/root"
printf 'nothing to see\n' >"$D/root/README"
cat >"$D/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=2121
background=NO
max_clients=1
anonymous_enable=YES
no_anon_password=YES
anon_root=$D/root
local_enable=NO
write_enable=NO
secure_chroot_dir=$D/empty
seccomp_sandbox=NO
pasv_min_port=30000
pasv_max_port=30009
xferlog_enable=YES
vsftpd_log_file=$D/vsftpd.log
ftpd_banner=misdirect test FTP server ready.
EOF
bg "$NS_LO" "$D/stdout.log" /usr/sbin/vsftpd "$D/vsftpd.conf"
VSFTPD_PID=$LAST_PID
wait_port "$NS_LO" 2121
start_capture "$NS_LO" lo "$C/ftp-421.pcap" "tcp port 2121"
ip netns exec "$NS_LO" python3 "$GEN/ftp_clients.py" 127.0.0.1 2121
stop_capture
stop_pid "$VSFTPD_PID"
n=$(tshark -r "$C/ftp-421.pcap" -d tcp.port==2121,ftp -Y 'ftp.response.code == 421' 2>/dev/null | wc -l)
echo "  verify ftp-421.pcap: 421 replies: $n"
[ "$n" -ge 1 ] || { echo "no FTP 421 in capture" >&2; exit 1; }
publish "$C/ftp-421.pcap" ftp-421.pcap

# ================================================================ 13. MTU 1500, TLS 1.3, h2, 20 KB
log "mtu1500-tls13-h2: curl -> nginx, HTTP/2 over TLS 1.3, ~20 KB body, MTU 1500, ns timestamps"
D=$WORK/nginx-mtu
nginx_conf "$D" "
    server {
        listen 127.0.0.1:8443 ssl http2;
        server_name a.example.test;
        ssl_certificate $PKI/a.crt;
        ssl_certificate_key $PKI/a.key;
        root $WWW/a;
        location = /upload { return 200 'upload received\n'; }
    }"
start_nginx "$NS_MTU" "$D" 8443
K=$C/mtu1500-tls13-h2.keys; rm -f "$K"
start_capture "$NS_MTU" lo "$C/mtu.pcap" "tcp port 8443" --time-stamp-precision=nano
# GET a 20 KB body (server -> client), then on the same connection POST the
# same 20 KB (client -> server), so both directions carry many segments
quiet "$NS_MTU" env SSLKEYLOGFILE="$K" "${CURL[@]}" --http2 --tlsv1.3 \
    --resolve a.example.test:8443:127.0.0.1 https://a.example.test:8443/body20k.txt \
    --next "${CURL[@]:1}" --http2 --tlsv1.3 --resolve a.example.test:8443:127.0.0.1 \
    --data-binary "@$WWW/a/body20k.txt" -H 'Content-Type: text/plain' https://a.example.test:8443/upload
stop_capture
stop_pid "$NGINX_PID"
cat "$D/access.log"
editcap -F pcapng "$C/mtu.pcap" "$C/mtu1500-tls13-h2.pcapng"
editcap --inject-secrets "tls,$K" "$C/mtu1500-tls13-h2.pcapng" "$C/mtu1500-tls13-h2-dsb.pcapng"
verify "$C/mtu1500-tls13-h2.pcapng" "$K" 8443,tls http2.headers.status 200 2
verify "$C/mtu1500-tls13-h2-dsb.pcapng" "" 8443,tls http2.headers.status 200 2
read -r maxlen nseg < <(tshark -r "$C/mtu1500-tls13-h2.pcapng" -T fields -e tcp.len 2>/dev/null \
    | awk '$1>0{n++; if($1>m)m=$1} END{print m+0, n+0}')
echo "  data segments: $nseg, largest TCP payload: $maxlen"
[ "$maxlen" -le 1448 ] && [ "$nseg" -ge 30 ] || { echo "segments are not Ethernet-sized" >&2; exit 1; }
capinfos "$C/mtu1500-tls13-h2.pcapng" | grep -q 'nanoseconds' || { echo "not nanosecond precision" >&2; exit 1; }
publish "$C/mtu1500-tls13-h2.pcapng" mtu1500-tls13-h2.pcapng
publish "$K" mtu1500-tls13-h2.keys
publish "$C/mtu1500-tls13-h2-dsb.pcapng" mtu1500-tls13-h2-dsb.pcapng

# ================================================================ manifest
log "expected.tsv"
note() {
    case $1 in
    http1-tls12.pcap) echo "curl -> Apache; HTTP/1.1 over TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256, port 8443; 3 requests on 1 connection: 200 200 404; keys http1-tls12.keys" ;;
    http1-tls13.pcap) echo "curl -> nginx; HTTP/1.1 over TLS 1.3, port 8443; 2 requests on 1 connection: 200 200; keys http1-tls13.keys" ;;
    h2-tls12.pcap) echo "curl -> nginx; HTTP/2 over TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384, port 8443; 2 streams on 1 connection: 200 200; keys h2-tls12.keys" ;;
    h2-tls13.pcap) echo "curl -> Apache; HTTP/2 over TLS 1.3, port 8443; 2 streams on 1 connection: 200 200; keys h2-tls13.keys" ;;
    h2c-prior-knowledge.pcap) echo "Apache h2c port 8080; cleartext HTTP/2 with prior knowledge (client magic first, no Upgrade); conn 0 curl: stream 1 GET / 200; conn 1 nghttp: PRIORITY frames on idle streams 3-11, then HEADERS for streams 13 and 15 in one segment, 200 200" ;;
    h2c-upgrade.pcap) echo "curl --parallel --http2 -> Apache h2c port 8080; HTTP/1.1 GET / with Upgrade: h2c -> 101, its response on HTTP/2 stream 1 (200); GET /hello.txt on stream 3 sent right after the client preface (200); Apache GOAWAY at the end" ;;
    http1-keepalive-reuse.pcap) echo "Apache cleartext port 8080; conn 0 curl --next: Host a,b,b(chunked CGI),a all 200 on one connection; conn 1 python: 3 pipelined requests in one segment Host a,b,b(chunked, Connection: close) all 200; no 421" ;;
    apache-421-sni-mismatch.pcap) echo "curl -> Apache, vhosts a/b with distinct certs, port 9443, 421 = AH02032 SNI/Host mismatch; $SNI421_NOTE; keys apache-421-sni-mismatch.keys" ;;
    chromium-coalesce-421.pcapng) echo "headless Chromium -> Apache, one wildcard cert, vhosts a/b with different SSLCipherSuite, port 7443, MTU 1500 (ClientHello with X25519MLKEM768 in 2 segments); b.js coalesced onto the SNI-a HTTP/2 connection -> 421 (AH02032), retried on a new SNI-b connection -> 200; $CHROMIUM_NOTE; keys chromium-coalesce-421.keys" ;;
    ipv6-http1.pcap) echo "curl -> nginx on [::1]:8443; HTTP/1.1 over TLS 1.3; 2 requests on 1 connection: 200 200; keys ipv6-http1.keys" ;;
    sll2-any.pcap) echo "tcpdump -i any (LINUX_SLL2); curl -> nginx cleartext HTTP/1.1 port 8080; 2 requests on 1 connection: 200 200" ;;
    ftp-421.pcap) echo "vsftpd port 2121 max_clients=1; control conn 0 logs in (230) and stays; conn 1 gets FTP 421 too many connected users; not HTTP" ;;
    mtu1500-tls13-h2.pcapng) echo "curl -> nginx; HTTP/2 over TLS 1.3, port 8443, MTU 1500 namespace, nanosecond timestamps; stream 1 GET 200 with 20480-byte body, stream 3 POST of 20480 bytes 200; max TCP payload 1448; keys mtu1500-tls13-h2.keys" ;;
    mtu1500-tls13-h2-dsb.pcapng) echo "same packets as mtu1500-tls13-h2.pcapng with the key log embedded as a Decryption Secrets Block (editcap --inject-secrets)" ;;
    esac
}
{
    printf 'file\ttcp_connections\tlink_type\tnotes\n'
    for f in http1-tls12.pcap http1-tls13.pcap h2-tls12.pcap h2-tls13.pcap h2c-prior-knowledge.pcap \
             h2c-upgrade.pcap http1-keepalive-reuse.pcap apache-421-sni-mismatch.pcap \
             chromium-coalesce-421.pcapng ipv6-http1.pcap sll2-any.pcap ftp-421.pcap \
             mtu1500-tls13-h2.pcapng mtu1500-tls13-h2-dsb.pcapng; do
        conns=$(tshark -r "$SAMPLES/$f" -q -z conv,tcp 2>/dev/null | grep -c '<->' || true)
        enc=$(capinfos -E "$SAMPLES/$f" | sed -n 's/^File encapsulation: *//p')
        printf '%s\t%s\t%s\t%s\n' "$f" "$conns" "$enc" "$(note "$f")"
    done
} >"$SAMPLES/expected.tsv"
cat "$SAMPLES/expected.tsv"

log "done"
du -sh "$SAMPLES"
