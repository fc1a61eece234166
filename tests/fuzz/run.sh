#!/bin/sh
# run.sh FUZZER SEED-CORPUS WORK-DIR SECONDS: fuzz with new inputs going to
# WORK-DIR, never into the source tree's seed corpus.  HOZEN_FUZZ_SECONDS
# overrides SECONDS.
set -eu
mkdir -p "$3"
exec "$1" -max_total_time="${HOZEN_FUZZ_SECONDS:-$4}" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 "$3" "$2"
