/*
 * daemon.c - fs_mount: the checks and the recovery before mounting, the
 * FUSE session, the committer, and the orderly unmount.
 *
 * Before it serves, the daemon checks the store as `hozen verify` would
 * (the chain and checkpoints, the case, git's refs, the live tree against
 * what the records make it) and refuses a store that fails unless
 * --force, which is recorded with every problem.  Reading the tree's
 * content is what would make that slow: a file whose stat is what the
 * seal of the last unmount says it was is not read again.
 *
 * After a crash (a mount record with no unmount after it), what the
 * records say and what the tree holds may differ by the acts that were
 * recorded but never done: the last change of a name that the tree does
 * not show is recorded as failed (`why`: crash), a mode or owner the
 * daemon did not finish giving is given.  Then files written since their
 * last version are versioned, versions git lost are stored again from
 * the tree or declared lost, and the snapshot is brought to what the
 * records say.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mntent.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "case.h"
#include "fsint.h"
#include "scan.h"

__attribute__((format(printf, 2, 0))) static void
log_syslog(enum fuse_log_level level, const char *fmt, va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

/* ------------------------------------------------------------ commits */

int hz_commit(struct hz_fs *fs, const char *why)
{
	char commit[41], versions[41];
	uint64_t last;
	hc_actor self;
	json_t *f;
	int rc;

	pthread_mutex_lock(&fs->cmu);
	last = hc_log_size(fs->log) - 1;
	rc = vs_commit(fs->vs, fs->commit_first, last, why, commit, versions);
	if (rc == 0) {
		hc_actor_self(&self);
		f = json_pack("{s:s,s:I,s:I,s:s}", "commit", commit, "first",
			      (json_int_t)fs->commit_first, "last",
			      (json_int_t)last, "why", why);
		if (f && versions[0])
			json_object_set_new(f, "versions",
					    json_string(versions));
		rc = hz_record(fs, "commit", &self, f, NULL);
		fs->commit_first = last + 1;
	}
	pthread_mutex_unlock(&fs->cmu);
	return rc == 1 ? 0 : rc;
}

static int checkpoint(struct hz_fs *fs)
{
	hc_actor self;

	hc_actor_self(&self);
	return hc_store_checkpoint(fs->log, fs->key, fs->origin, &self, NULL);
}

/* Commit every commit_ms (or sooner when poked), checkpoint now and then. */
static void *committer_main(void *arg)
{
	struct hz_fs *fs = arg;
	struct timespec until, last_ck;
	uint64_t sealed = hc_log_size(fs->log);
	int stop;

	clock_gettime(CLOCK_MONOTONIC, &last_ck);
	for (;;) {
		pthread_mutex_lock(&fs->cmu);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)fs->opts.commit_ms * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		if (!fs->commit_stop)
			pthread_cond_timedwait(&fs->ccv, &fs->cmu, &until);
		stop = fs->commit_stop;
		pthread_mutex_unlock(&fs->cmu);
		if (stop)
			break;
		if (vs_pending(fs->vs) > 0 && hz_commit(fs, "interval") < 0)
			fuse_log(FUSE_LOG_ERR, "hozen: commit failed: %s\n",
				 hc_error_message());
		clock_gettime(CLOCK_MONOTONIC, &until);
		if (until.tv_sec - last_ck.tv_sec >=
			    (time_t)fs->opts.checkpoint_s &&
		    hc_log_size(fs->log) > sealed) {
			if (checkpoint(fs) < 0)
				fuse_log(FUSE_LOG_ERR,
					 "hozen: checkpoint failed: %s\n",
					 hc_error_message());
			sealed = hc_log_size(fs->log);
			last_ck = until;
		}
	}
	return NULL;
}

/* ------------------------------------------------- checks before serving */

/* What the checks before mounting learn, for the recovery after them. */
struct mount_ctx {
	struct hz_fs *fs;
	struct fs_scan scan;
	case_replay *cr;
	hc_findings *findings;
	json_t *seal;	    /* the last unmount's seal, or NULL */
	uint64_t *reverted; /* acts recorded, never done (a crash) */
	size_t nreverted, capreverted;
	json_t *given; /* paths given the mode or owner their record says */
	int crashed;   /* the last session did not end with an unmount */
};

static int mount_on_record(void *ctx, const hc_record *rec)
{
	struct mount_ctx *m = ctx;
	int rc = case_replay_on_record(m->cr, rec);

	if (rc < 0)
		return rc;
	hz_virt_record(m->fs, rec); /* /.hozen/versions */
	return fs_scan_record(&m->scan, rec, "");
}

static int add_revert(struct mount_ctx *m, uint64_t seq)
{
	size_t i;

	for (i = 0; i < m->nreverted; i++)
		if (m->reverted[i] == seq)
			return 0;
	if (m->nreverted == m->capreverted) {
		size_t cap = m->capreverted ? 2 * m->capreverted : 16;
		uint64_t *n = realloc(m->reverted, cap * sizeof(*n));

		if (!n)
			return -1;
		m->reverted = n;
		m->capreverted = cap;
	}
	m->reverted[m->nreverted++] = seq;
	return 0;
}

/*
 * First look after a crash: a name the tree lacks or has against the
 * records, when the last record that changed it came in the session that
 * crashed, is an act recorded and not done; a mode or owner so changed
 * is one not finished.  Everything else is a finding of the second look.
 */
static int crash_diff(void *ctx, uint64_t seq, const char *path, int kind)
{
	struct mount_ctx *m = ctx;
	uint64_t since = m->scan.last_mount;

	if (kind == TM_DIFF_NAME) {
		if (seq == 0)
			seq = tm_last_change(m->scan.model, path);
		if (seq > since && tm_act_type(m->scan.model, seq))
			return add_revert(m, seq) == 0;
		return 0;
	}
	if (kind == TM_DIFF_ATTR && seq > since) {
		json_array_append_new(m->given, json_string_nocheck(path));
		return 1;
	}
	return 0;
}

/* Give path the mode and owner the model says (an act not finished). */
static void give_attrs(struct hz_fs *fs, tm_model *model, const char *path)
{
	struct tm_info info;
	char proc[64];
	uint64_t fid;
	int fd;

	if (tm_lookup(model, path, &fid) < 0 || tm_get(model, fid, &info) < 0)
		return;
	fd = *path ? tm_openat(fs->treefd, path, O_PATH | O_NOFOLLOW)
		   : dup(fs->treefd);
	if (fd < 0)
		return;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (info.has_owner)
		(void)fchownat(fd, "", info.uid, info.gid,
			       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	if (!S_ISLNK(info.mode))
		(void)chmod(proc, info.mode & 07777);
	close(fd);
}

static int seal_skip(void *ctx, uint64_t fid, const struct stat *st)
{
	struct mount_ctx *m = ctx;

	return m->seal && fs_seal_same(m->seal, fid, st);
}

/*
 * The live tree against the records: after a crash, the acts recorded
 * and not done are undone in the model (and recorded as failed once the
 * log is open) and unfinished modes given; then every difference left is
 * a finding.  Content is read only where the seal cannot vouch for it.
 */
static int check_tree(struct hz_fs *fs, struct mount_ctx *m)
{
	struct tm_check_options co = {0};
	struct tm_check_report cr;
	hc_findings *scratch = NULL;
	size_t i;
	int rc;

	if (m->scan.seal[0]) {
		rc = fs_seal_load(hc_store_fd(fs->store), m->scan.seal,
				  &m->seal);
		/* As verify says: the seal the unmount recorded is there. */
		if (rc == HC_ENOENT || rc == HC_EVERIFY || rc == HC_EFORMAT)
			hc_findings_add(m->findings, (int64_t)m->scan.seal_seq,
					0, FS_SEAL_FILE, "%s",
					hc_error_message());
		else if (rc < 0)
			return rc;
		if (rc < 0)
			m->seal = NULL; /* then every file is read */
	}
	if (m->crashed) {
		rc = hc_findings_new(&scratch);
		if (rc < 0)
			return rc;
		co.on_diff = crash_diff;
		co.ctx = m;
		rc = tm_check_tree(m->scan.model, fs->treefd, &co, scratch,
				   &cr);
		hc_findings_free(scratch);
		if (rc < 0)
			return rc;
		for (i = 0; i < m->nreverted; i++)
			if (tm_revert(m->scan.model, m->reverted[i]) < 0)
				hc_findings_add(m->findings,
						(int64_t)m->reverted[i], 0, "",
						"%s", hc_error_message());
		for (i = 0; i < json_array_size(m->given); i++)
			give_attrs(
				fs, m->scan.model,
				json_string_value(json_array_get(m->given, i)));
	}
	memset(&co, 0, sizeof(co));
	co.hash = 1;
	co.fix_fids = 1;
	co.skip_hash = seal_skip;
	co.ctx = m;
	return tm_check_tree(m->scan.model, fs->treefd, &co, m->findings, &cr);
}

/* The size of the latest checkpoint (0 if none). */
/* The preservation order decides whether the policy is in force. */
static int load_order(struct hz_fs *fs, json_t *report)
{
	struct case_preservation cp;
	case_t *c = NULL;
	int rc;

	rc = case_load(&c, hc_store_fd(fs->store));
	if (rc == 0)
		rc = case_preservation(c, time(NULL), &cp);
	case_free(c);
	if (rc < 0)
		return hc_error_prefix(rc, "cannot read the case");
	fs->preserving = cp.in_force;
	snprintf(fs->preserve_why, sizeof(fs->preserve_why), "%s", cp.why);
	json_object_set_new(
		report, "preservation",
		json_pack("{s:b,s:s}", "in_force", cp.in_force, "why", cp.why));
	return 0;
}

/* Every finding into the mount record (a forced mount says why). */
static json_t *findings_json(hc_findings *f)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < hc_findings_kept(f) && i < 100; i++) {
		const struct hc_finding *it = hc_findings_get(f, i);
		json_t *o = json_pack("{s:s,s:s}", "where", it->where, "reason",
				      it->reason);

		if (o && it->seq >= 0)
			json_object_set_new(o, "seq", json_integer(it->seq));
		json_array_append_new(a, o);
	}
	return a;
}

/*
 * The store's key and log: a crash's torn tail kept and recorded, the
 * missing checkpoints rewritten, everything sealed (HC_EBUSY if another
 * process holds the log: it is mounted already).
 */
static int open_store(struct hz_fs *fs, json_t *report)
{
	struct hc_recover_report rrep;
	json_t *repaired = NULL;
	hc_actor self;
	int rc;

	hc_actor_self(&self);
	/* Nobody else may read or change it (FORMAT.md section 1). */
	rc = hc_store_repair_modes(fs->store, &repaired);
	if (rc < 0)
		return rc;
	if (repaired)
		json_object_set_new(report, "repaired", repaired);
	rc = hc_store_origin(fs->store, &fs->origin);
	if (rc == 0)
		rc = hc_store_private_key(fs->store, fs->opts.passphrase,
					  &fs->key);
	if (rc < 0)
		return rc;
	/* A crash may have left a torn line or an unwritten checkpoint. */
	rc = hc_store_recover(fs->store, fs->key, &self, &rrep);
	if (rc == HC_EVERIFY && fs->opts.force) {
		json_object_set_new(report, "forced_recovery",
				    json_string(hc_error_message()));
		rc = 0;
		memset(&rrep, 0, sizeof(rrep));
	}
	if (rc == HC_EVERIFY || rc == HC_EFORMAT)
		return hc_error_prefix(rc, "cannot recover the store (mount "
					   "--force to mount it anyway)");
	if (rc < 0)
		return rc; /* e.g. HC_EBUSY: it is mounted already */
	/*
	 * Records no checkpoint covered: the key sealed them just now (a
	 * session that crashed, a note written while unmounted).
	 */
	if (rrep.adopted)
		json_object_set_new(report, "adopted",
				    json_pack("{s:I,s:I}", "first",
					      (json_int_t)rrep.adopted_first,
					      "last",
					      (json_int_t)rrep.adopted_last));
	rc = load_order(fs, report);
	if (rc < 0)
		return rc;
	if (rrep.torn)
		json_object_set_new(report, "torn",
				    json_pack("{s:I,s:s}", "bytes",
					      (json_int_t)rrep.torn_bytes,
					      "saved", rrep.torn_saved));
	return 0;
}

/*
 * One reading of the chain: its links and checkpoints, the case, the
 * model of the tree, /.hozen/versions.
 */
static int read_chain(struct hz_fs *fs, struct mount_ctx *m)
{
	struct hc_verify_options vo = {.allow_unsealed = 1};
	struct hc_verify_report vrep;
	struct case_verify_report crep;
	int rc;

	vo.on_record = mount_on_record;
	vo.ctx = m;
	vo.findings = m->findings;
	rc = hc_verify_store(fs->store, &vo, &vrep);
	if (rc < 0)
		return rc;
	if (vrep.verdict != HC_INVALID) {
		rc = case_replay_verify(m->cr, hc_store_fd(fs->store),
					m->findings, &crep);
		if (rc < 0)
			return rc;
		rc = fs_scan_finish(&m->scan);
		if (rc < 0)
			return rc;
		m->crashed = m->scan.open;
	}
	return 0;
}

/* Refuse a store with findings, unless forced (then say which). */
static int judge(struct hz_fs *fs, struct mount_ctx *m, json_t *report)
{
	const struct hc_finding *it;
	size_t n = hc_findings_count(m->findings);

	if (n == 0)
		return 0;
	it = hc_findings_get(m->findings, 0);
	if (!fs->opts.force)
		return hc_error_set(HC_EVERIFY,
				    "the store fails verification (%zu "
				    "problem%s; the first: %s%s%s): 'hozen "
				    "verify' shows them all; mount --force "
				    "mounts it anyway, and records that",
				    n, n == 1 ? "" : "s",
				    it && it->where[0] ? it->where : "",
				    it && it->where[0] ? ": " : "",
				    it ? it->reason : "");
	json_object_set_new(report, "forced", findings_json(m->findings));
	return 0;
}

/* ----------------------------------------------------------- recovery */

/*
 * A commit the daemon made but died before recording: record it now (its
 * message names its records), so that every commit of main is in the
 * chain and the next commit's range starts after it.
 */
static int orphan_commit(struct hz_fs *fs, const char *last_recorded,
			 const hc_actor *self)
{
	char head[41], *msg = NULL;
	unsigned long long first, last;
	const char *t;
	int rc;

	rc = vs_head(fs->vs, head);
	if (rc != 0 || !strcmp(head, last_recorded))
		return rc < 0 ? rc : 0;
	rc = vs_commit_message(fs->vs, head, &msg);
	if (rc < 0)
		return rc;
	t = strstr(msg, "Hozen-Records: ");
	if (t && sscanf(t, "Hozen-Records: %llu-%llu", &first, &last) == 2 &&
	    last + 1 > fs->commit_first) {
		rc = hz_record(fs, "commit", self,
			       json_pack("{s:s,s:I,s:I,s:s}", "commit", head,
					 "first", (json_int_t)first, "last",
					 (json_int_t)last, "why", "recovered"),
			       NULL);
		if (rc == 0)
			fs->commit_first = last + 1;
	}
	free(msg);
	return rc;
}

/* A name of fid's file in the tree, opened read-only; -1 if none. */
static int open_fid(struct hz_fs *fs, uint64_t fid, char **path_out)
{
	char *path = hz_fid_path(fs, fid);
	struct stat st;
	int fd;

	if (!path)
		return -1;
	fd = tm_openat(fs->treefd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		free(path);
	else
		*path_out = path;
	return fd;
}

/*
 * Versions recorded since the last commit whose blob git lacks (the
 * daemon died before it was synced): stored again from the tree if the
 * file still holds it, else recorded as lost.
 */
static int recover_lost(struct hz_fs *fs, json_t *recent, const hc_actor *self,
			size_t *lost)
{
	struct vs_version v;
	struct stat st;
	size_t i;
	json_t *e;
	int rc = 0;

	json_array_foreach(recent, i, e)
	{
		const char *blob =
			json_string_value(json_object_get(e, "blob"));
		json_t *fidj = json_object_get(e, "fid");
		char *path = NULL;
		int fd = -1;

		if (!blob || vs_has(fs->vs, blob))
			continue;
		if (json_is_integer(fidj))
			fd = open_fid(fs, (uint64_t)json_integer_value(fidj),
				      &path);
		if (fd >= 0 && fstat(fd, &st) == 0) {
			rc = vs_store_fd(fs->vs, fd, (uint64_t)st.st_size, NULL,
					 &v);
			close(fd);
			fd = -1;
			if (rc < 0) {
				free(path);
				return rc;
			}
			if (!strcmp(v.blob, blob)) {
				free(path);
				continue;
			}
		}
		if (fd >= 0)
			close(fd);
		rc = hz_record(
			fs, "version-lost", self,
			json_pack("{s:O?,s:s}", "fid", fidj, "blob", blob),
			NULL);
		free(path);
		if (rc < 0)
			return rc;
		(*lost)++;
	}
	return 0;
}

struct pending {
	uint64_t *fids;
	size_t n, cap;
};

static int collect_pending(void *ctx, const struct tm_info *i)
{
	struct pending *p = ctx;

	if (!S_ISREG(i->mode) || i->content != TM_PENDING || i->nlink == 0)
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		uint64_t *n = realloc(p->fids, cap * sizeof(*n));

		if (!n)
			return hc_error_set(HC_ENOMEM, "out of memory");
		p->fids = n;
		p->cap = cap;
	}
	p->fids[p->n++] = i->fid;
	return 0;
}

/* Files written since their last version: versioned now. */
static int recover_pending(struct hz_fs *fs, const hc_actor *self,
			   size_t *count)
{
	struct pending p = {0};
	struct vs_version v;
	struct stat st;
	char hex[HC_HEX_LEN + 1], **paths = NULL;
	size_t i, k;
	json_t *f;
	int rc;

	pthread_mutex_lock(&fs->mmu);
	rc = tm_foreach(fs->model, collect_pending, &p);
	pthread_mutex_unlock(&fs->mmu);
	for (i = 0; rc == 0 && i < p.n; i++) {
		char *path = NULL;
		int fd = open_fid(fs, p.fids[i], &path);

		if (fd < 0)
			continue; /* the tree check said why */
		rc = fstat(fd, &st) < 0
			     ? hc_error_set(HC_ESYS, "cannot examine '%s'",
					    path)
			     : vs_store_fd(fs->vs, fd, (uint64_t)st.st_size,
					   NULL, &v);
		close(fd);
		free(path);
		if (rc < 0)
			break;
		hc_hex(v.sha256, HC_HASH_LEN, hex);
		f = json_pack("{s:I,s:s,s:s,s:b,s:s}", "size",
			      (json_int_t)v.size, "sha256", hex, "blob", v.blob,
			      "lfs", v.lfs, "why", "recovery");
		if (f && hz_json_file(f, fs, p.fids[i]) < 0) {
			json_decref(f);
			f = NULL;
		}
		rc = hz_record(fs, "version", self, f, NULL);
		if (rc < 0)
			break;
		pthread_mutex_lock(&fs->mmu);
		if (tm_paths(fs->model, p.fids[i], &paths) < 0)
			paths = NULL;
		pthread_mutex_unlock(&fs->mmu);
		for (k = 0; rc == 0 && paths && paths[k]; k++) {
			rc = vs_stage(fs->vs, paths[k], v.blob,
				      (st.st_mode & 0111) ? 0100755 : 0100644);
			if (rc == 0 && k == 0)
				hz_virt_versioned(fs, paths[k], &v,
						  hz_record_time());
		}
		tm_paths_free(paths);
		paths = NULL;
		(*count)++;
	}
	free(p.fids);
	return rc;
}

struct restage {
	struct hz_fs *fs;
	size_t staged;
};

static int restage_one(void *ctx, const char *path, const char *blob,
		       unsigned mode)
{
	struct restage *r = ctx;

	r->staged++;
	return blob ? vs_stage(r->fs->vs, path, blob, mode)
		    : vs_stage_remove(r->fs->vs, path);
}

/*
 * After a crash: main's tree is brought to what the records say, every
 * name with its last version, nothing else.
 */
static int recover_snapshot(struct hz_fs *fs, size_t *staged)
{
	struct restage r = {fs, 0};
	int rc;

	pthread_mutex_lock(&fs->mmu);
	rc = fs_snapshot_diff(fs->model, fs->vs, restage_one, &r);
	pthread_mutex_unlock(&fs->mmu);
	*staged = r.staged;
	return rc;
}

static int recover(struct hz_fs *fs, struct mount_ctx *m, json_t *report)
{
	size_t jblobs = 0, lost = 0, versioned = 0, staged = 0, i;
	uint64_t jtorn = 0;
	hc_actor self;
	int rc = 0;

	hc_actor_self(&self);
	vs_journal_replayed(fs->vs, &jblobs, &jtorn);
	if (jblobs || jtorn) {
		/* Content of versions not yet committed when it stopped. */
		json_object_set_new(report, "journal_blobs",
				    json_integer((json_int_t)jblobs));
		if (jtorn)
			json_object_set_new(report, "journal_torn_bytes",
					    json_integer((json_int_t)jtorn));
	}
	/* The acts the crash cut between their record and their doing. */
	for (i = 0; rc == 0 && i < m->nreverted; i++) {
		char *path = NULL;
		const char *op = tm_act_type(fs->model, m->reverted[i]);

		rc = hz_record(fs, "failed", &self,
			       json_pack("{s:I,s:s,s:s}", "of",
					 (json_int_t)m->reverted[i], "op",
					 op ? op : "", "why", "crash"),
			       NULL);
		free(path);
	}
	if (m->nreverted)
		json_object_set_new(report, "undone",
				    json_integer((json_int_t)m->nreverted));
	if (json_array_size(m->given))
		json_object_set_new(report, "given", json_copy(m->given));
	fs->commit_first = m->scan.covered;
	if (rc == 0)
		rc = orphan_commit(fs, m->scan.main, &self);
	if (rc == 0)
		rc = recover_lost(fs, m->scan.recent, &self, &lost);
	if (rc == 0)
		rc = recover_pending(fs, &self, &versioned);
	if (rc == 0 && m->crashed)
		rc = recover_snapshot(fs, &staged);
	if (rc < 0)
		return rc;
	json_object_set_new(report, "versioned",
			    json_integer((json_int_t)versioned));
	json_object_set_new(report, "restaged",
			    json_integer((json_int_t)staged));
	if (lost)
		json_object_set_new(report, "lost",
				    json_integer((json_int_t)lost));
	if (versioned || staged || lost || m->nreverted) {
		fuse_log(FUSE_LOG_NOTICE,
			 "hozen: recovered %zu unversioned file(s), %zu "
			 "snapshot change(s), %zu act(s) undone\n",
			 versioned, staged, m->nreverted);
		rc = hz_commit(fs, "recovery");
	}
	return rc;
}

/* --------------------------------------------------------------- mount */

/* Room kept on the store's disk so that a full disk can still be sealed. */
#define RESERVE_BYTES (8 << 20)

static void reserve_make(struct hz_fs *fs)
{
	fs->reserve_fd =
		openat(hc_store_fd(fs->store), ".reserve",
		       O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fs->reserve_fd >= 0 &&
	    fallocate(fs->reserve_fd, 0, 0, RESERVE_BYTES) < 0) {
		close(fs->reserve_fd);
		fs->reserve_fd = -1;
	}
}

/* Give the reserve back after ENOSPC; 1 if there was one to give. */
static int reserve_release(struct hz_fs *fs)
{
	if (fs->reserve_fd < 0)
		return 0;
	if (ftruncate(fs->reserve_fd, 0) < 0) {
		/* unlinking frees it once closed */
	}
	close(fs->reserve_fd);
	fs->reserve_fd = -1;
	(void)unlinkat(hc_store_fd(fs->store), ".reserve", 0);
	fuse_log(FUSE_LOG_WARNING,
		 "hozen: the store's disk is full: used the reserve to seal "
		 "it\n");
	return 1;
}

/* Run a sealing step; if it fails, free the reserve and try once more. */
static int seal_step(struct hz_fs *fs, int (*step)(struct hz_fs *, void *),
		     void *arg)
{
	int rc = step(fs, arg);

	/* libgit2 does not always say ENOSPC: any failure may be space. */
	if (rc < 0 && reserve_release(fs))
		rc = step(fs, arg);
	return rc;
}

static int step_commit(struct hz_fs *fs, void *arg)
{
	int rc;

	(void)arg;
	rc = hz_version_dirty(fs, "unmount");
	return rc < 0 ? rc : hz_commit(fs, "unmount");
}

/*
 * The unmount record, with the seal of the tree as the session leaves
 * it (STORE/seal, named by its SHA-256).
 */
static int step_unmount(struct hz_fs *fs, void *arg)
{
	uint8_t sha[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1], *buf = NULL;
	uint64_t files = 0;
	size_t len = 0;
	hc_actor self;
	json_t *f;
	int rc;

	hc_actor_self(&self);
	f = json_pack("{s:s}", "mountpoint", (const char *)arg);
	pthread_mutex_lock(&fs->mmu);
	rc = fs_seal_make(fs->model, fs->treefd, &buf, &len, &files);
	pthread_mutex_unlock(&fs->mmu);
	if (rc == 0)
		rc = hc_sha256(buf, len, sha);
	if (rc == 0)
		rc = hc_atomic_write(hc_store_fd(fs->store), FS_SEAL_FILE, buf,
				     len, 0600);
	free(buf);
	if (rc == 0) {
		hc_hex(sha, HC_HASH_LEN, hex);
		json_object_set_new(f, "seal",
				    json_pack("{s:s,s:I}", "sha256", hex,
					      "files", (json_int_t)files));
	} else {
		/* Without a seal the next mount reads every file. */
		fuse_log(FUSE_LOG_WARNING, "hozen: cannot seal the tree: %s\n",
			 hc_error_message());
	}
	return hz_record(fs, "unmount", &self, f, NULL);
}

static int step_checkpoint(struct hz_fs *fs, void *arg)
{
	(void)arg;
	return checkpoint(fs);
}

static void fs_free(struct hz_fs *fs)
{
	if (fs->reserve_fd >= 0)
		close(fs->reserve_fd);
	vs_close(fs->vs);
	hc_log_close(fs->log);
	hc_key_free(fs->key);
	hz_virt_free(fs);
	hz_nodes_free(fs);
	tm_free(fs->model);
	fs->model = NULL;
	if (fs->treefd >= 0)
		close(fs->treefd);
	if (fs->mountfd >= 0)
		close(fs->mountfd);
	hc_store_free(fs->store);
	pthread_mutex_destroy(&fs->cmu);
	pthread_mutex_destroy(&fs->mmu);
	pthread_cond_destroy(&fs->ccv);
}

static void mount_ctx_release(struct mount_ctx *m)
{
	fs_scan_release(&m->scan);
	case_replay_free(m->cr);
	hc_findings_free(m->findings);
	json_decref(m->seal);
	json_decref(m->given);
	free(m->reverted);
}

/* 1 if the directory path holds anything. */
static int not_empty(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d)))
		found = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return found;
}

static int daemonize(int *fd_out);
static void tell_parent(int *fd, int code, const char *msg);

/* The session the parent of a daemonized mount leaves to the daemon. */
static struct fuse_session *parent_session;

static json_t *options_json(const struct fs_options *o)
{
	return json_pack("{s:b,s:b,s:b,s:b,s:b,s:b,s:s}", "read_only",
			 o->read_only, "worm", o->worm, "log_reads",
			 o->log_reads, "no_xattr_read", o->no_xattr_read,
			 "writeback", o->writeback, "force", o->force, "policy",
			 o->read_only ? "read-only"
			 : o->worm    ? "worm"
				      : "preserve");
}

/*
 * git's refs and files (vs_check_refs, but main's history is left to
 * 'hozen verify'): main is the last recorded commit -- or, after a
 * crash, a commit the daemon made just after it and died before
 * recording, whose trailer starts where the last recorded one ended
 * (recovery records it).
 */
static int check_refs(struct hz_fs *fs, struct mount_ctx *m)
{
	char head[41] = "", *msg = NULL;
	const char *main_id = m->scan.main[0] ? m->scan.main : NULL;
	unsigned long long first, last;
	const char *t;
	int rc;

	rc = vs_head(fs->vs, head);
	if (rc < 0)
		return rc;
	if (rc == 0 && m->crashed && (!main_id || strcmp(head, main_id)) &&
	    vs_commit_message(fs->vs, head, &msg) == 0 &&
	    (t = strstr(msg, "Hozen-Records: ")) &&
	    sscanf(t, "Hozen-Records: %llu-%llu", &first, &last) == 2 &&
	    first == m->scan.covered)
		main_id = head;
	free(msg);
	rc = vs_check_refs(fs->vs, main_id,
			   m->scan.versions_named && main_id == m->scan.main
				   ? m->scan.versions
				   : NULL,
			   0, m->findings);
	return rc < 0 ? rc : 0;
}

/*
 * Everything the store holds against the chain, before serving it: the
 * chain and checkpoints, the case, main (the last recorded commit), the
 * live tree (reconciled after a crash).  Fills m; refuses a store that
 * fails unless forced.
 */
static int check_store(struct hz_fs *fs, struct mount_ctx *m, json_t *report)
{
	int rc;

	rc = read_chain(fs, m);
	if (rc < 0)
		return rc;
	if (!hc_findings_count(m->findings)) {
		rc = check_refs(fs, m);
		if (rc == 0)
			rc = check_tree(fs, m);
		if (rc < 0)
			return rc;
	}
	return judge(fs, m, report);
}

int fs_mount(const struct fs_options *opts)
{
	/* Room for records kept on the disk: content is refused first. */
	struct hc_log_options lo = {.flush_ms = 5, .reserve_bytes = 16u << 20};
	struct vs_options vo = {0};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	struct mount_ctx m;
	struct hz_fs fs;
	json_t *report = json_object();
	hc_actor self;
	char *mnt = NULL, *store_abs = NULL, *fsname = NULL;
	int rc, mounted = 0, began = 0, i, ready_fd = -1;

	memset(&fs, 0, sizeof(fs));
	memset(&m, 0, sizeof(m));
	fs.opts = *opts;
	fs.treefd = fs.mountfd = fs.reserve_fd = -1;
	if (!fs.opts.commit_every)
		fs.opts.commit_every = 256;
	if (!fs.opts.commit_ms)
		fs.opts.commit_ms = 1000;
	if (!fs.opts.checkpoint_s)
		fs.opts.checkpoint_s = 60;
	pthread_mutex_init(&fs.cmu, NULL);
	pthread_mutex_init(&fs.mmu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&fs.ccv, &ca);
		pthread_condattr_destroy(&ca);
	}
	hc_actor_self(&self);
	/*
	 * Nothing of the store for anyone else: git's files and every file
	 * hozen makes are the owner's alone.  What the tree holds gets the
	 * mode its record says, set explicitly.
	 */
	umask(077);

	mnt = realpath(opts->mountpoint, NULL);
	if (!mnt) {
		rc = hc_error_set(HC_ESYS, "cannot use mount point '%s'",
				  opts->mountpoint);
		goto out;
	}
	if (!opts->nonempty && not_empty(mnt)) {
		rc = hc_error_set(HC_EINVAL,
				  "the mount point '%s' is not empty: the "
				  "mount would hide what is in it (mount "
				  "--nonempty to do so anyway)",
				  mnt);
		goto out;
	}
	rc = hc_findings_new(&m.findings);
	if (rc == 0)
		rc = case_replay_new(&m.cr);
	if (rc == 0)
		rc = fs_scan_init(&m.scan, m.findings, NULL);
	if (rc == 0 && !(m.given = json_array()))
		rc = hc_error_set(HC_ENOMEM, "out of memory");
	if (rc < 0)
		goto out;
	rc = hc_store_open(&fs.store, fs.opts.store);
	if (rc == 0)
		rc = open_store(&fs, report);
	if (rc < 0)
		goto out;
	fs.treefd = openat(hc_store_fd(fs.store), "tree",
			   O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	fs.mountfd = openat(hc_store_fd(fs.store), "tree",
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fs.treefd < 0 || fs.mountfd < 0) {
		rc = hc_error_set(HC_ESYS, "cannot open the store's tree");
		goto out;
	}
	vo.lfs_threshold = opts->lfs_threshold;
	/* Objects are made durable a batch at a time (vs_sync, commits). */
	vo.fsync = 0;
	rc = vs_open(&fs.vs, hc_store_fd(fs.store), &vo);
	if (rc < 0)
		goto out;
	m.scan.vs = fs.vs;
	m.fs = &fs;
	rc = hz_virt_init(&fs);
	if (rc == 0)
		rc = check_store(&fs, &m, report);
	if (rc < 0)
		goto out;
	/* The model the checks built is the daemon's from now on. */
	fs.model = m.scan.model;
	m.scan.model = NULL;
	reserve_make(&fs);
	rc = hz_nodes_init(&fs);
	if (rc < 0)
		goto out;

	/*
	 * FUSE: the kernel checks permissions; everyone may use the mount;
	 * the store is named in /proc/mounts for fs_unmount.
	 */
	store_abs = realpath(opts->store, NULL);
	if (!store_abs || strchr(store_abs, ',') ||
	    asprintf(&fsname,
		     "default_permissions,allow_other,subtype=hozen,"
		     "fsname=hozen:%s",
		     store_abs) < 0) {
		rc = hc_error_set(HC_EINVAL,
				  "the store's path must exist and have no "
				  "comma");
		goto out;
	}
	if (fuse_opt_add_arg(&args, "hozen") < 0 ||
	    fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, fsname) < 0 ||
	    (opts->debug && fuse_opt_add_arg(&args, "-d") < 0)) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; opts->fuse_args && opts->fuse_args[i]; i++)
		if (fuse_opt_add_arg(&args, "-o") < 0 ||
		    fuse_opt_add_arg(&args, opts->fuse_args[i]) < 0) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
	fs.se = fuse_session_new(&args, &hz_ops, sizeof(hz_ops), &fs);
	if (!fs.se) {
		rc = hc_error_set(HC_EINVAL, "cannot start a FUSE session");
		goto out;
	}
	if (fuse_set_signal_handlers(fs.se) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot set signal handlers");
		goto out;
	}
	if (fuse_session_mount(fs.se, mnt) < 0) {
		rc = hc_error_set(HC_ESYS,
				  "cannot mount on '%s' (is /dev/fuse "
				  "there, and are you root?)",
				  mnt);
		goto out;
	}
	mounted = 1;
	rc = hz_wire_attach(&fs);
	if (rc < 0)
		goto out;
	if (!opts->foreground) {
		openlog("hozen", LOG_PID, LOG_DAEMON);
		fuse_set_log_func(log_syslog);
	}
	/*
	 * Threads start after the fork that daemonizing is; the parent
	 * waits until the daemon is serving (or says why it is not).
	 */
	if (!opts->foreground) {
		rc = daemonize(&ready_fd);
		if (rc != 0) /* the parent: the daemon's word is final */
			goto parent;
	}
	hc_actor_self(&self); /* the daemon, after the fork */
	rc = hc_log_open(&fs.log, hc_store_fd(fs.store), &lo, NULL);
	if (rc < 0)
		goto out;
	rc = recover(&fs, &m, report);
	if (rc < 0)
		goto out;
	snprintf(fs.mountpoint, sizeof(fs.mountpoint), "%s", mnt);
	json_object_set_new(report, "mountpoint", json_string(mnt));
	json_object_set_new(report, "options", options_json(opts));
	json_object_set_new(report, "pid", json_integer(getpid()));
	rc = hz_record(&fs, "mount", &self, report, NULL);
	report = NULL;
	began = rc == 0;
	if (rc == 0)
		rc = hc_log_sync(fs.log, hc_log_size(fs.log) - 1);
	if (rc < 0)
		goto out;
	if (pthread_create(&fs.committer, NULL, committer_main, &fs) == 0)
		fs.committer_running = 1;
	tell_parent(&ready_fd, 0, "");
	fuse_log(FUSE_LOG_NOTICE, "hozen: serving '%s' on '%s'\n", opts->store,
		 mnt);

	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	rc = fuse_session_loop_mt(fs.se, cfg);
	if (rc == -ECONNABORTED) {
		/*
		 * The kernel ends some unmounts by aborting the connection
		 * (readers get ECONNABORTED, not ENODEV); so does an abort
		 * through /sys/fs/fuse/connections.  Either way nothing more
		 * can come: seal what the mount did.
		 */
		fuse_log(FUSE_LOG_NOTICE, "hozen: the kernel ended the "
					  "connection; sealing the store\n");
		rc = 0;
	} else if (rc != 0) {
		errno = rc < 0 ? -rc : EIO;
		rc = hc_error_set(HC_ESYS, "the FUSE session failed");
	}

out:
	if (rc < 0)
		tell_parent(&ready_fd, rc, hc_error_message());
	if (fs.committer_running) {
		pthread_mutex_lock(&fs.cmu);
		fs.commit_stop = 1;
		pthread_cond_broadcast(&fs.ccv);
		pthread_mutex_unlock(&fs.cmu);
		pthread_join(fs.committer, NULL);
	}
	if (mounted)
		fuse_session_unmount(fs.se);
	if (fs.log && began) {
		/*
		 * Everything the mount did: committed, recorded, sealed --
		 * each step even if an earlier one failed, on a full disk
		 * with the room kept for it.
		 */
		int r1 = seal_step(&fs, step_commit, NULL);
		int r2 = seal_step(&fs, step_unmount, mnt ? mnt : (char *)"");
		int r3 = seal_step(&fs, step_checkpoint, NULL);

		if (rc == 0)
			rc = r1 < 0 ? r1 : r2 < 0 ? r2 : r3;
	} else if (fs.log) {
		/*
		 * No session began (recovery failed): no unmount ends it.
		 * What recovery recorded is sealed; the next mount takes it
		 * up again.
		 */
		(void)seal_step(&fs, step_checkpoint, NULL);
	}
	if (fs.se) {
		fuse_remove_signal_handlers(fs.se);
		fuse_session_destroy(fs.se);
	}
	fuse_loop_cfg_destroy(cfg);
	fuse_opt_free_args(&args);
	json_decref(report);
	free(mnt);
	free(store_abs);
	free(fsname);
	mount_ctx_release(&m);
	fs_free(&fs);
	return rc;
parent:
	/*
	 * The mount belongs to the daemon now: this process must neither
	 * unmount it nor destroy the session (which is what frees its
	 * record of the mount point); it keeps it until it exits.
	 */
	parent_session = fs.se;
	fuse_opt_free_args(&args);
	json_decref(report);
	free(mnt);
	free(store_abs);
	free(fsname);
	mount_ctx_release(&m);
	fs_free(&fs);
	return rc < 0 ? rc : 0;
}

/* ----------------------------------------------------------- daemonize */

/*
 * Fork: the child becomes the daemon (new session, /, no terminal) and
 * returns 0 with *fd_out a pipe to the parent; the parent waits for the
 * daemon's word (tell_parent) and returns 1 when it serves, or the
 * daemon's error (message set).
 */
static int daemonize(int *fd_out)
{
	char buf[1024];
	int p[2], null, code = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return hc_error_set(HC_ESYS, "cannot daemonize");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return hc_error_set(HC_ESYS, "cannot daemonize");
	}
	if (pid == 0) {
		close(p[0]);
		if (setsid() < 0 || chdir("/") < 0) {
			/* still a daemon; nothing to do about it */
		}
		null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		*fd_out = p[1];
		return 0;
	}
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	if (n <= 0)
		return hc_error_set(HC_ESYS,
				    "the daemon died before it served the "
				    "mount (see syslog)");
	buf[n] = '\0';
	if (sscanf(buf, "%d", &code) != 1 || code == 0)
		return 1;
	return hc_error_set(code, "%s",
			    strchr(buf, ' ') ? strchr(buf, ' ') + 1 : buf);
}

/* Tell a waiting parent how the start went (once). */
static void tell_parent(int *fd, int code, const char *msg)
{
	char buf[1024];
	int n;

	if (*fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d %s", code, msg);
	if (n > 0 &&
	    write(*fd, buf,
		  (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1) < 0) {
		/* the parent is gone: nobody to tell */
	}
	close(*fd);
	*fd = -1;
}

/* ------------------------------------------------------------- unmount */

/*
 * 1 if the last session of the log in chainfd ended with its unmount
 * record (the last mount or unmount record is an unmount), 0 if not, or
 * a negative code.  Reads only the end of the last segment.
 */
static int last_session_sealed(int chainfd)
{
	char name[32] = "", *buf = NULL, *end, *line;
	struct dirent *de;
	struct stat st;
	off_t from;
	ssize_t n;
	DIR *d;
	int fd, dfd, rc = 0;

	dfd = dup(chainfd);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return hc_error_set(HC_ESYS, "cannot list the chain");
	}
	while ((de = readdir(d)))
		if (strlen(de->d_name) == 24 &&
		    !strcmp(de->d_name + 20, ".log") &&
		    strcmp(de->d_name, name) > 0)
			snprintf(name, sizeof(name), "%s", de->d_name);
	closedir(d);
	fd = name[0] ? openat(chainfd, name,
			      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
		     : -1;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return hc_error_set(HC_ESYS, "cannot read the chain");
	}
	from = st.st_size > (4 << 20) ? st.st_size - (4 << 20) : 0;
	buf = malloc((size_t)(st.st_size - from) + 1);
	n = buf ? pread(fd, buf, (size_t)(st.st_size - from), from) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return hc_error_set(HC_ESYS, "cannot read the chain");
	}
	buf[n] = '\0';
	/* From the last line back: the first mount or unmount decides. */
	for (end = buf + n; end > buf; end = line) {
		json_t *j, *type;

		*end = '\0';
		line = end;
		while (line > buf && line[-1] != '\n')
			line--;
		j = json_loads(line, 0, NULL);
		type = json_object_get(j, "type");
		if (json_is_string(type) &&
		    (!strcmp(json_string_value(type), "unmount") ||
		     !strcmp(json_string_value(type), "mount"))) {
			rc = !strcmp(json_string_value(type), "unmount");
			json_decref(j);
			break;
		}
		json_decref(j);
		if (line > buf)
			line--; /* the newline before */
	}
	free(buf);
	return rc;
}

int fs_unmount(const char *mountpoint, unsigned timeout_s)
{
	struct mntent *me, ment;
	char *mnt = NULL, store[4096] = "", buf[8192];
	struct timespec start, now;
	FILE *f = NULL;
	int fd = -1, rc = 0;

	mnt = realpath(mountpoint, NULL);
	if (!mnt)
		return hc_error_set(HC_ESYS, "cannot use '%s'", mountpoint);
	f = setmntent("/proc/self/mounts", "r");
	if (!f) {
		rc = hc_error_set(HC_ESYS, "cannot read /proc/self/mounts");
		goto out;
	}
	while ((me = getmntent_r(f, &ment, buf, sizeof(buf))))
		if (!strcmp(me->mnt_dir, mnt) &&
		    !strcmp(me->mnt_type, "fuse.hozen") &&
		    !strncmp(me->mnt_fsname, "hozen:", 6))
			snprintf(store, sizeof(store), "%s",
				 me->mnt_fsname + 6);
	if (!store[0]) {
		rc = hc_error_set(HC_ENOENT, "'%s' is not a hozen mount", mnt);
		goto out;
	}
	if (umount2(mnt, 0) < 0) {
		rc = hc_error_set(HC_ESYS,
				  "cannot unmount '%s' (busy? close what "
				  "uses it, or run 'fusermount3 -u')",
				  mnt);
		goto out;
	}
	/* The daemon holds the chain's lock until it has sealed it. */
	fd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		int cfd = openat(fd, "chain", O_RDONLY | O_DIRECTORY);

		close(fd);
		fd = cfd;
	}
	if (fd < 0) {
		rc = hc_error_set(HC_ESYS, "cannot open '%s/chain'", store);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= (time_t)timeout_s) {
			rc = hc_error_set(HC_EBUSY,
					  "the daemon of '%s' is still "
					  "finishing after %u s; see syslog",
					  store, timeout_s);
			goto out;
		}
		usleep(20000);
	}
	/* Sealed means an unmount record ends the last session. */
	rc = last_session_sealed(fd);
	if (rc == 0)
		rc = hc_error_set(HC_EVERIFY,
				  "'%s' is unmounted, but its daemon did not "
				  "seal the store (it was killed or died): "
				  "mount it again to recover and seal it, or "
				  "run 'hozen recover %s'",
				  store, store);
	else if (rc == 1)
		rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (f)
		endmntent(f);
	free(mnt);
	return rc;
}
