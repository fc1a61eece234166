/*
 * fuzz_lfs_pointer.c - libFuzzer target for the Git LFS pointer parser
 * (a version blob that names its content in lfs/objects).  Must never
 * crash; a parsed pointer must be exactly the canonical text.
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
	uint8_t sha[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1], canon[256];
	uint64_t n;
	int len;

	if (vs_parse_pointer((const char *)data, size, sha, &n) == 0) {
		hc_hex(sha, HC_HASH_LEN, hex);
		len = snprintf(canon, sizeof(canon),
			       "version https://git-lfs.github.com/spec/v1\n"
			       "oid sha256:%s\nsize %" PRIu64 "\n",
			       hex, n);
		if (len < 0 || (size_t)len != size || memcmp(canon, data, size))
			abort();
	}
	return 0;
}
