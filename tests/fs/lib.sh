# lib.sh - what the filesystem test scripts share: real mounts of a
# store, their cleanup, and the TAP helpers of ../cli/lib.sh.  Sourced,
# not run.
#
# A script calls fs_setup HOZEN (which sets $HOZEN, $T and $D, the
# directory of these scripts), mounts with fs_mount and unmounts with
# fs_umount, and ends with tap_finish.  On EXIT, even after a failure,
# every mount still up is detached (fusermount3 -u -z), its daemon
# killed, every loop mount made with fs_loop undone, and $T removed.

# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR source=../cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

D=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FS_MOUNTS=()		# mount points we mounted
declare -A FS_PID	# mount point -> daemon pid
FS_LOOPS=()		# loop / tmpfs mounts to undo

fs_cleanup()
{
	local m p
	for m in "${FS_MOUNTS[@]}"; do
		if mountpoint -q "$m" 2>/dev/null || grep -qs " $m fuse" \
			/proc/mounts; then
			fusermount3 -u -z "$m" 2>/dev/null
		fi
		p=${FS_PID[$m]:-}
		if [ -n "$p" ] && fs_alive "$p"; then
			sleep 0.5
			fs_alive "$p" && kill -9 "$p" 2>/dev/null
		fi
	done
	for ((p = ${#FS_LOOPS[@]} - 1; p >= 0; p--)); do
		umount -l "${FS_LOOPS[$p]}" 2>/dev/null
	done
	# HOZEN_TEST_KEEP=DIR keeps the stores and side files for a look.
	if [ -n "${HOZEN_TEST_KEEP:-}" ]; then
		mkdir -p "$HOZEN_TEST_KEEP" &&
			cp -a "$T" "$HOZEN_TEST_KEEP/" 2>/dev/null
	fi
	chmod -R u+rwX "$T" 2>/dev/null
	rm -rf "$T"
}

# fs_setup HOZEN: skip unless root with /dev/fuse, make $T.
fs_setup()
{
	local t
	HOZEN=$1
	if [ -z "$HOZEN" ] || [ ! -x "$HOZEN" ]; then
		echo "Bail out! usage: $0 HOZEN (got '${HOZEN:-}')"
		exit 2
	fi
	case $HOZEN in
	/*) ;;
	*) HOZEN=$PWD/$HOZEN ;;
	esac
	if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
		echo "1..0 # SKIP needs root and /dev/fuse"
		exit 0
	fi
	for t in fusermount3 python3 git setpriv; do
		if ! command -v $t >/dev/null; then
			echo "1..0 # SKIP $t not found"
			exit 0
		fi
	done
	T=$(mktemp -d "${TMPDIR:-/tmp}/hozen-fs.XXXXXX") || exit 2
	chmod 755 "$T"
	trap fs_cleanup EXIT
	trap 'exit 130' INT TERM
	export LC_ALL=C.UTF-8 TZ=UTC HOZEN D
}

# fs_alive PID: the process exists and is not a zombie.
fs_alive()
{
	local s
	s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$s" ] && [ "$s" != Z ]
}

# fs_mounts STORE: "COUNT PID": the number of mount records and the pid
# of the last.
fs_mounts()
{
	"$HOZEN" log --json "$1" 2>/dev/null | python3 -c '
import json, sys
n, pid = 0, ""
for line in sys.stdin:
    r = json.loads(line)
    if r["type"] == "mount":
        n, pid = n + 1, r.get("pid", "")
print(n, pid)'
}

# fs_mount STORE MNT [OPTIONS...]: hozen mount (daemonized), then wait
# (60 s) for the daemon's mount record, written once it has recovered;
# sets FS_PID[MNT].  Returns hozen's exit code.
fs_mount()
{
	local store=$1 mnt=$2 rc before now i
	shift 2
	mkdir -p "$mnt"
	mnt=$(cd "$mnt" && pwd)
	FS_MOUNTS+=("$mnt")
	before=$(fs_mounts "$store")
	before=${before%% *}
	"$HOZEN" mount "$@" "$store" "$mnt" >"$T/mount.out" 2>"$T/mount.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		cat "$T/mount.err" >&2
		return $rc
	fi
	for ((i = 0; i < 600; i++)); do
		now=$(fs_mounts "$store")
		if [ "${now%% *}" -gt "${before:-0}" ]; then
			FS_PID[$mnt]=${now#* }
			return 0
		fi
		sleep 0.1
	done
	echo "# no mount record within 60 s" >&2
	return 1
}

# fs_umount MNT: fusermount3 -u, then wait (30 s) until the daemon has
# committed, checkpointed and exited.
fs_umount()
{
	local mnt i p
	mnt=$(cd "$1" && pwd)
	p=${FS_PID[$mnt]:-}
	fusermount3 -u "$mnt" || return 1
	for ((i = 0; i < 300; i++)); do
		if [ -z "$p" ] || ! fs_alive "$p"; then
			return 0
		fi
		sleep 0.1
	done
	echo "# the daemon $p did not exit within 30 s" >&2
	return 1
}

# fs_loop: register a mount point to unmount on exit.
fs_loop()
{
	FS_LOOPS+=("$1")
}

# pycheck NAME-PREFIX ARGS...: run check.py, import its TAP lines.
pycheck()
{
	python3 "$D/check.py" "$@" >"$T/pycheck.tap"
	tap_import <"$T/pycheck.tap"
}
