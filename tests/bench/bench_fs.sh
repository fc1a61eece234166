#!/bin/bash
# bench_fs.sh - hozen side by side with the libfuse passthrough_ll example
# (without and with -o writeback), loggedfs and native ext4, in one run.
#
# Usage: tests/bench/bench_fs.sh [BUILD_DIR]     (default ./build)
#
# Rows, each on a freshly mounted, empty filesystem:
#   1  dd of a 1 GiB incompressible file, bs=1M
#   2  the same, bs=4K
#   3  tar -x of 19,000 files of 0-8 KiB in nested directories (see below)
#   4  churn: 2,000 files, 5 rounds of open(O_TRUNC)/write/close each
#      (bench_fs_work churn; the first round creates them)
# A row is timed until its data is durable (and, for hozen, versioned and
# committed in git): the workload, then unmounting (fusermount3 -u and
# waiting for the daemon to exit; hozen commits and checkpoints there),
# then `sync`.  Native ext4 is the workload then `sync`.  Mounting, store
# creation and clean-up are not timed; a `sync` precedes every timed run.
# Each row runs BENCH_RUNS times (default 3), interleaved across the
# filesystems (the order rotates each round); the table shows medians.
# The peak RSS of each daemon is VmHWM from /proc/PID/status sampled just
# before the unmount.
#
# Why 19,000 files and not 20,000: passthrough_ll keeps an O_PATH fd per
# inode it has looked up and the kernel only forgets inodes under memory
# pressure; with the hard limit of 20,000 open files on these machines it
# fails with EMFILE near 19,760 files (measured).  BENCH_TAR_FILES changes it.
#
# Environment:
#   QUICK=1          smoke run: 64 MiB, 2,000 files, 200 x 5 churn
#   BENCH_RUNS       repetitions per row (3)
#   BENCH_ROWS       rows to run ("1 2 3 4")
#   BENCH_FS         filesystems ("native pt ptwb loggedfs hozen hozenx";
#                    hozenx is hozen --no-xattr-read, which answers xattr
#                    reads with ENOSYS as passthrough_ll does by default, so
#                    the kernel stops asking for security.capability
#                    before every write)
#   BENCH_BASE       another hozen binary (an earlier build), run as the
#                    filesystem "base" in the same interleaved rounds, so
#                    a change is measured before and after in one run
#                    (it joins BENCH_FS when set and BENCH_FS is not)
#   BENCH_DIR        where the work directory goes (default BUILD_DIR);
#                    must be on a disk, not tmpfs
#   BENCH_TAR_FILES, BENCH_MIB, BENCH_CHURN_FILES, BENCH_CHURN_ROUNDS
#   BENCH_OUT        also save the raw results (one line per run) there
#   BENCH_KEEP=1     keep the work directory
#
# Needs root (FUSE allow_other, loggedfs -p), fusermount3, gcc, pkg-config
# fuse3 and /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c (built
# into the work directory at run time), and loggedfs (installed with
# apt-get if missing).  Uses a copy of BUILD_DIR/tools/hozen taken at
# start, so rebuilding during the run does not change what is measured.
# A benchmark, not a test: no TAP, and it checks nothing but that each
# run did its work.
set -eu

build=$(realpath "${1:-./build}")
runs=${BENCH_RUNS:-3}
rows=${BENCH_ROWS:-1 2 3 4}
base_src=${BENCH_BASE:-}
fslist=${BENCH_FS:-native pt ptwb loggedfs hozen hozenx${base_src:+ base}}
if [ "${QUICK:-0}" = 1 ]; then
	mib=${BENCH_MIB:-64}
	tarfiles=${BENCH_TAR_FILES:-2000}
	churnfiles=${BENCH_CHURN_FILES:-200}
else
	mib=${BENCH_MIB:-1024}
	tarfiles=${BENCH_TAR_FILES:-19000}
	churnfiles=${BENCH_CHURN_FILES:-2000}
fi
churnrounds=${BENCH_CHURN_ROUNDS:-5}
hozen_src=$build/tools/hozen
work_src=$build/tests/bench/bench_fs_work
pt_c=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c

die() {
	echo "bench_fs.sh: $*" >&2
	exit 2
}

for exe in "$hozen_src" "$work_src" ${base_src:+"$base_src"}; do
	[ -x "$exe" ] || die "'$exe' is not built: ninja -C $build"
done
[ "$(id -u)" = 0 ] || die "run as root (FUSE allow_other, loggedfs -p)"
command -v fusermount3 >/dev/null || die "fusermount3 is missing (fuse3)"

on_disk() {
	case $(stat -f -c %T "$1" 2>/dev/null) in
	tmpfs | ramfs | "") return 1 ;;
	*) return 0 ;;
	esac
}

base=${BENCH_DIR:-$build}
on_disk "$base" || die "'$base' is on $(stat -f -c %T "$base"), not a disk"
if [ "$(stat -c %d "$base")" != "$(stat -c %d "$build")" ]; then
	echo "bench_fs.sh: warning: '$base' is not on the build directory's" \
		"filesystem" >&2
fi

# --- state for clean-up: the daemon and mount of the current run
cur_pid=
cur_mnt=
work=
cleanup() {
	if [ -n "$cur_mnt" ] &&
		awk -v m="$cur_mnt" '$5 == m { f = 1 } END { exit !f }' \
			/proc/self/mountinfo; then
		fusermount3 -u -z "$cur_mnt" 2>/dev/null || true
	fi
	if [ -n "$cur_pid" ] && kill -0 "$cur_pid" 2>/dev/null; then
		kill "$cur_pid" 2>/dev/null || true
		wait "$cur_pid" 2>/dev/null || true
	fi
	if [ -n "$work" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$work"
	elif [ -n "$work" ]; then
		echo "bench_fs.sh: kept $work" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

work=$(mktemp -d "$base/bench-fs.XXXXXX")
mkdir -p "$work/bin" "$work/input"
cp "$hozen_src" "$work/bin/hozen"
cp "$work_src" "$work/bin/bench_fs_work"
hozen=$work/bin/hozen
if [ -n "$base_src" ]; then
	cp "$base_src" "$work/bin/hozen-base"
fi
wl=$work/bin/bench_fs_work

# --- the peers
want() { case " $fslist " in *" $1 "*) return 0 ;; esac; return 1; }

if want pt || want ptwb; then
	[ -r "$pt_c" ] || die "'$pt_c' is missing: apt-get install libfuse3-dev"
	gcc -O2 -o "$work/bin/passthrough_ll" "$pt_c" \
		$(pkg-config --cflags --libs fuse3) ||
		die "cannot build passthrough_ll"
fi
if want loggedfs && ! command -v loggedfs >/dev/null; then
	echo "bench_fs.sh: installing loggedfs" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q loggedfs \
		>"$work/apt.log" 2>&1 ||
		die "cannot install loggedfs (see apt-get install loggedfs)"
fi

# --- inputs, made once
bytes=$((mib * 1048576))
echo "bench_fs: generating inputs in $work ($(stat -f -c %T "$work"))" >&2
head -c "$bytes" /dev/urandom >"$work/input/random"
"$wl" tree "$work/input/tree" "$tarfiles"
(cd "$work/input/tree" && tar -cf "$work/input/files.tar" -- *)
rm -rf "$work/input/tree"
sync

# --- one run
# Everything of a run lives in $work/run: data (the backing directory or,
# for hozen, the store), mnt (the mount point).
mounted() {
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

start_daemon() { # fs row; sets cur_pid, cur_mnt, data_dir
	local fs=$1 row=$2 i
	local run=$work/run
	mkdir -p "$run/mnt"
	case $fs in
	native)
		data_dir=$run/mnt
		cur_mnt=
		cur_pid=
		return 0
		;;
	pt | ptwb)
		mkdir -p "$run/data"
		data_dir=$run/data
		local o="source=$run/data"
		[ "$fs" = ptwb ] && o="$o,writeback"
		"$work/bin/passthrough_ll" -f -o "$o" "$run/mnt" \
			>"$run/daemon.log" 2>&1 &
		cur_pid=$!
		cur_mnt=$run/mnt
		;;
	loggedfs)
		# loggedfs mounts over its backing directory.
		data_dir=$run/mnt
		loggedfs -f -p -l "$run/loggedfs.log" "$run/mnt" \
			>"$run/daemon.log" 2>&1 &
		cur_pid=$!
		cur_mnt=$run/mnt
		;;
	hozen | hozenx | base)
		local bin=$hozen
		if [ "$fs" = base ]; then
			[ -n "$base_src" ] || die "base: set BENCH_BASE"
			bin=$work/bin/hozen-base
		fi
		"$bin" init "$run/store" >/dev/null
		data_dir=$run/store/tree
		o=
		[ "$fs" = hozenx ] && o=--no-xattr-read
		"$bin" mount -f $o "$run/store" "$run/mnt" \
			>"$run/daemon.log" 2>&1 &
		cur_pid=$!
		cur_mnt=$run/mnt
		;;
	esac
	for i in $(seq 300); do
		mounted "$cur_mnt" && break
		kill -0 "$cur_pid" 2>/dev/null ||
			die "$fs did not mount: $(tail -3 "$run/daemon.log")"
		sleep 0.05
	done
	mounted "$cur_mnt" || die "$fs did not mount within 15 s"
	stat "$cur_mnt" >/dev/null # the daemon answers: it is serving
}

workload() { # row dir
	case $1 in
	1) dd if="$work/input/random" of="$2/big" bs=1M status=none ;;
	2) dd if="$work/input/random" of="$2/big" bs=4K status=none ;;
	3) tar -xf "$work/input/files.tar" -C "$2" ;;
	4) "$wl" churn "$2" "$churnfiles" "$churnrounds" ;;
	esac
}

# Check (untimed) that the run did its work; prints "ok" or what failed.
check_run() { # fs row
	local fs=$1 row=$2 n want
	case $row in
	1 | 2)
		n=$(stat -c %s "$data_dir/big" 2>/dev/null || echo 0)
		want=$bytes
		;;
	3)
		n=$(find "$data_dir" -type f | wc -l)
		want=$tarfiles
		;;
	4)
		n=$(find "$data_dir" -type f | wc -l)
		want=$churnfiles
		;;
	esac
	if [ "$n" != "$want" ]; then
		echo "bad:$n-of-$want"
		return
	fi
	if { [ "${fs#hozen}" != "$fs" ] || [ "$fs" = base ]; } &&
		command -v git >/dev/null; then
		want=$([ "$row" -le 2 ] && echo 1 || echo "$n")
		n=$(git --git-dir="$work/run/store/git" ls-tree -r HEAD \
			2>/dev/null | wc -l)
		if [ "$n" != "$want" ]; then
			echo "bad:git-$n-of-$want"
			return
		fi
	fi
	echo ok
}

run_one() { # fs row rep
	local fs=$1 row=$2 rep=$3 t0 t1 rss=0 k v rc=0 ok
	rm -rf "$work/run"
	mkdir -p "$work/run"
	start_daemon "$fs" "$row"
	sync
	t0=$EPOCHREALTIME
	workload "$row" "$work/run/mnt" || rc=$?
	if [ -n "$cur_pid" ]; then
		while read -r k v _; do
			[ "$k" = VmHWM: ] && rss=$v
		done <"/proc/$cur_pid/status"
		fusermount3 -u "$cur_mnt" || rc=$?
		wait "$cur_pid" || rc=$?
	fi
	sync
	t1=$EPOCHREALTIME
	cur_pid=
	cur_mnt=
	ok=$(check_run "$fs" "$row")
	[ "$rc" = 0 ] || ok="bad:rc-$rc"
	if [ "$ok" != ok ]; then
		echo "bench_fs: $fs row $row run $rep: $ok" >&2
		[ -s "$work/run/daemon.log" ] &&
			tail -n 5 "$work/run/daemon.log" | sed 's/^/  daemon: /' >&2
		tail -5 "$work/run/daemon.log" >&2 2>/dev/null || true
	fi
	if [ "$fs" = loggedfs ]; then
		echo "loglines $row $(wc -l <"$work/run/loggedfs.log")" \
			>>"$work/extra"
	fi
	echo "$row $fs $rep $(awk -v a="$t0" -v b="$t1" \
		'BEGIN { printf "%.3f", b - a }') $rss $ok" >>"$work/results"
	rm -rf "$work/run"
}

echo "bench_fs: $mib MiB, $tarfiles files in the tar, churn" \
	"$churnfiles x $churnrounds; $runs runs; in $work" \
	"($(stat -f -c %T "$work"), $(df -h --output=source "$work" |
		tail -1))"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- |
	sed 's/^ //'), $(nproc) cores; kernel $(uname -r);" \
	"fuse3 $(pkg-config --modversion fuse3);" \
	"loggedfs $(dpkg-query -W -f '${Version}' loggedfs 2>/dev/null || echo ?);" \
	"hozen binary of $(date -r "$hozen_src" '+%F %T')${base_src:+; base: $base_src}"
echo

read -r -a fsarr <<<"$fslist"
: >"$work/results"
: >"$work/extra"
for row in $rows; do
	for rep in $(seq "$runs"); do
		nfs=${#fsarr[@]}
		for ((j = 0; j < nfs; j++)); do
			fs=${fsarr[$(((j + rep - 1) % nfs))]}
			run_one "$fs" "$row" "$rep"
		done
		echo "row $row, round $rep of $runs done" >&2
	done
done
[ -n "${BENCH_OUT:-}" ] && cp "$work/results" "$BENCH_OUT"

awk -v mib="$mib" -v tarfiles="$tarfiles" -v churn="$churnfiles" \
	-v rounds="$churnrounds" '
function median(list,    v, n, i, j, t) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
			t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
		}
	return v[int((n + 1) / 2)]
}
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
$1 == "loglines" { next }
{
	k = $1 SUBSEP $2
	secs[k] = secs[k] " " $4
	if ($5 + 0 > rss[k]) rss[k] = $5 + 0
	if ($6 != "ok") bad[k] = bad[k] " " $6
	seenrow[$1] = 1
	seenfs[$2] = 1
}
END {
	rowname[1] = sprintf("1 dd %d MiB bs=1M", mib)
	rowname[2] = sprintf("2 dd %d MiB bs=4K", mib)
	rowname[3] = sprintf("3 tar -x %d files", tarfiles)
	rowname[4] = sprintf("4 churn %dx%d", churn, rounds)
	amount[1] = amount[2] = mib * 1048576 / 1e6; unit[1] = unit[2] = "MB/s"
	amount[3] = tarfiles; unit[3] = unit[4] = "files/s"
	amount[4] = churn * rounds
	nf = split("native pt ptwb loggedfs base hozen hozenx", fsorder, " ")
	fsname["native"] = "ext4 (native)"
	fsname["pt"] = "passthrough_ll"
	fsname["ptwb"] = "passthrough_ll -o writeback"
	fsname["loggedfs"] = "loggedfs"
	fsname["hozen"] = "hozen"
	fsname["base"] = "hozen (base)"
	fsname["hozenx"] = "hozen --no-xattr-read"
	printf "%-22s %-28s %8s %12s %6s %6s %7s  %s\n", "row", "filesystem",
		"median s", "rate", "t/pt", "t/ptwb", "RSS MiB", "runs (s)"
	for (r = 1; r <= 4; r++) {
		if (!(r in seenrow)) continue
		for (i = 1; i <= nf; i++) {
			f = fsorder[i]; k = r SUBSEP f
			if (!(k in secs)) continue
			s = med[k] = median(secs[k])
			rate = sprintf("%.0f %s", (s > 0) ? amount[r] / s : 0,
				unit[r])
			tpt = tptwb = mem = "-"
			if ((r SUBSEP "pt") in secs)
				tpt = ratio(s, median(secs[r SUBSEP "pt"]))
			if ((r SUBSEP "ptwb") in secs)
				tptwb = ratio(s, median(secs[r SUBSEP "ptwb"]))
			if (rss[k] > 0)
				mem = sprintf("%.1f", rss[k] / 1024)
			fail = (k in bad) ? "  FAILED:" bad[k] : ""
			printf "%-22s %-28s %8.2f %12s %6s %6s %7s  %s%s\n",
				rowname[r], fsname[f], s, rate, tpt, tptwb, mem,
				secs[k], fail
		}
		print ""
	}
	print "t/pt, t/ptwb: median time over passthrough_ll'"'"'s without / with -o writeback"
	print "(lower is better); rate: MB/s (10^6 bytes) or files (closes) per second;"
	print "RSS: the daemon'"'"'s VmHWM before unmount, largest of the runs."
	split("hozen hozenx", hz, " ")
	for (h = 1; h <= 2; h++) {
		if (!(hz[h] in seenfs)) continue
		print "\n" fsname[hz[h]] " against the targets (medians):"
		maxrss = 0
		for (r = 1; r <= 4; r++) {
			k = r SUBSEP hz[h]
			if (!(k in med)) continue
			line = sprintf("  row %d:", r)
			split("pt ptwb", peers, " ")
			for (p = 1; p <= 2; p++) {
				pk = r SUBSEP peers[p]
				if (!(pk in med)) continue
				if (r <= 2) {
					x = med[pk] / med[k]
					line = line sprintf(" %.2f of %s throughput (>= 0.8: %s);",
						x, peers[p], (x >= 0.8) ? "met" : "MISSED")
				} else {
					x = med[k] / med[pk]
					line = line sprintf(" %.2fx %s time (<= 1.5: %s);",
						x, peers[p], (x <= 1.5) ? "met" : "MISSED")
				}
			}
			bk = r SUBSEP "base"
			if (bk in med)
				line = line sprintf(" %.2fx base time (<= 1: %s);",
					med[k] / med[bk], (med[k] <= med[bk]) ? "met" : "MISSED")
			lk = r SUBSEP "loggedfs"
			if (lk in med)
				line = line sprintf(" %.2fx loggedfs time (< 1: %s)",
					med[k] / med[lk], (med[k] < med[lk]) ? "met" : "MISSED")
			print line
			if (rss[k] > maxrss) maxrss = rss[k]
		}
		printf "  daemon peak RSS: %.1f MiB (< 100: %s)\n", maxrss / 1024,
			(maxrss < 100 * 1024) ? "met" : "MISSED"
	}
}' "$work/results"
if [ -s "$work/extra" ]; then
	awk '$1 == "loglines" { n[$2] = $3 }
	END { for (r in n) printf "(loggedfs wrote %d log lines in its last row-%s run)\n", n[r], r }' \
		"$work/extra" | sort
fi
