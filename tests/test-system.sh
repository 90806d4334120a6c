#!/bin/bash
# test-system.sh — atkv as a user runs it in production, under a real systemd: the .debs
# installed with apt, the relay set in /etc/atkv/atkv.conf, `systemctl enable --now atkv.target`,
# `journalctl -u atkv-builder -f`, `atkv-get-likes-by did:plc:…` (the commands of the README's
# "The services", word for word), then the watchdog and a clean stop.
#
#   tests/test-system.sh [DEBDIR]
#
# DEBDIR holds atkv_*.deb and libatkv0_*.deb (scripts/build-packages OUTDIR leaves them in
# OUTDIR/deb); without it the packages are built first, into the test's temporary directory.
#
# The system is an overlay over this machine's own root (nothing is downloaded: the packages'
# dependencies are those of the build, already installed here), with a machine id of its own and
# the units it has enabled that have nothing to do with atkv masked. systemd boots as PID 1 of
# private PID, mount, network and cgroup namespaces (the cgroup a directory of the test's own),
# chrooted into the overlay; every command in it runs through nsenter. The builder reads the test
# capture from atkv-firehose-replay, run in that system as a transient unit. Checks: apt installs
# and starts nothing; the three services reach `active` (the builder and the indexer are
# Type=notify: active means READY=1); the builder's journal has its structured entries; the
# index answers for every account of the capture with likes; SIGSTOP to the builder gets it
# killed by the watchdog and restarted, resuming from its cursor; atkv-backfill.service, started
# by hand, stores a repository served inside the system; `systemctl stop atkv.target` stops all
# three cleanly. Cleanup kills the namespace's PID 1 (everything in it dies with it),
# unmounts the overlay and checks that no process of the test is left.
#
# Needs root, util-linux (unshare, nsenter), systemd, python3. Not part of `make check` (it
# needs the packages and root): .ci/run runs it after building them. Prints TAP; exits 1 when a
# check failed. ATKV_TEST_KEEP=1 keeps the temporary directory (the overlay's upper layer, the
# logs). Every wait is bounded; the whole test takes about half a minute.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=tests/tap.sh
. "$top/tests/tap.sh"

port=2583      # the replay's, inside the system's own network namespace
watchdog=5     # the builder's WatchdogSec= in this test (see the drop-in below)

if [ "$(id -u)" != 0 ]; then
	notok "run as root (it mounts an overlay and boots systemd in namespaces)"
	echo "1..$n"
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/atkv-system.XXXXXX") || {
	notok "mktemp"
	echo "1..$n"
	exit 1
}
merged=$tmp/merged
bootpid='' sdpid='' cg='' mounted=false

# sys COMMAND...: runs COMMAND in the booted system (its root, namespaces and a root shell's
# environment), for at most 120 s.
sys() {
	timeout -k 5 120 nsenter -t "$sdpid" -m -p -n -C -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive SYSTEMD_COLORS=0 SYSTEMD_PAGER= "$@"
}
# wait_for SECONDS COMMAND...: true once COMMAND succeeds, trying every half second.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.5
	done
}
diag() { sed 's/^/#   /'; }
# diag_units UNIT...: their status and the end of their journal, as TAP diagnostics.
diag_units() {
	[ -n "$sdpid" ] || return 0
	local u
	for u in "$@"; do
		sys systemctl status --no-pager -l -n 0 "$u" 2>&1 | diag
		sys journalctl -u "$u" -n 25 --no-pager 2>&1 | diag
	done
}
prop() { sys systemctl show -p "$2" --value "$1"; } # prop UNIT PROPERTY

# ---- cleanup: nothing of the test may outlive it ----
finish() {
	trap '' INT TERM HUP
	local left='' left_cg='' p r
	if [ -n "$sdpid" ] && kill -0 "$sdpid" 2>/dev/null; then
		# PID 1 of the namespace: when it dies, the kernel kills everything else in there.
		kill -KILL "$sdpid"
	fi
	if [ -n "$bootpid" ]; then
		for _ in $(seq 100); do kill -0 "$bootpid" 2>/dev/null || break; sleep 0.1; done
		wait "$bootpid" 2>/dev/null
	fi
	# The namespace's own mounts (proc, sys, dev, run, tmp) went with its last process.
	if $mounted; then
		umount -l "$merged" 2>/dev/null
		mountpoint -q "$merged" || mounted=false
	fi
	# No process left: none rooted in the overlay, none in the test's cgroup (which then goes).
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case $r in "$merged" | "$merged"/*) left="$left ${p#/proc/}" ;; esac
	done
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		for _ in $(seq 50); do
			left_cg=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')
			[ -z "$left_cg" ] && break
			sleep 0.1
		done
		left="$left$left_cg"
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	if [ -n "$bootpid" ]; then
		if [ -z "$left" ] && ! $mounted && { [ -z "$cg" ] || [ ! -d "$cg" ]; }; then
			ok "cleanup: the system's PID 1 killed, nothing left running (cgroup empty and removed), overlay unmounted"
		else
			notok "cleanup: the system's PID 1 killed, nothing left running, overlay unmounted"
			echo "processes left:${left:- none}; overlay mounted: $mounted; cgroup: ${cg:-none}" | diag
			[ -n "$left" ] && ps -o pid,ppid,stat,cmd -p "${left// /,}" 2>&1 | diag
		fi
	fi
	if [ -n "${ATKV_TEST_KEEP:-}" ] || $mounted; then
		echo "# kept $tmp"
	else
		rm -rf "$tmp"
	fi
	echo "1..$n"
	[ "$failed" -eq 0 ]
	exit $?
}
trap 'notok "interrupted"; finish' INT TERM HUP

# ---- the packages ----
debdir=${1:-}
if [ -z "$debdir" ]; then
	if "$top/scripts/build-packages" "$tmp/packages" >"$tmp/build-packages.log" 2>&1; then
		ok "scripts/build-packages built the packages"
	else
		notok "scripts/build-packages built the packages"
		grep -E '^not ok' "$tmp/build-packages.log" | diag
		diag_file "$tmp/build-packages.log"
		finish
	fi
	debdir=$tmp/packages/deb
fi
# shellcheck disable=SC2206  # the globs are meant
debs=("$debdir"/atkv_*.deb "$debdir"/libatkv0_*.deb)
if [ ${#debs[@]} = 2 ] && [ -f "${debs[0]}" ] && [ -f "${debs[1]}" ]; then
	ok "the packages: ${debs[*]##*/}"
else
	notok "one atkv_*.deb and one libatkv0_*.deb in ${debdir}"
	finish
fi

# ---- the system: an overlay over this machine's root ----
mkdir -p "$tmp/upper" "$tmp/work" "$merged"
if mount -t overlay overlay -o "lowerdir=/,upperdir=$tmp/upper,workdir=$tmp/work" "$merged" 2>"$tmp/mount.log"; then
	mounted=true
fi
# Never boot over the machine's own root: only over this overlay.
if ! $mounted || [ "$(findmnt -n -o FSTYPE -M "$merged")" != overlay ] || [ "$merged" -ef / ]; then
	notok "an overlay over / at $merged"
	diag_file "$tmp/mount.log"
	finish
fi
tr -d - </proc/sys/kernel/random/uuid >"$merged/etc/machine-id"
# What this root has enabled besides atkv (a database, Debian's nats-server on 4222, gettys,
# timers) is masked: the test boots atkv alone.
masked=$(SYSTEMD_OFFLINE=1 systemctl --root="$merged" list-unit-files --state=enabled --no-legend 2>/dev/null |
	awk '$1 !~ /^atkv/ {print $1}')
masked="$masked getty@tty1.service serial-getty@.service console-getty.service container-getty@.service"
for u in $masked; do ln -sfn /dev/null "$merged/etc/systemd/system/$u"; done
# The shipped WatchdogSec=60 would make this test wait a minute for the kill; a drop-in, the
# administrator's way to change a unit, shortens it here (the mechanism is the same).
mkdir -p "$merged/etc/systemd/system/atkv-builder.service.d"
printf '# test-system.sh: the watchdog fires sooner than the shipped 60 s, so the test is quick\n[Service]\nWatchdogSec=%s\n' \
	"$watchdog" >"$merged/etc/systemd/system/atkv-builder.service.d/test-watchdog.conf"
# Where the system's commands find the packages and the capture (its /tmp will be a tmpfs).
mkdir -p "$merged/var/tmp/atkv-system-test"
cp "${debs[@]}" "$top/tests/data/firehose-capture.bin" "$merged/var/tmp/atkv-system-test/"
chmod -R a+rX "$merged/var/tmp/atkv-system-test"
ok "an overlay root over / with its own machine id; masked: $(xargs <<<"$masked")"

# ---- boot ----
# A cgroup of the test's own (in cgroup v2; on a hybrid host, /sys/fs/cgroup/unified) is the
# root of the system's cgroup namespace: systemd manages it, and it shows what is left at the end.
cg2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
if [ -z "$cg2" ] || ! mkdir "$cg2${own%/}/${tmp##*/}" 2>"$tmp/cgroup.log"; then
	notok "a cgroup v2 directory for the system"
	diag_file "$tmp/cgroup.log"
	finish
fi
cg=$cg2${own%/}/${tmp##*/}
(
	echo "$BASHPID" >"$cg/cgroup.procs" || exit 1
	# shellcheck disable=SC2016  # expanded by that shell
	exec unshare --cgroup --pid --fork --mount --net sh -c '
		set -e
		r=$1
		mount --make-rprivate /
		mount -t proc proc "$r/proc"
		mount --rbind /sys "$r/sys"
		mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup"
		mount --rbind /dev "$r/dev"
		mount -t tmpfs tmpfs "$r/run"
		mount -t tmpfs tmpfs "$r/tmp"
		exec env -i container=atkv-system-test /usr/sbin/chroot "$r" /lib/systemd/systemd --system
	' sh "$merged"
) >"$tmp/console.log" 2>&1 </dev/null &
bootpid=$!
# systemd is the child of unshare (PID 1 inside); it is up when its private socket is.
for _ in $(seq 300); do
	[ -z "$sdpid" ] && sdpid=$(awk '{print $1}' "/proc/$bootpid/task/$bootpid/children" 2>/dev/null)
	[ -n "$sdpid" ] && [ -S "/proc/$sdpid/root/run/systemd/private" ] && break
	kill -0 "$bootpid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$sdpid" ] || [ ! -S "/proc/$sdpid/root/run/systemd/private" ]; then
	notok "systemd starts as PID 1 of its namespaces"
	diag_file "$tmp/console.log" 40
	finish
fi
sys ip link set lo up
state=$(sys systemctl is-system-running --wait 2>&1)
if [ "$state" = running ] || [ "$state" = degraded ]; then
	ok "systemd booted the overlay root as PID 1 of its namespaces (PID $sdpid here): $state"
	[ "$state" = degraded ] && sys systemctl list-units --failed --no-legend --no-pager 2>&1 | diag
else
	notok "systemd booted the overlay root: is-system-running says '$state'"
	sys systemctl list-units --failed --no-legend --no-pager 2>&1 | diag
	diag_file "$tmp/console.log" 40
	finish
fi

# ---- the README's commands ----
# Read from the README ("The services"), comments dropped, and run as printed there; the test
# fills in only the relay (the replay instead of wss://bsky.network) and the DIDs.
relay="ws://127.0.0.1:$port"
awk '/^## The services/ {s = 1} s && /^```sh$/ {c = 1; next} c && /^```$/ {exit} c' "$top/README.md" |
	sed 's/[[:space:]][[:space:]]*#[[:space:]].*$//' >"$tmp/readme.sh"
readme() { grep -m 1 "$1" "$tmp/readme.sh"; } # readme REGEX: the README's command matching it
apt_cmd=$(readme '^apt install ')
conf_cmd=$(readme ' /etc/atkv/atkv\.conf$')
conf_cmd=${conf_cmd//wss:\/\/bsky.network/$relay}
enable_cmd=$(readme '^systemctl enable ')
journal_cmd=$(readme '^journalctl ')
query_cmd=$(readme '^atkv-get-likes-by ')
if [ -n "$apt_cmd" ] && [ -n "$conf_cmd" ] && [ -n "$enable_cmd" ] && [ -n "$journal_cmd" ] && [ -n "$query_cmd" ] &&
	[ "$(wc -l <"$tmp/readme.sh")" = 5 ] && grep -q "relay = $relay" <<<"$conf_cmd"; then
	ok "the README's five commands for running the services, read from it"
else
	notok "the README's five commands (apt install, the relay in /etc/atkv/atkv.conf, systemctl enable, journalctl, atkv-get-likes-by)"
	diag <"$tmp/readme.sh"
	finish
fi

units="atkv-nats.service atkv-builder.service atkv-like-indexer.service"
if sys sh -c "cd /var/tmp/atkv-system-test && $apt_cmd" </dev/null >"$tmp/apt.log" 2>&1 &&
	sys dpkg-query -W atkv libatkv0 >"$tmp/dpkg.log" 2>&1; then
	ok "$apt_cmd: $(tr '\t\n' '  ' <"$tmp/dpkg.log" | sed 's/ $//')"
else
	notok "$apt_cmd"
	diag_file "$tmp/apt.log" 30
	finish
fi
# shellcheck disable=SC2086
states=$(sys systemctl is-active atkv.target $units | tr '\n' ' ')
states="$states$(sys systemctl is-active atkv-backfill.service)"
if [ "$states" = "inactive inactive inactive inactive inactive" ] && sys id atkv >/dev/null; then
	ok "installing starts nothing (atkv.target, its services and atkv-backfill inactive) and creates the user atkv"
else
	notok "installing starts nothing and creates the user atkv (states: $states)"
fi

if sys sh -c "$conf_cmd" >"$tmp/conf.log" 2>&1 && [ "$(sys grep '^relay' /etc/atkv/atkv.conf)" = "relay = $relay" ]; then
	ok "$conf_cmd (the relay: a replay of the test capture)"
else
	notok "$conf_cmd sets relay = $relay"
	diag_file "$tmp/conf.log"
fi
# The capture's accounts lived in the PLC directory of a test network that is gone: their keys
# cannot be fetched, so this system writes their commits unverified.
sys sh -c 'echo "verify = false" >>/etc/atkv/atkv.conf'
# The relay: the capture, with a garbage message after every 50th frame (the builder logs each
# with its journal fields), served by the installed atkv-firehose-replay as a transient unit.
sys systemd-run --quiet --unit=atkv-test-replay /usr/bin/atkv-firehose-replay \
	/var/tmp/atkv-system-test/firehose-capture.bin --listen "127.0.0.1:$port" --garbage-every 50 \
	--port-file /run/atkv-test-replay.port >"$tmp/replay.log" 2>&1
replay_port() { [ "$(sys cat /run/atkv-test-replay.port 2>/dev/null)" = "$port" ]; }
if wait_for 20 replay_port; then
	ok "atkv-firehose-replay serves the capture at $relay (transient unit atkv-test-replay)"
else
	notok "atkv-firehose-replay serves the capture at $relay"
	diag_file "$tmp/replay.log"
	diag_units atkv-test-replay.service
fi

if sys sh -c "$enable_cmd" >"$tmp/enable.log" 2>&1 && [ "$(sys systemctl is-enabled atkv.target)" = enabled ]; then
	ok "$enable_cmd: enabled"
else
	notok "$enable_cmd"
	diag_file "$tmp/enable.log"
fi
all_active() { sys systemctl is-active --quiet "$@"; }
has_status() { [ -n "$(prop "$1" StatusText)" ]; }
for u in $units; do
	if wait_for 60 all_active "$u"; then
		type=$(prop "$u" Type)
		user=$(sys ps -o user= -p "$(prop "$u" MainPID)")
		if [ "$type" = notify ]; then
			# STATUS= comes every second or so after READY=1.
			wait_for 10 has_status "$u"
			check "$u active, as user $user: Type=notify, READY=1 received (status: $(prop "$u" StatusText))" \
				test "$user" = atkv
		else
			check "$u active, as user $user (Type=$type)" test "$user" = atkv
		fi
	else
		notok "$u active within 60 s (it is $(sys systemctl is-active "$u"))"
		diag_units "$u"
	fi
done

# ---- the capture streamed and indexed: atkv-get-likes-by answers ----
# Each account's likes, newest first (by record key), as the capture leaves them.
python3 - "$top/tests/data/firehose-expected.jsonl" "$tmp/expected" <<'EOF'
import json, os, sys
live = {}
last_seq = 0
for line in open(sys.argv[1]):
    f = json.loads(line)
    last_seq = max(last_seq, f["body"].get("seq", 0))
    if f["header"].get("t") != "#commit":
        continue
    records = {r["path"]: r for r in f["records"]}
    for op in f["body"]["ops"]:
        if not op["path"].startswith("app.bsky.feed.like/"):
            continue
        key = (f["body"]["repo"], op["path"].split("/", 1)[1])
        if op["action"] == "delete":
            live.pop(key, None)
        else:
            live[key] = records[op["path"]]["record"]["subject"]["uri"]
os.makedirs(sys.argv[2])
by = {}
for (did, rkey), uri in live.items():
    by.setdefault(did, []).append((rkey, uri))
for did, likes in by.items():
    with open(os.path.join(sys.argv[2], did), "w") as out:
        for rkey, uri in sorted(likes, reverse=True):
            print(uri, file=out)
with open(os.path.join(sys.argv[2], "last-seq"), "w") as out:
    print(last_seq, file=out)
EOF
last_seq=$(cat "$tmp/expected/last-seq")
dids=$(cd "$tmp/expected" && ls did:*)
answers() { # every account's likes as expected
	local d all=0
	for d in $dids; do
		sys sh -c "${query_cmd//did:plc:…/$d}" >"$tmp/got.$d" 2>&1 && cmp -s "$tmp/got.$d" "$tmp/expected/$d" || all=1
	done
	return $all
}
if wait_for 60 answers; then
	for d in $dids; do
		ok "${query_cmd//did:plc:…/$d}: its $(wc -l <"$tmp/expected/$d") likes, newest first, as in the capture"
	done
else
	for d in $dids; do
		if cmp -s "$tmp/got.$d" "$tmp/expected/$d" 2>/dev/null; then
			ok "${query_cmd//did:plc:…/$d}: its $(wc -l <"$tmp/expected/$d") likes, newest first, as in the capture"
		else
			notok "${query_cmd//did:plc:…/$d}: its $(wc -l <"$tmp/expected/$d") likes as in the capture, within 60 s"
			diff "$tmp/expected/$d" "$tmp/got.$d" 2>&1 | head -n 10 | diag
		fi
	done
	diag_units atkv-builder.service atkv-like-indexer.service
fi

# ---- the journal ----
# The README's journalctl, for 3 s (it follows): the builder's own lines.
sys timeout 3 sh -c "$journal_cmd" >"$tmp/journal-f.log" 2>&1
if grep -q " atkv-builder\[[0-9]*\]: " "$tmp/journal-f.log"; then
	ok "$journal_cmd shows the builder's lines: $(grep -c " atkv-builder\[[0-9]*\]: " "$tmp/journal-f.log") of them in 3 s"
else
	notok "$journal_cmd shows the builder's lines"
	diag_file "$tmp/journal-f.log"
fi
sys journalctl -u atkv-builder -o json --no-pager >"$tmp/journal.json" 2>&1
# Sent to journald (not lines on stderr), with a priority, and for bad input the fields of ours.
if python3 - "$tmp/journal.json" "$relay" >"$tmp/journal.check" 2>&1 <<'EOF'
import json, sys
entries = []
for line in open(sys.argv[1]):
    try:
        entries.append(json.loads(line))
    except ValueError:
        pass
ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "atkv-builder"]
connected = [e for e in ours if e.get("MESSAGE", "").startswith("connected to " + sys.argv[2])
             and e.get("_TRANSPORT") == "journal" and e.get("PRIORITY") == "6"]
bad = [e for e in ours if e.get("ATKV_KIND") == "malformed_frame" and e.get("PRIORITY") == "4"]
print(f"{len(ours)} entries of atkv-builder, {len(connected)} 'connected to {sys.argv[2]}' "
      f"(_TRANSPORT=journal, PRIORITY=6), {len(bad)} with ATKV_KIND=malformed_frame (PRIORITY=4)")
sys.exit(0 if connected and bad else 1)
EOF
then
	ok "journalctl -u atkv-builder: structured entries: $(cat "$tmp/journal.check")"
else
	notok "journalctl -u atkv-builder: structured entries (connected, ATKV_KIND of the skipped garbage)"
	diag_file "$tmp/journal.check"
	sys journalctl -u atkv-builder -o verbose -n 3 --no-pager 2>&1 | diag
fi

# ---- the watchdog ----
# Once the cursor has reached the end of the capture and been saved (every second), the builder
# is stopped dead; the watchdog must kill it, Restart=on-failure start it again, and the new
# one resume from that cursor.
cursor_at_end() { prop atkv-builder StatusText | grep -q "cursor $last_seq;"; }
wait_for 30 cursor_at_end
sleep 2
pid=$(prop atkv-builder MainPID)
restarts=$(prop atkv-builder NRestarts)
since=$(sys date '+%Y-%m-%d %H:%M:%S')
sys kill -STOP "$pid"
restarted() {
	local p
	p=$(prop atkv-builder MainPID)
	[ "$p" != 0 ] && [ "$p" != "$pid" ] && sys systemctl is-active --quiet atkv-builder
}
if [ -n "$pid" ] && [ "$pid" != 0 ] && wait_for $((watchdog + 60)) restarted; then
	sys journalctl -u atkv-builder --since "$since" --no-pager >"$tmp/journal-watchdog.log" 2>&1
	if grep -q "Watchdog timeout" "$tmp/journal-watchdog.log" && grep -q "Failed with result 'watchdog'" "$tmp/journal-watchdog.log" &&
		[ "$(prop atkv-builder NRestarts)" -gt "$restarts" ]; then
		ok "SIGSTOP to the builder (PID $pid): '$(grep -o 'Watchdog timeout.*' "$tmp/journal-watchdog.log" | head -n 1)', Result=watchdog, restarted as PID $(prop atkv-builder MainPID), NRestarts $restarts -> $(prop atkv-builder NRestarts)"
	else
		notok "SIGSTOP to the builder: killed by the watchdog (Result=watchdog) and restarted"
		diag_file "$tmp/journal-watchdog.log"
	fi
	resumed() { sys journalctl -u atkv-builder --since "$since" --no-pager -o cat | grep -q "^connecting to $relay/[^ ]* from cursor $last_seq\$"; }
	if wait_for 20 resumed; then
		ok "the restarted builder resumes from its saved cursor $last_seq (the capture's last seq)"
	else
		notok "the restarted builder resumes from its saved cursor $last_seq"
		sys journalctl -u atkv-builder --since "$since" --no-pager -o cat 2>&1 | tail -n 10 | diag
	fi
else
	notok "SIGSTOP to the builder (PID $pid): killed by the watchdog and restarted within $((watchdog + 60)) s"
	diag_units atkv-builder.service
fi

# ---- atkv-backfill.service, started by hand ----
# A PDS inside the system: python3's http.server answering listRepos and getRepo (it ignores the
# query) with files, the repository one the reference PDS recorded (tests/data/repo-ann.car).
# `source` and `pds` set in atkv.conf; `systemctl start atkv-backfill` (a oneshot: it returns
# when the backfill has ended) must succeed and store the repository's records.
pdsdir=$merged/var/tmp/atkv-system-test/pds
mkdir -p "$pdsdir/xrpc"
ann_did=$(sed -n '1s/.*"did":"\([^"]*\)".*/\1/p' "$top/tests/data/repo-expected.jsonl")
ann_rev=$(sed -n '1s/.*"rev":"\([^"]*\)".*/\1/p' "$top/tests/data/repo-expected.jsonl")
printf '{"repos":[{"did":"%s","head":"x","rev":"%s","active":true}]}' "$ann_did" "$ann_rev" \
	>"$pdsdir/xrpc/com.atproto.sync.listRepos"
cp "$top/tests/data/repo-ann.car" "$pdsdir/xrpc/com.atproto.sync.getRepo"
chmod -R a+rX "$pdsdir"
pds_port=2584
sys systemd-run --quiet --unit=atkv-test-pds python3 -m http.server --bind 127.0.0.1 \
	--directory /var/tmp/atkv-system-test/pds "$pds_port" >"$tmp/pds.log" 2>&1
pds_up() { sys python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$pds_port/xrpc/com.atproto.sync.listRepos')" 2>/dev/null; }
wait_for 20 pds_up || notok "the test's PDS (python3 -m http.server) answers"
printf 'source = http://127.0.0.1:%s\npds = http://127.0.0.1:%s\n' "$pds_port" "$pds_port" >>"$merged/etc/atkv/atkv.conf"
if sys systemctl start atkv-backfill >"$tmp/backfill-start.log" 2>&1; then
	how="Result=$(prop atkv-backfill Result), exit $(prop atkv-backfill ExecMainStatus)"
	check "systemctl start atkv-backfill: ran to its end ($how)" test "$how" = "Result=success, exit 0"
else
	notok "systemctl start atkv-backfill"
	diag_file "$tmp/backfill-start.log"
fi
records=$(grep -o '"path"' <(sed -n 1p "$top/tests/data/repo-expected.jsonl") | wc -l)
backfill_said() { sys journalctl -u atkv-backfill --no-pager -o cat | grep -q "1/1 repositories (0 already current), $records records ($records written"; }
# journald may write the last lines a moment after the unit ends.
if wait_for 15 backfill_said; then
	ok "journalctl -u atkv-backfill: 1/1 repositories, $records records written"
else
	notok "journalctl -u atkv-backfill: 1/1 repositories, $records records written"
	sys journalctl -u atkv-backfill --no-pager -o cat 2>&1 | tail -n 10 | diag
fi
profile="at://$ann_did/app.bsky.actor.profile/self"
got_profile() { sys /usr/bin/atkv get "$profile" 2>&1 | grep -q '"$type":"app.bsky.actor.profile"'; }
check "atkv get $profile: the backfilled record" got_profile
sys systemctl stop atkv-test-pds.service

# ---- a clean stop ----
# The services are PartOf=atkv.target: stopping the target stops them. systemctl returns when
# the target has stopped, the services may still be deactivating: wait for them.
since=$(sys date '+%Y-%m-%d %H:%M:%S')
if sys systemctl stop atkv.target >"$tmp/stop.log" 2>&1; then
	ok "systemctl stop atkv.target"
else
	notok "systemctl stop atkv.target"
	diag_file "$tmp/stop.log"
fi
stopped() { [ "$(sys systemctl is-active atkv.target $units | tr '\n' ' ')" = "inactive inactive inactive inactive " ]; }
# shellcheck disable=SC2086
if wait_for 90 stopped; then
	for u in $units; do
		result=$(prop "$u" Result)
		how="$(prop "$u" ExecMainCode) $(prop "$u" ExecMainStatus)"
		case $how in
		"1 0") how="exit 0" ;;
		"2 2") how="killed by SIGINT (nats-server's clean shutdown)" ;;
		"2 15") how="killed by SIGTERM" ;;
		*) how="code $how" ;;
		esac
		check "$u stopped: inactive, Result=$result, $how" test "$result" = success
	done
else
	notok "atkv.target and its services inactive within 90 s: $(sys systemctl is-active atkv.target $units | tr '\n' ' ')"
	# shellcheck disable=SC2086
	diag_units $units
fi
stopped_said() { grep -q "stopped at cursor $last_seq\$" <(sys journalctl -u atkv-builder --since "$since" --no-pager -o cat); }
if wait_for 15 stopped_said; then
	ok "the builder drained its writes and saved its cursor on SIGTERM: 'stopped at cursor $last_seq'"
else
	notok "the builder saved its cursor on SIGTERM ('stopped at cursor $last_seq')"
	sys journalctl -u atkv-builder --since "$since" --no-pager -o cat 2>&1 | tail -n 10 | diag
fi
sys systemctl stop atkv-test-replay.service
check "the replay stopped (its transient unit gone)" test "$(sys systemctl is-active atkv-test-replay.service)" = inactive

finish
