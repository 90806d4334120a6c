# tap.sh — the Test Anything Protocol for the shell tests (sourced): numbered "ok"/"not ok"
# lines, a check that runs a command, and log tails as diagnostics. The caller prints the plan
# ("1..$n") when done; $failed counts the "not ok" lines, for a caller that sets its exit status.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $*"
}
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
# nats_start DIR LOG [OPTION...]: a nats-server with OPTIONs on a free loopback port, its ports
# file in DIR and its output in LOG; sets nats_pid, and nats_url (nats://127.0.0.1:PORT, also for
# a TLS server) once it listens, or leaves nats_url empty after 10 s.
nats_start() {
	local dir=$1 log=$2 f
	shift 2
	nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$dir" "$@" >"$log" 2>&1 &
	nats_pid=$!
	nats_url=
	f=$dir/nats-server_$nats_pid.ports
	for _ in $(seq 100); do
		[ -s "$f" ] && nats_url=$(sed -n 's|.*"[a-z]*://\(127\.0\.0\.1:[0-9][0-9]*\)".*|nats://\1|p' "$f")
		[ -n "$nats_url" ] && break
		sleep 0.1
	done
}
diag_file() { # diag_file FILE [LINES]: the last lines of a log file as TAP diagnostics
	[ -s "$1" ] && tail -n "${2:-20}" "$1" | sed 's/^/#   /'
	return 0
}
