/*
 * test_history.c - what /.hozen/ shows of the past (fs/history.c): the
 * first-parent commits of the snapshot ref, their trees with the real
 * size of LFS content, and the index of the chain's versions by path
 * (NAME@N, directories, names that are not UTF-8, records it must skip).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "hashchain.h"
#include "history.h"
#include "tap.h"
#include "versions.h"

#define T1 "2026-11-22T01:53:22.498740444Z"
#define T2 "2026-11-22T01:53:23Z"

static char base[] = "/tmp/hozen-history-XXXXXX";

/* ----------------------------------------------------------- helpers */

struct names {
	char buf[4096];
	size_t n;
};

/* Collect "NAME:KIND " for each entry. */
static int collect(void *ctx, const char *name, int kind)
{
	struct names *s = ctx;
	int k = snprintf(s->buf + s->n, sizeof(s->buf) - s->n, "%s:%d ", name,
			 kind);

	if (k < 0 || (size_t)k >= sizeof(s->buf) - s->n)
		return -1;
	s->n += (size_t)k;
	return 0;
}

static int collect_commit(void *ctx, const char *hex, int64_t time)
{
	struct names *s = ctx;
	int k = snprintf(s->buf + s->n, sizeof(s->buf) - s->n, "%s ", hex);

	(void)time;
	if (k < 0 || (size_t)k >= sizeof(s->buf) - s->n)
		return -1;
	s->n += (size_t)k;
	return 0;
}

static int stop_at_first(void *ctx, const char *hex, int64_t time)
{
	(void)ctx;
	(void)hex;
	(void)time;
	return 7;
}

static void hexof(const uint8_t *oid, char out[41])
{
	hc_hex(oid, HS_OID_LEN, out);
}

/* ------------------------------------------------------------ commits */

static void test_commits(void)
{
	struct vs_options vo = {.lfs_threshold = 64, .fsync = 0};
	char path[300], c1[41], c2[41], c3[41], hex[41], big[200];
	struct vs_version small, run, link, lfs, other;
	struct hs_entry e;
	struct names s;
	uint8_t tree1[HS_OID_LEN], tree2[HS_OID_LEN], sub[HS_OID_LEN];
	hs_history *h = NULL;
	hc_store *st = NULL;
	vs_repo *r = NULL;
	int64_t t;
	int rc;

	snprintf(path, sizeof(path), "%s/commits", base);
	memset(big, 'x', sizeof(big));
	ok(hc_store_init(path, NULL) == 0 && hc_store_open(&st, path) == 0 &&
		   vs_open(&r, hc_store_fd(st), &vo) == 0,
	   "commits: a store with a repository (LFS from 64 bytes)");
	ok(hs_open(&h, hc_store_fd(st)) == 0, "commits: open the history");
	ok(hs_latest(h, hex, NULL) == 1, "commits: none yet");
	memset(&s, 0, sizeof(s));
	ok(hs_commits_each(h, collect_commit, &s) == 0 && s.n == 0,
	   "commits: an empty history lists nothing");
	ok(hs_commit(h, "0123456789012345678901234567890123456789", tree1,
		     &t) == HC_ENOENT,
	   "commits: no commit is found before the first");

	ok(vs_store_buf(r, "one\n", 4, &small) == 0 &&
		   vs_store_buf(r, "#!/bin/sh\n", 10, &run) == 0 &&
		   vs_store_buf(r, "../small.txt", 12, &link) == 0 &&
		   vs_store_buf(r, big, sizeof(big), &lfs) == 0 && lfs.lfs,
	   "commits: blobs, and content stored as LFS");
	ok(vs_stage(r, "small.txt", small.blob, 0100644) == 0 &&
		   vs_stage(r, "bin/run", run.blob, 0100755) == 0 &&
		   vs_stage(r, "bin/link", link.blob, 0120000) == 0 &&
		   vs_stage(r, "big.bin", lfs.blob, 0100644) == 0 &&
		   vs_commit(r, 1, 2, "first", c1, NULL) == 0,
	   "commits: first commit");
	ok(vs_store_buf(r, "two\n", 4, &other) == 0 &&
		   vs_stage(r, "small.txt", other.blob, 0100644) == 0 &&
		   vs_commit(r, 3, 4, "second", c2, NULL) == 0,
	   "commits: second commit");

	ok(hs_latest(h, hex, &t) == 0 && !strcmp(hex, c2) && t > 0,
	   "commits: latest is the second");
	memset(&s, 0, sizeof(s));
	snprintf(path, sizeof(path), "%s %s ", c2, c1);
	ok(hs_commits_each(h, collect_commit, &s) == 0 && !strcmp(s.buf, path),
	   "commits: listed newest first: %s", s.buf);
	ok(hs_commits_each(h, stop_at_first, NULL) == 7,
	   "commits: the callback's non-zero stops and is returned");
	ok(hs_commit(h, c1, tree1, &t) == 0 && hs_commit(h, c2, tree2, &t) == 0,
	   "commits: both found by id");
	ok(memcmp(tree1, tree2, HS_OID_LEN) != 0,
	   "commits: each with its own tree");
	hexof(tree1, hex);
	ok(hs_commit(h, hex, tree2, &t) == HC_ENOENT,
	   "commits: a tree id is not a commit of the history");
	ok(hs_commit(h, "C1", tree2, &t) == HC_ENOENT &&
		   hs_commit(h, "latest", tree2, &t) == HC_ENOENT,
	   "commits: malformed ids are not found");
	{
		char upper[41];
		size_t i;

		for (i = 0; i < 41; i++)
			upper[i] = (char)(c1[i] >= 'a' ? c1[i] - 32 : c1[i]);
		ok(hs_commit(h, upper, tree2, &t) == HC_ENOENT,
		   "commits: only the lower-case id names a commit");
	}
	{
		/* refs/hozen/versions keeps staged blobs: not a snapshot. */
		git_repository *repo = NULL;
		git_oid keep;
		char rp[300];

		snprintf(rp, sizeof(rp), "%s/commits/git", base);
		git_libgit2_init();
		if (git_repository_open_bare(&repo, rp) == 0 &&
		    git_reference_name_to_id(&keep, repo,
					     "refs/hozen/versions") == 0) {
			git_oid_tostr(hex, sizeof(hex), &keep);
			ok(hs_commit(h, hex, tree2, &t) == HC_ENOENT,
			   "commits: a commit of another ref is not shown");
		} else {
			ok(0, "commits: read refs/hozen/versions");
		}
		git_repository_free(repo);
		git_libgit2_shutdown();
	}

	/* The tree of the first commit. */
	ok(hs_tree_entry(h, tree1, "small.txt", &e) == 0 && e.kind == HS_FILE &&
		   e.size == 4,
	   "trees: a file, its size");
	rc = hs_tree_entry(h, tree1, "big.bin", &e);
	ok(rc == 0 && e.kind == HS_FILE && e.size == sizeof(big),
	   "trees: an LFS file has its content's size (%" PRIu64 ")", e.size);
	hexof(e.oid, hex);
	ok(!strcmp(hex, lfs.blob), "trees: ... and its pointer blob's id");
	ok(hs_tree_entry(h, tree1, "bin", &e) == 0 && e.kind == HS_DIR,
	   "trees: a directory");
	memcpy(sub, e.oid, HS_OID_LEN);
	ok(hs_tree_entry(h, sub, "run", &e) == 0 && e.kind == HS_EXEC &&
		   e.size == 10,
	   "trees: an executable");
	ok(hs_tree_entry(h, sub, "link", &e) == 0 && e.kind == HS_LINK &&
		   e.size == 12,
	   "trees: a symlink, its target's length");
	ok(hs_tree_entry(h, tree1, "nothing", &e) == HC_ENOENT &&
		   hs_tree_entry(h, tree1, "bin/run", &e) == HC_ENOENT,
	   "trees: absent names (and paths) are not found");
	memset(&s, 0, sizeof(s));
	ok(hs_tree_each(h, tree1, collect, &s) == 0 &&
		   !strcmp(s.buf, "big.bin:2 bin:1 small.txt:2 "),
	   "trees: listed in git's order: %s", s.buf);
	memset(&s, 0, sizeof(s));
	ok(hs_tree_each(h, sub, collect, &s) == 0 &&
		   !strcmp(s.buf, "link:4 run:3 "),
	   "trees: kinds of a subtree: %s", s.buf);
	rc = hs_tree_each(h, small.sha256, collect, &s);
	ok(rc == HC_EFORMAT, "trees: a tree missing from git is damage: %s",
	   hc_error_message());

	/* A commit made after the history was read appears. */
	ok(vs_stage(r, "third.txt", small.blob, 0100644) == 0 &&
		   vs_commit(r, 5, 6, "third", c3, NULL) == 0,
	   "commits: a third commit");
	memset(&s, 0, sizeof(s));
	snprintf(path, sizeof(path), "%s %s %s ", c3, c2, c1);
	ok(hs_commits_each(h, collect_commit, &s) == 0 && !strcmp(s.buf, path),
	   "commits: the new head is read again: %s", s.buf);
	ok(hs_commit(h, c3, tree2, &t) == 0 && hs_latest(h, hex, NULL) == 0 &&
		   !strcmp(hex, c3),
	   "commits: the third is found and latest");
	hs_free(h);
	hs_free(NULL);
	vs_close(r);
	hc_store_free(st);
}

/* -------------------------------------------------------------- index */

static void test_index(void)
{
	const char *b1 = "1111111111111111111111111111111111111111";
	const char *b2 = "2222222222222222222222222222222222222222";
	char path[300], hex[41];
	const hs_path *d = NULL, *e = NULL;
	struct hs_version v;
	struct names s;
	hs_history *h = NULL;
	hc_store *st = NULL;
	vs_repo *r = NULL;
	struct tm tm = {0};

	snprintf(path, sizeof(path), "%s/index", base);
	ok(hc_store_init(path, NULL) == 0 && hc_store_open(&st, path) == 0 &&
		   vs_open(&r, hc_store_fd(st), NULL) == 0 &&
		   hs_open(&h, hc_store_fd(st)) == 0,
	   "index: a history");
	ok(hs_add(h, "a.txt", b1, 4, T1) == 0 &&
		   hs_add(h, "a.txt", b2, 5, T2) == 0 &&
		   hs_add(h, "dir/sub/f", b1, 4, T1) == 0 &&
		   hs_add(h, "dir/g@1", b2, 5, T1) == 0,
	   "index: four versions");
	ok(hs_versions(h) == 4, "index: counted");

	memset(&v, 0, sizeof(v));
	ok(hs_lookup(h, hs_root(h), "a.txt@1", &d, &v) == HS_FILE &&
		   v.size == 4,
	   "index: a.txt@1 is the first version");
	hexof(v.blob, hex);
	tm.tm_year = 2026 - 1900;
	tm.tm_mon = 10;
	tm.tm_mday = 22;
	tm.tm_hour = 1;
	tm.tm_min = 53;
	tm.tm_sec = 22;
	ok(!strcmp(hex, b1) && v.time.tv_sec == timegm(&tm) &&
		   v.time.tv_nsec == 498740444,
	   "index: with its blob and its record's time to the nanosecond");
	ok(hs_lookup(h, hs_root(h), "a.txt@2", &d, &v) == HS_FILE &&
		   v.size == 5 && v.time.tv_nsec == 0 &&
		   v.time.tv_sec == timegm(&tm) + 1,
	   "index: a.txt@2 is the second (a time without a fraction)");
	ok(hs_lookup(h, hs_root(h), "a.txt@3", &d, &v) == HC_ENOENT &&
		   hs_lookup(h, hs_root(h), "a.txt@0", &d, &v) == HC_ENOENT &&
		   hs_lookup(h, hs_root(h), "a.txt@01", &d, &v) == HC_ENOENT &&
		   hs_lookup(h, hs_root(h), "a.txt@", &d, &v) == HC_ENOENT &&
		   hs_lookup(h, hs_root(h), "a.txt@1x", &d, &v) == HC_ENOENT &&
		   hs_lookup(h, hs_root(h), "a.txt@99999999999", &d, &v) ==
			   HC_ENOENT,
	   "index: no version 3, 0, 01, '', 1x or beyond 32 bits");
	ok(hs_lookup(h, hs_root(h), "a.txt", &d, &v) == HC_ENOENT,
	   "index: a file without @N is not a name");
	ok(hs_lookup(h, hs_root(h), "dir", &d, &v) == HS_DIR && d,
	   "index: a directory");
	ok(hs_lookup(h, d, "sub", &e, &v) == HS_DIR &&
		   hs_lookup(h, e, "f@1", &d, &v) == HS_FILE,
	   "index: dir/sub/f@1");
	ok(hs_lookup(h, hs_root(h), "dir", &d, &v) == HS_DIR &&
		   hs_lookup(h, d, "g@1@1", &e, &v) == HS_FILE && v.size == 5,
	   "index: a name with '@' in it: dir/g@1@1");

	memset(&s, 0, sizeof(s));
	ok(hs_dir_each(h, hs_root(h), collect, &s) == 0 &&
		   !strcmp(s.buf, "a.txt@1:2 a.txt@2:2 dir:1 "),
	   "index: the root lists %s", s.buf);
	memset(&s, 0, sizeof(s));
	ok(hs_dir_each(h, d, collect, &s) == 0 &&
		   !strcmp(s.buf, "sub:1 g@1@1:2 "),
	   "index: dir lists %s", s.buf);

	/* A directory named like a version of a file beside it. */
	ok(hs_add(h, "x@1/inner", b1, 4, T1) == 0 &&
		   hs_add(h, "x", b2, 5, T1) == 0,
	   "index: a directory 'x@1' and a file 'x'");
	ok(hs_lookup(h, hs_root(h), "x@1", &d, &v) == HS_FILE && v.size == 5,
	   "index: x@1 is the version, which hides the directory");
	memset(&s, 0, sizeof(s));
	ok(hs_dir_each(h, hs_root(h), collect, &s) == 0 &&
		   !strcmp(s.buf, "a.txt@1:2 a.txt@2:2 dir:1 x@1:2 "),
	   "index: and lists it once: %s", s.buf);

	ok(hs_add(h, "/abs", b1, 1, T1) == HC_EINVAL &&
		   hs_add(h, "a//b", b1, 1, T1) == HC_EINVAL &&
		   hs_add(h, "a/../b", b1, 1, T1) == HC_EINVAL &&
		   hs_add(h, "./b", b1, 1, T1) == HC_EINVAL &&
		   hs_add(h, "b/", b1, 1, T1) == HC_EINVAL &&
		   hs_add(h, "", b1, 1, T1) == HC_EINVAL,
	   "index: bad paths are refused");
	ok(hs_add(h, "b", "xyz", 1, T1) == HC_EINVAL &&
		   hs_add(h, "b", "ABCDEF1111111111111111111111111111111111", 1,
			  T1) == HC_EINVAL &&
		   hs_add(h, "b", b1, 1, "2026-11-22 01:53:22Z") == HC_EINVAL &&
		   hs_add(h, "b", b1, 1, "2026-13-22T01:53:22Z") == HC_EINVAL &&
		   hs_add(h, "b", b1, 1, "2026-11-22T01:53:22.Z") ==
			   HC_EINVAL &&
		   hs_add(h, "b", b1, 1, "2026-11-22T01:53:22.1234567890Z") ==
			   HC_EINVAL &&
		   hs_add(h, "b", b1, 1, NULL) == HC_EINVAL,
	   "index: bad blobs and times are refused");
	ok(hs_versions(h) == 6 &&
		   hs_lookup(h, hs_root(h), "b@1", &d, &v) == HC_ENOENT,
	   "index: and leave nothing behind");
	hs_free(h);
	vs_close(r);
	hc_store_free(st);
}

/* ------------------------------------------------------------ loading */

static int append(hc_log *log, const char *type, json_t *f)
{
	hc_actor self;
	int rc;

	hc_actor_self(&self);
	rc = hc_log_append(log, type, &self, f, NULL);
	json_decref(f);
	return rc;
}

static void test_load(void)
{
	const char *b1 = "1111111111111111111111111111111111111111";
	char path[300];
	const hs_path *d = NULL;
	struct hs_version v;
	struct names s;
	uint64_t skipped = 99;
	hs_history *h = NULL;
	hc_store *st = NULL;
	hc_log *log = NULL;
	vs_repo *r = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/load", base);
	ok(hc_store_init(path, NULL) == 0 && hc_store_open(&st, path) == 0 &&
		   vs_open(&r, hc_store_fd(st), NULL) == 0 &&
		   hc_log_open(&log, hc_store_fd(st), NULL, NULL) == 0,
	   "load: a store");
	/* "caf\xe9/r.txt" (Latin-1, not UTF-8) in base64. */
	rc = append(log, "version",
		    json_pack("{s:s,s:I,s:s}", "path", "doc/a.txt", "size",
			      (json_int_t)3, "blob", b1));
	rc = rc ? rc
		: append(log, "write",
			 json_pack("{s:s}", "path", "doc/ignored.txt"));
	rc = rc ? rc
		: append(log, "version",
			 json_pack("{s:s,s:I,s:s}", "path_b64",
				   "Y2Fm6S9yLnR4dA==", "size", (json_int_t)4,
				   "blob", b1));
	rc = rc ? rc
		: append(log, "version",
			 json_pack("{s:s,s:I}", "path", "no-blob.txt", "size",
				   (json_int_t)1));
	rc = rc ? rc
		: append(log, "version",
			 json_pack("{s:s,s:I,s:s}", "path", "../escape", "size",
				   (json_int_t)1, "blob", b1));
	rc = rc ? rc
		: append(log, "version",
			 json_pack("{s:s,s:s,s:s}", "path", "nosize", "size",
				   "1", "blob", b1));
	rc = rc ? rc
		: append(log, "version",
			 json_pack("{s:s,s:I,s:s}", "path", "doc/a.txt", "size",
				   (json_int_t)7, "blob", b1));
	ok(rc == 0, "load: seven records");
	hc_log_close(log);

	ok(hs_open(&h, hc_store_fd(st)) == 0 &&
		   hs_load(h, hc_store_fd(st), &skipped) == 0,
	   "load: the chain indexed");
	ok(skipped == 3 && hs_versions(h) == 3,
	   "load: 3 versions, 3 unusable records skipped (%" PRIu64 ")",
	   skipped);
	ok(hs_lookup(h, hs_root(h), "doc", &d, &v) == HS_DIR &&
		   hs_lookup(h, d, "a.txt@2", &d, &v) == HS_FILE && v.size == 7,
	   "load: doc/a.txt@2 in chain order");
	memset(&s, 0, sizeof(s));
	ok(hs_dir_each(h, hs_root(h), collect, &s) == 0 &&
		   !strcmp(s.buf, "doc:1 caf\xe9:1 "),
	   "load: the name that is not UTF-8 has its bytes back");
	ok(hs_lookup(h, hs_root(h), "caf\xe9", &d, &v) == HS_DIR &&
		   hs_lookup(h, d, "r.txt@1", &d, &v) == HS_FILE && v.size == 4,
	   "load: caf\\xe9/r.txt@1");
	hs_free(h);
	vs_close(r);
	hc_store_free(st);
}

int main(void)
{
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	test_commits();
	test_index();
	test_load();
	tap_rmrf(base);
	return tap_done();
}
