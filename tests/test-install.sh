#!/bin/bash
# test-install.sh — libatkv as its users get it: `make install` into a temporary root, the
# example indexer (examples/count-records.c) compiled against that with pkg-config alone, then
# run on a store that atkv-builder filled from the capture: its counts per collection must be
# the capture's. Also: the library exports the public API only, and `make uninstall` removes
# everything. Run by `make check` (which sets MAKE, CC, CFLAGS, top_builddir and srcdir).
set -u
srcdir=${srcdir:-.}
top_builddir=${top_builddir:-.}
MAKE=${MAKE:-make}
CC=${CC:-cc}

# shellcheck source=tests/tap.sh
. "$srcdir/tests/tap.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atkv-install.XXXXXX") || { echo "not ok 1 - mktemp"; echo "1..1"; exit 0; }
nats_pid='' replay_pid='' builder_pid=''
stop() { # stop PID: SIGTERM, then SIGKILL after 10 s
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}
finish() {
	stop "$builder_pid"
	stop "$replay_pid"
	stop "$nats_pid"
	rm -rf "$tmp"
	echo "1..$n"
	exit 0
}
trap 'finish' INT TERM HUP

# ---- install ----
root=$tmp/root
if $MAKE -C "$top_builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1; then
	ok "make install DESTDIR=..."
else
	notok "make install DESTDIR=..."
	diag_file "$tmp/install.log"
	finish
fi
pc=$(find "$root" -name atkv.pc | head -n 1)
lib=$(find "$root" -name 'libatkv.so.0' | head -n 1)
if [ -n "$pc" ] && [ -n "$lib" ] && [ -n "$(find "$root" -path '*/include/atkv/atkv.h')" ]; then
	ok "installed: atkv.pc, libatkv.so.0 and <atkv/atkv.h>"
else
	notok "installed: atkv.pc, libatkv.so.0 and <atkv/atkv.h>"
	finish
fi
libdir=$(dirname "$lib")

# Only the public API is exported: every defined dynamic symbol is atkv_* (or the version node).
others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^atkv_' | grep -v '^ATKV_0$' || true)
if [ -z "$others" ] && [ "$(nm -D --defined-only "$lib" | grep -c ' atkv_consumer_open@@ATKV_0')" = 1 ]; then
	ok "libatkv.so.0 exports the public API only, versioned ATKV_0"
else
	notok "libatkv.so.0 exports the public API only, versioned ATKV_0"
	echo "$others" | head -n 5 | sed 's/^/#   /'
fi

# ---- build the example as a user would ----
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs atkv 2>"$tmp/pc.log")
# shellcheck disable=SC2086  # the flags are words
if [ -n "$flags" ] && $CC ${CFLAGS:-} -std=c11 -Wall -Wextra -Werror "$srcdir/examples/count-records.c" $flags \
	-o "$tmp/count-records" >"$tmp/cc.log" 2>&1; then
	ok "examples/count-records.c builds with \`pkg-config --cflags --libs atkv\` alone"
else
	notok "examples/count-records.c builds with \`pkg-config --cflags --libs atkv\` alone"
	diag_file "$tmp/pc.log"
	diag_file "$tmp/cc.log"
	finish
fi

# The README's indexer, exactly as printed there.
awk '/^## Write your own indexer/ {s = 1} s && /^```c$/ {c = 1; next} c && /^```$/ {exit} c' \
	"$srcdir/README.md" >"$tmp/likes.c"
# shellcheck disable=SC2086
if [ -s "$tmp/likes.c" ] && $CC ${CFLAGS:-} -std=c11 -Wall -Wextra -Werror "$tmp/likes.c" $flags -o "$tmp/likes" \
	>"$tmp/cc-readme.log" 2>&1; then
	ok "the README's \"Write your own indexer\" program compiles as shown ($(wc -l <"$tmp/likes.c") lines)"
else
	notok "the README's \"Write your own indexer\" program compiles as shown"
	diag_file "$tmp/cc-readme.log"
fi

# ---- a store filled by the real pipeline ----
mkdir "$tmp/store"
nats_start "$tmp" "$tmp/nats.log" -js -sd "$tmp/store"
"$top_builddir/src/atkv-firehose-replay" "$srcdir/tests/data/firehose-capture.bin" --listen 127.0.0.1:0 \
	--port-file "$tmp/replay.port" >"$tmp/replay.log" 2>&1 &
replay_pid=$!
for _ in $(seq 100); do [ -s "$tmp/replay.port" ] && break; sleep 0.1; done
if [ -z "$nats_url" ] || [ ! -s "$tmp/replay.port" ]; then
	notok "nats-server and the replay server started"
	diag_file "$tmp/nats.log"
	diag_file "$tmp/replay.log"
	finish
fi
"$top_builddir/src/atkv-builder" --nats "$nats_url" --relay "ws://127.0.0.1:$(cat "$tmp/replay.port")" \
	--config /dev/null --verify=false >"$tmp/builder.log" 2>&1 &
builder_pid=$!

# What the capture leaves in the store: its records' last states, counted per collection.
python3 - "$srcdir/tests/data/firehose-expected.jsonl" >"$tmp/expected" <<'EOF'
import collections, json, sys
live = {}
for line in open(sys.argv[1]):
    f = json.loads(line)
    if f["header"].get("t") != "#commit":
        continue
    for op in f["body"]["ops"]:
        key = f["body"]["repo"] + "/" + op["path"]
        if op["action"] == "delete":
            live.pop(key, None)
        else:
            live[key] = True
counts = collections.Counter(k.split("/")[1] for k in live if k.split("/")[1].startswith("app.bsky."))
for c in sorted(counts):
    print(c, counts[c])
EOF

# The builder needs a moment: count until the store holds what the capture does (60 s at most).
matched=false
for _ in $(seq 30); do
	LD_LIBRARY_PATH=$libdir "$tmp/count-records" --nats "$nats_url" --idle 500 app.bsky >"$tmp/counts" \
		2>"$tmp/count.err" || break
	if cmp -s "$tmp/counts" "$tmp/expected"; then
		matched=true
		break
	fi
	sleep 1
done
if $matched; then
	ok "the example indexer, linked to the installed libatkv, counts the capture's records ($(wc -l <"$tmp/expected") collections)"
else
	notok "the example indexer, linked to the installed libatkv, counts the capture's records"
	diff "$tmp/expected" "$tmp/counts" | head -n 20 | sed 's/^/#   /'
	diag_file "$tmp/count.err"
	diag_file "$tmp/builder.log"
fi

# Horizontal scaling: two processes, each with half of the 16 partitions, at the same time. Every
# record counted exactly once between them: their counts add up to the whole, and each had some.
if $matched; then
	LD_LIBRARY_PATH=$libdir "$tmp/count-records" --nats "$nats_url" --idle 3000 --partitions 0x00ff app.bsky \
		>"$tmp/counts.low" 2>"$tmp/count.err" &
	low_pid=$!
	LD_LIBRARY_PATH=$libdir "$tmp/count-records" --nats "$nats_url" --idle 3000 --partitions 0xff00 app.bsky \
		>"$tmp/counts.high" 2>>"$tmp/count.err"
	wait "$low_pid"
	cat "$tmp/counts.low" "$tmp/counts.high" | awk '{n[$1] += $2} END {for (c in n) print c, n[c]}' | sort >"$tmp/counts.sum"
fi
if $matched && cmp -s "$tmp/counts.sum" "$tmp/expected" && [ -s "$tmp/counts.low" ] && [ -s "$tmp/counts.high" ]; then
	ok "two processes splitting the partitions (0x00ff, 0xff00) count every record exactly once together ($(awk '{s += $2} END {print s}' "$tmp/counts.low") + $(awk '{s += $2} END {print s}' "$tmp/counts.high"))"
else
	notok "two processes splitting the partitions count every record exactly once together"
	diff "$tmp/expected" "$tmp/counts.sum" 2>&1 | head -n 20 | sed 's/^/#   /'
	diag_file "$tmp/count.err"
fi

# ---- uninstall ----
if $MAKE -C "$top_builddir" uninstall DESTDIR="$root" >"$tmp/uninstall.log" 2>&1 &&
	[ -z "$(find "$root" -type f)" ]; then
	ok "make uninstall removes every installed file"
else
	notok "make uninstall removes every installed file"
	find "$root" -type f | head -n 5 | sed 's/^/#   /'
fi
finish
