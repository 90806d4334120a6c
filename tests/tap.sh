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
diag_file() { # diag_file FILE [LINES]: the last lines of a log file as TAP diagnostics
	[ -s "$1" ] && tail -n "${2:-20}" "$1" | sed 's/^/#   /'
	return 0
}
