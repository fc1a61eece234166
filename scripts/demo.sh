#!/usr/bin/env bash
# The README's first command: install the dependencies, build, and run a
# short real demo of hozen that ends in a verdict from `hozen verify`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
hozen=$PWD/build/tools/hozen

work=$(mktemp -d /tmp/hozen-demo.XXXXXX)
store=$work/CASE.hozen
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
	fusermount3 -u -z "$mnt" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step "$hozen" init --name demo-incident "$store"
step "$hozen" note "$store" "10:32 isolated host web01 from the network"

echo
echo "Mount the store and work in it with ordinary tools:"
step "$hozen" mount "$store" "$mnt"
step mkdir "$mnt/web01"
step cp -a /etc/hostname /etc/os-release "$mnt/web01/"
sh -c "echo '10:41 access.log reviewed' >> '$mnt/web01/timeline.txt'"
sh -c "echo '10:45 不審なログインを確認' >> '$mnt/web01/timeline.txt'"
step rm "$mnt/web01/hostname"
step ls -la "$mnt/web01"
echo
echo "Every earlier version stays readable in the mount, straight from git"
echo "(the removed file too):"
step ls "$mnt/.hozen/versions/web01"
step cat "$mnt/.hozen/versions/web01/timeline.txt@1"
step cat "$mnt/.hozen/versions/web01/hostname@1"
step "$hozen" unmount "$mnt"

step "$hozen" log "$store" --type write,version,unlink,commit
echo
echo "Every version is in git: the snapshot on main, and every version of"
echo "the batch (the removed file too) on refs/hozen/versions:"
step git --git-dir="$store/git" log --all --stat --format='%h %d %s%n%b'
step git --git-dir="$store/git" fsck --strict
step "$hozen" prove "$store" --seq 2 -o "$work/seq2.proof"
step "$hozen" verify --proof "$work/seq2.proof" --key "$store/keys/signing.vkey"
step "$hozen" verify "$store"

echo
echo "Now a tampered copy: one byte of record 2 changed."
cp -a "$store" "$work/tampered.hozen"
sed -i '3s/10:32/10:33/' "$work"/tampered.hozen/chain/*.log
set +e
step "$hozen" verify "$work/tampered.hozen"
rc=$?
set -e
if [ $rc -ne 1 ]; then
	echo "demo: the tampered copy was not caught (exit $rc)" >&2
	exit 1
fi
echo
echo "demo: the store verifies; the tampered copy fails (exit 1) at seq 2."
