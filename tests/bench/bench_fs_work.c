/*
 * bench_fs_work.c - workloads for bench_fs.sh (a benchmark, not a test).
 *
 *   bench_fs_work tree DIR FILES
 *       Create FILES files of 0-8 KiB of pseudo-random (incompressible)
 *       bytes under DIR, 100 to a directory, nested two deep
 *       (DIR/dNN/sN/fNNNNN); the input of the tar row.
 *   bench_fs_work churn DIR FILES ROUNDS
 *       Git-style churn: ROUNDS times over FILES files (DIR/cNN/fNNNNN,
 *       100 to a directory), open(O_WRONLY|O_CREAT|O_TRUNC), one write(2)
 *       of 0-8 KiB of new pseudo-random bytes, close; the first round
 *       creates the files.  FILES * ROUNDS closes in all.
 *
 * Deterministic (a fixed xorshift seed per file and round), so every
 * filesystem gets the same bytes.  Exits 1 on the first error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXSIZE 8192

static uint64_t next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* len pseudo-random bytes for (file, round); len from 0 to MAXSIZE. */
static size_t fill(unsigned char *buf, unsigned file, unsigned round)
{
	uint64_t s = 0x9e3779b97f4a7c15ull ^ ((uint64_t)file << 20) ^
		     ((uint64_t)round << 52) ^ 0x2545f4914f6cdd1dull;
	size_t len, i;

	for (i = 0; i < 4; i++)
		next(&s);
	len = (size_t)(next(&s) % (MAXSIZE + 1));
	for (i = 0; i < len; i += 8) {
		uint64_t v = next(&s);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
	return len;
}

static int mkdir_p(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "bench_fs_work: mkdir %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int put(const char *path, const unsigned char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n = 0;

	if (fd < 0 || (len && (n = write(fd, buf, len)) != (ssize_t)len) ||
	    close(fd) < 0) {
		fprintf(stderr, "bench_fs_work: %s: %s\n", path,
			n >= 0 && fd >= 0 && len && n != (ssize_t)len
				? "short write"
				: strerror(errno));
		return -1;
	}
	return 0;
}

static int tree(const char *dir, unsigned files)
{
	static unsigned char buf[MAXSIZE + 8];
	char path[4096];
	unsigned i;

	if (mkdir_p(dir) < 0)
		return -1;
	for (i = 0; i < files; i++) {
		unsigned leaf = i / 100;

		if (i % 100 == 0) {
			if (leaf % 10 == 0) {
				snprintf(path, sizeof(path), "%s/d%02u", dir,
					 leaf / 10);
				if (mkdir_p(path) < 0)
					return -1;
			}
			snprintf(path, sizeof(path), "%s/d%02u/s%u", dir,
				 leaf / 10, leaf % 10);
			if (mkdir_p(path) < 0)
				return -1;
		}
		snprintf(path, sizeof(path), "%s/d%02u/s%u/f%05u", dir,
			 leaf / 10, leaf % 10, i);
		if (put(path, buf, fill(buf, i, 0)) < 0)
			return -1;
	}
	return 0;
}

static int churn(const char *dir, unsigned files, unsigned rounds)
{
	static unsigned char buf[MAXSIZE + 8];
	char path[4096];
	unsigned i, r;

	for (r = 0; r < rounds; r++)
		for (i = 0; i < files; i++) {
			if (r == 0 && i % 100 == 0) {
				snprintf(path, sizeof(path), "%s/c%02u", dir,
					 i / 100);
				if (mkdir_p(path) < 0)
					return -1;
			}
			snprintf(path, sizeof(path), "%s/c%02u/f%05u", dir,
				 i / 100, i);
			if (put(path, buf, fill(buf, i, r + 1)) < 0)
				return -1;
		}
	return 0;
}

static unsigned num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v == 0 || v > 10000000ul) {
		fprintf(stderr, "bench_fs_work: bad number '%s'\n", s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "tree"))
		return tree(argv[2], num(argv[3])) < 0;
	if (argc == 5 && !strcmp(argv[1], "churn"))
		return churn(argv[2], num(argv[3]), num(argv[4])) < 0;
	fprintf(stderr, "usage: bench_fs_work tree DIR FILES\n"
			"       bench_fs_work churn DIR FILES ROUNDS\n");
	return 2;
}
