#!/bin/bash
# run.sh - run bench_log and compare its verify with SHA-256 tools.
#
# Usage: tests/bench/run.sh [BUILD_DIR [RECORDS]]   (default ./build, 1000000)
#
# Builds nothing.  Runs bench_log RUNS times (default 3, env BENCH_RUNS) in a
# temporary directory on disk (TMPDIR if it is not a tmpfs, else under the
# build directory); after each run, times `openssl dgst -sha256`, coreutils
# `sha256sum` and `cat` over the log segments of the store that run verified.
# Prints the medians side by side.  A benchmark, not a test: no TAP.
set -eu

build=${1:-./build}
records=${2:-1000000}
runs=${BENCH_RUNS:-3}
exe=$build/tests/bench/bench_log

if [ ! -x "$exe" ]; then
	echo "run.sh: '$exe' is not built: ninja -C $build tests/bench/bench_log" >&2
	exit 2
fi

on_disk() {
	case $(stat -f -c %T "$1" 2>/dev/null) in
	tmpfs | ramfs | "") return 1 ;;
	*) return 0 ;;
	esac
}

base=$build
if [ -n "${TMPDIR:-}" ] && on_disk "$TMPDIR"; then
	base=$TMPDIR
fi
if ! on_disk "$base"; then
	echo "run.sh: '$base' is on $(stat -f -c %T "$base"), not a disk" >&2
	exit 2
fi
work=$(mktemp -d "$base/bench-log.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Wall seconds of a command, its output discarded.
timed() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

echo "bench_log: $records records, $runs runs, in $work" \
	"($(stat -f -c %T "$work"))"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')," \
	"$(nproc) cores; $(openssl version)"
echo

for i in $(seq "$runs"); do
	rm -rf "$work/run"
	"$exe" -n "$records" "$work/run" >"$work/bench.$i"
	segs=("$work/run/append-nosync/chain/"*.log)
	{
		echo "tool-openssl $(timed openssl dgst -sha256 "${segs[@]}")"
		echo "tool-sha256sum $(timed sha256sum "${segs[@]}")"
		echo "tool-cat $(timed cat "${segs[@]}")"
		echo "tool-bytes $(cat "${segs[@]}" | wc -c)"
	} >"$work/tools.$i"
	echo "run $i of $runs done" >&2
done

cat "$work"/bench.* "$work"/tools.* | awk -v runs="$runs" '
function median(list,    v, n, i, j, t) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
			t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
		}
	return v[int((n + 1) / 2)]
}
function rate(n,    u) {
	if (n >= 1e6)
		return sprintf("%.2fM", n / 1e6)
	if (n >= 1e3)
		return sprintf("%.0fk", n / 1e3)
	return sprintf("%.0f", n)
}
$3 == "records" {
	if (!($1 in secs))
		order[++nrows] = $1
	secs[$1] = secs[$1] " " $4
	recs[$1] = $2
	mb[$1] = $8
	for (i = 12; i < NF; i++) {
		if ($i == "close")
			closes[$1] = closes[$1] " " $(i + 1)
		if ($i == "cpu")
			cpus[$1] = cpus[$1] " " $(i + 1)
	}
	next
}
$1 == "peak-rss" { if ($2 + 0 > rss) rss = $2 + 0; next }
$1 ~ /^tool-/ { tool[$1] = tool[$1] " " $2; next }
END {
	printf "%-20s %9s %8s %8s %8s %7s %8s %8s   %s\n", "row", "records",
		"median s", "rec/s", "MB", "MB/s", "cpu s", "close s",
		"all runs (s)"
	for (r = 1; r <= nrows; r++) {
		k = order[r]
		s = median(secs[k])
		c = k in closes ? sprintf("%.3f", median(closes[k])) : "-"
		u = k in cpus ? sprintf("%.3f", median(cpus[k])) : "-"
		printf "%-20s %9d %8.3f %8s %8.1f %7.1f %8s %8s  %s\n", k,
			recs[k], s, rate(recs[k] / s), mb[k], mb[k] / s, u, c,
			secs[k]
	}
	printf "%-20s %d KiB (largest of %d runs)\n", "peak-rss", rss, runs
	print "(s: wall, median; cpu s: user+system of the process, median)"
	bytes = median(tool["tool-bytes"]) / 1e6
	printf "\nover the %.1f MB of log segments of the verified store:\n",
		bytes
	split("tool-openssl tool-sha256sum tool-cat", tl, " ")
	split("openssl dgst -sha256|sha256sum (coreutils)|cat > /dev/null",
		tn, "|")
	for (t = 1; t <= 3; t++) {
		s = median(tool[tl[t]])
		printf "%-24s %8.3f s %8.1f MB/s   all runs (s):%s\n", tn[t], s,
			(s > 0 ? bytes / s : 0), tool[tl[t]]
	}
	if ("verify" in secs) {
		v = median(secs["verify"])
		o = median(tool["tool-openssl"])
		h = median(tool["tool-sha256sum"])
		printf "\nverify / openssl dgst = %.1fx\n", (o > 0 ? v / o : 0)
		printf "verify / sha256sum    = %.1fx\n", (h > 0 ? v / h : 0)
	}
}'
