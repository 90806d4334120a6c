#!/bin/bash
# test-cli.sh — the atkv CLI against a real nats-server started here (free port, its own store):
# put/get/del by AT-URI and their errors (bad URI, not JSON, wrong $type, a float, NATS down),
# watch (live, --all, --did, a namespace), status (text and --json, with a real consumer: the
# like indexer) and reset (refuses without a terminal, then --yes removes everything).
# Run by `make check` (which sets top_builddir and srcdir). Prints TAP.
set -u
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}
. "$srcdir/tests/tap.sh"
atkv=$top_builddir/src/atkv

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atkv-cli.XXXXXX") || { echo "not ok 1 - mktemp"; echo "1..1"; exit 0; }
server_pid='' nojs_pid='' watch_pid='' ix_pid=''
finish() {
	for p in $watch_pid $ix_pid $nojs_pid $server_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "${ATKV_TEST_KEEP:-}" ] && echo "# kept $tmp" || rm -rf "$tmp"
	echo "1..$n"
	exit 0
}
trap finish EXIT

mkdir "$tmp/store"
nats_start "$tmp" "$tmp/nats.log" -js -sd "$tmp/store"
server_pid=$nats_pid
export ATKV_NATS=$nats_url
[ -n "$ATKV_NATS" ] || { notok "nats-server started"; diag_file "$tmp/nats.log"; exit; }
# No configuration file of the machine's: the tests set what they need.
export ATKV_CONFIG=/dev/null

did=did:plc:clitest000000000000000001
like=at://$did/app.bsky.feed.like/3kcli0000001
post=at://did:plc:poster/app.bsky.feed.post/3kpost000001
like_json="{\"\$type\": \"app.bsky.feed.like\", \"subject\": {\"uri\": \"$post\", \"cid\": \"bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq\"}, \"createdAt\": \"2026-11-27T10:00:00.000Z\"}"
like_compact=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), separators=(",", ":"), ensure_ascii=False))' "$like_json")

# run NAME EXPECTED_STATUS COMMAND...: stdout in $tmp/NAME.out, stderr in $tmp/NAME.err
run() {
	local name=$1 want=$2 got
	shift 2
	"$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	got=$?
	[ "$got" -eq "$want" ] || { echo "# $name: exit $got, expected $want" >&2; sed 's/^/#   /' "$tmp/$name.err" >&2; return 1; }
}
one_line_err() { [ "$(wc -l <"$tmp/$1.err")" -eq 1 ] && grep -q "^atkv: .*$2" "$tmp/$1.err"; }

# ---- get, put, del ----
check "get before anything exists: exit 1, says the bucket is missing and what to do" \
	eval 'run get0 1 "$atkv" get "$like" && one_line_err get0 "bucket record does not exist.*atkv-builder"'
check "put from standard input: exit 0" eval 'echo "$like_json" | run put1 0 "$atkv" put "$like"'
check "get prints the record as stored, compact JSON" \
	eval 'run get1 0 "$atkv" get "$like" && [ "$(cat "$tmp/get1.out")" = "$like_compact" ]'
echo "$like_json" >"$tmp/like.json"
check "put from a FILE, then get" \
	eval 'run put2 0 "$atkv" put "$like" "$tmp/like.json" && run get2 0 "$atkv" get "$like" && [ "$(cat "$tmp/get2.out")" = "$like_compact" ]'
check "one entry in bucket record, written with an Atkv-Time header (status sees its lag)" \
	eval 'run status0 0 "$atkv" status --json --interval 0 && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"buckets\"][\"record\"][\"entries\"] == 1 and d[\"last_write\"][\"lag_s\"] is not None, d" "$tmp/status0.out"'
check "put: a bad AT-URI exits 2 with one line" \
	eval 'echo "$like_json" | run baduri 2 "$atkv" put at://handle.example/app.bsky.feed.like/x && one_line_err baduri "not a record.s AT-URI"'
check "put: not JSON exits 1, naming line and column" \
	eval 'echo "{\"\$type\": " | run notjson 1 "$atkv" put "$like" && one_line_err notjson "not JSON: .*line"'
check "put: \$type other than the collection exits 1" \
	eval 'echo "{\"\$type\": \"app.bsky.feed.post\"}" | run badtype 1 "$atkv" put "$like" && one_line_err badtype "\"app.bsky.feed.post\" but the AT-URI.s collection is \"app.bsky.feed.like\""'
check "put: no \$type exits 1" \
	eval 'echo "{\"subject\": 1}" | run notype 1 "$atkv" put "$like" && one_line_err notype "no \"\\\$type\""'
check "put: a floating-point number exits 1, saying where" \
	eval 'echo "{\"\$type\": \"app.bsky.feed.like\", \"a\": [0, {\"b\": 1.5}]}" | run float 1 "$atkv" put "$like" && one_line_err float "floating-point number at /a/1/b"'
check "put: a JSON array exits 1" \
	eval 'echo "[1]" | run array 1 "$atkv" put "$like" && one_line_err array "a record is a JSON object"'
check "none of the bad puts changed the record" \
	eval 'run get3 0 "$atkv" get "$like" && [ "$(cat "$tmp/get3.out")" = "$like_compact" ]'
check "NATS down: exit 1, one line naming the URL" \
	eval 'ATKV_NATS=nats://127.0.0.1:1 run down 1 "$atkv" get "$like" && one_line_err down "cannot connect to NATS at nats://127.0.0.1:1"'
down_all() { # every command but top, with NATS down: exit 1, one line naming the URL
	local cmd
	for cmd in "status" "put $like $tmp/like.json" "get $like" "del $like" "watch app.bsky.feed.like" "reset --yes"; do
		# shellcheck disable=SC2086
		ATKV_NATS=nats://127.0.0.1:1 run down_c 1 "$atkv" $cmd </dev/null &&
			one_line_err down_c "cannot connect to NATS at nats://127.0.0.1:1" || { echo "# atkv $cmd" >&2; return 1; }
	done
}
check "every command with NATS down: exit 1, one clear line (status, put, get, del, watch, reset)" down_all
check "del: exit 0, then get says there is no record (exit 1)" \
	eval 'run del1 0 "$atkv" del "$like" && run get4 1 "$atkv" get "$like" && one_line_err get4 "no record at $like"'
check "del of a record that is not there: exit 1" eval 'run del2 1 "$atkv" del "$like" && one_line_err del2 "no record at"'
check "no command, an unknown one, or a missing argument: exit 2" \
	eval 'run u1 2 "$atkv" && run u2 2 "$atkv" frob && run u3 2 "$atkv" get && one_line_err u2 "no command \"frob\""'

# ---- watch ----
other=did:plc:clitest000000000000000002
"$atkv" watch app.bsky.feed >"$tmp/watch.out" 2>"$tmp/watch.err" &
watch_pid=$!
"$atkv" watch app.bsky.feed.like --did "$did" >"$tmp/watchdid.out" 2>"$tmp/watchdid.err" &
watch_pid="$watch_pid $!"
# Both subscribed once each has printed a record put (again, until they have): it is deleted,
# and its lines left out of what is compared.
sentinel="at://$did/app.bsky.feed.like/3kcli0000000"
for _ in $(seq 100); do
	echo "$like_json" | "$atkv" put "$sentinel"
	grep -q 3kcli0000000 "$tmp/watch.out" && grep -q 3kcli0000000 "$tmp/watchdid.out" && break
	sleep 0.1
done
"$atkv" del "$sentinel"
echo "$like_json" | "$atkv" put "$like"
echo "{\"\$type\": \"app.bsky.feed.like\", \"subject\": {\"uri\": \"$post\", \"cid\": \"x\"}, \"createdAt\": \"2026-11-27T10:00:01.000Z\"}" |
	"$atkv" put "at://$other/app.bsky.feed.like/3kcli0000002"
echo '{"$type": "app.bsky.feed.post", "text": "hello"}' | "$atkv" put "at://$did/app.bsky.feed.post/3kcli0000003"
echo '{"$type": "app.bsky.graph.follow", "subject": "did:plc:x", "createdAt": "2026-11-27T10:00:00.000Z"}' |
	"$atkv" put "at://$did/app.bsky.graph.follow/3kcli0000004"
"$atkv" del "$like"
watched() { grep -v 3kcli0000000 "$tmp/$1"; }
for _ in $(seq 100); do
	[ "$(watched watch.out | wc -l)" -ge 4 ] && [ "$(watched watchdid.out | wc -l)" -ge 2 ] && break
	sleep 0.1
done
sleep 0.3
for p in $watch_pid; do kill -INT "$p"; done
st=0
for p in $watch_pid; do wait "$p" || st=1; done
watch_pid=''
expected_watch="put $like $like_compact
put at://$other/app.bsky.feed.like/3kcli0000002 {\"\$type\":\"app.bsky.feed.like\",\"subject\":{\"uri\":\"$post\",\"cid\":\"x\"},\"createdAt\":\"2026-11-27T10:00:01.000Z\"}
put at://$did/app.bsky.feed.post/3kcli0000003 {\"\$type\":\"app.bsky.feed.post\",\"text\":\"hello\"}
del $like"
check "watch NAMESPACE: every change under app.bsky.feed, in order, as 'put URI JSON' / 'del URI' (not the follow)" \
	eval '[ "$(watched watch.out)" = "$expected_watch" ] || { diff <(echo "$expected_watch") <(watched watch.out) | sed "s/^/#   /"; false; }'
check "watch COLLECTION --did: only that account's likes" \
	eval '[ "$(watched watchdid.out)" = "put $like $like_compact
del $like" ]'
check "watch exits 0 on SIGINT" test "$st" -eq 0
"$atkv" watch app.bsky.feed.like --all >"$tmp/watchall.out" 2>&1 &
watch_pid=$!
for _ in $(seq 100); do grep -q "3kcli0000002" "$tmp/watchall.out" && break; sleep 0.1; done
sleep 0.3
kill -INT "$watch_pid"
wait "$watch_pid"
watch_pid=''
check "watch --all: the store's current records first (one like left in app.bsky.feed.like)" \
	eval 'grep -c "^put " "$tmp/watchall.out" | grep -qx 1 && grep -q "3kcli0000002" "$tmp/watchall.out"'
check "watch: a bad collection exits 2" eval 'run badns 2 "$atkv" watch "app..bsky" && one_line_err badns "not a collection or namespace"'

# ---- status, with a real consumer ----
db=$tmp/likes.sqlite
"$top_builddir/src/atkv-like-indexer" --nats "$ATKV_NATS" --db "$db" --config /dev/null >"$tmp/indexer.log" 2>&1 &
ix_pid=$!
for _ in $(seq 100); do
	"$atkv" status --json --interval 0 >"$tmp/st.json" 2>/dev/null &&
		python3 -c 'import json,sys; c=[c for c in json.load(open(sys.argv[1]))["consumers"] if c["name"]=="like-indexer"]; sys.exit(0 if c and c[0]["pending"]==0 and c[0]["ack_pending"]==0 else 1)' "$tmp/st.json" && break
	sleep 0.1
done
check "status --json: buckets, cursor (none yet), and the like-indexer consumer caught up" \
	python3 - "$tmp/st.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["cursor"] is None, d
# five keys: three records and the markers of the two likes deleted (history 1)
assert d["buckets"]["record"]["entries"] == 5 and d["buckets"]["record"]["bytes"] > 0, d
assert d["buckets"]["cursor"] is not None and d["buckets"]["account"] is not None, d
c = [c for c in d["consumers"] if c["name"] == "like-indexer"][0]
assert c["pending"] == 0 and c["ack_pending"] == 0 and c["ack_floor"] > 0, c
assert d["last_write"]["age_s"] >= 0, d
PY
for i in $(seq 10 29); do
	echo "{\"\$type\": \"app.bsky.feed.like\", \"subject\": {\"uri\": \"$post\", \"cid\": \"x\"}, \"createdAt\": \"2026-11-27T10:00:$i.000Z\"}" |
		"$atkv" put "at://$other/app.bsky.feed.like/3kcli00000$i" &
done
wait_puts() { local j; for j in $(jobs -p); do [ "$j" = "$server_pid" ] || [ "$j" = "$ix_pid" ] || wait "$j"; done; }
"$atkv" status --interval 1500 >"$tmp/st.txt" 2>&1 &
st_pid=$!
wait "$st_pid"
wait_puts
check "status (text): the cursor line, a line per bucket, and a consumer line with a rate" \
	eval 'grep -q "^cursor .*none" "$tmp/st.txt" && grep -Eq "^record +[0-9]+ +[0-9]+$" "$tmp/st.txt" &&
		grep -Eq "^like-indexer +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+$" "$tmp/st.txt" || sed "s/^/#   /" "$tmp/st.txt" | (cat >&2; false)'
check "top in a terminal: draws the builder and consumer lines, q quits (exit 0), the screen restored" \
	python3 - "$atkv" <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "top", "--interval", "200"])
out, end = b"", time.time() + 10
while time.time() < end and out.count(b"like-indexer") < 3:   # three redraws
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        out += os.read(fd, 65536)
os.write(fd, b"q")
end = time.time() + 10
status = None
while time.time() < end and status is None:
    r, _, _ = select.select([fd], [], [], 0.1)
    try:
        if r:
            out += os.read(fd, 65536)
    except OSError:
        pass
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        status = st
if status is None:
    os.kill(pid, 9)
    sys.exit("top did not quit on q")
text = out.decode("utf-8", "replace")
for want in ("atkv top", "writes/s", "like-indexer", "\x1b[?1049h", "\x1b[?25h\x1b[?1049l"):
    assert want in text, (want, text[-500:])
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
PY
check "top without a terminal: exit 2, pointing to status --json" \
	eval 'run top0 2 "$atkv" top </dev/null && one_line_err top0 "status --json"'
kill "$ix_pid" && wait "$ix_pid"
ix_pid=''

# ---- a NATS without JetStream: no bucket is "missing", NATS cannot tell ----
nats_start "$tmp" "$tmp/nojs.log"
nojs_pid=$nats_pid nojs_url=$nats_url
check "status and reset on a NATS without JetStream: exit 1 with NATS's reason, nothing called missing or deleted" \
	eval 'ATKV_NATS=$nojs_url run nojs1 1 "$atkv" status --interval 0 && one_line_err nojs1 "cannot read bucket record" &&
		ATKV_NATS=$nojs_url run nojs2 1 "$atkv" reset --yes && one_line_err nojs2 "nothing deleted"'
kill "$nojs_pid" && wait "$nojs_pid"
nojs_pid=''

# ---- reset ----
check "reset without a terminal and without --yes: exit 2, nothing deleted" \
	eval 'run reset0 2 "$atkv" reset </dev/null && one_line_err reset0 "say --yes" && run get5 0 "$atkv" get "at://$other/app.bsky.feed.like/3kcli0000002"'
check "reset --yes: names what it deletes (the consumer too) and warns about the like index" \
	eval 'run reset1 0 "$atkv" reset --yes </dev/null && grep -q "deleted bucket record (.*consumers like-indexer" "$tmp/reset1.out" && grep -q "like index" "$tmp/reset1.out"'
check "after reset: the buckets are missing and get says so" \
	eval 'run st2 0 "$atkv" status --json --interval 0 && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert all(v is None for v in d[\"buckets\"].values()), d" "$tmp/st2.out" && run get6 1 "$atkv" get "$like"'
check "reset with nothing there: exit 0, says so" eval 'run reset2 0 "$atkv" reset --yes && grep -q "nothing to reset" "$tmp/reset2.out"'
