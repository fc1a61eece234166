/*
 * fuzz_checkpoint.c - libFuzzer target for hc_checkpoint_parse.
 *
 * Parses the input as a signed checkpoint note against a fixed verifier
 * key (the published sum.golang.org key, so that a corpus seeded with a
 * real sum.golang.org checkpoint reaches the verification path), and
 * checks what a successful parse promises.  Must never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashchain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* From https://github.com/golang/go, src/cmd/go/internal/modfetch/key.go */
static const char vkey[] =
	"sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

static const hc_key *fixed_key(void)
{
	static hc_key *key;

	if (!key && hc_key_parse_vkey(&key, vkey) < 0)
		abort();
	return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hc_checkpoint *c = NULL;
	int rc;

	rc = hc_checkpoint_parse(&c, (const char *)data, size, fixed_key());
	if (rc == 0) {
		/* A parsed checkpoint is exactly its input, well-formed. */
		if (!c || strlen(c->text) != size ||
		    memcmp(c->text, data, size) != 0 || !c->origin[0] ||
		    strchr(c->origin, '\n') ||
		    (c->extensions && !c->extensions[0]))
			abort();
	} else {
		if (c || rc > 0 || !hc_error_message()[0])
			abort();
	}
	hc_checkpoint_free(c);
	return 0;
}
