#!/bin/bash
# test-natsauth.sh — atkv against nats-servers that require authentication, one per kind:
# user and password, token (both in the URL), NKey (a seed file), TLS with the test's own CA
# and a client certificate the server verifies, and JWT user credentials (--creds) on a server in
# operator mode (tests/natsjwt makes the operator, accounts and creds files). For each: the right
# credentials connect (atkv status), wrong or missing ones fail with exit 1 and one line that
# repeats no secret. Then the builder (token, and creds) streams the test capture to its end and
# the like indexer (NKey over TLS, and creds) indexes its likes, and no log nor STATUS= line
# holds a secret. Run by `make check`. Prints TAP.
set -u
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}
. "$srcdir/tests/tap.sh"
bin=$top_builddir/src

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atkv-natsauth.XXXXXX") || { echo "not ok 1 - mktemp"; echo "1..1"; exit 0; }
pids=()
finish() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "${ATKV_TEST_KEEP:-}" ] && echo "# kept $tmp" || rm -rf "$tmp"
	echo "1..$n"
	exit 0
}
trap finish EXIT
export ATKV_CONFIG=/dev/null

# The NKey pair of tests/test-natsconn.c (seed: bytes 1..32), checked there against Python's
# cryptography; here the server is the judge.
seed=SUAACAQDAQCQMBYIBEFAWDANBYHRAEISCMKBKFQXDAMRUGY4DUPB6IC5CQ
public=UB43KVROR7TFJ6KAPCYRF2FJROTZAH4FHLTJLPWX4DRZCC5NASLGJBFE
printf '%s\n' "$seed" >"$tmp/user.nk"
chmod 600 "$tmp/user.nk"

# The test's own CA, a server certificate for 127.0.0.1 and a client certificate.
(
	cd "$tmp" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=atkv-test-ca \
		-keyout ca.key -out ca.pem &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr &&
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=atkv-client -keyout client.key -out client.csr &&
	printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
	openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext -out client.pem
) >"$tmp/openssl.log" 2>&1 || { notok "certificates made with openssl"; diag_file "$tmp/openssl.log"; exit; }

# server NAME CONFIG: starts nats-server with JetStream and CONFIG; sets url_NAME (nats://127.0.0.1:PORT)
server() {
	local name=$1
	mkdir -p "$tmp/$name"
	printf 'jetstream { store_dir: "%s" }\n%s\n' "$tmp/$name/store" "$2" >"$tmp/$name/nats.conf"
	nats_start "$tmp/$name" "$tmp/$name/log" -c "$tmp/$name/nats.conf"
	pids+=("$nats_pid")
	[ -n "$nats_url" ] || { notok "nats-server $name started"; diag_file "$tmp/$name/log"; return 1; }
	eval "url_$name=\$nats_url"
}
server userpass 'authorization { user: alice, password: "s3cret-pw" }' || exit
server token 'authorization { token: "t0ken-xyz" }' || exit
server nkey "authorization { users: [ { nkey: $public } ] }" || exit
server tls "tls { cert_file: \"$tmp/server.pem\", key_file: \"$tmp/server.key\", ca_file: \"$tmp/ca.pem\", verify: true }
authorization { users: [ { nkey: $public } ] }" || exit
# Operator mode: the server trusts the operator's JWT and knows one account (and the system
# account) through its memory resolver; stranger.creds is a user of an account it does not know.
mkdir -p "$tmp/jwt"
"$top_builddir/tests/natsjwt" "$tmp/jwt" 2>"$tmp/natsjwt.err" || { notok "tests/natsjwt made the creds"; diag_file "$tmp/natsjwt.err"; exit; }
server jwt 'include "operator.conf"' || exit
creds_seed() { sed -n '/BEGIN USER NKEY SEED/{n;p;q}' "$1"; }
user_seed=$(creds_seed "$tmp/jwt/user.creds")
stranger_seed=$(creds_seed "$tmp/jwt/stranger.creds")
hostport() { echo "${1#nats://}"; }

# connects NAME URL [FLAG...]: atkv status succeeds
connects() { "$bin/atkv" status --json --interval 0 --nats "$2" "${@:3}" >"$tmp/$1.out" 2>"$tmp/$1.err"; }
# refused NAME SECRET URL [FLAG...]: exit 1, one line, no secret in it
refused() {
	local name=$1 secret=$2
	shift 2
	"$bin/atkv" status --json --interval 0 --nats "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	[ $? -eq 1 ] && [ "$(wc -l <"$tmp/$name.err")" -eq 1 ] && ! grep -q "$secret" "$tmp/$name.err" ||
		{ sed 's/^/#   /' "$tmp/$name.err"; return 1; }
}
up=$(hostport "$url_userpass")
check "user and password in the URL: connected" connects up1 "nats://alice:s3cret-pw@$up"
check "a wrong password: exit 1, one line, the password not in it" refused up2 wrong-pw "nats://alice:wrong-pw@$up"
check "no credentials: exit 1, one line" refused up3 s3cret-pw "nats://$up"
tp=$(hostport "$url_token")
check "a token in the URL: connected" connects tk1 "nats://t0ken-xyz@$tp"
check "a wrong token: exit 1, the token not in the line" refused tk2 bad-token "nats://bad-token@$tp"
check "an NKey seed file (--nkey): connected" connects nk1 "$url_nkey" --nkey "$tmp/user.nk"
printf 'SUAACAQDAQCQMBYIBEFAWDANBYHRAEISCMKBKFQXDAMRUGY4DUPB6IC5CA\n' >"$tmp/bad.nk"
check "a damaged seed: exit 1, one line naming the file, no seed in it" refused nk2 SUAAC "$url_nkey" --nkey "$tmp/bad.nk"
check "no NKey: exit 1" refused nk3 "$seed" "$url_nkey"
tls=$(hostport "$url_tls")
check "TLS, the server verified against our CA, our client certificate verified by it, and an NKey: connected" \
	connects tls1 "tls://$tls" --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/client.pem" --tls-key "$tmp/client.key" --nkey "$tmp/user.nk"
check "TLS without a client certificate: refused by the server (exit 1)" \
	refused tls2 "$seed" "tls://$tls" --tls-ca "$tmp/ca.pem" --nkey "$tmp/user.nk"
check "TLS with a CA that did not sign the server: refused (exit 1)" \
	refused tls3 "$seed" "tls://$tls" --tls-ca "$tmp/client.pem" --tls-cert "$tmp/client.pem" --tls-key "$tmp/client.key" --nkey "$tmp/user.nk"
check "operator mode, a user's JWT and seed in a creds file (--creds): connected" \
	connects cr1 "$url_jwt" --creds "$tmp/jwt/user.creds"
check "operator mode without creds: exit 1, one line" refused cr2 "$user_seed" "$url_jwt"
# The server's log tells this refusal from that of no creds at all: it looked the account up.
check "a creds file of an account the operator never signed: exit 1, one line saying the server refused it, no seed" \
	eval 'refused cr3 "$stranger_seed" "$url_jwt" --creds "$tmp/jwt/stranger.creds" &&
		grep -q "Authori[sz]ation Violation" "$tmp/cr3.err" && grep -q "Account fetch failed: account missing" "$tmp/jwt/log"'
check "a missing creds file: exit 1, one line naming it" \
	eval 'refused cr4 "$user_seed" "$url_jwt" --creds "$tmp/jwt/missing.creds" && grep -q "jwt/missing.creds" "$tmp/cr4.err"'
like=at://did:plc:credstest00000000000001/app.bsky.feed.like/3kcreds000001
like_json='{"$type":"app.bsky.feed.like","subject":{"uri":"at://did:plc:poster/app.bsky.feed.post/3kpost000001","cid":"bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq"},"createdAt":"2026-11-27T10:00:00.000Z"}'
credsflags=(--nats "$url_jwt" --creds "$tmp/jwt/user.creds")
check "with --creds, atkv put creates the buckets in the account's JetStream and writes a record" \
	eval 'printf "%s\n" "$like_json" | "$bin/atkv" put "$like" "${credsflags[@]}" >"$tmp/crput.out" 2>"$tmp/crput.err"'
check "and atkv get with --creds reads it back" \
	eval '[ "$("$bin/atkv" get "$like" "${credsflags[@]}" 2>"$tmp/crget.err")" = "$like_json" ]'

# ---- the services, with secrets, and nothing of them in their logs ----
"$bin/atkv-firehose-replay" "$srcdir/tests/data/firehose-capture.bin" --listen 127.0.0.1:0 --port-file "$tmp/replay.port" 2>"$tmp/replay.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/replay.port" ] && break; sleep 0.1; done
# systemd's side of NOTIFY_SOCKET, to read the builder's READY= and STATUS= lines.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(4096) + b"\n")
' "$tmp/notify" "$tmp/notify.said" &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/notify" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$tmp/notify "$bin/atkv-builder" --nats "nats://t0ken-xyz@$tp" \
	--relay "ws://127.0.0.1:$(cat "$tmp/replay.port")" --verify=false --log-level debug >"$tmp/builder.log" 2>&1 &
pids+=($!)
# Up to two minutes: a sanitizer build starts, connects over TLS and writes several times slower.
at_end() { ATKV_NATS="nats://t0ken-xyz@$tp" "$bin/atkv" status --json --interval 0 | grep -q '"cursor":{"seq":139,'; }
for _ in $(seq 600); do at_end 2>/dev/null && break; sleep 0.2; done
check "atkv-builder with a token in its URL streams the capture to its last seq (139)" at_end
check "and its log says where it writes without the token (nats://***@...)" \
	eval 'grep -q "NATS nats://\*\*\*@$tp ready" "$tmp/builder.log" && ! grep -q t0ken-xyz "$tmp/builder.log"'

# The indexer over TLS with an NKey, reading from the TLS server: the builder writes there too.
"$bin/atkv-builder" --nats "tls://$tls" --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/client.pem" --tls-key "$tmp/client.key" \
	--nkey "$tmp/user.nk" --relay "ws://127.0.0.1:$(cat "$tmp/replay.port")" --verify=false >"$tmp/builder2.log" 2>&1 &
pids+=($!)
"$bin/atkv-like-indexer" --nats "tls://$tls" --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/client.pem" --tls-key "$tmp/client.key" \
	--nkey "$tmp/user.nk" --db "$tmp/likes.sqlite" --log-level debug >"$tmp/indexer.log" 2>&1 &
pids+=($!)
tlsflags=(--nats "tls://$tls" --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/client.pem" --tls-key "$tmp/client.key" --nkey "$tmp/user.nk")
# indexed FLAG...: the cursor is at the capture's end and the like indexer has nothing pending
indexed() {
	"$bin/atkv" status --json --interval 0 "$@" |
		grep -q '"cursor":{"seq":139,.*"name":"like-indexer","pending":0,"ack_pending":0,"ack_floor":[1-9]'
}
for _ in $(seq 600); do indexed "${tlsflags[@]}" 2>/dev/null && break; sleep 0.2; done
check "over TLS with an NKey: the builder streams the capture and the like indexer indexes every like" \
	eval 'indexed "${tlsflags[@]}" && [ -n "$("$bin/atkv-get-likes-by" --db "$tmp/likes.sqlite" did:plc:zvvx3u62xhtzderrdg25szbz)" ]'

# The same with JWT user credentials on the operator-mode server (where atkv put wrote above).
"$bin/atkv-builder" "${credsflags[@]}" --relay "ws://127.0.0.1:$(cat "$tmp/replay.port")" --verify=false --log-level debug \
	>"$tmp/builder3.log" 2>&1 &
pids+=($!)
"$bin/atkv-like-indexer" "${credsflags[@]}" --db "$tmp/likes-creds.sqlite" --log-level debug >"$tmp/indexer2.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do indexed "${credsflags[@]}" 2>/dev/null && break; sleep 0.2; done
check "with --creds: the builder streams the capture to its last seq (139) and the like indexer indexes every like" \
	eval 'indexed "${credsflags[@]}" && [ -n "$("$bin/atkv-get-likes-by" --db "$tmp/likes-creds.sqlite" did:plc:zvvx3u62xhtzderrdg25szbz)" ]'
check "what the builder told systemd (READY=1, STATUS= lines) holds no token" \
	eval 'grep -q READY=1 "$tmp/notify.said" && grep -q "^STATUS=streaming" "$tmp/notify.said" &&
		! grep -q t0ken-xyz "$tmp/notify.said"'
check "no log holds the seed, the token, the password or a creds file's user seed" \
	eval '[ ${#user_seed} -eq 58 ] && [ ${#stranger_seed} -eq 58 ] &&
		! grep -l -e "$seed" -e t0ken-xyz -e s3cret-pw -e "$user_seed" -e "$stranger_seed" "$tmp"/*.log "$tmp"/*.err "$tmp"/*/log'
