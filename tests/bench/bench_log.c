/*
 * bench_log.c - throughput of the record log: appends without sync, with
 * group commit and with a sync every 1,000 records, from one thread and
 * from several; then open (replay) and verify of the unsynced store, and
 * the parts of verify's per-line work done alone (split, hash, parse).
 *
 * Usage: bench_log [-n RECORDS] [-t THREADS] [-r ROWS] [-R] DIR
 *
 * Every store is created under DIR (made if missing); the store of the
 * no-sync run is kept as DIR/append-nosync (sealed by a checkpoint) so
 * that a caller can hash its segments, the others are removed.  -R reuses
 * that store for the open, verify and parts rows (to profile them alone).
 * One line per row on stdout, fields separated by blanks:
 *
 *   NAME RECORDS records SECONDS s RATE rec/s MB MB MBPS MB/s cpu CPU s
 *   [extra...]
 *
 * SECONDS are wall, CPU the process's user + system time over the same
 * span; MB are 10^6 bytes of log segments.  Not a test: it prints no TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <openssl/evp.h>

#include "hashchain.h"

#define SYNC_EVERY 1000u

/* Which rows to run (-r). */
enum {
	ROW_FIELDS = 1 << 0,
	ROW_NOSYNC = 1 << 1,
	ROW_FLUSH = 1 << 2,
	ROW_SYNC = 1 << 3,
	ROW_OPEN = 1 << 4,
	ROW_VERIFY = 1 << 5,
	ROW_PARTS = 1 << 6,
	ROW_ALL = (1 << 7) - 1,
};

struct bench {
	const char *dir;
	uint64_t n;
	unsigned threads;
	hc_actor actor;
};

struct worker {
	hc_log *log;
	const hc_actor *actor;
	uint64_t first, n; /* record indexes [first, first + n) */
	unsigned sync_every;
	int rc;
	char err[256];
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_log: %s: %s (%d)\n", what, hc_error_message(),
		rc);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU seconds of the process so far (all threads). */
static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * The fields of record i: a 4 KiB write to one of 5,000 files, with a
 * digest that looks random (hashing real content is not what we time).
 */
static json_t *write_fields(uint64_t i)
{
	char path[64], hex[HC_HEX_LEN + 1];
	uint8_t digest[HC_HASH_LEN];
	uint64_t seed = i, w;
	size_t k;

	for (k = 0; k < HC_HASH_LEN; k += 8) {
		w = splitmix64(&seed);
		memcpy(digest + k, &w, 8);
	}
	hc_hex(digest, HC_HASH_LEN, hex);
	snprintf(path, sizeof(path), "/evidence/case-0042/files/f%05" PRIu64,
		 i % 5000);
	return json_pack("{s:s,s:I,s:I,s:s}", "path", path, "offset",
			 (json_int_t)(i / 5000 * 4096), "length",
			 (json_int_t)4096, "sha256", hex);
}

/* Total bytes of the log segments of store path. */
static uint64_t chain_bytes(const char *store)
{
	char path[PATH_MAX + 16], file[PATH_MAX + 300];
	struct dirent *de;
	struct stat st;
	uint64_t total = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/chain", store);
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "bench_log: cannot read '%s': %s\n", path,
			strerror(errno));
		exit(2);
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 4 || strcmp(de->d_name + len - 4, ".log") != 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		if (stat(file, &st) == 0)
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *path)
{
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 &&
	    errno != ENOENT)
		fprintf(stderr, "bench_log: cannot remove '%s': %s\n", path,
			strerror(errno));
}

/* One result line; cpu: CPU seconds of the process over the same span. */
static void row(const char *name, uint64_t records, double secs, double cpu,
		uint64_t bytes, const char *extra)
{
	printf("%-20s %9" PRIu64 " records %8.3f s %10.0f rec/s %8.1f MB "
	       "%8.1f MB/s  cpu %.3f s%s%s\n",
	       name, records, secs, secs > 0 ? (double)records / secs : 0.0,
	       (double)bytes / 1e6, secs > 0 ? (double)bytes / 1e6 / secs : 0.0,
	       cpu, extra ? "  " : "", extra ? extra : "");
	fflush(stdout);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct hc_appended app;
	json_t *fields;
	uint64_t i;

	for (i = w->first; i < w->first + w->n; i++) {
		fields = write_fields(i);
		if (!fields) {
			w->rc = HC_ENOMEM;
			snprintf(w->err, sizeof(w->err), "json_pack failed");
			return NULL;
		}
		w->rc = hc_log_append(w->log, "write", w->actor, fields, &app);
		json_decref(fields);
		if (w->rc == 0 && w->sync_every &&
		    (i - w->first + 1) % w->sync_every == 0)
			w->rc = hc_log_sync(w->log, app.seq);
		if (w->rc < 0) {
			snprintf(w->err, sizeof(w->err), "%s",
				 hc_error_message());
			return NULL;
		}
	}
	return NULL;
}

/* The cost of making the fields alone, to subtract from the append rows. */
static void run_fields(const struct bench *b)
{
	double t0, c0, t;
	json_t *f;
	uint64_t i;

	c0 = cpu_s();
	t0 = now_s();
	for (i = 0; i < b->n; i++) {
		f = write_fields(i);
		if (!f)
			die("json_pack", HC_ENOMEM);
		json_decref(f);
	}
	t = now_s() - t0;
	row("fields-only", b->n, t, cpu_s() - c0, 0, NULL);
}

/*
 * Create DIR/name, append b->n records with opts from `threads` threads
 * (syncing every sync_every records of each thread when non-zero), close
 * (or seal with a checkpoint first) and print a row.
 */
static void run_append(const struct bench *b, const char *name,
		       unsigned flush_ms, unsigned sync_every, unsigned threads,
		       int seal, int keep)
{
	struct hc_log_options opts = {.flush_ms = flush_ms};
	struct worker *w;
	pthread_t *tid;
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_key *key = NULL;
	const char *origin;
	char path[PATH_MAX], extra[128];
	double t0, c0, t_append, c_append, t_close, t_seal = 0;
	uint64_t per, done = 0;
	unsigned k;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", b->dir, name);
	remove_tree(path);
	rc = hc_store_init(path, NULL);
	if (rc < 0)
		die("hc_store_init", rc);
	rc = hc_store_open(&s, path);
	if (rc < 0)
		die("hc_store_open", rc);
	rc = hc_log_open(&log, hc_store_fd(s), &opts, NULL);
	if (rc < 0)
		die("hc_log_open", rc);

	w = calloc(threads, sizeof(*w));
	tid = calloc(threads, sizeof(*tid));
	if (!w || !tid)
		die("calloc", HC_ENOMEM);
	per = b->n / threads;
	for (k = 0; k < threads; k++) {
		w[k].log = log;
		w[k].actor = &b->actor;
		w[k].first = done;
		w[k].n = k + 1 == threads ? b->n - done : per;
		w[k].sync_every = sync_every;
		done += w[k].n;
	}

	c0 = cpu_s();
	t0 = now_s();
	if (threads == 1) {
		worker_main(&w[0]);
	} else {
		for (k = 0; k < threads; k++)
			if (pthread_create(&tid[k], NULL, worker_main, &w[k]))
				die("pthread_create", HC_ESYS);
		for (k = 0; k < threads; k++)
			pthread_join(tid[k], NULL);
	}
	t_append = now_s() - t0;
	c_append = cpu_s() - c0;
	for (k = 0; k < threads; k++)
		if (w[k].rc < 0) {
			fprintf(stderr, "bench_log: %s: append: %s\n", name,
				w[k].err);
			exit(2);
		}

	t0 = now_s();
	if (seal) {
		rc = hc_store_private_key(s, NULL, &key);
		if (rc == 0)
			rc = hc_store_origin(s, &origin);
		if (rc == 0)
			rc = hc_store_checkpoint(log, key, origin, &b->actor,
						 NULL);
		if (rc < 0)
			die("hc_store_checkpoint", rc);
	}
	t_seal = now_s() - t0;
	t0 = now_s();
	rc = hc_log_close(log);
	t_close = now_s() - t0;
	if (rc < 0)
		die("hc_log_close", rc);

	snprintf(extra, sizeof(extra), "close %.3f s  threads %u", t_close,
		 threads);
	if (seal)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
			 "  seal %.3f s", t_seal);
	row(name, b->n, t_append, c_append, chain_bytes(path), extra);

	hc_key_free(key);
	hc_store_free(s);
	free(w);
	free(tid);
	if (!keep)
		remove_tree(path);
}

/* hc_log_open of the kept store: it replays the whole log. */
static void run_open(const struct bench *b)
{
	char path[PATH_MAX];
	hc_store *s = NULL;
	hc_log *log = NULL;
	struct hc_log_open_report rep;
	double t0, c0, t;
	int rc;

	snprintf(path, sizeof(path), "%s/append-nosync", b->dir);
	rc = hc_store_open(&s, path);
	if (rc < 0)
		die("hc_store_open", rc);
	c0 = cpu_s();
	t0 = now_s();
	rc = hc_log_open(&log, hc_store_fd(s), NULL, &rep);
	t = now_s() - t0;
	c0 = cpu_s() - c0;
	if (rc < 0)
		die("hc_log_open", rc);
	row("open-replay", rep.records, t, c0, chain_bytes(path), NULL);
	rc = hc_log_close(log);
	if (rc < 0)
		die("hc_log_close", rc);
	hc_store_free(s);
}

static void run_verify(const struct bench *b)
{
	struct hc_verify_options opts = {0};
	struct hc_verify_report rep;
	char path[PATH_MAX], extra[128];
	hc_store *s = NULL;
	double t0, c0, t;
	int rc;

	snprintf(path, sizeof(path), "%s/append-nosync", b->dir);
	c0 = cpu_s();
	t0 = now_s();
	rc = hc_store_open(&s, path);
	if (rc == 0)
		rc = hc_verify_store(s, &opts, &rep);
	t = now_s() - t0;
	c0 = cpu_s() - c0;
	if (rc < 0)
		die("hc_verify_store", rc);
	if (rep.verdict != HC_VALID) {
		fprintf(stderr, "bench_log: verify: verdict %d at %s: %s\n",
			(int)rep.verdict, rep.where, rep.reason);
		exit(1);
	}
	snprintf(extra, sizeof(extra), "checkpoints %zu  sealed %" PRIu64,
		 rep.checkpoints, rep.sealed);
	row("verify", rep.records, t, c0, chain_bytes(path), extra);
	hc_store_free(s);
}

/* ------------------------------------------------ verify, piece by piece */

/*
 * What verify spends per line, measured by doing only part of its work
 * over the same segments: splitting lines, hashing, JSON parsing.
 */
struct part {
	const char *name;
	int (*fn)(void *ctx, const char *line, size_t len);
};

static int part_scan(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	(void)line;
	(void)len;
	return 0;
}

static int part_sha256(void *ctx, const char *line, size_t len)
{
	uint8_t h[HC_HASH_LEN];

	(void)ctx;
	return hc_sha256(line, len, h);
}

/* The two hashes of every line, as hc_record_parse makes them. */
static int part_hashes(void *ctx, const char *line, size_t len)
{
	uint8_t h[HC_HASH_LEN], leaf[HC_HASH_LEN];
	int rc;

	(void)ctx;
	rc = hc_sha256(line, len, h);
	if (rc == 0)
		rc = hc_merkle_leaf_hash(line, len, leaf);
	return rc;
}

/* The same two hashes with one EVP_MD_CTX kept for the whole run. */
static int part_hashes_reuse(void *ctx, const char *line, size_t len)
{
	static const uint8_t zero = 0;
	EVP_MD_CTX *c = ctx;
	uint8_t h[HC_HASH_LEN], leaf[HC_HASH_LEN];

	if (!EVP_DigestInit_ex2(c, NULL, NULL) ||
	    !EVP_DigestUpdate(c, line, len) ||
	    !EVP_DigestFinal_ex(c, h, NULL) ||
	    !EVP_DigestInit_ex2(c, NULL, NULL) ||
	    !EVP_DigestUpdate(c, &zero, 1) || !EVP_DigestUpdate(c, line, len) ||
	    !EVP_DigestFinal_ex(c, leaf, NULL))
		return HC_ECRYPTO;
	return 0;
}

static int part_json(void *ctx, const char *line, size_t len)
{
	json_error_t err;
	json_t *j;

	(void)ctx;
	j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		return HC_EFORMAT;
	json_decref(j);
	return 0;
}

/* The same without JSON_REJECT_DUPLICATES: what the check costs. */
static int part_json_dup_ok(void *ctx, const char *line, size_t len)
{
	json_error_t err;
	json_t *j;

	(void)ctx;
	j = json_loadb(line, len, 0, &err);
	if (!j)
		return HC_EFORMAT;
	json_decref(j);
	return 0;
}

static int part_record(void *ctx, const char *line, size_t len)
{
	hc_record rec;
	int rc;

	(void)ctx;
	rc = hc_record_parse(&rec, line, len);
	if (rc == 0)
		hc_record_release(&rec);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Call fn on every line of the segments of store, in order. */
static uint64_t for_lines(const char *store, const struct part *p, void *ctx,
			  uint64_t *bytes)
{
	char dir[PATH_MAX + 16], file[PATH_MAX + 300], *names[4096];
	size_t nnames = 0, i, cap = 1u << 20, start, end;
	uint64_t lines = 0;
	struct dirent *de;
	char *buf, *nl;
	ssize_t n;
	DIR *d;
	int fd, rc;

	buf = malloc(cap);
	snprintf(dir, sizeof(dir), "%s/chain", store);
	d = opendir(dir);
	if (!buf || !d) {
		fprintf(stderr, "bench_log: cannot read '%s'\n", dir);
		exit(2);
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len <= 4 || strcmp(de->d_name + len - 4, ".log") != 0)
			continue;
		if (nnames == sizeof(names) / sizeof(names[0]) ||
		    !(names[nnames++] = strdup(de->d_name)))
			die("too many segments", HC_ENOMEM);
	}
	closedir(d);
	qsort(names, nnames, sizeof(names[0]), cmp_str);
	*bytes = 0;
	for (i = 0; i < nnames; i++) {
		snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "bench_log: cannot open '%s'\n", file);
			exit(2);
		}
		start = end = 0;
		for (;;) {
			if (start > 0) {
				memmove(buf, buf + start, end - start);
				end -= start;
				start = 0;
			}
			n = read(fd, buf + end, cap - end);
			if (n <= 0)
				break;
			end += (size_t)n;
			*bytes += (uint64_t)n;
			while ((nl = memchr(buf + start, '\n', end - start))) {
				rc = p->fn(ctx, buf + start,
					   (size_t)(nl - buf - start));
				if (rc < 0)
					die(p->name, rc);
				lines++;
				start = (size_t)(nl - buf) + 1;
			}
		}
		close(fd);
		free(names[i]);
	}
	free(buf);
	return lines;
}

static void run_parts(const struct bench *b)
{
	static const struct part parts[] = {
		{"part-read-split", part_scan},
		{"part-sha256", part_sha256},
		{"part-hashes", part_hashes},
		{"part-hashes-reuse", part_hashes_reuse},
		{"part-json_loadb", part_json},
		{"part-json_loadb-dup", part_json_dup_ok},
		{"part-record_parse", part_record},
	};
	char path[PATH_MAX];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
	uint64_t lines, bytes;
	double t0, c0;
	size_t i;

	if (!c || !md || !EVP_DigestInit_ex2(c, md, NULL))
		die("EVP_DigestInit_ex2", HC_ECRYPTO);
	snprintf(path, sizeof(path), "%s/append-nosync", b->dir);
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		c0 = cpu_s();
		t0 = now_s();
		lines = for_lines(path, &parts[i], c, &bytes);
		t0 = now_s() - t0;
		row(parts[i].name, lines, t0, cpu_s() - c0, bytes, NULL);
	}
	EVP_MD_free(md);
	EVP_MD_CTX_free(c);
}

static unsigned parse_rows(const char *list)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{"fields", ROW_FIELDS}, {"nosync", ROW_NOSYNC},
		{"flush", ROW_FLUSH},	{"sync", ROW_SYNC},
		{"open", ROW_OPEN},	{"verify", ROW_VERIFY},
		{"parts", ROW_PARTS},	{"all", ROW_ALL},
	};
	char *copy = strdup(list), *tok, *save = NULL;
	unsigned rows = 0;
	size_t i;

	if (!copy)
		die("strdup", HC_ENOMEM);
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(tok, names[i].name) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			fprintf(stderr, "bench_log: unknown row '%s'\n", tok);
			exit(2);
		}
		rows |= names[i].bit;
	}
	free(copy);
	return rows;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_log [-n RECORDS] [-t THREADS] [-r ROWS] [-R] "
		"DIR\n"
		"  -n RECORDS  records per run (default 1000000)\n"
		"  -t THREADS  threads of the concurrent rows (default 4)\n"
		"  -r ROWS     comma-separated: fields,nosync,flush,sync,open,"
		"verify,parts\n"
		"              or all (default); open, verify, parts make the "
		"nosync store\n"
		"  -R          open and verify use DIR/append-nosync as it is "
		"(to profile)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench b = {.n = 1000000, .threads = 4};
	unsigned rows = ROW_ALL;
	int reuse = 0;
	struct rusage ru;
	char name[64];
	char *end;
	int c;

	while ((c = getopt(argc, argv, "n:t:r:Rh")) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			b.n = strtoull(optarg, &end, 10);
			if (errno || *end || b.n == 0)
				usage();
			break;
		case 't':
			b.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || b.threads == 0 || b.threads > 256)
				usage();
			break;
		case 'r':
			rows = parse_rows(optarg);
			break;
		case 'R':
			reuse = 1;
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc)
		usage();
	b.dir = argv[optind];
	if (mkdir(b.dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "bench_log: cannot create '%s': %s\n", b.dir,
			strerror(errno));
		return 2;
	}
	hc_actor_self(&b.actor);

	if (rows & ROW_FIELDS)
		run_fields(&b);
	if (rows & ROW_NOSYNC ||
	    (!reuse && rows & (ROW_OPEN | ROW_VERIFY | ROW_PARTS)))
		run_append(&b, "append-nosync", 0, 0, 1, 1, 1);
	if (rows & ROW_NOSYNC) {
		snprintf(name, sizeof(name), "append-nosync-%ut", b.threads);
		run_append(&b, name, 0, 0, b.threads, 0, 0);
	}
	if (rows & ROW_FLUSH) {
		run_append(&b, "append-flush5ms", 5, 0, 1, 0, 0);
		snprintf(name, sizeof(name), "append-flush5ms-%ut", b.threads);
		run_append(&b, name, 5, 0, b.threads, 0, 0);
	}
	if (rows & ROW_SYNC) {
		run_append(&b, "append-sync1000", 0, SYNC_EVERY, 1, 0, 0);
		snprintf(name, sizeof(name), "append-sync1000-%ut", b.threads);
		run_append(&b, name, 0, SYNC_EVERY, b.threads, 0, 0);
	}
	if (rows & ROW_OPEN)
		run_open(&b);
	if (rows & ROW_VERIFY)
		run_verify(&b);
	if (rows & ROW_PARTS)
		run_parts(&b);

	getrusage(RUSAGE_SELF, &ru);
	printf("peak-rss %ld KiB\n", ru.ru_maxrss);
	return 0;
}
