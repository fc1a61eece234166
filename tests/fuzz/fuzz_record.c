/*
 * fuzz_record.c - libFuzzer target for hc_record_parse, and for the log
 * reader over a segment made of the input.  Must never crash or leak;
 * what a successful parse promises is checked.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashchain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_record(const uint8_t *data, size_t size)
{
	uint8_t h[HC_HASH_LEN];
	hc_record r;

	memset(&r, 0, sizeof(r));
	if (hc_record_parse(&r, (const char *)data, size) == 0) {
		/* The hash is over exactly the input bytes. */
		if (hc_sha256(data, size, h) < 0 || memcmp(h, r.hash, 32) ||
		    r.len != size || !r.type || !r.type[0] ||
		    !json_is_object(r.json) || memchr(data, '\n', size))
			abort();
	}
	hc_record_release(&r);
}

/* The input as a whole log segment, read back through the reader. */
static void check_reader(const uint8_t *data, size_t size)
{
	static char dir[64];
	hc_reader *rd = NULL;
	hc_record rec;
	int sfd, fd, rc, n = 0;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/hozen-fuzz-%ld",
			 (long)getpid());
		mkdir(dir, 0700);
		snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir),
			 "/chain");
		mkdir(dir, 0700);
		dir[strlen(dir) - 6] = '\0';
	}
	sfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (sfd < 0)
		return;
	fd = openat(sfd, "chain/00000000000000000000.log",
		    O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, data, size) != (ssize_t)size)
			abort();
		close(fd);
	}
	memset(&rec, 0, sizeof(rec));
	if (hc_reader_open(&rd, sfd) == 0) {
		while ((rc = hc_reader_next(rd, &rec)) == 1 && n < 100000)
			n++;
		if (rc < 0 && !hc_error_message()[0])
			abort();
	}
	hc_record_release(&rec);
	hc_reader_free(rd);
	close(sfd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_record(data, size);
	check_reader(data, size);
	return 0;
}
