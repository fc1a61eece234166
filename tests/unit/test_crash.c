/*
 * test_crash.c - a writer appending in a loop is killed with SIGKILL at
 * random points, many times; sometimes the tail is also cut at a random
 * byte, as a power loss during an append would.  Every reopen must report
 * at most a torn last line, and every record acknowledged after
 * hc_log_sync() must be there and verify.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hashchain.h"
#include "tap.h"

#define ROUNDS 60

static char base[] = "/tmp/hozen-crash-XXXXXX";

/* The child: append forever, report each synced seq on fd. */
static void writer(const char *path, int fd, unsigned seed)
{
	struct hc_log_options opts = {
		.flush_ms = 2, .recover = 1, .segment_bytes = 64 * 1024};
	struct hc_appended app;
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_actor self;
	char pad[512];
	int i;

	srandom(seed);
	hc_actor_self(&self);
	if (hc_store_open(&s, path) < 0 ||
	    hc_log_open(&log, hc_store_fd(s), &opts, NULL) < 0) {
		fprintf(stderr, "writer: %s\n", hc_error_message());
		_exit(3);
	}
	/*
	 * The opening made every record durable, its recovery records too:
	 * acknowledged, so that a power cut (tear) cannot take them back.
	 */
	if (hc_log_size(log) > 0) {
		uint64_t last = hc_log_size(log) - 1;

		if (write(fd, &last, sizeof(last)) < 0)
			_exit(6);
	}
	for (i = 0;; i++) {
		size_t n = (size_t)(random() % (sizeof(pad) - 1));
		json_t *f;

		memset(pad, 'a' + i % 26, n);
		pad[n] = '\0';
		f = json_pack("{s:i,s:s}", "i", i, "pad", pad);
		if (hc_log_append(log, "work", &self, f, &app) < 0)
			_exit(4);
		json_decref(f);
		if (random() % 8 == 0) {
			if (hc_log_sync(log, app.seq) < 0)
				_exit(5);
			if (write(fd, &app.seq, sizeof(app.seq)) < 0)
				_exit(6);
		}
	}
}

/*
 * The largest offset in segment name (a file of chain/) of a copy of torn
 * bytes: recovery synced the segment up to there before it made the copy.
 */
static int64_t copied_up_to(hc_store *s, const char *name)
{
	struct dirent *de;
	int64_t most = -1;
	long long off;
	char seg[32];
	DIR *d;

	d = fdopendir(
		openat(hc_store_fd(s), "chain/torn", O_RDONLY | O_DIRECTORY));
	while (d && (de = readdir(d)))
		if (sscanf(de->d_name, "%20[0-9]-%lld", seg, &off) == 2 &&
		    !strncmp(seg, name, 20) && off > most)
			most = off;
	if (d)
		closedir(d);
	return most;
}

/*
 * Cut the last segment inside its last line, like a torn append -- only
 * if that record was not acknowledged (a power cut cannot take back what
 * an fdatasync made durable: what the writer acknowledged, and what
 * recovery synced before it saved torn bytes).
 */
static int tear(hc_store *s, uint64_t acked, uint64_t floor)
{
	char name[256] = "", seg[300];
	struct dirent *de;
	struct stat st;
	int64_t size, cut;
	char *buf;
	DIR *d;
	int fd, rc;

	/* The newest segment: the largest name in chain/. */
	d = fdopendir(openat(hc_store_fd(s), "chain", O_RDONLY | O_DIRECTORY));
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".log") && strcmp(de->d_name, name) > 0)
			snprintf(name, sizeof(name), "%s", de->d_name);
	closedir(d);
	snprintf(seg, sizeof(seg), "chain/%s", name);
	fd = openat(hc_store_fd(s), seg, O_RDWR);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size < 2) {
		close(fd);
		return -1;
	}
	size = st.st_size;
	buf = malloc((size_t)size);
	if (!buf || pread(fd, buf, (size_t)size, 0) != size) {
		free(buf);
		close(fd);
		return -1;
	}
	/* Start of the last line, then a cut strictly inside it. */
	for (cut = size - 1; cut > 0 && buf[cut - 1] != '\n'; cut--)
		;
	{
		unsigned long long seq;

		/* Nothing to cut inside a line of one byte (already torn). */
		if (size - 1 - cut < 1 ||
		    sscanf(buf + cut, "{\"v\":1,\"seq\":%llu,", &seq) != 1 ||
		    seq < acked || seq < floor || cut < copied_up_to(s, name)) {
			free(buf);
			close(fd);
			return -1;
		}
	}
	free(buf);
	cut += 1 + random() % (size - 1 - cut);
	rc = ftruncate(fd, cut);
	close(fd);
	return rc;
}

int main(void)
{
	char path[256];
	hc_store *s = NULL;
	hc_key *key = NULL;
	hc_actor self;
	int round, torn_seen = 0, cut_done = 0;
	uint64_t floor = 2; /* records before the round: durable, not to cut */
	uint64_t acked = 0; /* records made durable so far, in every round */

	if (!mkdtemp(base))
		return 1;
	srandom((unsigned)time(NULL));
	snprintf(path, sizeof(path), "%s/s", base);
	ok(hc_store_init(path, NULL) == 0 && hc_store_open(&s, path) == 0,
	   "store");
	hc_actor_self(&self);
	for (round = 0; round < ROUNDS; round++) {
		struct hc_verify_options vo = {.allow_unsealed = 1};
		struct hc_verify_report rep;
		uint64_t seq;
		int pfd[2], status, rc, good = 1;
		hc_log *log = NULL;
		pid_t pid;

		if (pipe(pfd) < 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			writer(path, pfd[1], (unsigned)round);
		}
		close(pfd[1]);
		usleep((useconds_t)(2000 + random() % 40000));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		while (read(pfd[0], &seq, sizeof(seq)) == sizeof(seq))
			if (seq + 1 > acked)
				acked = seq + 1;
		close(pfd[0]);
		if (!WIFSIGNALED(status)) {
			ok(0, "round %d: writer died on its own (status %d)",
			   round, status);
			continue;
		}
		/* A power cut: also tear the last line now and then. */
		if (round % 4 == 3 && tear(s, acked, floor) == 0)
			cut_done++;
		rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
		if (rc == HC_ETORN)
			torn_seen++;
		else if (rc < 0)
			good = 0;
		hc_log_close(log);
		rc = hc_verify_store(s, &vo, &rep);
		if (rc < 0 || (rep.verdict != HC_VALID && !rep.torn))
			good = 0;
		if (rep.records < acked)
			good = 0;
		if (rc == 0 && !rep.torn)
			floor = rep.records;
		ok(good,
		   "round %d: at most a torn tail; %" PRIu64
		   " records, %" PRIu64 " acknowledged %s",
		   round, rep.records, acked, rep.reason);
	}
	diag("%d rounds, %d torn tails seen (%d cut on purpose)", ROUNDS,
	     torn_seen, cut_done);
	ok(cut_done == 0 || torn_seen >= cut_done,
	   "every cut tail was reported as torn");
	{
		struct hc_recover_report rrep;
		struct hc_verify_report rep;
		int rc;

		rc = hc_store_private_key(s, NULL, &key);
		if (rc == 0)
			rc = hc_store_recover(s, key, &self, &rrep);
		ok(rc == 0, "final recover: %s", rc ? hc_error_message() : "");
		rc = hc_verify_store(s, NULL, &rep);
		ok(rc == 0 && rep.verdict == HC_VALID,
		   "the store verifies and is sealed (%" PRIu64 " records%s%s)",
		   rep.records, rc == 0 && rep.verdict == HC_VALID ? "" : ": ",
		   rc < 0		     ? hc_error_message()
		   : rep.verdict == HC_VALID ? ""
					     : rep.reason);
	}
	hc_key_free(key);
	hc_store_free(s);
	if (tap_failed)
		diag("the store is kept for inspection: %s", path);
	else
		tap_rmrf(base);
	return tap_done();
}
