/*
 * test_log.c - the record log: concurrent appends, segments, group commit,
 * torn tails and recovery, the writer lock, bad fields, a full disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashchain.h"
#include "tap.h"

#define THREADS	   8
#define PER_THREAD 2000

static char base[] = "/tmp/hozen-log-XXXXXX";

struct worker {
	hc_log *log;
	int id, n, sync_each, failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct hc_appended app;
	hc_actor self;
	int i;

	hc_actor_self(&self);
	for (i = 0; i < w->n; i++) {
		json_t *f = json_pack("{s:i,s:i,s:s}", "thread", w->id, "i", i,
				      "path", "/evidence/file.bin");

		if (hc_log_append(w->log, "test", &self, f, &app) < 0)
			w->failed++;
		else if (w->sync_each && hc_log_sync(w->log, app.seq) < 0)
			w->failed++;
		json_decref(f);
	}
	return NULL;
}

static int open_store(const char *name, hc_store **s)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	if (hc_store_init(path, NULL) < 0)
		return -1;
	return hc_store_open(s, path);
}

static int seal_and_verify(hc_store *s, struct hc_verify_report *rep)
{
	hc_key *key = NULL;
	hc_log *log = NULL;
	hc_actor self;
	const char *origin;
	int rc;

	hc_actor_self(&self);
	rc = hc_store_private_key(s, NULL, &key);
	if (rc == 0)
		rc = hc_store_origin(s, &origin);
	if (rc == 0)
		rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
	if (rc == 0)
		rc = hc_store_checkpoint(log, key, origin, &self, NULL);
	hc_log_close(log);
	hc_key_free(key);
	if (rc == 0)
		rc = hc_verify_store(s, NULL, rep);
	return rc;
}

/* Every thread's records are present once and in its own order. */
struct order {
	int next[THREADS];
	int bad;
};

static int check_order(void *ctx, const hc_record *rec)
{
	struct order *o = ctx;
	json_t *t = json_object_get(rec->json, "thread");
	int id, i;

	if (strcmp(rec->type, "test") != 0)
		return 0;
	id = (int)json_integer_value(t);
	i = (int)json_integer_value(json_object_get(rec->json, "i"));
	if (id < 0 || id >= THREADS || o->next[id] != i)
		o->bad++;
	else
		o->next[id]++;
	return 0;
}

static void test_concurrent(int sync_each, unsigned flush_ms)
{
	struct hc_log_options opts = {.flush_ms = flush_ms};
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct hc_verify_report rep;
	struct hc_verify_options vo = {0};
	struct order ord = {{0}, 0};
	char name[64];
	hc_store *s = NULL;
	hc_log *log = NULL;
	/* HOZEN_TEST_QUICK (the valgrind run): a fifth of the appends. */
	int quick = getenv("HOZEN_TEST_QUICK") != NULL;
	int i, failed = 0, n = sync_each ? 300 : PER_THREAD;

	if (quick)
		n /= 5;

	snprintf(name, sizeof(name), "conc-%d-%u", sync_each, flush_ms);
	ok(open_store(name, &s) == 0, "%s: store", name);
	ok(hc_log_open(&log, hc_store_fd(s), &opts, NULL) == 0, "%s: open",
	   name);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){log, i, n, sync_each, 0};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		failed += w[i].failed;
	}
	ok(failed == 0, "%s: %d threads x %d appends, none failed", name,
	   THREADS, n);
	ok(hc_log_size(log) == 2 + (uint64_t)THREADS * n, "%s: size", name);
	ok(hc_log_close(log) == 0, "%s: close", name);
	i = seal_and_verify(s, &rep);
	ok(i == 0 && rep.verdict == HC_VALID, "%s: verifies: %s", name,
	   rep.reason);
	vo.on_record = check_order;
	vo.ctx = &ord;
	hc_verify_store(s, &vo, &rep);
	for (i = 0; i < THREADS; i++)
		if (ord.next[i] != n)
			ord.bad++;
	ok(ord.bad == 0, "%s: each thread's records once, in order", name);
	hc_store_free(s);
}

static int count_segments(hc_store *s)
{
	DIR *d;
	struct dirent *de;
	int fd = openat(hc_store_fd(s), "chain", O_RDONLY | O_DIRECTORY);
	int n = 0;

	d = fdopendir(fd);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".log"))
			n++;
	closedir(d);
	return n;
}

static void test_segments(void)
{
	struct hc_log_options opts = {.segment_bytes = 4096};
	struct hc_verify_report rep;
	struct worker w = {0};
	hc_store *s = NULL;
	hc_log *log = NULL;
	int rc;

	ok(open_store("segments", &s) == 0, "segments: store");
	ok(hc_log_open(&log, hc_store_fd(s), &opts, NULL) == 0,
	   "segments: open with 4 KiB segments");
	w.log = log;
	w.n = 400;
	work(&w);
	ok(w.failed == 0 && hc_log_close(log) == 0, "segments: 400 appends");
	ok(count_segments(s) > 10, "segments: %d segments", count_segments(s));
	/* Reopen: the head is found across segments. */
	ok(hc_log_open(&log, hc_store_fd(s), &opts, NULL) == 0 &&
		   hc_log_size(log) == 402,
	   "segments: reopen finds the head");
	w.log = log;
	work(&w);
	ok(hc_log_close(log) == 0, "segments: more appends after reopen");
	memset(&rep, 0, sizeof(rep));
	rc = seal_and_verify(s, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID && rep.records == 803,
	   "segments: verifies across segments (%" PRIu64 " records) %s",
	   rep.records, rc ? hc_error_message() : rep.reason);
	hc_store_free(s);
}

static int last_segment_fd(hc_store *s)
{
	char name[256] = "";
	DIR *d;
	struct dirent *de;
	int fd = openat(hc_store_fd(s), "chain", O_RDONLY | O_DIRECTORY), sfd;

	d = fdopendir(fd);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".log") && strcmp(de->d_name, name) > 0)
			snprintf(name, sizeof(name), "%s", de->d_name);
	sfd = openat(dirfd(d), name, O_WRONLY | O_APPEND);
	closedir(d);
	return sfd;
}

static void test_torn(void)
{
	static const char torn[] = "{\"v\":1,\"seq\":2,\"prev\":\"ab";
	struct hc_log_open_report orep;
	struct hc_recover_report rrep;
	struct hc_verify_report rep;
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_key *key = NULL;
	hc_reader *r = NULL;
	hc_record rec;
	hc_actor self;
	char *saved = NULL;
	size_t len = 0;
	int fd, rc, found = 0;

	memset(&rec, 0, sizeof(rec));
	hc_actor_self(&self);
	ok(open_store("torn", &s) == 0, "torn: store");
	fd = last_segment_fd(s);
	ok(write(fd, torn, strlen(torn)) == (ssize_t)strlen(torn),
	   "torn: a partial line written");
	close(fd);
	rc = hc_log_open(&log, hc_store_fd(s), NULL, &orep);
	ok(rc == HC_ETORN && strstr(hc_error_message(), "torn"),
	   "torn: open for writing refuses: %s", hc_error_message());
	rc = hc_verify_store(s, NULL, &rep);
	ok(rc == 0 && rep.verdict == HC_INVALID && rep.torn &&
		   rep.fail_seq == 2,
	   "torn: verify reports the torn line at seq 2: %s", rep.reason);
	ok(hc_store_private_key(s, NULL, &key) == 0 &&
		   hc_store_recover(s, key, &self, &rrep) == 0,
	   "torn: recover");
	ok(rrep.torn && rrep.torn_bytes == strlen(torn),
	   "torn: recover reports %" PRIu64 " bytes saved in %s",
	   rrep.torn_bytes, rrep.torn_saved);
	ok(hc_read_file(hc_store_fd(s), rrep.torn_saved, 4096, &saved, &len) ==
			   0 &&
		   len == strlen(torn) && !memcmp(saved, torn, len),
	   "torn: the torn bytes are preserved byte for byte");
	free(saved);
	rc = hc_verify_store(s, NULL, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID,
	   "torn: the store verifies after recovery: %s", rep.reason);
	hc_reader_open(&r, hc_store_fd(s));
	while (hc_reader_next(r, &rec) == 1)
		if (!strcmp(rec.type, "recovery") &&
		    json_integer_value(json_object_get(
			    json_object_get(rec.json, "torn"), "length")) ==
			    (json_int_t)strlen(torn))
			found = 1;
	ok(found, "torn: a recovery record names the torn bytes");
	hc_record_release(&rec);
	hc_reader_free(r);
	hc_key_free(key);
	hc_store_free(s);
}

/* The name of the store's last segment (in chain/) into seg. */
static void last_segment_name(hc_store *s, char seg[64])
{
	DIR *d = fdopendir(openat(hc_store_fd(s), "chain", O_RDONLY));
	struct dirent *de;

	seg[0] = '\0';
	while (d && (de = readdir(d)))
		if (strstr(de->d_name, ".log") && strcmp(de->d_name, seg) > 0)
			snprintf(seg, 64, "%.40s", de->d_name);
	if (d)
		closedir(d);
}

/*
 * A crash inside recovery, after the torn bytes were saved and cut but
 * before their recovery record: when that record's append began a new
 * segment (the old one was full), the copy belongs to the segment before
 * the last.  It must still be found and recorded by the next recovery
 * (test_crash found it: a copy no record named, for ever after).
 */
static void test_torn_rollover(void)
{
	static const char torn[] = "{\"v\":1,\"seq\":9,\"pr";
	struct hc_log_options opts = {.segment_bytes = 4096, .recover = 1};
	struct hc_log_open_report orep;
	struct hc_verify_report rep;
	struct worker w = {0};
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_reader *r = NULL;
	hc_record rec;
	char seg[64], next[32], copy[128];
	struct stat st;
	uint64_t size;
	int fd, rc, chain, found = 0;

	memset(&rec, 0, sizeof(rec));
	ok(open_store("tornroll", &s) == 0, "torn rollover: store");
	ok(hc_log_open(&log, hc_store_fd(s), &opts, NULL) == 0,
	   "torn rollover: open with 4 KiB segments");
	w.log = log;
	w.n = 40;
	work(&w);
	size = hc_log_size(log);
	ok(w.failed == 0 && hc_log_close(log) == 0, "torn rollover: appends");
	/* The state the crash left: the copy, the cut, a new empty segment. */
	fd = last_segment_fd(s);
	ok(fd >= 0 && fstat(fd, &st) == 0, "torn rollover: last segment");
	close(fd);
	chain = openat(hc_store_fd(s), "chain", O_RDONLY | O_DIRECTORY);
	last_segment_name(s, seg);
	snprintf(copy, sizeof(copy), "torn/%.20s-%020" PRIu64 ".torn", seg,
		 (uint64_t)st.st_size);
	snprintf(next, sizeof(next), "%020" PRIu64 ".log", size);
	ok(mkdirat(chain, "torn", 0700) == 0 &&
		   (fd = openat(chain, copy, O_WRONLY | O_CREAT | O_EXCL,
				0400)) >= 0 &&
		   write(fd, torn, strlen(torn)) == (ssize_t)strlen(torn) &&
		   close(fd) == 0 &&
		   (fd = openat(chain, next, O_WRONLY | O_CREAT | O_EXCL,
				0600)) >= 0 &&
		   close(fd) == 0,
	   "torn rollover: chain/%s saved, chain/%s begun", copy, next);
	close(chain);
	memset(&rep, 0, sizeof(rep));
	{
		struct hc_verify_options vo = {.allow_unsealed = 1};

		rc = hc_verify_store(s, &vo, &rep);
	}
	ok(rc == 0 && rep.torn && strstr(rep.reason, "interrupted"),
	   "torn rollover: verify names an interrupted recovery: %s",
	   rep.reason);
	rc = hc_log_open(&log, hc_store_fd(s), &opts, &orep);
	ok(rc == 0 && orep.torn && hc_log_close(log) == 0,
	   "torn rollover: recovery records the copy: %s",
	   rc ? hc_error_message() : orep.torn_saved);
	hc_reader_open(&r, hc_store_fd(s));
	while (hc_reader_next(r, &rec) == 1)
		if (!strcmp(rec.type, "recovery") &&
		    strstr(json_string_value(json_object_get(
				   json_object_get(rec.json, "torn"), "saved")),
			   copy))
			found++;
	hc_record_release(&rec);
	hc_reader_free(r);
	ok(found == 1, "torn rollover: one recovery record names it (%d)",
	   found);
	memset(&rep, 0, sizeof(rep));
	rc = seal_and_verify(s, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID,
	   "torn rollover: the store verifies: %s",
	   rc ? hc_error_message() : rep.reason);
	/* Records other than recovery after it: a planted file, no more. */
	rc = hc_log_open(&log, hc_store_fd(s), &opts, &orep);
	ok(rc == 0 && !orep.torn && hc_log_close(log) == 0,
	   "torn rollover: nothing more to recover");
	hc_store_free(s);
}

/*
 * A file planted in chain/torn/ under path (made by the caller: a file,
 * or a directory when dir): verify reports it as a finding, not as a
 * crash's leftover, and recovery does not adopt it.  Removed after.
 */
static void planted_is_finding(hc_store *s, const char *path, int dir,
			       const char *what)
{
	struct hc_log_options opts = {.recover = 1};
	struct hc_verify_options vo = {.allow_unsealed = 1};
	struct hc_log_open_report orep;
	struct hc_verify_report rep;
	hc_log *log = NULL;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = hc_verify_store(s, &vo, &rep);
	ok(rc == 0 && rep.verdict == HC_INVALID && !rep.torn &&
		   strstr(rep.reason, "no recovery record names"),
	   "%s: verify: %s", what, rep.reason);
	rc = hc_log_open(&log, hc_store_fd(s), &opts, &orep);
	ok(rc == 0 && !orep.torn && hc_log_close(log) == 0,
	   "%s: recovery does not adopt it", what);
	ok(unlinkat(hc_store_fd(s), path, dir ? AT_REMOVEDIR : 0) == 0,
	   "%s: removed", what);
}

/*
 * A recovery at the end of a segment holding T2 at the offset where the
 * copy copy (T1) was made: T1's copy must be kept as it is, and T2 saved
 * beside it as copy1.
 */
static void recover_beside(hc_store *s, const char *what, const char *copy,
			   const char *t1, const char *copy1, const char *t2)
{
	struct hc_log_options opts = {.recover = 1};
	hc_log *log = NULL;
	char *got = NULL;
	size_t len = 0;
	int rc;

	rc = hc_log_open(&log, hc_store_fd(s), &opts, NULL);
	ok(rc == 0 && hc_log_close(log) == 0, "%s: recovery: %s", what,
	   rc ? hc_error_message() : "");
	ok(hc_read_file(hc_store_fd(s), copy, 4096, &got, &len) == 0 &&
		   len == strlen(t1) && !memcmp(got, t1, len),
	   "%s: T1's copy is kept byte for byte", what);
	free(got);
	got = NULL;
	ok(hc_read_file(hc_store_fd(s), copy1, 4096, &got, &len) == 0 &&
		   len == strlen(t2) && !memcmp(got, t2, len),
	   "%s: T2 is saved beside it as %s", what, copy1);
	free(got);
}

/*
 * A second crash at the same offset: recovery saved the torn bytes T1 and
 * cut them, then its own record's append was torn there (T2).  T1's copy
 * must stay as it is, T2 goes beside it, and both are recorded.  And a
 * file no crash could leave (past the segment's end, a directory) is
 * never adopted as a recovery.
 */
static void test_torn_twice(void)
{
	static const char t1[] = "{\"v\":1,\"seq\":9,\"prev\":\"GENUINE-T1";
	static const char t2[] = "{\"v\":1,\"seq\":9,\"prev\":\"ab";
	struct hc_verify_report rep;
	hc_store *s = NULL;
	char seg[64], copy[160], copy1[160], far[160];
	struct stat st;
	int fd, chain, rc;

	ok(open_store("torntwice", &s) == 0, "torn twice: store");
	last_segment_name(s, seg);
	fd = last_segment_fd(s);
	ok(fd >= 0 && fstat(fd, &st) == 0, "torn twice: segment %s", seg);
	snprintf(copy, sizeof(copy), "chain/torn/%.20s-%020" PRIu64 ".torn",
		 seg, (uint64_t)st.st_size);
	snprintf(copy1, sizeof(copy1), "chain/torn/%.20s-%020" PRIu64 "-1.torn",
		 seg, (uint64_t)st.st_size);
	chain = hc_store_fd(s);
	/* T1 saved and cut, then T2 torn at the same offset. */
	ok(mkdirat(chain, "chain/torn", 0700) == 0 &&
		   hc_create_file(chain, copy, t1, strlen(t1), 0400) == 0 &&
		   write(fd, t2, strlen(t2)) == (ssize_t)strlen(t2),
	   "torn twice: %s holds T1, the segment ends in T2", copy);
	close(fd);
	recover_beside(s, "torn twice", copy, t1, copy1, t2);
	memset(&rep, 0, sizeof(rep));
	rc = seal_and_verify(s, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID,
	   "torn twice: both are recorded, the store verifies: %s",
	   rc ? hc_error_message() : rep.reason);

	/* A copy past the segment's end: no cut left it; a finding. */
	fd = last_segment_fd(s);
	ok(fd >= 0 && fstat(fd, &st) == 0, "planted: segment");
	close(fd);
	last_segment_name(s, seg);
	snprintf(far, sizeof(far), "chain/torn/%.20s-%020" PRIu64 ".torn", seg,
		 (uint64_t)st.st_size + 5);
	ok(hc_create_file(chain, far, "forged", 6, 0400) == 0, "planted: %s",
	   far);
	planted_is_finding(s, far, 0, "planted past the end");
	/* A directory under the name a crash would leave. */
	snprintf(far, sizeof(far), "chain/torn/%.20s-%020" PRIu64 ".torn", seg,
		 (uint64_t)st.st_size);
	ok(mkdirat(chain, far, 0700) == 0, "planted: a directory %s", far);
	planted_is_finding(s, far, 1, "planted directory");
	hc_store_free(s);
}

/*
 * Recovery records its copies one record each: a crash after the first
 * record of two leaves the second copy unnamed, its segment no longer
 * ending at its offset.  The next recovery must still record it (the
 * crash test found a copy no record named, for ever after); a copy no
 * crash could leave -- before the last record of another type, or not at
 * a line's start -- is never adopted.
 */
static void test_torn_batch(void)
{
	static const char t1[] = "{\"v\":1,\"seq\":9,\"prev\":\"T1";
	static const char t2[] = "{\"v\":1,\"seq\":9,\"prev\":\"T2-longer";
	struct hc_log_options opts = {.recover = 1};
	struct hc_verify_options vo = {.allow_unsealed = 1};
	struct hc_log_open_report orep;
	struct hc_verify_report rep;
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_actor self;
	json_t *f;
	char seg[64], copy[160], copy1[160], odd[160], late[160];
	struct stat st;
	uint64_t off;
	int fd, sfd, rc;

	hc_actor_self(&self);
	ok(open_store("tornbatch", &s) == 0, "torn batch: store");
	sfd = hc_store_fd(s);
	last_segment_name(s, seg);
	fd = last_segment_fd(s);
	ok(fd >= 0 && fstat(fd, &st) == 0, "torn batch: segment %s", seg);
	close(fd);
	off = (uint64_t)st.st_size;
	snprintf(copy, sizeof(copy), "chain/torn/%.20s-%020" PRIu64 ".torn",
		 seg, off);
	snprintf(copy1, sizeof(copy1), "chain/torn/%.20s-%020" PRIu64 "-1.torn",
		 seg, off);
	/* T1 saved and cut; its record is the first of the batch. */
	ok(mkdirat(sfd, "chain/torn", 0700) == 0 &&
		   hc_create_file(sfd, copy, t1, strlen(t1), 0400) == 0,
	   "torn batch: %s saved at the segment's end", copy);
	rc = hc_log_open(&log, sfd, &opts, &orep);
	ok(rc == 0 && orep.torn && hc_log_close(log) == 0,
	   "torn batch: the first copy is recorded: %s",
	   rc ? hc_error_message() : orep.torn_saved);
	/* The crash came before T2's record: T2's copy, unnamed. */
	ok(hc_create_file(sfd, copy1, t2, strlen(t2), 0400) == 0,
	   "torn batch: %s left unnamed after the first record", copy1);
	memset(&rep, 0, sizeof(rep));
	rc = hc_verify_store(s, &vo, &rep);
	ok(rc == 0 && rep.torn && strstr(rep.reason, "interrupted"),
	   "torn batch: verify names an interrupted recovery: %s", rep.reason);
	rc = hc_log_open(&log, sfd, NULL, NULL);
	ok(rc == HC_ETORN, "torn batch: a writer without recovery refuses: %s",
	   rc ? hc_error_message() : "it opened");
	if (rc == 0)
		hc_log_close(log);
	rc = hc_log_open(&log, sfd, &opts, &orep);
	ok(rc == 0 && orep.torn && !strcmp(orep.torn_saved, copy1) &&
		   hc_log_close(log) == 0,
	   "torn batch: recovery records the second: %s",
	   rc ? hc_error_message() : orep.torn_saved);
	/* A planted copy inside the recovery records, not at a line start. */
	snprintf(odd, sizeof(odd), "chain/torn/%.20s-%020" PRIu64 ".torn", seg,
		 off + 3);
	ok(hc_create_file(sfd, odd, "forged", 6, 0400) == 0,
	   "torn batch: planted %s", odd);
	planted_is_finding(s, odd, 0, "torn batch: off a line's start");
	/* After a record of another type, the same name is no crash's. */
	f = json_pack("{s:i}", "n", 1);
	rc = hc_log_open(&log, sfd, &opts, NULL);
	if (rc == 0)
		rc = hc_log_append(log, "note", &self, f, NULL);
	json_decref(f);
	ok(rc == 0 && hc_log_close(log) == 0, "torn batch: a record after it");
	snprintf(late, sizeof(late), "chain/torn/%.20s-%020" PRIu64 "-2.torn",
		 seg, off);
	ok(hc_create_file(sfd, late, "forged", 6, 0400) == 0,
	   "torn batch: planted %s", late);
	planted_is_finding(s, late, 0, "torn batch: after another record");
	memset(&rep, 0, sizeof(rep));
	rc = seal_and_verify(s, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID,
	   "torn batch: both copies recorded, the store verifies: %s",
	   rc ? hc_error_message() : rep.reason);
	hc_store_free(s);
}

/*
 * Copies a crash leaves inside save_torn, and look-alikes it cannot
 * leave.  A copy still of mode HC_TORN_PARTIAL while the segment still
 * ends in its torn bytes: replaced by a whole copy and recorded.  A
 * whole copy that is a prefix of the next torn bytes at its offset (a
 * recovery record torn after the bytes it replaced began the same way):
 * kept, the new bytes beside it.  A file of another mode or with two
 * links where a crash's copy would be: a finding, never adopted.
 */
static void test_torn_partial(void)
{
	static const char t1[] = "{\"v\":1,\"seq\":9,\"prev\":\"ab";
	static const char t2[] = "{\"v\":1,\"seq\":9,\"prev\":\"abcdef";
	struct hc_log_options opts = {.recover = 1};
	struct hc_verify_options vo = {.allow_unsealed = 1};
	struct hc_log_open_report orep;
	struct hc_verify_report rep;
	hc_store *s = NULL;
	hc_log *log = NULL;
	char seg[64], copy[160], copy1[160], *got = NULL;
	struct stat st;
	size_t len = 0;
	uint64_t off;
	int fd, sfd, rc;

	ok(open_store("tornpartial", &s) == 0, "torn partial: store");
	sfd = hc_store_fd(s);
	last_segment_name(s, seg);
	fd = last_segment_fd(s);
	ok(fd >= 0 && fstat(fd, &st) == 0, "torn partial: segment");
	off = (uint64_t)st.st_size;
	snprintf(copy, sizeof(copy), "chain/torn/%.20s-%020" PRIu64 ".torn",
		 seg, off);
	snprintf(copy1, sizeof(copy1), "chain/torn/%.20s-%020" PRIu64 "-1.torn",
		 seg, off);
	/* A crash while saving T1: its copy half written, still 0200. */
	ok(write(fd, t1, strlen(t1)) == (ssize_t)strlen(t1) &&
		   mkdirat(sfd, "chain/torn", 0700) == 0 &&
		   hc_create_file(sfd, copy, t1, 5, 0200) == 0,
	   "torn partial: the segment ends in T1, %s holds 5 bytes, 0200",
	   copy);
	close(fd);
	memset(&rep, 0, sizeof(rep));
	rc = hc_verify_store(s, &vo, &rep);
	ok(rc == 0 && rep.torn,
	   "torn partial: verify reports the torn tail: %s", rep.reason);
	rc = hc_log_open(&log, sfd, &opts, &orep);
	ok(rc == 0 && orep.torn && !strcmp(orep.torn_saved, copy) &&
		   hc_log_close(log) == 0,
	   "torn partial: recovery saves T1 whole under its name: %s",
	   rc ? hc_error_message() : orep.torn_saved);
	ok(hc_read_file(sfd, copy, 4096, &got, &len) == 0 &&
		   len == strlen(t1) && !memcmp(got, t1, len) &&
		   fstatat(sfd, copy, &st, 0) == 0 &&
		   (st.st_mode & 07777) == 0400,
	   "torn partial: %s is T1, 0400", copy);
	free(got);
	got = NULL;
	/*
	 * T1 saved and cut; the recovery record's append, at the same
	 * offset, torn as T2, which begins with T1.
	 */
	fd = last_segment_fd(s);
	ok(fd >= 0 && ftruncate(fd, (off_t)off) == 0 &&
		   pwrite(fd, t2, strlen(t2), (off_t)off) ==
			   (ssize_t)strlen(t2),
	   "torn partial: the segment ends in T2 at T1's offset, T1 a "
	   "prefix of it");
	close(fd);
	recover_beside(s, "torn partial", copy, t1, copy1, t2);
	/* Look-alikes where a crash's copy would be. */
	fd = last_segment_fd(s);
	ok(fd >= 0 && fstat(fd, &st) == 0, "torn partial: segment again");
	close(fd);
	snprintf(copy, sizeof(copy), "chain/torn/%.20s-%020" PRIu64 ".torn",
		 seg, (uint64_t)st.st_size);
	ok(hc_create_file(sfd, copy, "junk", 4, 0644) == 0, "planted 0644: %s",
	   copy);
	planted_is_finding(s, copy, 0, "planted 0644");
	ok(hc_create_file(sfd, "x", "junk", 4, 0400) == 0 &&
		   linkat(sfd, "x", sfd, copy, 0) == 0 &&
		   unlinkat(sfd, "x", 0) == 0 &&
		   linkat(sfd, copy, sfd, "chain/torn/x", 0) == 0,
	   "planted with two links: %s", copy);
	rc = hc_log_open(&log, sfd, &opts, &orep);
	ok(rc == 0 && !orep.torn && hc_log_close(log) == 0,
	   "planted with two links: recovery does not adopt it");
	ok(unlinkat(sfd, copy, 0) == 0 && unlinkat(sfd, "chain/torn/x", 0) == 0,
	   "planted with two links: removed");
	memset(&rep, 0, sizeof(rep));
	rc = seal_and_verify(s, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID,
	   "torn partial: every copy recorded, the store verifies: %s",
	   rc ? hc_error_message() : rep.reason);
	hc_store_free(s);
}

/*
 * A crash inside an atomic write (a checkpoint, case.json.new, the seal)
 * leaves NAME.tmp.PID: verify says so, and the next writer that recovers
 * removes it; a name that only looks like one stays a finding.
 */
static void test_tmp_leftovers(void)
{
	static const char *const left[] = {
		"checkpoints/00000000000000000004.ckpt.tmp.123",
		"case.json.new.tmp.77", "seal.tmp.9"};
	struct hc_log_options opts = {.recover = 1};
	struct hc_verify_options vo = {.allow_unsealed = 1};
	struct hc_verify_report rep;
	hc_store *s = NULL;
	hc_log *log = NULL;
	struct stat st;
	size_t i;
	int sfd, rc, made = 1, gone = 1;

	ok(open_store("tmpleft", &s) == 0, "tmp leftovers: store");
	sfd = hc_store_fd(s);
	for (i = 0; i < 3; i++)
		made &= hc_create_file(sfd, left[i], "x", 1, 0600) == 0;
	made &= hc_create_file(sfd, "checkpoints/x.ckpt.tmp.1", "x", 1, 0600) ==
		0;
	ok(made, "tmp leftovers: three left by crashes, one look-alike");
	memset(&rep, 0, sizeof(rep));
	rc = hc_verify_store(s, &vo, &rep);
	ok(rc == 0 && rep.verdict == HC_INVALID &&
		   strstr(rep.reason, "a crash interrupted"),
	   "tmp leftovers: verify names them: %s", rep.reason);
	rc = hc_log_open(&log, sfd, &opts, NULL);
	ok(rc == 0 && hc_log_close(log) == 0, "tmp leftovers: recovery: %s",
	   rc ? hc_error_message() : "");
	for (i = 0; i < 3; i++)
		gone &= fstatat(sfd, left[i], &st, 0) < 0 && errno == ENOENT;
	ok(gone, "tmp leftovers: recovery removed them");
	memset(&rep, 0, sizeof(rep));
	rc = hc_verify_store(s, &vo, &rep);
	ok(rc == 0 && rep.verdict == HC_INVALID &&
		   strstr(rep.reason, "no file of a store has this name"),
	   "tmp leftovers: the look-alike stays a finding: %s", rep.reason);
	ok(unlinkat(sfd, "checkpoints/x.ckpt.tmp.1", 0) == 0,
	   "tmp leftovers: look-alike removed");
	memset(&rep, 0, sizeof(rep));
	rc = seal_and_verify(s, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID,
	   "tmp leftovers: the store verifies: %s",
	   rc ? hc_error_message() : rep.reason);
	hc_store_free(s);
}

static void test_lock_and_fields(void)
{
	hc_store *s = NULL;
	hc_log *log = NULL, *log2 = NULL;
	hc_actor self;
	json_t *f;
	struct stat before, after;
	int fd;

	hc_actor_self(&self);
	ok(open_store("lock", &s) == 0, "lock: store");
	ok(hc_log_open(&log, hc_store_fd(s), NULL, NULL) == 0, "lock: open");
	ok(hc_log_open(&log2, hc_store_fd(s), NULL, NULL) == HC_EBUSY,
	   "lock: a second writer is refused: %s", hc_error_message());
	fd = last_segment_fd(s);
	fstat(fd, &before);
	f = json_pack("{s:i}", "seq", 5);
	ok(hc_log_append(log, "x", &self, f, NULL) == HC_EINVAL,
	   "fields: reserved name refused");
	json_decref(f);
	f = json_pack("{s:s}", "text", "ok");
	ok(hc_log_append(log, "", &self, f, NULL) == HC_EINVAL,
	   "fields: empty type refused");
	json_decref(f);
	f = json_object();
	json_object_set_new(f, "bad", json_stringn_nocheck("\xff\xfe", 2));
	ok(hc_log_append(log, "x", &self, f, NULL) == HC_EINVAL,
	   "fields: invalid UTF-8 refused: %s", hc_error_message());
	json_decref(f);
	/* jansson would write such a name as "": the record would lie. */
	f = json_object();
	json_object_set_new_nocheck(f, "\xff\xfe", json_string("x"));
	ok(hc_log_append(log, "x", &self, f, NULL) == HC_EINVAL,
	   "fields: a name that is not UTF-8 refused: %s", hc_error_message());
	json_decref(f);
	f = json_pack("{s:[{s:i}]}", "list", "ok", 1);
	json_object_set_new_nocheck(
		json_array_get(json_object_get(f, "list"), 0), "\xc0\xaf",
		json_true());
	ok(hc_log_append(log, "x", &self, f, NULL) == HC_EINVAL,
	   "fields: such a name deeper down refused: %s", hc_error_message());
	json_decref(f);
	fstat(fd, &after);
	ok(before.st_size == after.st_size && hc_log_size(log) == 2,
	   "fields: nothing written for refused records");
	close(fd);
	ok(hc_log_close(log) == 0, "lock: close releases");
	ok(hc_log_open(&log2, hc_store_fd(s), NULL, NULL) == 0,
	   "lock: reopen after close");
	hc_log_close(log2);
	hc_log_close(NULL);
	hc_store_free(s);
}

/* What an append returns is what the record says. */
static void test_appended(void)
{
	struct hc_appended app;
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_reader *r = NULL;
	hc_record rec;
	hc_actor self;
	json_t *f;
	int found = 0;

	memset(&rec, 0, sizeof(rec));
	memset(&app, 0, sizeof(app));
	hc_actor_self(&self);
	ok(open_store("appended", &s) == 0 &&
		   hc_log_open(&log, hc_store_fd(s), NULL, NULL) == 0,
	   "appended: store");
	f = json_pack("{s:s}", "text", "when");
	ok(hc_log_append(log, "note", &self, f, &app) == 0, "appended: append");
	json_decref(f);
	hc_log_close(log);
	hc_reader_open(&r, hc_store_fd(s));
	while (hc_reader_next(r, &rec) == 1)
		if (rec.seq == app.seq)
			found = !memcmp(rec.hash, app.hash, HC_HASH_LEN) &&
				!strcmp(json_string_value(json_object_get(
						rec.json, "time")),
					app.time);
	ok(found && strlen(app.time) == 30,
	   "appended: seq, hash and time (%s) are the record's", app.time);
	hc_record_release(&rec);
	hc_reader_free(r);
	hc_store_free(s);
}

/* Decimal digits of n. */
static int ndigits(uint64_t n)
{
	int d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/* Size of the (only) segment of store s. */
static off_t segment_size(hc_store *s)
{
	struct stat st;

	if (fstatat(hc_store_fd(s), "chain/00000000000000000000.log", &st, 0) <
	    0)
		return -1;
	return st.st_size;
}

/*
 * Append a note whose line is exactly len bytes (without its newline),
 * knowing that a note with an empty text at seq s is c + digits(s) bytes.
 * Returns the append's code; *grew gets what the segment grew by.
 */
static int append_len(hc_store *s, hc_log *log, size_t c, size_t len, char *pad,
		      off_t *grew, struct hc_appended *app)
{
	uint64_t seq = hc_log_size(log);
	size_t fixed = c + (size_t)ndigits(seq), t;
	off_t before = segment_size(s);
	static hc_actor self;
	json_t *f;
	int rc;

	if (len < fixed)
		return HC_EINVAL;
	t = len - fixed;
	memset(pad, 'a', t);
	pad[t] = '\0';
	if (!self.pid)
		hc_actor_self(&self);
	f = json_pack("{s:s}", "text", pad);
	rc = f ? hc_log_append(log, "note", &self, f, app) : HC_ENOMEM;
	json_decref(f);
	*grew = segment_size(s) - before;
	return rc;
}

/* Every record of s reads back in order, each linked to the one before. */
static int chain_reads_back(hc_store *s, uint64_t n)
{
	uint8_t last[HC_HASH_LEN];
	hc_reader *r = NULL;
	hc_record rec;
	uint64_t i = 0;
	int rc, good = 1;

	memset(&rec, 0, sizeof(rec));
	if (hc_reader_open(&r, hc_store_fd(s)) < 0)
		return 0;
	while ((rc = hc_reader_next(r, &rec)) == 1) {
		if (rec.seq != i ||
		    (i > 0 && memcmp(rec.prev, last, HC_HASH_LEN)))
			good = 0;
		memcpy(last, rec.hash, HC_HASH_LEN);
		i++;
	}
	if (rc < 0)
		diag("%s", hc_error_message());
	hc_record_release(&rec);
	hc_reader_free(r);
	return good && rc == 0 && i == n;
}

/*
 * The record builder at every length around its thresholds: the buffer
 * of the line grows at powers of two from 4 KiB (a line and its newline
 * exactly filling it is the edge), and a line is at most HC_RECORD_MAX
 * bytes without its newline.  First every length from the shortest note
 * to 1536 bytes: more than the old builder's 1 KiB of slack, so its
 * guess of the header's size met every offset in its buffer (and failed
 * there); then, for each growth point up to the limit, the buffer grown
 * to just below it, every length in a window around it (narrower for the
 * large ones: the unit tests also run under valgrind).  Each line must take
 * exactly its length and a newline and read back with its seq and prev; a line
 * over the limit is refused with nothing written.
 */
static void test_builder_lengths(void)
{
	enum { DENSE = 1536, WINDOW = 40, NARROW = 4 };
	char *pad = malloc(HC_RECORD_MAX + 64);
	struct hc_appended app;
	hc_store *s = NULL;
	hc_log *log = NULL;
	size_t c, len, edge, w, bad = 0, refused = 0, n;
	off_t grew;
	uint64_t probe;
	int k, rc;

	if (!pad || open_store("builder", &s) < 0 ||
	    hc_log_open(&log, hc_store_fd(s), NULL, NULL) < 0) {
		ok(0, "builder: store: %s", hc_error_message());
		goto out;
	}
	/* Asking for a length of digits(seq): an empty text tells c. */
	probe = hc_log_size(log);
	rc = append_len(s, log, 0, (size_t)ndigits(probe), pad, &grew, &app);
	c = (size_t)grew - 1 - (size_t)ndigits(probe);
	ok(rc == 0 && c > 150,
	   "builder: a note is %zu bytes and its seq's "
	   "digits",
	   c);
	for (len = c + 4; rc == 0 && len <= DENSE; len++) {
		rc = append_len(s, log, c, len, pad, &grew, &app);
		if (rc == 0 && (size_t)grew != len + 1)
			bad++;
	}
	ok(rc == 0 && bad == 0,
	   "builder: every line of %zu..%d bytes is written whole (%zu "
	   "wrong)%s%s",
	   c + 4, DENSE, bad, rc ? ": " : "", rc ? hc_error_message() : "");
	/* The buffer only grows: each window is met in turn in one log. */
	for (k = 12; rc == 0 && k <= 20; k++) {
		/* At 2^20 the buffer's edge is the limit's. */
		edge = (size_t)1 << k;
		w = k <= 13 ? WINDOW : NARROW;
		/* The buffer grown to just below the window. */
		rc = append_len(s, log, c, edge - 2 * w, pad, &grew, &app);
		for (len = edge - 1 - w; rc == 0 && len <= edge + w; len++) {
			n = hc_log_size(log);
			rc = append_len(s, log, c, len, pad, &grew, &app);
			if (len > HC_RECORD_MAX) {
				if (rc != HC_EINVAL || grew != 0 ||
				    hc_log_size(log) != n)
					refused++;
				rc = 0;
			} else if (rc == 0 && (size_t)grew != len + 1) {
				bad++;
			}
		}
		ok(rc == 0 && bad == 0,
		   "builder: every line of %zu..%zu bytes is written whole "
		   "(%zu wrong)%s%s",
		   edge - 1 - w, edge + w, bad, rc ? ": " : "",
		   rc ? hc_error_message() : "");
	}
	ok(refused == 0,
	   "builder: lines over %u bytes are refused, nothing written",
	   HC_RECORD_MAX);
	n = hc_log_size(log);
	ok(hc_log_close(log) == 0 && chain_reads_back(s, n),
	   "builder: the %zu records read back, linked in order", n);
	log = NULL;
out:
	hc_log_close(log);
	hc_store_free(s);
	free(pad);
}

static void test_full_disk(void)
{
	char mnt[300], store[320];
	struct hc_verify_options vo = {.allow_unsealed = 1};
	struct hc_verify_report rep;
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_actor self;
	json_t *f;
	int rc = 0, i, n = 0;

	snprintf(mnt, sizeof(mnt), "%s/small", base);
	mkdir(mnt, 0755);
	if (getuid() != 0 ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=96k,nr_inodes=64") < 0) {
		printf("ok %d # SKIP full disk: cannot mount tmpfs\n", ++tap_n);
		return;
	}
	snprintf(store, sizeof(store), "%s/s", mnt);
	hc_actor_self(&self);
	ok(hc_store_init(store, NULL) == 0 && hc_store_open(&s, store) == 0,
	   "full disk: store on a 96 KiB tmpfs");
	ok(hc_log_open(&log, hc_store_fd(s), NULL, NULL) == 0,
	   "full disk: open");
	f = json_pack("{s:s}", "pad",
		      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	for (i = 0; i < 100000; i++) {
		rc = hc_log_append(log, "fill", &self, f, NULL);
		if (rc < 0)
			break;
		n++;
	}
	json_decref(f);
	ok(rc == HC_ESYS && hc_error_errno() == ENOSPC,
	   "full disk: append fails with ENOSPC after %d records: %s", n,
	   hc_error_message());
	hc_log_close(log);
	log = NULL;
	rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
	ok(rc == 0, "full disk: reopen finds no torn line");
	hc_log_close(log);
	rc = hc_verify_store(s, &vo, &rep);
	ok(rc == 0 && rep.verdict == HC_VALID && rep.records == (uint64_t)n + 2,
	   "full disk: every acknowledged record verifies (%" PRIu64 ")",
	   rep.records);
	hc_store_free(s);
	umount2(mnt, MNT_DETACH);
}

int main(void)
{
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	test_concurrent(0, 0);
	test_concurrent(1, 0);
	test_concurrent(1, 2);
	test_segments();
	test_torn();
	test_torn_rollover();
	test_torn_twice();
	test_torn_batch();
	test_torn_partial();
	test_tmp_leftovers();
	test_lock_and_fields();
	test_appended();
	test_builder_lengths();
	test_full_disk();
	tap_rmrf(base);
	return tap_done();
}
