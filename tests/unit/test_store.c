/*
 * test_store.c - the store's own files: modes (check and repair), the
 * marker, a verification that reports every problem, and a trusted
 * checkpoint kept outside the store.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashchain.h"
#include "tap.h"

static char base[] = "/tmp/hozen-store-XXXXXX";

static void path_in(char *out, size_t n, const char *store, const char *rel)
{
	snprintf(out, n, "%s/%s/%s", base, store, rel);
}

static int make_store(const char *name, hc_store **s)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	if (hc_store_init(path, NULL) < 0)
		return -1;
	return hc_store_open(s, path);
}

static mode_t mode_of(const char *store, const char *rel)
{
	char p[512];
	struct stat st;

	path_in(p, sizeof(p), store, rel);
	if (lstat(p, &st) < 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static int set_mode(const char *store, const char *rel, mode_t m)
{
	char p[512];

	path_in(p, sizeof(p), store, rel);
	return chmod(p, m);
}

/* 1 if a finding names where. */
static int names(hc_findings *f, const char *where)
{
	size_t i;

	for (i = 0; i < hc_findings_kept(f); i++)
		if (!strcmp(hc_findings_get(f, i)->where, where))
			return 1;
	return 0;
}

/* The reason of the first finding that names where, or "". */
static const char *reason_of(hc_findings *f, const char *where)
{
	size_t i;

	for (i = 0; i < hc_findings_kept(f); i++)
		if (!strcmp(hc_findings_get(f, i)->where, where))
			return hc_findings_get(f, i)->reason;
	return "";
}

/* 1 if the repaired list has path with old and new. */
static int repaired_has(json_t *a, const char *path, int old, int new_mode)
{
	json_t *e;
	size_t i;

	json_array_foreach(a, i, e)
	{
		if (!strcmp(json_string_value(json_object_get(e, "path")) ?: "",
			    path))
			return json_integer_value(json_object_get(e, "old")) ==
				       old &&
			       json_integer_value(json_object_get(e, "new")) ==
				       new_mode;
	}
	return 0;
}

static void test_fresh_modes(void)
{
	static const char *const want[][2] = {
		{".", "0700"},
		{"HOZEN", "0400"},
		{"keys", "0700"},
		{"keys/signing.key", "0400"},
		{"keys/signing.pub", "0400"},
		{"keys/signing.vkey", "0400"},
		{"chain", "0700"},
		{"chain/00000000000000000000.log", "0600"},
		{"checkpoints", "0700"},
		{"checkpoints/00000000000000000002.ckpt", "0400"},
		{"git", "0700"},
		{"tree", "0755"},
	};
	hc_findings *f = NULL;
	hc_store *s = NULL;
	size_t i;

	ok(make_store("fresh", &s) == 0, "fresh: store");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ok(mode_of("fresh", want[i][0]) ==
			   (mode_t)strtol(want[i][1], NULL, 8),
		   "fresh: %s is %s (%04o)", want[i][0], want[i][1],
		   (unsigned)mode_of("fresh", want[i][0]));
	ok(hc_findings_new(&f) == 0 && hc_store_check_modes(s, f) == 0 &&
		   hc_findings_count(f) == 0,
	   "fresh: no finding about modes");
	hc_findings_free(f);
	hc_store_free(s);

	/* An existing empty directory given to init becomes private. */
	{
		char p[300];

		snprintf(p, sizeof(p), "%s/given", base);
		ok(mkdir(p, 0777) == 0 && chmod(p, 0777) == 0 &&
			   hc_store_init(p, NULL) == 0 &&
			   mode_of("given", ".") == 0700,
		   "an empty 0777 directory given to init is made 0700");
	}
}

static void test_loose_modes(void)
{
	char p[512], q[512], outside[512];
	hc_findings *f = NULL;
	json_t *rep = NULL;
	hc_store *s = NULL;
	int fd;

	ok(make_store("loose", &s) == 0, "loose: store");
	/* What an old store (umask 0) looks like, and what is exempt. */
	ok(set_mode("loose", ".", 0755) == 0 &&
		   set_mode("loose", "checkpoints/00000000000000000002.ckpt",
			    0666) == 0 &&
		   set_mode("loose", "git", 0777) == 0,
	   "loose: modes loosened");
	{
		static const char *const dirs[] = {"git/lfs", "git/lfs/objects",
						   "git/lfs/objects/ab",
						   "git/lfs/objects/ab/cd"};
		size_t i;
		int good = 1;

		for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			path_in(q, sizeof(q), "loose", dirs[i]);
			good &= mkdir(q, 0700) == 0 && chmod(q, 0777) == 0;
		}
		ok(good, "loose: git/lfs/objects/ab/cd, 0777");
	}
	/* An LFS object that is a live file of tree/ (two links). */
	path_in(q, sizeof(q), "loose", "tree/big.bin");
	fd = open(q, O_WRONLY | O_CREAT, 0666);
	close(fd);
	chmod(q, 0666);
	path_in(p, sizeof(p), "loose", "git/lfs/objects/ab/cd/abcd1");
	ok(link(q, p) == 0, "loose: an LFS object linked to tree/big.bin");
	/* One that is not. */
	path_in(p, sizeof(p), "loose", "git/lfs/objects/ab/cd/abcd2");
	fd = open(p, O_WRONLY | O_CREAT, 0666);
	close(fd);
	chmod(p, 0666);
	/* The live tree keeps its users' modes. */
	path_in(q, sizeof(q), "loose", "tree/shared");
	mkdir(q, 0777);
	chmod(q, 0777);
	set_mode("loose", "tree", 0777);
	/* A symlink is never followed: its target keeps its mode. */
	snprintf(outside, sizeof(outside), "%s/outside", base);
	fd = open(outside, O_WRONLY | O_CREAT, 0666);
	close(fd);
	chmod(outside, 0666);
	path_in(p, sizeof(p), "loose", "git/link");
	ok(symlink(outside, p) == 0, "loose: a symlink out of the store");

	ok(hc_findings_new(&f) == 0 && hc_store_check_modes(s, f) == 0,
	   "loose: check");
	ok(names(f, ".") && names(f, "checkpoints/00000000000000000002.ckpt") &&
		   names(f, "git") && names(f, "git/lfs/objects/ab/cd/abcd2") &&
		   names(f, "git/lfs/objects/ab/cd"),
	   "loose: the store directory and what others may write are named");
	ok(!names(f, "tree") && !names(f, "tree/shared") &&
		   !names(f, "tree/big.bin") &&
		   !names(f, "git/lfs/objects/ab/cd/abcd1") &&
		   !names(f, "git/link") && !names(f, "keys/signing.pub"),
	   "loose: not the tree, a linked LFS object, a symlink, a 0400 key");
	ok(hc_findings_count(f) == 8,
	   "loose: 8 findings (store, checkpoint, git, its 4 lfs directories, "
	   "an object): %zu",
	   hc_findings_count(f));
	hc_findings_free(f);
	f = NULL;

	ok(hc_store_repair_modes(s, &rep) == 0 && json_is_array(rep),
	   "loose: repair: %s", hc_error_message());
	ok(repaired_has(rep, ".", 0755, 0700) &&
		   repaired_has(rep, "checkpoints/00000000000000000002.ckpt",
				0666, 0600) &&
		   repaired_has(rep, "git", 0777, 0700) &&
		   repaired_has(rep, "git/lfs/objects/ab/cd/abcd2", 0666, 0600),
	   "loose: repair lists path, old and new mode");
	ok(mode_of("loose", ".") == 0700 && mode_of("loose", "git") == 0700 &&
		   mode_of("loose", "git/lfs/objects/ab/cd/abcd2") == 0600,
	   "loose: modes repaired");
	ok(mode_of("loose", "tree") == 0777 &&
		   mode_of("loose", "tree/shared") == 0777 &&
		   mode_of("loose", "tree/big.bin") == 0666,
	   "loose: the live tree's modes are untouched");
	{
		struct stat st;

		ok(stat(outside, &st) == 0 && (st.st_mode & 07777) == 0666,
		   "loose: the symlink's target outside is untouched");
	}
	json_decref(rep);
	rep = NULL;
	ok(hc_findings_new(&f) == 0 && hc_store_check_modes(s, f) == 0 &&
		   hc_findings_count(f) == 0,
	   "loose: no finding after the repair");
	ok(hc_store_repair_modes(s, &rep) == 0 && rep == NULL,
	   "loose: a second repair changes nothing (NULL)");
	hc_findings_free(f);
	hc_store_free(s);
}

static void test_marker(void)
{
	struct hc_verify_options vo = {0};
	struct hc_verify_report rep;
	hc_findings *f = NULL;
	hc_store *s = NULL;
	char p[512], dir[300];
	int fd;

	ok(make_store("marker", &s) == 0, "marker: store");
	hc_store_free(s);
	s = NULL;
	snprintf(dir, sizeof(dir), "%s/marker", base);
	path_in(p, sizeof(p), "marker", "HOZEN");
	chmod(p, 0600);
	fd = open(p, O_WRONLY | O_TRUNC);
	ok(fd >= 0 && write(fd, "hozen store\nformat 1\nx", 22) == 22,
	   "marker: changed");
	close(fd);
	ok(hc_store_open(&s, dir) == HC_EVERIFY && !s,
	   "marker: writers' open refuses it (HC_EVERIFY): %s",
	   hc_error_message());
	ok(hc_store_open_verify(&s, dir) == 0 && hc_store_marker_problem(s),
	   "marker: open for verification: %s",
	   s ? hc_store_marker_problem(s) : hc_error_message());
	vo.findings = NULL;
	ok(hc_findings_new(&f) == 0, "marker: findings");
	vo.findings = f;
	ok(s && hc_verify_store(s, &vo, &rep) == 0 &&
		   rep.verdict == HC_INVALID && !strcmp(rep.where, "HOZEN") &&
		   rep.chain_intact && hc_findings_count(f) == 1,
	   "marker: INVALID, HOZEN named, the chain still checked: %s",
	   rep.reason);
	hc_store_free(s);
	s = NULL;
	fd = open(p, O_WRONLY | O_TRUNC);
	ok(fd >= 0 && write(fd, "hozen store\nformat 2\n", 21) == 21,
	   "marker: format 2");
	close(fd);
	ok(hc_store_open_verify(&s, dir) == HC_EFORMAT &&
		   strstr(hc_error_message(), "format 2"),
	   "marker: a later format is not read: %s", hc_error_message());
	unlink(p);
	ok(hc_store_open_verify(&s, dir) == HC_ENOENT &&
		   hc_store_open(&s, dir) == HC_ENOENT,
	   "marker: without it, not a store: %s", hc_error_message());
	ok(mkfifo(p, 0600) == 0 && hc_store_open(&s, dir) == HC_EVERIFY,
	   "marker: a FIFO is refused without blocking: %s",
	   hc_error_message());
	hc_findings_free(f);
}

/* Copy the file rel of a store to a new malloc'd buffer. */
static char *slurp(const char *store, const char *rel, size_t *len)
{
	char p[512], *buf = NULL;

	path_in(p, sizeof(p), store, rel);
	if (hc_read_file(AT_FDCWD, p, 1u << 20, &buf, len) < 0)
		return NULL;
	return buf;
}

static void test_every_problem(void)
{
	struct hc_verify_options vo = {0};
	struct hc_verify_report rep;
	hc_findings *f = NULL;
	hc_store *s = NULL;
	hc_key *key = NULL;
	hc_log *log = NULL;
	hc_actor self;
	const char *origin;
	char p[512], *pin = NULL;
	size_t pin_len = 0;
	int fd;

	hc_actor_self(&self);
	ok(make_store("every", &s) == 0 &&
		   hc_store_private_key(s, NULL, &key) == 0 &&
		   hc_store_origin(s, &origin) == 0 &&
		   hc_log_open(&log, hc_store_fd(s), NULL, NULL) == 0 &&
		   hc_store_checkpoint(log, key, origin, &self, NULL) == 0 &&
		   hc_store_checkpoint(log, key, origin, &self, NULL) == 0 &&
		   hc_log_close(log) == 0,
	   "every: a store with checkpoints 2, 3 and 4");
	pin = slurp("every", "checkpoints/00000000000000000004.ckpt", &pin_len);
	ok(pin != NULL, "every: checkpoint 4 kept outside");
	vo.trusted_checkpoint = pin;
	vo.trusted_checkpoint_len = pin_len;
	ok(hc_verify_store(s, &vo, &rep) == 0 && rep.verdict == HC_VALID,
	   "every: verifies, with checkpoint 4 trusted: %s", rep.reason);

	/* Three independent problems. */
	path_in(p, sizeof(p), "every", "keys/signing.pub");
	unlink(p);
	path_in(p, sizeof(p), "every", "checkpoints/00000000000000000002.ckpt");
	chmod(p, 0600);
	fd = open(p, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, "x", 1) == 1, "every: checkpoint 2 damaged");
	close(fd);
	path_in(p, sizeof(p), "every", "chain/stray");
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	close(fd);
	ok(hc_findings_new(&f) == 0, "every: findings");
	vo.findings = f;
	ok(hc_verify_store(s, &vo, &rep) == 0 && rep.verdict == HC_INVALID &&
		   rep.chain_intact && rep.fail_checkpoint == 2,
	   "every: INVALID, the first problem is checkpoint 2: %s", rep.reason);
	ok(hc_findings_count(f) == 3 &&
		   names(f, "checkpoints/00000000000000000002.ckpt") &&
		   names(f, "keys/signing.pub") && names(f, "chain/stray"),
	   "every: every problem is reported (%zu)", hc_findings_count(f));
	ok(rep.checkpoints == 2 && rep.sealed == 4,
	   "every: the other checkpoints still verify and seal the log");
	hc_findings_free(f);
	f = NULL;
	unlink(p);
	hc_store_free(s);
	s = NULL;

	/* Rolled back: checkpoint 4 and its record removed. */
	path_in(p, sizeof(p), "every", "checkpoints/00000000000000000004.ckpt");
	unlink(p);
	path_in(p, sizeof(p), "every", "chain/00000000000000000000.log");
	{
		char *seg = NULL;
		size_t n = 0, cut;

		seg = slurp("every", "chain/00000000000000000000.log", &n);
		for (cut = n - 1; cut > 0 && seg[cut - 1] != '\n'; cut--)
			;
		ok(seg && truncate(p, (off_t)cut) == 0,
		   "every: the last record removed");
		free(seg);
	}
	snprintf(p, sizeof(p), "%s/every", base);
	ok(hc_findings_new(&f) == 0 && hc_store_open(&s, p) == 0,
	   "every: reopened");
	vo.findings = f;
	vo.trusted_checkpoint = NULL;
	ok(hc_verify_store(s, &vo, &rep) == 0 && rep.records == 3,
	   "every: rolled back to 3 records");
	vo.trusted_checkpoint = pin;
	ok(hc_verify_store(s, &vo, &rep) == 0 && rep.verdict == HC_INVALID &&
		   strstr(reason_of(f, "trusted checkpoint"), "rolled back"),
	   "every: the trusted checkpoint shows the rollback: %s",
	   reason_of(f, "trusted checkpoint"));
	hc_findings_free(f);
	free(pin);
	hc_key_free(key);
	hc_store_free(s);
}

/*
 * A crash between a checkpoint record and its file: recovery signs the
 * missing checkpoints again, from what the log's one reading saw, and
 * adopts only the records after the last checkpoint record.
 */
static void test_recover_missing(void)
{
	struct hc_checkpoint_result ck[2];
	struct hc_recover_report rec;
	struct hc_verify_report rep;
	hc_store *s = NULL;
	hc_key *key = NULL;
	hc_log *log = NULL;
	const char *origin = NULL;
	char path[512];
	hc_actor self;
	int i, rc;

	hc_actor_self(&self);
	rc = make_store("ckmiss", &s);
	if (rc == 0)
		rc = hc_store_private_key(s, NULL, &key);
	if (rc == 0)
		rc = hc_store_origin(s, &origin);
	if (rc == 0)
		rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
	for (i = 0; i < 2 && rc == 0; i++) {
		rc = hc_log_append(log, "note", &self, NULL, NULL);
		if (rc == 0)
			rc = hc_store_checkpoint(log, key, origin, &self,
						 &ck[i]);
	}
	if (rc == 0)
		rc = hc_log_append(log, "note", &self, NULL, NULL);
	hc_log_close(log);
	if (!ok(rc == 0, "a store with two checkpoints and a note after"))
		goto out;
	for (i = 0; i < 2; i++) {
		path_in(path, sizeof(path), "ckmiss", ck[i].path);
		unlink(path);
	}
	memset(&rec, 0, sizeof(rec));
	ok(hc_store_recover(s, key, &self, &rec) == 0, "recover");
	ok(rec.rewritten == 2, "both checkpoints signed again (%zu)",
	   rec.rewritten);
	ok(rec.adopted && rec.adopted_first == ck[1].size &&
		   rec.adopted_last == ck[1].size,
	   "only the note after the last checkpoint record is adopted");
	for (i = 0; i < 2; i++) {
		hc_checkpoint *c = NULL;

		rc = hc_store_read_checkpoint(s, ck[i].size, key, &c);
		ok(rc == 0 && c && c->size == ck[i].size &&
			   !memcmp(c->root, ck[i].root, HC_HASH_LEN) &&
			   (mode_of("ckmiss", ck[i].path) & 0222) == 0,
		   "checkpoint %d: its size and root, read-only", i + 1);
		hc_checkpoint_free(c);
	}
	ok(hc_verify_store(s, NULL, &rep) == 0 && rep.verdict == HC_VALID,
	   "the store verifies");
out:
	hc_key_free(key);
	hc_store_free(s);
}

int main(void)
{
	umask(022);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	test_fresh_modes();
	test_loose_modes();
	test_marker();
	test_every_problem();
	test_recover_missing();
	tap_rmrf(base);
	return tap_done();
}
