#!/usr/bin/env bash
# Usage: scripts/check-packaging.sh DEB    (as root; make check-packaging)
#        scripts/check-packaging.sh --preflight
#
# Checks weft's Debian package DEB, then installs, upgrades, removes and
# purges it on this very machine, and leaves the machine as it found it:
#   1. lintian shows no error; the unit passes systemd-analyze verify with
#      nothing on stderr and scores at most 2.0 in systemd-analyze security;
#   2. dpkg -i: files, modes, the system user and group, the conffile (equal
#      to weftd --print-default-config), the unit enabled;
#   3. weftd started as the unit starts it (user weft, its directories, its
#      umask and limits; by systemd itself where systemd runs), and
#      weft status answered for a member of group weft (the node on the
#      network, listening on port 9047), refused for others;
#   4. a newer build installed over it: the data (node key) and a local
#      edit of the conffile survive, the new weftd serves the same node;
#   5. dpkg -r keeps configuration and data; dpkg --purge removes them and
#      everything else but the system user.
# Every process it starts is stopped and every user it creates removed,
# even on failure. --preflight only tells whether the machine is fit: it
# refuses (exit 1) when a weft package, or weft's directories, are there.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$root/scripts/check-packaging.sh
say() { echo "check-packaging: $*"; }
fail() {
	echo "check-packaging: FAIL: $*" >&2
	exit 1
}

# Paths the package owns or makes; none may exist before the check, so
# that purging can destroy nothing of anybody's.
weft_paths=(/etc/weft /var/lib/weft /run/weft /usr/lib/weft /usr/bin/weftd /usr/bin/weft
	/lib/systemd/system/weftd.service /usr/lib/systemd/system/weftd.service)

# preflight refuses a machine where a weft package is known to dpkg (in any
# state, config-files included) or weft's paths exist.
preflight() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Status}' weft 2>/dev/null || true)
	if [[ -n $status && $status != not-installed ]]; then
		echo "check-packaging: refusing to run: a weft package is already on this machine (dpkg status: $status)." >&2
		echo "  The check installs and purges weft itself; remove yours first (dpkg --purge weft, which deletes /var/lib/weft)." >&2
		return 1
	fi
	local p
	for p in "${weft_paths[@]}"; do
		if [[ -e $p || -L $p ]]; then
			echo "check-packaging: refusing to run: $p exists although no weft package is installed;" >&2
			echo "  the check would install over it and purge it. Move it away first." >&2
			return 1
		fi
	done
}

if [[ ${1-} == --preflight ]]; then
	preflight
	exit
fi
deb=${1:?usage: check-packaging.sh DEB}
[[ -f $deb ]] || fail "no package $deb"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
if [[ $(id -u) != 0 ]]; then
	echo "check-packaging: must run as root: it installs, upgrades and purges the package on this machine" >&2
	exit 1
fi
preflight || exit 1

start_time=$SECONDS
tmp=$(mktemp -d /tmp/weft-check-packaging.XXXXXX)
chmod 0755 "$tmp" # the users weft runs as below start in it
weftd_pid=
installed=false
created_user=false
tester=
# With systemd as PID 1, the package's scripts start weftd through it, and
# the check then starts and stops weftd with systemctl; without, it runs
# weftd itself as the unit would.
under_systemd=false
[[ -d /run/systemd/system ]] && under_systemd=true

# snapshot lists the names of every file where the package, its scripts
# and this check write, to compare before and after (names only: the user
# left behind changes /etc/passwd's contents, not its name).
snapshot() {
	find /etc /lib/systemd /usr/lib/systemd /usr/bin /usr/sbin /usr/lib /usr/share/doc /usr/share/man \
		/usr/share/lintian /var/lib/systemd /var/lib/weft /run/weft /home /var/mail \
		-xdev -print 2>/dev/null | grep -v -E '^/etc/[^/]+-$' | sort || true
}

stop_weftd() {
	if $under_systemd; then
		systemctl stop weftd.service || true
		return
	fi
	[[ -n $weftd_pid ]] || return 0
	local pid=$weftd_pid rc=0
	weftd_pid=
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || rc=$?
	# systemd removes the RuntimeDirectory when the service stops.
	rm -rf /run/weft
	return "$rc"
}

cleanup() {
	local rc=$?
	set +e
	stop_weftd >/dev/null 2>&1
	if $installed; then
		dpkg --purge weft >/dev/null 2>&1 || echo "check-packaging: cleanup: dpkg --purge weft failed" >&2
		installed=false
	fi
	if [[ -n $tester ]]; then
		userdel "$tester" >/dev/null 2>&1 || echo "check-packaging: cleanup: userdel $tester failed" >&2
		tester=
	fi
	if $created_user; then
		if getent passwd weft >/dev/null; then userdel weft || echo "check-packaging: cleanup: userdel weft failed" >&2; fi
		if getent group weft >/dev/null; then groupdel weft || echo "check-packaging: cleanup: groupdel weft failed" >&2; fi
		created_user=false
	fi
	rm -rf "$tmp" /run/weft
	return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

before=$(snapshot)
getent passwd weft >/dev/null || getent group weft >/dev/null || created_user=true

# --- 1. Static checks ---------------------------------------------------

say "package $(basename "$deb")"
version=$(dpkg-deb -f "$deb" Version)
upstream=${version%-*}
# lintian exits non-zero on any error; overrides (each with its reason)
# are in packaging/deb/lintian-overrides.
say "lintian"
lintian --fail-on error --display-info "$deb" | sed 's/^/  /' || fail "lintian reports errors"

mkdir "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
unit=$tmp/x/lib/systemd/system/weftd.service
[[ -f $unit ]] || fail "the package has no lib/systemd/system/weftd.service"
say "systemd-analyze security"
sec=$(systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1) ||
	{ echo "$sec" >&2; fail "systemd-analyze security: exposure over 2.0"; }
score=$(sed -n 's/.*Overall exposure level for weftd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
[[ -n $score ]] || { echo "$sec" >&2; fail "systemd-analyze security printed no exposure level"; }
say "  exposure $score (at most 2.0)"

# --- 2. Install ---------------------------------------------------------

say "dpkg -i"
installed=true
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" </dev/null >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg -i"; }
[[ $(dpkg-query -W -f='${db:Status-Abbrev}${Version}' weft) == "ii $version" ]] || fail "weft $version is not installed: $(dpkg-query -W -f='${db:Status-Abbrev}${Version}' weft)"

# The refusal, exercised: a second check must now refuse to run.
if out=$("$self" --preflight 2>&1); then fail "--preflight accepted a machine with weft installed"; fi
grep -q 'refusing to run: a weft package is already on this machine' <<<"$out" || fail "--preflight's refusal: $out"

# excluded PATH: whether dpkg's configuration keeps PATH from being
# installed (path-exclude, as slim container images have for man pages
# and most of /usr/share/doc), which the checks below then let pass.
excluded() {
	local verb glob ex=false
	while read -r verb glob; do
		# shellcheck disable=SC2053 # the glob is a pattern, as dpkg reads it
		case $verb in
		path-exclude) [[ $1 == $glob ]] && ex=true ;;
		path-include) [[ $1 == $glob ]] && ex=false ;;
		esac
	done < <(cat /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null | sed -n -E 's/^[[:space:]]*(path-(ex|in)clude)[[:space:]]*=?[[:space:]]*/\1 /p')
	$ex
}
mode() { stat -c '%A %U:%G' "$1"; }
expect_mode() { # PATH "MODE OWNER:GROUP"
	if [[ ! -e $1 ]] && excluded "$1"; then
		say "  $1 not installed: dpkg's path-exclude"
		return
	fi
	[[ -e $1 ]] || fail "$1 is missing"
	[[ $(mode "$1") == "$2" ]] || fail "$1 is $(mode "$1"), want $2"
}
expect_mode /usr/bin/weftd "-rwxr-xr-x root:root"
expect_mode /usr/bin/weft "-rwxr-xr-x root:root"
expect_mode /usr/lib/weft/drivers "drwxr-xr-x root:root"
expect_mode /usr/lib/weft/drivers/timer "-rwxr-xr-x root:root"
expect_mode /usr/lib/weft/drivers/SHA256SUMS "-rw-r--r-- root:root"
(cd /usr/lib/weft/drivers && sha256sum --quiet -c SHA256SUMS) || fail "/usr/lib/weft/drivers/SHA256SUMS does not match the drivers"
expect_mode /lib/systemd/system/weftd.service "-rw-r--r-- root:root"
expect_mode /etc/weft/weftd.toml "-rw-r--r-- root:root"
expect_mode /etc/weft/backup.key "-rw-r----- root:weft"
grep -q '^AGE-SECRET-KEY-1' /etc/weft/backup.key || fail "/etc/weft/backup.key holds no age identity"
expect_mode /usr/share/doc/weft/copyright "-rw-r--r-- root:root"
expect_mode /usr/share/doc/weft/changelog.Debian.gz "-rw-r--r-- root:root"
expect_mode /usr/share/man/man8/weftd.8.gz "-rw-r--r-- root:root"
expect_mode /usr/share/man/man1/weft.1.gz "-rw-r--r-- root:root"
expect_mode /var/lib/weft "drwx------ weft:weft"
[[ $(/usr/bin/weftd --version) == "weftd $upstream" ]] || fail "weftd --version is '$(/usr/bin/weftd --version)', want 'weftd $upstream'"
[[ $(/usr/bin/weft version) == "weft $upstream" ]] || fail "weft version is '$(/usr/bin/weft version)', want 'weft $upstream'"
/usr/bin/weftd --help | grep -q '^Usage: weftd' || fail "weftd --help"
/usr/bin/weftd --print-default-config | cmp -s - /etc/weft/weftd.toml || fail "/etc/weft/weftd.toml differs from weftd --print-default-config"
dpkg-query -W -f='${Conffiles}\n' weft | grep -q '^ /etc/weft/weftd.toml [0-9a-f]\{32\}$' || fail "/etc/weft/weftd.toml is not a conffile"
/usr/bin/weftd --config /etc/weft/weftd.toml --print-config >/dev/null || fail "weftd refuses the packaged config"

# The system user: a system uid, group weft, no login, home the data dir.
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd weft) || fail "no user weft"
[[ $(getent group weft | cut -d: -f3) == "$gid" ]] || fail "user weft's primary group is not weft"
((uid < 1000)) || fail "user weft has uid $uid, not a system uid"
[[ $home == /var/lib/weft && $shell == /usr/sbin/nologin ]] || fail "user weft: home $home, shell $shell"
uid_before=$uid

# The unit: verified where it is installed (systemd-analyze verify needs its
# binary and man pages), enabled by postinst.
say "systemd-analyze verify"
# (Documentation= names man pages; where dpkg leaves them out, verify
# cannot find them, and is told not to look.)
man=yes
[[ -e /usr/share/man/man8/weftd.8.gz ]] || man=no
systemd-analyze verify --man="$man" /lib/systemd/system/weftd.service >"$tmp/verify.out" 2>"$tmp/verify.err" ||
	{ cat "$tmp/verify.out" "$tmp/verify.err" >&2; fail "systemd-analyze verify failed"; }
[[ ! -s $tmp/verify.err ]] || { cat "$tmp/verify.err" >&2; fail "systemd-analyze verify printed warnings"; }
[[ -L /etc/systemd/system/multi-user.target.wants/weftd.service ]] || fail "weftd.service was not enabled"

# --- 3. Run it as the unit does -----------------------------------------

# unit_key KEY: the value of KEY in the unit's [Service] (the last one).
unit_key() { awk -F= -v k="$1" '/^\[/ { s = ($0 == "[Service]") } s && $1 == k { sub(/^[^=]*=/, ""); v = $0 } END { print v }' /lib/systemd/system/weftd.service; }
user=$(unit_key User)
group=$(unit_key Group)
exec_start=$(unit_key ExecStart)
[[ $user == weft && $group == weft && -n $exec_start ]] || fail "the unit's User, Group or ExecStart: '$user' '$group' '$exec_start'"

# start_weftd starts weftd and waits (60 s at most) until it answers.
start_weftd() {
	if $under_systemd; then
		systemctl start weftd.service || fail "systemctl start weftd"
	else
		# What systemd does for the unit: the RuntimeDirectory (and the
		# StateDirectory, which postinst made) with their modes, then
		# ExecStart as User:Group with the UMask and LimitNOFILE, without
		# privileges, with a clean environment.
		install -d -m "$(unit_key RuntimeDirectoryMode)" -o "$user" -g "$group" "/run/$(unit_key RuntimeDirectory)"
		install -d -m "$(unit_key StateDirectoryMode)" -o "$user" -g "$group" "/var/lib/$(unit_key StateDirectory)"
		: >"$tmp/weftd.out"
		(
			# Without CAP_SYS_RESOURCE (a container) the hard limit may be
			# lower than LimitNOFILE; then weftd gets that hard limit.
			nofile=$(unit_key LimitNOFILE) hard=$(ulimit -Hn)
			[[ $hard == unlimited ]] || ((nofile <= hard)) || nofile=$hard
			ulimit -n "$nofile"
			umask "$(unit_key UMask)"
			# shellcheck disable=SC2086 # ExecStart is split into words, as systemd does.
			exec setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs --inh-caps=-all --bounding-set=-all \
				env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 $exec_start
		) >"$tmp/weftd.out" 2>>"$tmp/weftd.log" &
		weftd_pid=$!
	fi
	# Ready: the socket answers and, outside systemd, weftd printed its
	# ready line (which comes after every part started, the control API
	# among them, so the socket may answer first).
	local deadline=$((SECONDS + 60))
	until [[ -S /run/weft/weftd.sock ]] && /usr/bin/weft --socket /run/weft/weftd.sock status >/dev/null 2>&1 &&
		{ $under_systemd || grep -q '^weftd ready: node ' "$tmp/weftd.out"; }; do
		if ! $under_systemd && ! kill -0 "$weftd_pid" 2>/dev/null; then
			cat "$tmp/weftd.log" >&2
			fail "weftd exited before it was ready"
		fi
		((SECONDS < deadline)) || { cat "$tmp/weftd.log" >&2 || true; fail "weftd not ready (answering on its socket, its ready line printed) within 60 s"; }
		sleep 0.1 # the interval between polls; the deadline above bounds them
	done
}

# A user in group weft (and in no other), to run weft as a person would.
tester=weftchk$$
useradd --no-create-home --no-user-group --gid nogroup --groups weft --shell /usr/sbin/nologin "$tester" ||
	{ tester=; fail "useradd $tester"; }
as_tester() { runuser -u "$tester" -- "$@"; }

# check_running VERSION: the socket's mode, weft status for a member of
# group weft (printed, returns the node id), refused for anybody else.
check_running() {
	expect_mode /run/weft "drwxr-x--- weft:weft"
	expect_mode /run/weft/weftd.sock "srw-rw---- weft:weft"
	local out node
	# The package's weft, not one earlier in PATH (make puts bin/ first).
	out=$(cd "$tmp" && as_tester /usr/bin/weft status) || fail "weft status as $tester (group weft) failed"
	sed 's/^/  /' <<<"$out" >&2
	grep -q "^version *$1\$" <<<"$out" || fail "weft status shows no version $1"
	node=$(awk '$1 == "node" || $1 == "node_id" || $1 == "id" { print $2; exit }' <<<"$out")
	[[ -n $node ]] || fail "weft status shows no node id"
	# On the network by default: the conffile's listen, port 9047.
	grep -Eq "^listen +/ip[46]/[^ ]+/(tcp|udp)/9047(/quic-v1)?/p2p/$node\$" <<<"$out" ||
		fail "weft status shows no listen address on port 9047 ending in /p2p/$node"
	# The in-tree drivers run as processes of the node, in its sandbox.
	out=$(cd "$tmp" && as_tester /usr/bin/weft ps) || fail "weft ps as $tester failed"
	grep -q 'timer:drivers:weft .*running' <<<"$out" || fail "weft ps shows no running timer driver: $out"
	if (cd "$tmp" && setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/weft status) >/dev/null 2>&1; then
		fail "weft status succeeded for user nobody, who is not in group weft"
	fi
	echo "$node"
}

say "start weftd as user weft and talk to it as $tester (group weft)"
start_weftd
node1=$(check_running "$upstream")
key_sum=$(sha256sum /var/lib/weft/node.key | cut -d' ' -f1)
backup_key_sum=$(sha256sum /etc/weft/backup.key | cut -d' ' -f1)
stop_weftd || fail "weftd did not stop cleanly: $(tail -5 "$tmp/weftd.log")"

# A local edit, which the upgrade must keep.
sed -i 's/^shutdown_timeout = "10s"$/shutdown_timeout = "15s"/' /etc/weft/weftd.toml
grep -q '^shutdown_timeout = "15s"$' /etc/weft/weftd.toml || fail "could not edit the conffile"

# --- 4. Upgrade ---------------------------------------------------------

# A newer build: the same code under a higher upstream version, which the
# binaries then report.
version2=$upstream+upgradetest-1
dpkg --compare-versions "$version2" gt "$version" || fail "$version2 is not newer than $version"
say "build $version2 and install it over $version"
# gzip: the same package, built in a quarter of xz's time.
deb2=$(bash "$root/packaging/deb/build.sh" --version "$version2" --out "$tmp" --compress gzip | tail -1)
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb2" </dev/null >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg -i (upgrade)"; }
[[ $(dpkg-query -W -f='${db:Status-Abbrev}${Version}' weft) == "ii $version2" ]] || fail "weft $version2 is not installed after the upgrade"
grep -q '^shutdown_timeout = "15s"$' /etc/weft/weftd.toml || fail "the upgrade lost the conffile's local edit"
for f in /etc/weft/weftd.toml.dpkg-{new,old,dist}; do
	[[ ! -e $f ]] || fail "the upgrade left $f"
done
[[ $(sha256sum /var/lib/weft/node.key | cut -d' ' -f1) == "$key_sum" ]] || fail "the upgrade changed the node key"
[[ $(sha256sum /etc/weft/backup.key | cut -d' ' -f1) == "$backup_key_sum" ]] || fail "the upgrade changed the backup key"
[[ $(id -u weft) == "$uid_before" ]] || fail "the upgrade changed user weft's uid"
/usr/bin/weftd --config /etc/weft/weftd.toml --print-config | grep -q '^shutdown_timeout = "15s"$' || fail "weftd does not read the edited config"

start_weftd
node2=$(check_running "${version2%-*}")
[[ $node2 == "$node1" ]] || fail "the node id changed across the upgrade: $node1, then $node2"
stop_weftd || fail "weftd did not stop cleanly: $(tail -5 "$tmp/weftd.log")"

# --- 5. Remove, purge ----------------------------------------------------

say "dpkg -r"
dpkg -r weft >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg -r"; }
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' weft) == "rc " ]] || fail "after dpkg -r weft is '$(dpkg-query -W -f='${db:Status-Abbrev}' weft)', want rc"
for p in /usr/bin/weftd /usr/bin/weft /lib/systemd/system/weftd.service /usr/lib/weft; do
	[[ ! -e $p ]] || fail "dpkg -r left $p"
done
grep -q '^shutdown_timeout = "15s"$' /etc/weft/weftd.toml || fail "dpkg -r removed the configuration"
[[ -f /var/lib/weft/node.key ]] || fail "dpkg -r removed the data"

say "dpkg --purge"
dpkg --purge weft >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg --purge"; }
installed=false
status=$(dpkg-query -W -f='${db:Status-Status}' weft 2>/dev/null || true)
[[ -z $status || $status == not-installed ]] || fail "after dpkg --purge weft's status is $status"
getent passwd weft >/dev/null || fail "dpkg --purge removed the system user weft (Debian keeps it)"
after=$(snapshot)
if [[ $after != "$before" ]]; then
	diff <(echo "$before") <(echo "$after") >&2 || true
	fail "purging left files behind (> above), or removed some (<)"
fi

# --- Leave the machine as it was -----------------------------------------

trap - EXIT
made_user=$created_user
cleanup
$made_user && getent passwd weft >/dev/null && fail "user weft is still there"
[[ $(snapshot) == "$before" ]] || fail "the machine's files differ from before the check"
say "OK in $((SECONDS - start_time)) s: lintian, verify, security $score, install, run, upgrade, remove, purge; machine left as it was"
