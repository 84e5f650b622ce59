#!/bin/sh
# SPDX-License-Identifier: MIT
# The fleet's deployment examples work as they are written:
#   - examples/fleet/stunnel-client.conf carries Redis over TLS to Redis's
#     own TLS port, and refuses a server whose certificate names another
#     host (only the addresses, the CA file and the name are changed);
#   - examples/fleet/spiped.service's command line, with the far end's
#     from the same file, makes a pipe Redis answers through;
#   - the ACL user of examples/fleet/README.md may do what an agent and
#     cbctl fleet do on their fleet's keys, and nothing else;
#   - examples/systemd/cbshm-agent.service parses (systemd-analyze verify,
#     where systemd is installed).
# Skipped (77) without redis-server, stunnel4, spiped or openssl.
#   usage: fleet_examples_test.sh SOURCE_DIR CBCTL
set -eu
src=$1 cbctl=$2
for tool in redis-server redis-cli stunnel4 spiped openssl python3; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "fleet examples: skipped: $tool is not installed (make deps)"
        exit 77
    fi
done
dir=$(mktemp -d /tmp/fleet-examples-XXXXXX)
pids=
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "fleet examples: $*"
    exit 1
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Waits until `redis-cli ARGS PING` answers PONG, 5 s at most.
wait_pong() {
    i=0
    while [ "$(redis-cli "$@" PING 2>/dev/null)" != PONG ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || return 1
        sleep 0.05
    done
}

# stunnel: a Redis with TLS only, and the example's client end in front.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 1 \
    -subj /CN=redis.test -addext subjectAltName=DNS:redis.test >/dev/null 2>&1 ||
    fail "openssl cannot make a certificate"
tls_port=$(free_port)
redis-server --port 0 --tls-port "$tls_port" --bind 127.0.0.1 --tls-cert-file "$dir/cert.pem" \
    --tls-key-file "$dir/key.pem" --tls-ca-cert-file "$dir/cert.pem" --tls-auth-clients no \
    --save '' --appendonly no --dir "$dir" --logfile "$dir/tls-redis.log" &
pids="$pids $!"
tunnel() { # NAME CHECKHOST: the example with this test's addresses
    local_port=$(free_port)
    sed -e "s#^accept = 127.0.0.1:6380#accept = 127.0.0.1:$local_port#" \
        -e "s#^connect = redis.example.net:6379#connect = 127.0.0.1:$tls_port#" \
        -e "s#^CAfile = .*#CAfile = $dir/cert.pem#" -e "s#^checkHost = .*#checkHost = $2#" \
        -e "s#^foreground = yes#foreground = yes\npid = $dir/$1.pid#" \
        "$src/examples/fleet/stunnel-client.conf" >"$dir/$1.conf"
    for key in "accept = 127.0.0.1:$local_port" "connect = 127.0.0.1:$tls_port" "checkHost = $2"; do
        grep -qx "$key" "$dir/$1.conf" || fail "stunnel-client.conf: no line to make '$key' from"
    done
    stunnel4 "$dir/$1.conf" >"$dir/$1.log" 2>&1 &
    pids="$pids $!"
}
tunnel good redis.test
good_port=$local_port
tunnel wrong other.test
wrong_port=$local_port
wait_pong -p "$good_port" || { cat "$dir/good.log"; fail "no PONG through stunnel-client.conf"; }
[ "$(redis-cli -p "$good_port" SET k v)" = OK ] && [ "$(redis-cli -p "$good_port" GET k)" = v ] ||
    fail "SET and GET through stunnel-client.conf"
if [ "$(timeout 5 redis-cli -p "$wrong_port" PING 2>/dev/null)" = PONG ]; then
    fail "stunnel-client.conf talked to a server with another name"
fi
# stunnel logs the refusal after it has closed the client's connection:
# the log is looked at for up to 5 s, not at once (it raced under load).
tries=0
until grep -q "certificate verify failed" "$dir/wrong.log"; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || { cat "$dir/wrong.log"; fail "stunnel did not say why it refused the server"; }
    sleep 0.1
done
echo "fleet examples: stunnel-client.conf: TLS to Redis, a wrong name refused"

# spiped: the unit's command line (the client end) and the far end's.
plain_port=$(free_port) far_port=$(free_port) near_port=$(free_port)
redis-server --port "$plain_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/plain-redis.log" &
pids="$pids $!"
wait_pong -p "$plain_port" || fail "the plain redis-server does not start"
dd if=/dev/urandom bs=32 count=1 of="$dir/spiped.key" 2>/dev/null
chmod 0600 "$dir/spiped.key"
far=$(sed -n "s/^#   \(spiped -F -d .*\)$/\1/p" "$src/examples/fleet/spiped.service")
near=$(sed -n "s/^ExecStart=\/usr\/bin\/\(spiped .*\)$/\1/p" "$src/examples/fleet/spiped.service")
[ -n "$far" ] && [ -n "$near" ] || fail "spiped.service: no ExecStart= or far-end command line"
set -f
# shellcheck disable=SC2086 # the file's words, as systemd and a shell split them
set -- $(echo "$far" | sed -e "s#'##g" -e "s#\[0.0.0.0\]:6390#[127.0.0.1]:$far_port#" \
    -e "s#\[127.0.0.1\]:6379#[127.0.0.1]:$plain_port#" -e "s#/etc/spiped/cbshm-redis.key#$dir/spiped.key#")
"$@" &
pids="$pids $!"
# shellcheck disable=SC2086
set -- $(echo "$near" | sed -e "s#\[127.0.0.1\]:6380#[127.0.0.1]:$near_port#" \
    -e "s#redis.example.net:6390#127.0.0.1:$far_port#" -e "s#/etc/spiped/cbshm-redis.key#$dir/spiped.key#")
if [ "$(id -u)" != 0 ]; then
    echo "fleet examples: not root: spiped without -u"
    # shellcheck disable=SC2046
    set -- $(echo "$*" | sed 's/ -u [^ ]*//')
fi
set +f
"$@" &
pids="$pids $!"
wait_pong -p "$near_port" || fail "no PONG through spiped.service's pipe"
[ "$(redis-cli -p "$near_port" INFO server | tr -d '\r' | sed -n 's/^tcp_port://p')" = "$plain_port" ] ||
    fail "spiped.service's pipe reaches another Redis"
echo "fleet examples: spiped.service: a pipe to Redis"

# The ACL user of examples/fleet/README.md, for fleet checkout.
acl=$(sed -n 's/^ *\(ACL SETUSER cbshm .*\)$/\1/p' "$src/examples/fleet/README.md")
[ -n "$acl" ] || fail "examples/fleet/README.md: no ACL SETUSER line"
set -f
# shellcheck disable=SC2086
[ "$(redis-cli -p "$plain_port" $(echo "$acl" | sed 's/>PASSWORD/>s3cret/'))" = OK ] ||
    fail "redis refuses the README's ACL SETUSER line"
set +f
as_agent() { redis-cli -p "$plain_port" --user cbshm --pass s3cret --no-auth-warning "$@" 2>&1; }
k='cbshm:{checkout}'
set -f # the commands' words as they are: no * expanded
for cmd in "HSET $k:host:web-1 payments {}" "PEXPIRE $k:host:web-1 15000" "ZADD $k:hosts 1 web-1" \
    "ZCOUNT $k:hosts 0 +inf" "ZREM $k:open:payments web-1" "XADD $k:events MAXLEN ~ 10000 * a b" \
    "XREAD COUNT 16 BLOCK 10 STREAMS $k:commands 0-0" "HGETALL $k:host:web-1" "DEL $k:host:web-1" \
    "ZRANGE $k:hosts 0 -1 WITHSCORES" "MULTI"; do
    # shellcheck disable=SC2086
    case $(as_agent $cmd) in
    *NOPERM*) fail "the README's ACL user may not $cmd" ;;
    esac
done
for cmd in "SET other 1" "HSET cbshm:{payments}:host:web-1 a 1" "FLUSHALL" "KEYS *" "CONFIG GET *"; do
    # shellcheck disable=SC2086
    out=$(as_agent $cmd)
    case $out in
    *NOPERM*) ;;
    *) fail "the README's ACL user may $cmd: $out" ;;
    esac
done
set +f
echo "fleet examples: README's ACL user: its fleet's keys only, no administration"

if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit as installed, but for the cbctl binary and the apply unit it
    # names, which this machine need not have.
    sed -e "s#/usr/bin/cbctl#$cbctl#" -e '/^Requires=cbshm-apply.service$/d' \
        "$src/examples/systemd/cbshm-agent.service" >"$dir/cbshm-agent.service"
    systemd-analyze verify --man=no "$dir/cbshm-agent.service" >"$dir/verify.log" 2>&1 || true
    if grep "cbshm-agent.service" "$dir/verify.log"; then fail "cbshm-agent.service: systemd complains (above)"; fi
    echo "fleet examples: cbshm-agent.service: systemd-analyze verify finds nothing"
fi
