#!/bin/sh
# The .deb on a fresh Debian 12 with systemd really running (issue 8,
# acceptance 6).  Needs root, debootstrap, systemd-container (systemd-nspawn),
# dpkg-dev, python3 and the Debian archive; nothing else from the network.
#
#   tests/package/test_deb.sh [--keep]
#
# 1. A Release build with prefix /usr, packaged with cpack -G DEB.
# 2. A pristine bookworm rootfs (debootstrap minbase + systemd + dbus, made
#    once and kept in $PROMPTD_PKGTEST_DIR, default /var/tmp/promptd-pkgtest),
#    copied afresh for every run and booted with systemd-nspawn -b.
# 3. Inside, with systemd running: apt installs the .deb (dependencies from
#    the archive); postinst makes the user, enables and starts the service.
#    Checks: promptd.service active, `promptd status` finds the daemon.
# 4. A secret given by LoadCredential= (a drop-in) and referenced as
#    cred:openai_api_key; a recipe calls GPT on a webhook, against the fake
#    OpenAI server (run on the host: the container shares its network) that
#    accepts only that key.  Checks: the run succeeds (so the secret reached
#    the provider), `promptd doctor` passes in the service's own context
#    (user, directories, credentials), and the secret is nowhere in
#    `journalctl -u promptd` or the database files; /metrics on the admin
#    listener counts the run.
# 5. `promptd mail parse` (GMime, iconv) in a oneshot copy of the unit (same
#    sandbox: MemoryDenyWriteExecute, the system call filter...) prints what
#    it prints unsandboxed.
# 6. promptd.socket (on a free port): the first connection starts the
#    service, which serves the socket systemd passed.
# 7. apt remove: service and socket stop.  The container is powered off.
# 8. apt install in a chroot of another copy (systemd not running, as in an
#    image build): succeeds, makes the user, enables the unit, starts nothing.
#
# Prints the time each phase took.  --keep leaves this run's directory
# (rootfs copy, build, logs).  Several runs may overlap (e.g. two build
# trees' test suites): each has its own directory, machine name and ports.
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${PROMPTD_PKGTEST_DIR:-/var/tmp/promptd-pkgtest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=$WORK/base # the pristine rootfs, shared by every run
MACHINE=promptd-pkgtest-$$
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, systemd-nspawn)"
for t in debootstrap systemd-nspawn nsenter cpack dpkg-shlibdeps file python3 curl; do
	command -v "$t" >/dev/null || fail "$t not found (scripts/install-deps.sh --test)"
done

# Everything else is this run's own, so runs from several build trees may
# overlap: removed on success, kept (but the booted rootfs) on failure.
mkdir -p "$WORK"
RUN=$(mktemp -d "$WORK/run.XXXXXX")
BUILD=${PROMPTD_PKGTEST_BUILD:-$RUN/build}
ROOT=$RUN/root
NSPAWN=
FAKE=
PROC_MOUNT=
OK=0
cleanup() {
	if [ -n "$FAKE" ]; then kill "$FAKE" 2>/dev/null || true; fi
	if [ -n "$PROC_MOUNT" ]; then umount "$PROC_MOUNT" 2>/dev/null || true; fi
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		# SIGTERM asks the container's systemd to power off.
		kill "$NSPAWN" 2>/dev/null || true
		i=0
		while kill -0 "$NSPAWN" 2>/dev/null && [ $i -lt 60 ]; do
			sleep 0.5
			i=$((i + 1))
		done
		kill -9 "$NSPAWN" 2>/dev/null || true
	fi
	if [ "$KEEP" -eq 1 ]; then
		echo "kept $RUN"
	elif [ "$OK" -eq 1 ]; then
		rm -rf "$RUN"
	else
		rm -rf "$ROOT"
		echo "logs kept in $RUN"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$(date +%s)
phase() {
	now=$(date +%s)
	echo "== $* (+$((now - t0)) s)"
}

passed=0
check() { # check DESCRIPTION COMMAND...
	what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok: $what"
	else
		fail "$what"
	fi
}

phase "build and package"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	-DPROMPTD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 >/dev/null
rm -f "$BUILD"/promptd_*.deb
(cd "$BUILD" && cpack -G DEB >/dev/null)
DEB=$(ls "$BUILD"/promptd_*_amd64.deb)
echo "package: $DEB ($(stat -c %s "$DEB") bytes)"
dpkg-deb -f "$DEB" Depends

if [ ! -x "$BASE/usr/lib/systemd/systemd" ]; then
	phase "debootstrap bookworm (once)"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
		bookworm "$RUN/base" "$MIRROR" >"$RUN/debootstrap.log" 2>&1 ||
		fail "debootstrap failed, see $RUN/debootstrap.log"
	# Another run may have made it meanwhile: then keep theirs.
	mv -T "$RUN/base" "$BASE" 2>/dev/null || rm -rf "$RUN/base"
fi

phase "fresh rootfs, boot"
rm -rf "$ROOT"
cp -a "$BASE" "$ROOT"
cp "$DEB" "$ROOT/root/"
NSPAWN_LOG=$RUN/nspawn.log
# --register=no and --keep-unit: the host's PID 1 is not systemd here, so
# there is no machined to register with and no scope to move into.
systemd-nspawn -q -D "$ROOT" -M "$MACHINE" --register=no --keep-unit --boot \
	--console=pipe >"$NSPAWN_LOG" 2>&1 </dev/null &
NSPAWN=$!

# The container's PID 1 is the child of systemd-nspawn running systemd.
LEADER=
i=0
while [ -z "$LEADER" ] && [ $i -lt 100 ]; do
	for p in $(pgrep -P "$NSPAWN" || true); do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = systemd ] && LEADER=$p
	done
	[ -n "$LEADER" ] || sleep 0.2
	i=$((i + 1))
done
[ -n "$LEADER" ] || fail "the container did not start (see $NSPAWN_LOG)"
in_ct() {
	nsenter -t "$LEADER" -m -u -i -n -p -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 TERM=dumb "$@"
}
# Until the container's systemd listens, systemctl cannot connect: retry.
state=
i=0
while [ -z "$state" ] && [ $i -lt 100 ]; do
	state=$(in_ct timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
	[ -n "$state" ] || sleep 0.2
	i=$((i + 1))
done
echo "container booted: $state"
case "$state" in running | degraded) ;; *) fail "container systemd state: $state" ;; esac
[ "$state" = running ] || in_ct systemctl --failed --no-legend --plain || true

phase "apt install the package"
in_ct sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	/root/'"$(basename "$DEB")"' >/var/log/promptd-install.log 2>&1' ||
	{
		tail -30 "$ROOT/var/log/promptd-install.log" >&2
		fail "apt-get install"
	}
check "user promptd made by postinst" in_ct getent passwd promptd
check "promptd.service enabled" in_ct systemctl is-enabled --quiet promptd.service
wait_active() {
	i=0
	while [ $i -lt 60 ]; do
		in_ct systemctl is-active --quiet promptd.service && return 0
		sleep 0.5
		i=$((i + 1))
	done
	in_ct systemctl status --no-pager promptd.service >&2 || true
	in_ct journalctl -u promptd.service --no-pager -n 30 >&2 || true
	return 1
}
check "promptd.service active after install" wait_active
check "promptd status finds the daemon" in_ct sh -c \
	'promptd --db /var/lib/promptd/promptd.db status --json | grep -q "\"running\":[[:space:]]*true"'
check "the database is the service user's" \
	[ "$(in_ct stat -c %U /var/lib/promptd/promptd.db)" = promptd ]

phase "a secret through LoadCredential, a GPT run against the fake provider"
SECRET="pkgtest-secret-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
FAKE_OUT=$RUN/fake_openai.out
python3 "$SRC/tests/fake/fake_openai.py" --port 0 --key "$SECRET" >"$FAKE_OUT" 2>&1 &
FAKE=$!
i=0
while ! grep -qs "^listening" "$FAKE_OUT" && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
FAKE_ADDR=$(sed -n 's/^listening \(.*\)$/\1/p' "$FAKE_OUT")
[ -n "$FAKE_ADDR" ] || fail "fake OpenAI server did not start"
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
HOOK_PORT=$(free_port)
ADMIN_PORT=$(free_port)
SOCKET_PORT=$(free_port)

mkdir -p "$ROOT/etc/promptd/credentials" "$ROOT/etc/systemd/system/promptd.service.d"
chmod 0700 "$ROOT/etc/promptd/credentials"
(umask 077 && printf %s "$SECRET" >"$ROOT/etc/promptd/credentials/openai_api_key")
cat >"$ROOT/etc/systemd/system/promptd.service.d/credentials.conf" <<EOF
[Service]
LoadCredential=openai_api_key:/etc/promptd/credentials/openai_api_key
EOF
cat >"$ROOT/etc/promptd/promptd.yaml" <<EOF
recipes_dir: /etc/promptd/recipes
http:
  listen: 127.0.0.1:$HOOK_PORT
admin:
  listen: 127.0.0.1:$ADMIN_PORT
providers:
  openai:
    base_url: http://$FAKE_ADDR/v1
    api_key: cred:openai_api_key
EOF
cat >"$ROOT/etc/promptd/recipes/pkgtest.yaml" <<'EOF'
name: pkgtest
trigger: { webhook: { path: /hooks/pkgtest } }
steps:
  - id: answer
    gpt:
      model: gpt-4o-mini
      prompt: "Say hello to {{event.body.name}}"
EOF
in_ct systemctl daemon-reload
in_ct systemctl restart promptd.service
check "promptd.service active with the credential" wait_active
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	-d '{"name":"Ann"}' "http://127.0.0.1:$HOOK_PORT/hooks/pkgtest")
check "webhook accepted (202)" [ "$status" = 202 ]
run_ok() {
	i=0
	while [ $i -lt 60 ]; do
		in_ct promptd --db /var/lib/promptd/promptd.db runs list --recipe pkgtest --json |
			grep -q '"status":[[:space:]]*"succeeded"' && return 0
		sleep 0.5
		i=$((i + 1))
	done
	in_ct promptd --db /var/lib/promptd/promptd.db runs list --recipe pkgtest >&2 || true
	return 1
}
check "the GPT run succeeded with the credential's key" run_ok
check "the fake provider answered an authorized call" sh -c \
	"curl -s http://$FAKE_ADDR/_fake/stats | grep -q '\"200\":[[:space:]]*[1-9]'"
check "/metrics under the unit's sandbox counts the run" sh -c \
	"curl -sf http://127.0.0.1:$ADMIN_PORT/metrics | grep -q '^promptd_runs_finished_total{.*recipe=\"pkgtest\".*} [1-9]'"

# doctor in the service's context: its user, directories and credential.
DOCTOR_OUT=$RUN/doctor.out
if in_ct systemd-run --quiet --wait --pipe --collect -p User=promptd -p Group=promptd \
	-p StateDirectory=promptd -p ConfigurationDirectory=promptd \
	-p LoadCredential=openai_api_key:/etc/promptd/credentials/openai_api_key \
	/usr/bin/promptd doctor >"$DOCTOR_OUT" 2>&1; then
	passed=$((passed + 1))
	echo "ok: promptd doctor exit 0"
else
	cat "$DOCTOR_OUT" >&2
	fail "promptd doctor"
fi
cat "$DOCTOR_OUT"

JOURNAL=$RUN/journal.txt
in_ct journalctl -u promptd.service --no-pager -o cat >"$JOURNAL"
check "the journal holds promptd's log" grep -q 'msg="serving"' "$JOURNAL"
check "the journal shows the GPT step" grep -q 'step=answer' "$JOURNAL"
check "the secret is not in the journal" sh -c "! grep -qF '$SECRET' '$JOURNAL'"
check "the secret is not in doctor's output" sh -c "! grep -qF '$SECRET' '$DOCTOR_OUT'"
in_ct systemctl stop promptd.service # checkpoint: everything in the main file
check "the secret is in no database file" sh -c \
	"! grep -rqaF '$SECRET' '$ROOT/var/lib/private/promptd' '$ROOT/var/lib/promptd' 2>/dev/null"
check "the database files exist" sh -c "ls '$ROOT'/var/lib/promptd/promptd.db >/dev/null"
in_ct systemctl start promptd.service
check "promptd.service active again" wait_active

phase "MIME parsing (GMime, iconv) under the unit's sandbox"
# A oneshot copy of the installed unit, same hardening, running `promptd mail
# parse`: its output must equal the same command's outside the sandbox.
# ProtectHome and PrivateTmp hide /root and /tmp from it: the samples go to
# /usr/local/share.
MAILS="07-iso-2022-jp 35-base64-html-cp1252 10-attachment-pdf"
mkdir -p "$ROOT/usr/local/share/promptd-pkgtest"
for m in $MAILS; do
	cp "$SRC/tests/mail/corpus/$m.eml" "$ROOT/usr/local/share/promptd-pkgtest/"
done
sed -e 's/^Type=notify/Type=oneshot/' -e '/^NotifyAccess=/d' -e '/^WatchdogSec=/d' \
	-e '/^Restart/d' -e '/^ExecReload=/d' \
	-e 's|^ExecStart=.*|ExecStart=/usr/bin/promptd mail parse --json --subject . /usr/local/share/promptd-pkgtest/%i.eml\nStandardOutput=truncate:/run/promptd-pkgtest-%i.json|' \
	"$ROOT/usr/lib/systemd/system/promptd.service" >"$ROOT/etc/systemd/system/promptd-mailcheck@.service"
in_ct systemctl daemon-reload
for m in $MAILS; do
	check "mail parse $m runs sandboxed" in_ct systemctl start "promptd-mailcheck@$m.service"
	in_ct promptd mail parse --json --subject . "/usr/local/share/promptd-pkgtest/$m.eml" \
		>"$RUN/mail-$m.json"
	# The container's /run is its own tmpfs: read it from inside.
	in_ct cat "/run/promptd-pkgtest-$m.json" >"$RUN/mail-$m.sandboxed.json"
	check "mail parse $m: the sandboxed output equals the plain one" \
		diff -u "$RUN/mail-$m.json" "$RUN/mail-$m.sandboxed.json"
done
check "the sandboxed parse printed the event" grep -q '"subject"' "$RUN/mail-07-iso-2022-jp.sandboxed.json"

phase "socket activation through promptd.socket"
mkdir -p "$ROOT/etc/systemd/system/promptd.socket.d"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$SOCKET_PORT" \
	>"$ROOT/etc/systemd/system/promptd.socket.d/port.conf"
in_ct systemctl daemon-reload
in_ct systemctl stop promptd.service
in_ct systemctl start promptd.socket
check "promptd.service waits for a connection" sh -c \
	"! nsenter -t $LEADER -m -u -i -n -p -- systemctl is-active --quiet promptd.service"
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	-d '{"name":"Bob"}' "http://127.0.0.1:$SOCKET_PORT/hooks/pkgtest")
check "the first connection starts the service and gets 202" [ "$status" = 202 ]
check "promptd.service active through the socket" wait_active
check "the service serves the socket systemd passed" sh -c \
	"nsenter -t $LEADER -m -u -i -n -p -- journalctl -u promptd.service --no-pager -o cat |
	grep -q 'webhook server uses the socket systemd passed'"

phase "apt remove"
in_ct sh -c 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq promptd >/dev/null 2>&1'
check "promptd.service stopped on remove" sh -c \
	"! nsenter -t $LEADER -m -u -i -n -p -- systemctl is-active --quiet promptd.service"
check "promptd.socket stopped on remove" sh -c \
	"! nsenter -t $LEADER -m -u -i -n -p -- systemctl is-active --quiet promptd.socket"
check "the database is kept" test -f "$ROOT/var/lib/promptd/promptd.db"

phase "apt install in a chroot (systemd not running)"
# An image build: postinst must succeed, make the user and enable the unit
# for the next boot, and start nothing.
CHROOT=$RUN/chroot
cp -a "$BASE" "$CHROOT"
cp "$DEB" "$CHROOT/root/"
cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf"
mount -t proc proc "$CHROOT/proc"
PROC_MOUNT=$CHROOT/proc
chroot "$CHROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
	sh -c "apt-get update -qq && apt-get install -y -qq /root/$(basename "$DEB")" \
	>"$RUN/chroot-install.log" 2>&1 || {
	tail -30 "$RUN/chroot-install.log" >&2
	fail "apt-get install in a chroot"
}
check "chroot: user promptd made" chroot "$CHROOT" getent passwd promptd
check "chroot: enabled for the next boot" \
	test -L "$CHROOT/etc/systemd/system/multi-user.target.wants/promptd.service"
started=
for p in $(pgrep -x promptd || true); do
	[ "$(readlink "/proc/$p/root")" = "$CHROOT" ] && started="$started $p"
done
check "chroot: nothing started" [ -z "$started" ]
umount "$PROC_MOUNT"
PROC_MOUNT=
rm -rf "$CHROOT"

OK=1
phase "done: $passed checks passed"
