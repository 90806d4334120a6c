#!/bin/bash
# End-to-end TAP test: atkv-builder against the reference PDS.
#
# Starts a private nats-server and the reference PDS (@atproto/dev-env, via
# tests/reference/pds-e2e.js), starts src/atkv-builder on that PDS's firehose
# before any activity, lets pds-e2e.js create accounts and records, waits for
# the builder's cursor to reach the PDS's last seq, then compares every record
# of the PDS with the KV bucket `record` (pds-e2e.js prints those TAP lines,
# renumbered here). Finally stops the builder with SIGTERM (it must exit 0).
# Runs from the build directory with $srcdir set, as `make check` does.
# Everything runs on loopback; every wait is bounded; every failed step is a
# `not ok` line.
#
# Needs node (18 or 20), npm (only when tests/reference/node_modules is
# missing: `npm ci` then downloads the pinned packages) and nats-server.
# ATKV_SKIP_PDS_TEST=1 skips the test explicitly (e.g. offline package builds).

set -u
: "${srcdir:=.}"
builder=src/atkv-builder
indexer=src/atkv-like-indexer
query=src/atkv-get-likes-by

# shellcheck source=tests/tap.sh
. "$srcdir/tests/tap.sh"

if [ "${ATKV_SKIP_PDS_TEST:-0}" = 1 ]; then
	echo "1..0 # SKIP ATKV_SKIP_PDS_TEST=1"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atkv-pds.XXXXXX") || {
	echo "not ok 1 - mktemp"
	echo "1..1"
	exit 0
}
nats_pid='' node_pid='' builder_pid='' indexer_pid='' builder3_pid='' builder5_pid='' others=''

# wait_gone PID SECONDS: true once PID has exited
wait_gone() {
	local i=0
	while kill -0 "$1" 2>/dev/null; do
		[ "$i" -ge $(($2 * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}
# stop PID: SIGTERM, then SIGKILL after 10 s
stop() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null
	wait_gone "$1" 10 || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}
cleanup() {
	exec 3>&- 4<&-
	stop "$indexer_pid"
	indexer_pid=
	stop "$builder_pid"
	builder_pid=
	stop "$node_pid"
	node_pid=
	stop "$nats_pid"
	nats_pid=
	stop "$builder3_pid"
	builder3_pid=
	stop "$builder5_pid"
	builder5_pid=
	for p in $others; do stop "$p"; done
	others=
	rm -rf "$tmp"
}
finish() {
	cleanup
	echo "1..$n"
	exit 0
}
trap 'cleanup; exit 1' INT TERM HUP

# ---- tools ----
for tool in node nats-server; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		notok "$tool is installed"
		finish
	fi
done
if [ ! -x "$builder" ]; then
	notok "$builder is built"
	finish
fi

# ---- reference packages ----
refdir=$srcdir/tests/reference
have_packages() {
	(cd "$1" && node -e 'for (const m of ["@atproto/dev-env", "@atproto/api", "nats", "murmurhash"]) require.resolve(m)') \
		>/dev/null 2>&1
}
if have_packages "$refdir"; then
	ok "reference packages installed"
else
	if [ ! -w "$refdir" ] || [ -z "$(find "$refdir" -maxdepth 0 -perm -u+w)" ]; then
		# read-only source tree (distcheck; the mode bits, for root): install into a copy
		mkdir "$tmp/reference" &&
			cp "$refdir/package.json" "$refdir/package-lock.json" "$refdir/pds-e2e.js" "$tmp/reference/"
		refdir=$tmp/reference
	fi
	echo "# npm ci in $refdir (takes a few minutes)"
	if command -v npm >/dev/null 2>&1 &&
		(cd "$refdir" && timeout 900 npm ci --no-audit --no-fund) >"$tmp/npm.log" 2>&1 &&
		have_packages "$refdir"; then
		ok "reference packages installed with npm ci"
	else
		notok "reference packages installed with npm ci"
		diag_file "$tmp/npm.log"
		finish
	fi
fi

# ---- nats-server ----
mkdir "$tmp/store" "$tmp/pds"
nats-server -js -sd "$tmp/store" -a 127.0.0.1 -p -1 --ports_file_dir "$tmp" >"$tmp/nats.log" 2>&1 &
nats_pid=$!
nats_url=
for _ in $(seq 100); do
	f=$tmp/nats-server_$nats_pid.ports
	if [ -s "$f" ]; then
		nats_url=$(sed -n 's|.*"\(nats://127\.0\.0\.1:[0-9][0-9]*\)".*|\1|p' "$f")
		[ -n "$nats_url" ] && break
	fi
	kill -0 "$nats_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$nats_url" ]; then
	notok "nats-server started"
	diag_file "$tmp/nats.log"
	finish
fi
ok "nats-server started at $nats_url"

# ---- the reference PDS ----
mkfifo "$tmp/node.in" "$tmp/node.out" || {
	notok mkfifo
	finish
}
mkdir "$tmp/likes"
TMPDIR=$tmp/pds ATKV_LIKES_DIR=$tmp/likes node "$refdir/pds-e2e.js" "$nats_url" <"$tmp/node.in" >"$tmp/node.out" \
	2>"$tmp/node.err" &
node_pid=$!
exec 3>"$tmp/node.in" 4<"$tmp/node.out"

# next_line SECONDS: the next protocol line from node into $line; TAP
# lines are forwarded (renumbered) and diagnostics passed through on the way
node_failed=0
next_line() {
	local deadline=$((SECONDS + $1)) left
	while :; do
		left=$((deadline - SECONDS))
		[ "$left" -gt 0 ] || return 1
		IFS= read -r -t "$left" -u 4 line || return 1
		case $line in
		"ok "*) ok "${line#ok * - }" ;;
		"not ok "*)
			notok "${line#not ok * - }"
			node_failed=1
			;;
		"#"*) echo "$line" ;;
		"{"*) return 0 ;;
		*) echo "# node: $line" ;;
		esac
	done
}
json_field() { # json_field NAME: a number or string field of $line
	printf '%s\n' "$line" | sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p"
}
expect_line() { # expect_line SECONDS KEY DESCRIPTION
	if next_line "$1"; then
		case $line in
		*"\"$2\""*)
			ok "$3"
			return 0
			;;
		esac
	fi
	notok "$3"
	[ -n "${line:-}" ] && echo "# got: $line"
	diag_file "$tmp/node.err"
	return 1
}

line=
expect_line 300 ready "reference PDS started" || finish
pds_url=$(json_field pds)
pds_http=$(json_field http)
plc_url=$(json_field plc)
echo "# PDS firehose at $pds_url, PLC at $plc_url"

# ---- the builder, before any activity ----
metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(
	for v in $(env | sed -n 's/^\(ATKV_[A-Za-z0-9_]*\)=.*/\1/p') NATS_URL NOTIFY_SOCKET WATCHDOG_USEC; do
		unset "$v"
	done
	exec "$builder" --nats "$nats_url" --relay "$pds_url" --plc "$plc_url" --config /dev/null --log-level info \
		--metrics "127.0.0.1:$metrics_port"
) >"$tmp/builder.log" 2>&1 &
builder_pid=$!
connected=0
for _ in $(seq 300); do
	grep -q "connected to" "$tmp/builder.log" && {
		connected=1
		break
	}
	kill -0 "$builder_pid" 2>/dev/null || break
	sleep 0.1
done
if [ "$connected" = 1 ]; then
	ok "atkv-builder connected to the PDS firehose"
else
	notok "atkv-builder connected to the PDS firehose"
	diag_file "$tmp/builder.log"
fi

# ---- activity ----
echo go >&3
if ! expect_line 600 "done" "activity on the PDS finished"; then
	finish
fi
last_seq=$(json_field lastSeq)
deleted_did=$(json_field deleted)
echo "# PDS last seq: $last_seq; account deleted: $deleted_did"

# metric_at PORT NAME: a sample of a builder's metrics page (-1 when it is not there)
metric_at() {
	python3 -c 'import sys, urllib.request
page = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
print(next((l.split()[-1] for l in page.splitlines() if l.split(" ")[0] == sys.argv[2]), "-1"))' "$1" "$2" 2>/dev/null ||
		echo -1
}
metric() { metric_at "$metrics_port" "$1"; }

# The deleted account's records leave the store (the comparison then finds no key of it).
for _ in $(seq 300); do
	[ "$(metric atkv_builder_accounts_purged_total)" -ge 1 ] 2>/dev/null && break
	sleep 0.1
done
check "the account deleted on the PDS: its records removed from the store ($(grep -o "deleted account $deleted_did: [0-9]* records removed" "$tmp/builder.log"))" \
	grep -Eq "deleted account $deleted_did: [1-9][0-9]* records removed" "$tmp/builder.log"

# ---- comparison (pds-e2e.js waits up to 30 s for the cursor) ----
echo check >&3
expect_line 300 checked "comparison finished" || finish

# ---- verified sync: every commit of the session checked with its account's key from the PLC ----
verified=$(metric atkv_builder_commits_verified_total)
commits=$(metric 'atkv_builder_events_total{type="commit"}')
refused=$(($(metric atkv_builder_commits_unverified_total) + $(metric atkv_builder_desynchronized_total) +
	$(metric 'atkv_builder_errors_total{kind="broken_chain"}') + $(metric 'atkv_builder_errors_total{kind="stale_rev"}')))
check "atkv-builder verified every commit of the session ($verified of $commits; signatures, trees, chains; keys from the PLC)" \
	[ "$verified" -gt 0 -a "$verified" -ge "$commits" -a "$refused" = 0 ]
check "and fetched each account's DID document ($(metric atkv_builder_key_fetches_total) fetches)" \
	[ "$(metric atkv_builder_key_fetches_total)" -ge 3 ]

# ---- the like indexer on the same store; atkv-get-likes-by against the PDS's own likes ----
(
	for v in $(env | sed -n 's/^\(ATKV_[A-Za-z0-9_]*\)=.*/\1/p') NATS_URL NOTIFY_SOCKET WATCHDOG_USEC; do
		unset "$v"
	done
	exec "$indexer" --nats "$nats_url" --db "$tmp/likes.sqlite" --config /dev/null
) >"$tmp/indexer.log" 2>&1 &
indexer_pid=$!
echo likes >&3
# compare_likes DB INDEXER_LOG WHAT: for each account, atkv-get-likes-by on the index DB gives
# what pds-e2e.js wrote in $tmp/likes (its likes on the PDS, newest first), within 60 s
compare_likes() {
	local db=$1 log=$2 what=$3 accounts=0 f did same
	for f in "$tmp/likes"/*.txt; do
		[ -e "$f" ] || continue
		did=$(basename "$f" .txt)
		accounts=$((accounts + 1))
		same=0
		for _ in $(seq 60); do
			"$query" --db "$db" --config /dev/null "$did" >"$tmp/got.txt" 2>"$tmp/query.err" &&
				cmp -s "$f" "$tmp/got.txt" && {
				same=1
				break
			}
			sleep 1
		done
		if [ "$same" = 1 ]; then
			ok "$what: atkv-get-likes-by $did gives the $(wc -l <"$f") posts it likes on the PDS, newest first"
		else
			notok "$what: atkv-get-likes-by $did gives the posts it likes on the PDS, newest first"
			diff "$f" "$tmp/got.txt" | head -n 10 | sed 's/^/#   /'
			diag_file "$tmp/query.err"
			diag_file "$log"
		fi
	done
	check "$what: likes compared for the PDS's $accounts accounts" [ "$accounts" -ge 3 ]
}
if expect_line 120 likes "the reference wrote each account's likes"; then
	compare_likes "$tmp/likes.sqlite" "$tmp/indexer.log" "like index of the live store"
fi
stop "$indexer_pid"
indexer_pid=

# ---- atkv-backfill into stores of their own, each on a nats-server of its own ----
# other_nats NAME: starts one on $tmp/NAME; its URL in $url2 and PID in $pid2 (also kept in
# $others, to be stopped at the end).
other_nats() {
	local n1_pid=$nats_pid n1_url=$nats_url
	mkdir "$tmp/$1"
	nats_start "$tmp/$1" "$tmp/$1.log" -js -sd "$tmp/$1"
	pid2=$nats_pid url2=$nats_url
	nats_pid=$n1_pid nats_url=$n1_url
	others="$others $pid2"
	[ -n "$url2" ] || notok "a nats-server of its own for $1"
	[ -n "$url2" ]
}
# clean_env CMD...: runs CMD without the environment's ATKV_* settings
clean_env() {
	for v in $(env | sed -n 's/^\(ATKV_[A-Za-z0-9_]*\)=.*/\1/p') NATS_URL NOTIFY_SOCKET WATCHDOG_USEC; do
		unset "$v"
	done
	exec "$@"
}
# backfill URL LOG [OPTION...]: atkv-backfill of the PDS's repositories into the store at URL
backfill() {
	local url=$1 log=$2
	shift 2
	(clean_env src/atkv-backfill --nats "$url" --source "$pds_http" --plc "$plc_url" --config /dev/null "$@") \
		>"$tmp/$log" 2>&1
}
others=''

# An empty store: the same records, found through listRepos, the PLC directory and getRepo;
# run again, it fetches nothing.
if other_nats store2; then
	backfill "$url2" backfill1.log
	rc=$?
	check "atkv-backfill --source the PDS: exit 0 (status $rc)" [ "$rc" = 0 ]
	grep -q "3/3 repositories (0 already current)" "$tmp/backfill1.log" || diag_file "$tmp/backfill1.log" 10
	echo "backfilled $url2 once" >&3
	expect_line 300 checked "the backfilled store compared with the PDS"
	echo "heads $url2 backfilled" >&3
	expect_line 120 checked "the heads atkv-backfill left compared with the PDS"
	backfill "$url2" backfill2.log
	check "run again: the 3 repositories already current, nothing fetched" \
		grep -q "3/3 repositories (3 already current), 0 records" "$tmp/backfill2.log"
	stop "$pid2"
fi

# Beside a live builder, while the repositories change: a builder started now on an empty
# store sees only what happens from now on, and atkv-backfill runs again and again (a plain
# run, then --force) while pds-e2e.js writes, updates and deletes. The store must end equal to
# the PDS: no backfilled value over a newer live one, no record deleted live brought back.
if other_nats store3; then
	(clean_env "$builder" --nats "$url2" --relay "$pds_url" --plc "$plc_url" --config /dev/null) >"$tmp/builder3.log" 2>&1 &
	builder3_pid=$!
	for _ in $(seq 300); do
		grep -q "connected to" "$tmp/builder3.log" && break
		sleep 0.1
	done
	echo churn >&3
	runs=0 rcs=''
	if expect_line 60 churning "the PDS's repositories changing (60 rounds of writes, updates and deletes)"; then
		# One backfill after another until the churn ends: the lines from node are read
		# between runs.
		churned=0
		for i in $(seq 40); do
			if [ "$i" = 1 ]; then backfill "$url2" live1.log; else backfill "$url2" live$i.log --force; fi
			rcs="$rcs$? "
			runs=$i
			if IFS= read -r -t 0.05 -u 4 line; then
				case $line in *'"churned"'*) churned=1 ;; "#"*) echo "$line" ;; esac
			fi
			[ "$churned" = 1 ] && break
		done
		[ "$churned" = 1 ] || next_line 300 || true
		live_seq=$(json_field lastSeq)
		check "$runs backfills ran while the repositories changed, each exit 0 ($rcs)" \
			[ "$runs" -ge 2 -a -z "$(echo "$rcs" | tr -d '0 ')" ]
		# Each run's last line: records written, and kept (the store had them at that revision or later).
		sed -n 's/.* records (\([0-9]*\) written, \([0-9]*\) kept.*/\1 \2/p' "$tmp"/live*.log |
			awk '{ w += $1; k += $2 } END { printf "# those backfills wrote %d records and kept %d\n", w, k }'

		echo "checklive $url2 $live_seq" >&3
		expect_line 300 checked "the store of the builder and the backfills compared with the PDS"
		# The backfills' heads and the builder's together: every commit chained on whichever
		# was there, and the heads end where the PDS is.
		echo "heads $url2" >&3
		expect_line 120 checked "the heads of the builder and the backfills compared with the PDS"
		check "no repository desynchronized beside the backfills" \
			[ "$(grep -c "desynchronized" "$tmp/builder3.log")" = 0 ]
	fi
	stop "$builder3_pid"
	stop "$pid2"
fi

# Through a relay that alters the firehose as a hostile one might (pds-e2e.js's tamperingRelay:
# a commit of alice pointed at another tree, and a later one signed by another account; one of
# bob with a record changed and its CID recomputed; one of carol left out): a builder reading
# the whole history from seq 0, and the writes of another churn, refuses each altered commit
# and writes nothing of it, resynchronizes the repositories from the PDS (alice's twice), and
# its store ends equal to the PDS.
if other_nats store5; then
	echo tamper >&3
	if expect_line 30 tamper "a tampering relay in front of the PDS's firehose"; then
		tamper_url=$(json_field tamper)
		port5=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		(clean_env "$builder" --nats "$url2" --relay "$tamper_url" --plc "$plc_url" --cursor 0 --config /dev/null \
			--metrics "127.0.0.1:$port5") >"$tmp/builder5.log" 2>&1 &
		builder5_pid=$!
		echo churn >&3
		expect_line 60 churning "the repositories changing again, while that builder reads"
		next_line 300 || true
		live_seq=$(json_field lastSeq)
		settled() {
			[ "$(metric_at "$port5" atkv_builder_seq)" -ge "$live_seq" ] 2>/dev/null &&
				[ "$(metric_at "$port5" atkv_builder_resyncs_total)" -ge 4 ] 2>/dev/null &&
				[ "$(metric_at "$port5" atkv_builder_resyncs_waiting)" = 0 ]
		}
		for _ in $(seq 600); do settled && break; sleep 0.1; done
		m() { metric_at "$port5" "$1"; }
		check "it refused the three altered commits ($(m atkv_builder_commits_unverified_total) failed their checks: $(grep -o 'in commit [a-zA-Z]*' "$tmp/builder5.log" | sort | uniq -c | tr -s ' \n' ' '))" \
			[ "$(m atkv_builder_commits_unverified_total)" = 3 ]
		check "and the commit after the one left out ($(m 'atkv_builder_errors_total{kind="broken_chain"}') broke the chain)" \
			[ "$(m 'atkv_builder_errors_total{kind="broken_chain"}')" = 1 ]
		check "the repositories resynchronized from the PDS ($(m atkv_builder_resyncs_total) resyncs, $(m atkv_builder_resync_failures_total) failed, $(m atkv_builder_resyncs_waiting) waiting; $(m 'atkv_builder_errors_total{kind="desynchronized"}') commits held meanwhile)" \
			settled
		echo "checklive $url2 $live_seq" >&3
		expect_line 300 checked "the store of the builder behind the tampering relay compared with the PDS"
	fi
	stop "$builder5_pid"
	builder5_pid=
	stop "$pid2"
fi

# Killed with -9 halfway (after its first repository) and started again: it finishes what is
# left, and no record is written twice. Then the like index built from that store.
if other_nats store4; then
	# exec all the way down: $! is atkv-backfill itself
	(clean_env src/atkv-backfill --nats "$url2" --source "$pds_http" --plc "$plc_url" --config /dev/null \
		--concurrency 1 --log-level debug) >"$tmp/kill1.log" 2>&1 &
	bf_pid=$!
	for _ in $(seq 300); do
		grep -q "records at rev" "$tmp/kill1.log" 2>/dev/null && break
		sleep 0.01
	done
	kill -KILL "$bf_pid" 2>/dev/null
	wait "$bf_pid" 2>/dev/null
	check "atkv-backfill killed with -9 after its first repository" \
		[ "$(grep -c "records at rev" "$tmp/kill1.log")" -lt 3 ]
	backfill "$url2" kill2.log
	rc=$?
	check "started again: exit 0, the repositories done before skipped (status $rc; $(grep -o '[0-9]*/[0-9]* repositories ([0-9]* already current)' "$tmp/kill2.log" | tail -n 1))" \
		grep -Eq "3/3 repositories \([12] already current\)" "$tmp/kill2.log"
	check "and exit status 0 ($rc)" [ "$rc" = 0 ]
	echo "backfilled $url2 once" >&3
	expect_line 300 checked "the store of the killed and restarted backfill compared with the PDS"

	(clean_env "$indexer" --nats "$url2" --db "$tmp/likes4.sqlite" --config /dev/null) >"$tmp/indexer4.log" 2>&1 &
	indexer_pid=$!
	rm -f "$tmp/likes"/*.txt
	echo likes >&3
	if expect_line 120 likes "each account's likes, as they are after the churn"; then
		compare_likes "$tmp/likes4.sqlite" "$tmp/indexer4.log" "like index of the backfilled store"
	fi
	stop "$indexer_pid"
	indexer_pid=
	stop "$pid2"
fi

# ---- stop the builder: SIGTERM, clean exit ----
if kill -0 "$builder_pid" 2>/dev/null; then
	kill -TERM "$builder_pid"
	if wait_gone "$builder_pid" 30; then
		wait "$builder_pid"
		rc=$?
		builder_pid=
		check "atkv-builder exits 0 on SIGTERM (exit status $rc)" [ "$rc" = 0 ]
	else
		notok "atkv-builder exits within 30 s of SIGTERM"
	fi
else
	wait "$builder_pid"
	rc=$?
	builder_pid=
	notok "atkv-builder still running at the end (it exited with status $rc)"
fi
if [ "$node_failed" = 1 ] || [ "$connected" = 0 ]; then
	echo "# builder log:"
	diag_file "$tmp/builder.log" 40
fi

# ---- stop the PDS ----
echo stop >&3
exec 3>&-
if wait_gone "$node_pid" 30; then
	wait "$node_pid"
	rc=$?
	node_pid=
	check "pds-e2e.js exits 0 (exit status $rc)" [ "$rc" = 0 ]
else
	notok "pds-e2e.js exits within 30 s"
fi
finish
