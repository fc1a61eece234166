/*
 * verify.c - fs_verify: what the chain says of files against git and the
 * live tree.  Run after the chain itself verified (hc_verify_store).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "scan.h"

/* 1 if a daemon holds the store's chain (it is mounted). */
static int store_live(int storefd)
{
	int fd = openat(storefd, "chain",
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int live = 0;

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		live = errno == EWOULDBLOCK;
	close(fd);
	return live;
}

struct snapcheck {
	hc_findings *f;
	size_t n;
};

/* A difference of main's tree and the model: a finding (the first 20). */
static int snap_diff(void *ctx, const char *path, const char *blob,
		     unsigned mode)
{
	struct snapcheck *c = ctx;
	char *pp;

	if (c->n++ >= 20)
		return 0;
	pp = tm_printable(path);
	if (blob)
		hc_findings_add(c->f, -1, 0, "git/" VS_REF,
				"main's tree lacks '%s' as blob %s mode %o, "
				"which the records say it holds",
				pp ? pp : "?", blob, mode);
	else
		hc_findings_add(c->f, -1, 0, "git/" VS_REF,
				"main's tree has '%s', which the records do "
				"not explain",
				pp ? pp : "?");
	free(pp);
	return 0;
}

int fs_verify(const char *store, hc_findings *findings,
	      struct fs_verify_report *out)
{
	struct fs_verify_report rep;
	struct tm_check_options co = {.hash = 1};
	struct tm_check_report cr;
	struct fs_scan scan;
	hc_findings *own = NULL, *f = findings;
	hc_store *s = NULL;
	vs_repo *vs = NULL;
	hc_reader *r = NULL;
	hc_record rec;
	size_t before;
	int treefd = -1, rc, scanned = 0;

	memset(&rep, 0, sizeof(rep));
	memset(&rec, 0, sizeof(rec));
	memset(&scan, 0, sizeof(scan));
	memset(&cr, 0, sizeof(cr));
	rep.fail_seq = -1;
	if (!f) {
		rc = hc_findings_new(&own);
		if (rc < 0)
			return rc;
		f = own;
	}
	before = hc_findings_count(f);
	rc = hc_store_open(&s, store);
	if (rc < 0)
		goto out;
	rep.live = store_live(hc_store_fd(s));
	treefd = openat(hc_store_fd(s), "tree",
			O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (treefd < 0 && errno != ENOENT) {
		rc = hc_error_set(HC_ESYS, "cannot open 'tree'");
		goto out;
	}
	rc = vs_open_existing(&vs, hc_store_fd(s));
	if (rc == HC_ENOENT)
		rc = 0; /* never mounted; unless the chain says otherwise */
	if (rc < 0)
		goto out;
	rc = fs_scan_init(&scan, f, vs);
	if (rc < 0)
		goto out;
	scanned = 1;
	scan.check_git = 1;
	scan.check_content = 1;
	rc = hc_reader_open(&r, hc_store_fd(s));
	if (rc < 0)
		goto out;
	while ((rc = hc_reader_next(r, &rec)) == 1) {
		rc = fs_scan_record(&scan, &rec, hc_reader_where(r));
		if (rc < 0)
			goto out;
	}
	/* The chain verified: a torn or bad tail was reported there. */
	if (rc < 0 && rc != HC_ETORN && rc != HC_EFORMAT)
		goto out;
	rc = fs_scan_finish(&scan);
	if (rc < 0)
		goto out;
	/*
	 * Anyone who can open chain/ can hold its lock: a store whose last
	 * session the chain shows sealed is checked at rest, lock or not.
	 */
	if (rep.live && !scan.open)
		rep.live = 0;
	rep.versions = scan.nversions;
	rep.commits = scan.ncommits;
	if (vs) {
		char head[41];
		const char *main_id = scan.main[0] ? scan.main : NULL;

		/* A live daemon moves main before it records the commit. */
		if (rep.live && vs_head(vs, head) == 0)
			main_id = head;
		rc = vs_check_refs(
			vs, main_id,
			scan.versions_named && !rep.live ? scan.versions : NULL,
			1, f);
		if (rc < 0)
			goto out;
		/* At rest, main's tree is what the records say. */
		if (!rep.live && !scan.open && scan.main[0]) {
			struct snapcheck sc = {f, 0};

			rc = fs_snapshot_diff(scan.model, vs, snap_diff, &sc);
			if (rc < 0)
				goto out;
		}
	} else if (scan.main[0]) {
		hc_findings_add(
			f, -1, 0, "git",
			"the chain records commits but the store has no "
			"git repository");
	}
	if (rep.live) {
		/*
		 * A mounted store's tree changes while it is read: its
		 * content is checked once it is unmounted.
		 */
	} else if (treefd < 0) {
		if (scan.last_mount)
			hc_findings_add(f, -1, 0, "tree",
					"the store has no live tree ('tree/')");
	} else {
		rc = tm_check_tree(scan.model, treefd, &co, f, &cr);
		if (rc < 0)
			goto out;
		rep.files = cr.entries;
		rep.hashed = cr.hashed;
		rep.bytes = cr.bytes;
		rep.pending = cr.pending;
	}
	/* The seal of the last unmount, if any, is what it recorded. */
	if (scan.seal[0]) {
		json_t *seal = NULL;

		rc = fs_seal_load(hc_store_fd(s), scan.seal, &seal);
		json_decref(seal);
		if (rc == HC_ENOENT || rc == HC_EVERIFY || rc == HC_EFORMAT)
			hc_findings_add(f, (int64_t)scan.seal_seq, 0,
					FS_SEAL_FILE, "%s", hc_error_message());
		else if (rc < 0)
			goto out;
	} else if (faccessat(hc_store_fd(s), FS_SEAL_FILE, F_OK,
			     AT_SYMLINK_NOFOLLOW) == 0) {
		hc_findings_add(f, -1, 0, FS_SEAL_FILE,
				"no unmount record names this seal");
	}
	rc = 0;
	rep.problems = hc_findings_count(f) - before;
	rep.ok = rep.problems == 0;
	if (!rep.ok && hc_findings_kept(f) > before) {
		const struct hc_finding *it = hc_findings_get(f, before);

		rep.fail_seq = it->seq;
		snprintf(rep.where, sizeof(rep.where), "%s", it->where);
		snprintf(rep.reason, sizeof(rep.reason), "%s", it->reason);
	}
	*out = rep;
out:
	hc_record_release(&rec);
	hc_reader_free(r);
	if (scanned)
		fs_scan_release(&scan);
	vs_close(vs);
	if (treefd >= 0)
		close(treefd);
	hc_store_free(s);
	hc_findings_free(own);
	return rc;
}
