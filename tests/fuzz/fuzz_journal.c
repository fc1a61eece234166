/*
 * fuzz_journal.c - libFuzzer target for the journal entry parser of
 * fs/versions.c (git/hozen-journal, read back after a crash).  Must never
 * crash nor read past the input; an entry it accepts must be exactly
 * "blob SIZE\0" (SIZE canonical decimal) followed by SIZE bytes within
 * the input, and walking the input entry by entry must end.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "versions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char canon[40];
	size_t off = 0, hdr;
	uint64_t n;
	int len;

	while (off < size &&
	       vs_journal_entry(data + off, size - off, &hdr, &n) == 1) {
		len = snprintf(canon, sizeof(canon), "blob %" PRIu64, n);
		if (len < 0 || hdr != (size_t)len + 1 || hdr > size - off ||
		    memcmp(canon, data + off, hdr) || n > size - off - hdr ||
		    n > VS_BLOB_MAX)
			abort();
		off += hdr + (size_t)n;
	}
	return 0;
}
