/*
 * test_model.c - the model of the tree the records make (fs/model.h):
 * names and fids through create, link, rename (replace, exchange,
 * directories), unlink and rmdir; `failed` records undoing acts; acts
 * that cannot happen; older records without fids; and tm_check_tree on a
 * real directory, with every kind of difference it must find.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "model.h"
#include "tap.h"

static uint64_t seq;

/* Apply a record given as JSON members after the common ones. */
static int apply(tm_model *m, hc_findings *f, const char *type,
		 const char *members)
{
	char buf[4096];
	json_t *j;
	int rc;

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"%s\",\"actor\":{\"uid\":0,\"gid\":0}%s%s}", type,
		 *members ? "," : "", members);
	j = json_loads(buf, 0, NULL);
	if (!j) {
		diag("bad test record: %s", buf);
		return -1;
	}
	rc = tm_apply(m, seq++, type, j, "test", f);
	json_decref(j);
	return rc;
}

static uint64_t fid_of(tm_model *m, const char *path)
{
	uint64_t fid;

	return tm_lookup(m, path, &fid) == 0 ? fid : TM_NONE;
}

static int has(tm_model *m, const char *path)
{
	return fid_of(m, path) != TM_NONE;
}

static const char sha_a[] =
	"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";

static void names(void)
{
	hc_findings *f = NULL;
	tm_model *m = NULL;
	struct tm_info i;
	char **paths = NULL, rec[512];
	uint64_t fa, fd;

	hc_findings_new(&f);
	tm_new(&m);
	seq = 0;
	apply(m, f, "genesis", "");
	ok(fid_of(m, "") == TM_ROOT, "the root is fid 0");
	apply(m, f, "mkdir",
	      "\"path\":\"d\",\"mode\":16877,\"uid\":0,"
	      "\"gid\":0");
	fd = seq - 1;
	apply(m, f, "create",
	      "\"path\":\"d/a\",\"mode\":33188,\"uid\":1000,"
	      "\"gid\":1000");
	fa = seq - 1;
	ok(fid_of(m, "d") == fd && fid_of(m, "d/a") == fa,
	   "create and mkdir name new fids: their seqs");
	ok(tm_get(m, fa, &i) == 0 && i.content == TM_KNOWN && i.size == 0 &&
		   i.uid == 1000 && (i.mode & 07777) == 0644,
	   "a new file is empty, with its mode and owner");
	snprintf(rec, sizeof(rec),
		 "\"path\":\"d/a\",\"fid\":%llu,\"offset\":0,\"length\":1",
		 (unsigned long long)fa);
	apply(m, f, "write", rec);
	ok(tm_get(m, fa, &i) == 0 && i.content == TM_PENDING,
	   "a write makes it changed");
	snprintf(rec, sizeof(rec),
		 "\"fid\":%llu,\"size\":1,\"sha256\":\"%s\",\"blob\":"
		 "\"2e65efe2a145dda7ee51d1741299f848e5bf752e\"",
		 (unsigned long long)fa, sha_a);
	apply(m, f, "version", rec);
	ok(tm_get(m, fa, &i) == 0 && i.content == TM_KNOWN && i.size == 1,
	   "a version makes it known");
	snprintf(rec, sizeof(rec), "\"path\":\"d/b\",\"fid\":%llu",
		 (unsigned long long)fa);
	apply(m, f, "link", rec);
	ok(fid_of(m, "d/b") == fa && tm_get(m, fa, &i) == 0 && i.nlink == 2,
	   "a link is another name of the same fid");
	apply(m, f, "unlink", "\"path\":\"d/a\"");
	ok(!has(m, "d/a") && fid_of(m, "d/b") == fa,
	   "unlink removes one name, the file keeps the other");
	ok(tm_paths(m, fa, &paths) == 0 && paths[0] &&
		   !strcmp(paths[0], "d/b") && !paths[1],
	   "its paths: d/b");
	tm_paths_free(paths);
	snprintf(rec, sizeof(rec),
		 "\"fid\":%llu,\"offset\":1,\"length\":1,\"sha256\":\"%s\"",
		 (unsigned long long)fa, sha_a);
	apply(m, f, "write", rec);
	ok(tm_get(m, fa, &i) == 0 && i.content == TM_PENDING,
	   "a write by fid through the surviving name");
	apply(m, f, "rename", "\"path\":\"d\",\"to\":\"e\",\"flags\":0");
	ok(fid_of(m, "e/b") == fa && !has(m, "d"),
	   "renaming a directory moves what is in it");
	apply(m, f, "create",
	      "\"path\":\"x\",\"mode\":33188,\"uid\":0,"
	      "\"gid\":0");
	apply(m, f, "rename", "\"path\":\"x\",\"to\":\"e/b\",\"flags\":0");
	ok(fid_of(m, "e/b") == seq - 2 && tm_get(m, fa, &i) == 0 &&
		   i.nlink == 0,
	   "a rename over a file takes its name");
	apply(m, f, "create",
	      "\"path\":\"y\",\"mode\":33188,\"uid\":0,"
	      "\"gid\":0");
	apply(m, f, "rename", "\"path\":\"y\",\"to\":\"e/b\",\"flags\":2");
	ok(fid_of(m, "y") == seq - 4 && fid_of(m, "e/b") == seq - 2,
	   "an exchange swaps the two names");
	apply(m, f, "mkdir",
	      "\"path\":\"e/s\",\"mode\":16877,\"uid\":0,"
	      "\"gid\":0");
	apply(m, f, "rename", "\"path\":\"e\",\"to\":\"e/s/t\",\"flags\":0");
	ok(has(m, "e/s") && tm_finish(m, NULL) == 1,
	   "a directory cannot go below itself: it cannot have happened");
	snprintf(rec, sizeof(rec), "\"of\":%llu,\"op\":\"rename\"",
		 (unsigned long long)(seq - 1));
	apply(m, f, "failed", rec);
	ok(tm_finish(m, NULL) == 0, "and its failed record settles it");
	ok(hc_findings_count(f) == 0, "no findings (%zu)",
	   hc_findings_count(f));
	tm_free(m);
	hc_findings_free(f);
}

static void undo(void)
{
	hc_findings *f = NULL;
	tm_model *m = NULL;
	struct tm_info i;
	char rec[256];
	uint64_t fa;

	hc_findings_new(&f);
	tm_new(&m);
	seq = 0;
	apply(m, f, "genesis", "");
	apply(m, f, "create",
	      "\"path\":\"a\",\"mode\":33188,\"uid\":0,"
	      "\"gid\":0");
	fa = seq - 1;
	snprintf(rec, sizeof(rec), "\"of\":%llu,\"op\":\"create\"",
		 (unsigned long long)fa);
	apply(m, f, "failed", rec);
	ok(!has(m, "a") && tm_get(m, fa, &i) == HC_ENOENT,
	   "a failed create: no name, no fid");
	apply(m, f, "create",
	      "\"path\":\"a\",\"mode\":33188,\"uid\":0,"
	      "\"gid\":0");
	fa = seq - 1;
	apply(m, f, "unlink", "\"path\":\"a\"");
	snprintf(rec, sizeof(rec), "\"of\":%llu,\"op\":\"unlink\"",
		 (unsigned long long)(seq - 1));
	apply(m, f, "failed", rec);
	ok(fid_of(m, "a") == fa, "a failed unlink: the name is back");
	snprintf(rec, sizeof(rec), "\"fid\":%llu,\"mode\":420,\"uid\":5",
		 (unsigned long long)fa);
	apply(m, f, "setattr",
	      "\"path\":\"a\",\"mode\":511,\"uid\":7,"
	      "\"gid\":7");
	snprintf(rec, sizeof(rec), "\"of\":%llu,\"op\":\"setattr\"",
		 (unsigned long long)(seq - 1));
	apply(m, f, "failed", rec);
	ok(tm_get(m, fa, &i) == 0 && (i.mode & 07777) == 0644 && i.uid == 0,
	   "a failed setattr: mode and owner as before");
	apply(m, f, "rename", "\"path\":\"a\",\"to\":\"b\",\"flags\":0");
	ok(tm_last_change(m, "b") == seq - 1 &&
		   tm_last_change(m, "a") == seq - 1,
	   "the last change of both names: the rename");
	ok(tm_revert(m, seq - 1) == 0 && fid_of(m, "a") == fa && !has(m, "b"),
	   "tm_revert undoes it (crash recovery)");
	snprintf(rec, sizeof(rec),
		 "\"of\":%llu,\"op\":\"rename\","
		 "\"why\":\"crash\"",
		 (unsigned long long)(seq - 1));
	apply(m, f, "failed", rec);
	ok(fid_of(m, "a") == fa, "its failed record then changes nothing");
	apply(m, f, "rename", "\"path\":\"a\",\"to\":\"b\",\"flags\":0");
	apply(m, f, "rename", "\"path\":\"b\",\"to\":\"c\",\"flags\":0");
	ok(tm_revert(m, seq - 2) == HC_EINVAL,
	   "an act a later one built on cannot be undone");
	apply(m, f, "unlink", "\"path\":\"nothing\"");
	ok(tm_finish(m, f) == 1 && hc_findings_count(f) == 1,
	   "an unlink of a name the model lacks, never failed: a finding");
	tm_free(m);
	hc_findings_free(f);
}

static void legacy(void)
{
	tm_model *m = NULL;
	struct tm_info i;
	char rec[256];
	uint64_t fa;

	tm_new(&m);
	seq = 0;
	apply(m, NULL, "genesis", "");
	apply(m, NULL, "mkdir", "\"path\":\"d\",\"ino\":5,\"mode\":16877");
	apply(m, NULL, "create",
	      "\"path\":\"d/f\",\"ino\":6,\"flags\":65,"
	      "\"created\":true");
	fa = seq - 1;
	ok(fid_of(m, "d/f") == fa && tm_get(m, fa, &i) == 0 &&
		   S_ISREG(i.mode) && !i.has_owner,
	   "older records: a create without mode or owner");
	apply(m, NULL, "write", "\"path\":\"d/f\",\"ino\":6");
	snprintf(rec, sizeof(rec),
		 "\"path\":\"d/f\",\"size\":1,\"sha256\":\"%s\",\"blob\":"
		 "\"2e65efe2a145dda7ee51d1741299f848e5bf752e\"",
		 sha_a);
	apply(m, NULL, "version", rec);
	ok(tm_get(m, fa, &i) == 0 && i.content == TM_KNOWN,
	   "records without fid name their file by path");
	/* d/\xff as base64: "ZC//" */
	apply(m, NULL, "create",
	      "\"path_b64\":\"ZC//\",\"mode\":33188,"
	      "\"uid\":0,\"gid\":0");
	ok(fid_of(m, "d/\xff") == seq - 1, "path_b64 names bytes");
	tm_free(m);
}

/* ------------------------------------------------------------- the tree */

static char *root;

static void mk(const char *rel, const char *content, mode_t mode)
{
	char p[1024];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd >= 0) {
		if (write(fd, content, strlen(content)) < 0)
			diag("write: %s", strerror(errno));
		fchmod(fd, mode);
		close(fd);
	}
}

static size_t check(tm_model *m, int hash, const char *want)
{
	struct tm_check_options o = {.hash = hash};
	hc_findings *f = NULL;
	int treefd = open(root, O_PATH | O_DIRECTORY);
	size_t n, i;
	int found = !want;

	hc_findings_new(&f);
	tm_check_tree(m, treefd, &o, f, NULL);
	close(treefd);
	n = hc_findings_count(f);
	for (i = 0; i < hc_findings_kept(f); i++) {
		const struct hc_finding *it = hc_findings_get(f, i);

		if (want &&
		    (strstr(it->reason, want) || strstr(it->where, want)))
			found = 1;
		if (!want || !found)
			diag("%s: %s", it->where, it->reason);
	}
	hc_findings_free(f);
	return found ? n : 0;
}

static void tree(void)
{
	char tmpl[] = "/tmp/hozen-model.XXXXXX", p[1024], q[1024], rec[512];
	tm_model *m = NULL;
	uid_t u = getuid();
	gid_t g = getgid();
	uint64_t fa;

	root = mkdtemp(tmpl);
	if (!root) {
		ok(0, "mkdtemp");
		return;
	}
	chmod(root, 0755);
	tm_new(&m);
	seq = 0;
	snprintf(rec, sizeof(rec), "\"actor\":{\"uid\":%u,\"gid\":%u}",
		 (unsigned)u, (unsigned)g);
	{
		json_t *j = json_pack("{s:{s:i,s:i}}", "actor", (int)u, "uid",
				      (int)u, "gid", (int)g);

		json_object_set_new(json_object_get(j, "actor"), "uid",
				    json_integer(u));
		json_object_set_new(json_object_get(j, "actor"), "gid",
				    json_integer(g));
		tm_apply(m, seq++, "genesis", j, "", NULL);
		json_decref(j);
	}
	snprintf(rec, sizeof(rec),
		 "\"path\":\"d\",\"mode\":16877,\"uid\":%u,\"gid\":%u",
		 (unsigned)u, (unsigned)g);
	apply(m, NULL, "mkdir", rec);
	snprintf(rec, sizeof(rec),
		 "\"path\":\"d/a\",\"mode\":33188,\"uid\":%u,\"gid\":%u",
		 (unsigned)u, (unsigned)g);
	apply(m, NULL, "create", rec);
	fa = seq - 1;
	snprintf(rec, sizeof(rec),
		 "\"fid\":%llu,\"size\":1,\"sha256\":\"%s\",\"blob\":"
		 "\"2e65efe2a145dda7ee51d1741299f848e5bf752e\"",
		 (unsigned long long)fa, sha_a);
	apply(m, NULL, "version", rec);
	snprintf(rec, sizeof(rec), "\"path\":\"d/h\",\"fid\":%llu",
		 (unsigned long long)fa);
	apply(m, NULL, "link", rec);
	snprintf(rec, sizeof(rec),
		 "\"path\":\"l\",\"mode\":41471,\"uid\":%u,\"gid\":%u,"
		 "\"target\":\"d/a\"",
		 (unsigned)u, (unsigned)g);
	apply(m, NULL, "symlink", rec);

	snprintf(p, sizeof(p), "%s/d", root);
	mkdir(p, 0755);
	chmod(p, 0755);
	mk("d/a", "a", 0644);
	snprintf(p, sizeof(p), "%s/d/a", root);
	snprintf(q, sizeof(q), "%s/d/h", root);
	link(p, q);
	snprintf(q, sizeof(q), "%s/l", root);
	ok(symlink("d/a", q) == 0, "a tree on disk as the records say");
	ok(check(m, 1, NULL) == 0, "it matches the model, content too");

	mk("extra", "", 0644);
	ok(check(m, 0, "no record explains") == 1, "a file no record explains");
	snprintf(p, sizeof(p), "%s/extra", root);
	unlink(p);

	snprintf(p, sizeof(p), "%s/d/a", root);
	chmod(p, 04777);
	ok(check(m, 0, "mode 4777") == 2,
	   "a mode changed behind it (both names of the file)");
	chmod(p, 0644);

	mk("d/a", "b", 0644);
	ok(check(m, 0, NULL) == 0 && check(m, 1, "differs") == 1,
	   "content changed: found when hashing");
	mk("d/a", "a", 0644);

	snprintf(q, sizeof(q), "%s/l", root);
	unlink(q);
	ok(symlink("elsewhere", q) == 0 && check(m, 0, "points elsewhere") == 1,
	   "a symlink pointed elsewhere");
	unlink(q);
	ok(symlink("d/a", q) == 0 && check(m, 1, NULL) == 0, "put back");

	snprintf(q, sizeof(q), "%s/d/h", root);
	unlink(q);
	mk("d/h", "a", 0644);
	ok(check(m, 1, "hard link") == 1, "a hard link broken");
	unlink(q);
	link(p, q);

	unlink(p);
	ok(check(m, 1, "is missing") == 1, "a name removed behind it");
	link(q, p);

	snprintf(p, sizeof(p), "%s/d", root);
	chmod(p, 0700);
	ok(check(m, 1, "d") >= 1, "a directory's mode");
	chmod(p, 0755);
	ok(check(m, 1, NULL) == 0, "all put back: no findings");
	tm_free(m);
	tap_rmrf(root);
}

int main(void)
{
	names();
	undo();
	legacy();
	tree();
	return tap_done();
}
