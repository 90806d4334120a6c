#!/bin/bash
# test-replay.sh — recording a relay's stream with atkv-firehose-replay --record, against the
# replay server itself serving the test capture: the recording is the capture byte for byte;
# --cursor starts after a seq; an existing file is refused; an unreachable relay leaves no file;
# SIGINT ends a recording cleanly; bad arguments exit 2. Run by `make check`. Prints TAP.
set -u
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}
. "$srcdir/tests/tap.sh"
replay=$top_builddir/src/atkv-firehose-replay
capture=$srcdir/tests/data/firehose-capture.bin

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atkv-replay.XXXXXX") || { echo "not ok 1 - mktemp"; echo "1..1"; exit 0; }
server=''
finish() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	[ -n "${ATKV_TEST_KEEP:-}" ] && echo "# kept $tmp" || rm -rf "$tmp"
	echo "1..$n"
	exit 0
}
trap finish EXIT

"$replay" "$capture" --listen 127.0.0.1:0 --port-file "$tmp/port" 2>"$tmp/server.log" &
server=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { notok "the replay server listens"; diag_file "$tmp/server.log"; exit; }
url=ws://127.0.0.1:$(cat "$tmp/port")
frames=$(sed -n 's/.*: \([0-9]*\) frames, seq.*/\1/p' "$tmp/server.log")

check "--record --frames N: the recording is the capture, byte for byte ($frames frames)" \
	eval '"$replay" --record "$tmp/all.cap" --from "$url" --frames "$frames" 2>"$tmp/all.log" && cmp -s "$tmp/all.cap" "$capture"'
check "and it says what it holds: frames and the seqs" \
	grep -q "all.cap: $frames frames, [0-9]* bytes, seq 1\.\.$frames, 0 undecodable" "$tmp/all.log"
check "--cursor 100 --seconds 2: the frames after seq 100, then it stops by itself" \
	eval '"$replay" --record "$tmp/tail.cap" --from "$url" --cursor 100 --seconds 2 2>"$tmp/tail.log" && grep -q "tail.cap: $((frames - 100)) frames, [0-9]* bytes, seq 101\.\.$frames" "$tmp/tail.log"'
check "a recording replays: served again and recorded, it is the same file" \
	eval '"$replay" "$tmp/tail.cap" --listen 127.0.0.1:0 --port-file "$tmp/port2" 2>/dev/null & p=$!
		for _ in $(seq 50); do [ -s "$tmp/port2" ] && break; sleep 0.1; done
		"$replay" --record "$tmp/again.cap" --from "ws://127.0.0.1:$(cat "$tmp/port2")" --frames $((frames - 100)) 2>/dev/null
		kill $p; wait $p; cmp -s "$tmp/again.cap" "$tmp/tail.cap"'
cp "$tmp/all.cap" "$tmp/before"
check "an existing file is refused (exit 1, the file untouched, the line says what to do)" \
	eval '! "$replay" --record "$tmp/all.cap" --from "$url" --frames 1 2>"$tmp/exists.log" && cmp -s "$tmp/all.cap" "$tmp/before" && grep -q "File exists (remove it or record into another file)" "$tmp/exists.log"'
check "an unreachable relay: exit 1, no file left" \
	eval '! "$replay" --record "$tmp/none.cap" --from ws://127.0.0.1:1 --seconds 5 2>"$tmp/none.log" && [ ! -e "$tmp/none.cap" ] && grep -q "cannot connect" "$tmp/none.log"'
"$replay" --record "$tmp/int.cap" --from "$url" 2>"$tmp/int.log" &
rec=$!
for _ in $(seq 50); do grep -q "frames" "$tmp/int.log" 2>/dev/null && break; [ "$(stat -c %s "$tmp/int.cap" 2>/dev/null || echo 0)" -ge "$(stat -c %s "$capture")" ] && break; sleep 0.1; done
kill -INT "$rec"
wait "$rec"
st=$?
check "SIGINT: exit 0, the file complete and synced (the whole capture by then)" \
	eval '[ "$st" -eq 0 ] && cmp -s "$tmp/int.cap" "$capture" && grep -q "int.cap: $frames frames" "$tmp/int.log"'
check "bad arguments exit 2: --record without --from, --record with --listen, --cursor without --record" \
	eval '"$replay" --record x.cap 2>/dev/null; a=$?; "$replay" --record x.cap --from "$url" --listen 127.0.0.1:0 2>/dev/null; b=$?
		"$replay" "$capture" --listen 127.0.0.1:0 --cursor 5 2>/dev/null; c=$?; [ $a -eq 2 ] && [ $b -eq 2 ] && [ $c -eq 2 ] && [ ! -e x.cap ]'
