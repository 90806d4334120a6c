#!/bin/bash
# test-units.sh — the systemd units and the configuration as `make install` puts them: every unit
# passes `systemd-analyze verify`, each service's `systemd-analyze security` exposure is 2.0 or
# lower, and etc/atkv.conf shows every option the programs take from a file. The units are
# checked in a root of their own (--root): `make install DESTDIR=` plus the machine's own
# standard units, nothing of the machine's changed. Run by `make check`.
set -u
srcdir=${srcdir:-.}
top_builddir=${top_builddir:-.}
MAKE=${MAKE:-make}

# shellcheck source=tests/tap.sh
. "$srcdir/tests/tap.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atkv-units.XXXXXX") || { echo "not ok 1 - mktemp"; echo "1..1"; exit 0; }
finish() {
	rm -rf "$tmp"
	echo "1..$n"
	exit 0
}

if ! command -v systemd-analyze >/dev/null; then
	notok "systemd-analyze is installed (apt-get install systemd)"
	finish
fi

root=$tmp/root
if ! $MAKE -C "$top_builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1; then
	notok "make install DESTDIR=..."
	diag_file "$tmp/install.log"
	finish
fi
# Wherever configure put them (distcheck: under its own prefix).
unitdir=$(find "$root" -name atkv.target -printf '%h\n' | head -n 1)
unitdir=${unitdir#"$root"}
nats_server=$(sed -n 's/^NATS_SERVER = //p' "$top_builddir/Makefile")
units="atkv-builder.service atkv-like-indexer.service atkv-nats.service atkv-backfill.service atkv.target"
missing=""
for u in $units; do [ -f "$root$unitdir/$u" ] || missing="$missing $u"; done
if [ -z "$missing" ]; then
	ok "make install puts the units in $unitdir"
else
	notok "make install puts the units in $unitdir (missing:$missing)"
	finish
fi

# What the units name must exist in the root: the standard targets (copied from this machine),
# and the programs outside atkv (stubs: verify only checks that they can be executed).
# Units installed elsewhere (distcheck's prefix) are looked at where systemd would find them.
mkdir -p "$root/lib/systemd/system"
cp -an /lib/systemd/system/. "$root/lib/systemd/system/" 2>/dev/null
if [ "$unitdir" != /lib/systemd/system ]; then
	for u in $units; do cp "$root$unitdir/$u" "$root/lib/systemd/system/"; done
	unitdir=/lib/systemd/system
fi
for stub in "$nats_server" /bin/kill; do
	mkdir -p "$root$(dirname "$stub")"
	printf '#!/bin/sh\n' >"$root$stub"
	chmod +x "$root$stub"
done

paths=""
for u in $units; do paths="$paths $unitdir/$u"; done
# shellcheck disable=SC2086
if (cd / && systemd-analyze verify --root="$root" --man=no $paths) >"$tmp/verify.log" 2>&1 && [ ! -s "$tmp/verify.log" ]; then
	ok "systemd-analyze verify: no complaint about $units"
else
	notok "systemd-analyze verify: no complaint about $units"
	diag_file "$tmp/verify.log"
fi

for u in atkv-builder.service atkv-like-indexer.service atkv-nats.service atkv-backfill.service; do
	(cd / && systemd-analyze security --offline=yes --root="$root" "$unitdir/$u") >"$tmp/security.log" 2>&1
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$tmp/security.log")
	if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
		ok "systemd-analyze security $u: exposure $level (2.0 or lower)"
	else
		notok "systemd-analyze security $u: exposure ${level:-unknown} (2.0 or lower)"
		grep -E '^✗' "$tmp/security.log" | head -n 20 | sed 's/^/#   /'
	fi
done

# Every option a program reads from the file, shown in etc/atkv.conf (as "key =" or "#key =").
conf=$srcdir/etc/atkv.conf
absent=""
for p in atkv-builder atkv-like-indexer atkv-get-likes-by atkv atkv-backfill; do
	"$top_builddir/src/$p" --help >"$tmp/help" 2>&1
	# An option line, then its "(ATKV_...; default: ...)" line; flag-only ones say "this run only".
	for key in $(awk '/^  --[a-z]/ { key = substr($1, 3) } /^ +\(ATKV_/ && key { print key; key = "" }' "$tmp/help"); do
		grep -Eq "^#?$key =" "$conf" || absent="$absent $p:$key"
	done
done
# ... and the README's configuration table has a row for each key of etc/atkv.conf.
undocumented=""
for key in $(sed -n 's/^#\{0,1\}\([a-z][a-z-]*\) =.*/\1/p' "$conf"); do
	sed -n '/^## Configuration/,/^## /p' "$srcdir/README.md" | grep -q "^| .*\`$key\`" ||
		undocumented="$undocumented $key"
done
check "README's Configuration table documents every key of etc/atkv.conf${undocumented:+ (missing:$undocumented)}" \
	test -z "$undocumented"
if [ -z "$absent" ]; then
	ok "etc/atkv.conf shows every option the programs read from it"
else
	notok "etc/atkv.conf shows every option the programs read from it (absent:$absent)"
fi
finish
