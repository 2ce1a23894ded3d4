#!/usr/bin/env bash
# Makes small real TLS sessions with openssl s_server/s_client inside a throw-away network
# namespace, captures them with tcpdump, and turns each into a fixture with make_fixture.py.
# Needs root (netns, tcpdump), openssl, tcpdump, tshark, python3. Usage: sudo bash make_captures.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
ns=tlsfix-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=t -days 2 \
    -keyout "$work/k" -out "$work/c" 2>/dev/null

# session NAME SERVER_OPTS CLIENT_OPTS: client sends "hello from client", then (TLS 1.3) a
# KeyUpdate that asks the peer to update too (s_client command "K"), then another line;
# the server answers with a line before and after.
session() {
    local name=$1 sopts=$2 copts=$3 port=4433
    local cap="$work/$name.pcap" keys="$work/$name.keys"
    ip netns exec "$ns" tcpdump -i lo -s 0 -U -w "$cap" "tcp port $port" 2>/dev/null &
    local tcpd=$!
    sleep 1
    ( sleep 1.5; echo "hello from server"; sleep 2; echo "second line from server"; sleep 1.5 ) |
        ip netns exec "$ns" openssl s_server -accept $port -cert "$work/c" -key "$work/k" \
            -naccept 1 $sopts >/dev/null 2>&1 &
    local srv=$!
    sleep 0.5
    ( sleep 0.5; echo "hello from client"; sleep 1.5; [ "${KU:-0}" = 1 ] && echo K; sleep 1;
      echo "after the key update, from client"; sleep 1.5 ) |
        ip netns exec "$ns" openssl s_client -connect 127.0.0.1:$port -keylogfile "$keys" \
            $copts >/dev/null 2>&1 || true
    wait $srv || true
    sleep 0.5
    kill $tcpd; wait $tcpd || true
    python3 "$here/make_fixture.py" "$cap" "$keys" $port 0 "$here/$name.txt" "openssl s_server $sopts / s_client $copts"
}

KU=1 session tls13-aes128gcm-keyupdate "" "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
KU=1 session tls13-chacha20-keyupdate "" "-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256"
session tls12-ecdhe-chacha20 "" "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305"
session tls12-rsa-aes128-sha-etm "" "-tls1_2 -cipher AES128-SHA"
session tls12-rsa-aes128-sha-noetm "" "-tls1_2 -cipher AES128-SHA -no_etm"
session tls12-rsa-aes128-sha256-etm "" "-tls1_2 -cipher AES128-SHA256"
session tls12-ecdhe-aes256-sha384-noetm "" "-tls1_2 -cipher ECDHE-RSA-AES256-SHA384 -no_etm"
session tls12-ecdhe-aes256-sha384-etm "" "-tls1_2 -cipher ECDHE-RSA-AES256-SHA384"

# From the project's real sample captures (curl against Apache/nginx).
s=$here/../../../samples
python3 "$here/make_fixture.py" "$s/http1-tls13.pcap" "$s/http1-tls13.keys" 8443 0 "$here/sample-http1-tls13-aes256gcm.txt" "samples/http1-tls13.pcap: curl -> nginx"
python3 "$here/make_fixture.py" "$s/http1-tls12.pcap" "$s/http1-tls12.keys" 8443 0 "$here/sample-http1-tls12-ecdhe-aes128gcm.txt" "samples/http1-tls12.pcap: curl -> Apache"
python3 "$here/make_fixture.py" "$s/h2-tls12.pcap" "$s/h2-tls12.keys" 8443 0 "$here/sample-h2-tls12-ecdhe-aes256gcm.txt" "samples/h2-tls12.pcap: curl -> nginx, HTTP/2"
