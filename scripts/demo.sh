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
trap 'rm -rf "$work"' EXIT
store=$work/CASE.hozen
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$hozen" init --name demo-incident "$store"
step "$hozen" note "$store" "10:32 isolated host web01 from the network"
step "$hozen" note "$store" "10:40 不審なログインを確認 (suspicious login seen)"
step "$hozen" checkpoint "$store"
step "$hozen" log "$store"
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
