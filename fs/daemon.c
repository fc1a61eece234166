/*
 * daemon.c - fs_mount: recovery and verification before mounting, the
 * FUSE session, the committer, and the orderly unmount.
 */
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
		if (vs_staged(fs->vs) > 0 && hz_commit(fs, "interval") < 0)
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

/* ----------------------------------------------------------- recovery */

/*
 * Replay the chain to find what a crash left behind: versions recorded
 * after the last commit (in git, not yet committed) and files written
 * after their last version (never versioned).  state maps a path to
 * {"blob", "mode", "dirty", "seq"}.
 */
static int replay_state(struct hz_fs *fs, json_t *state, json_t *versions,
			json_t *renames, uint64_t *committed,
			char last_commit[41])
{
	hc_reader *r = NULL;
	hc_record rec;
	int rc;

	memset(&rec, 0, sizeof(rec));
	*committed = 0;
	rc = hc_reader_open(&r, hc_store_fd(fs->store));
	if (rc < 0)
		return rc;
	while ((rc = hc_reader_next(r, &rec)) == 1) {
		const char *path =
			json_string_value(json_object_get(rec.json, "path"));
		json_t *e;

		if (!strcmp(rec.type, "commit")) {
			const char *id = json_string_value(
				json_object_get(rec.json, "commit"));

			snprintf(last_commit, 41, "%s", id ? id : "");
			/* It covers records up to its "last". */
			*committed =
				(uint64_t)json_integer_value(
					json_object_get(rec.json, "last")) +
				1;
			continue;
		}
		if (!path)
			continue;
		e = json_object_get(state, path);
		if (!strcmp(rec.type, "version")) {
			json_object_set_new(
				state, path,
				json_pack("{s:O,s:b,s:I}", "blob",
					  json_object_get(rec.json, "blob"),
					  "dirty", 0, "seq",
					  (json_int_t)rec.seq));
			/* Every version, in order: all must stay reachable. */
			json_array_append_new(
				versions,
				json_pack("{s:s,s:O,s:I}", "path", path, "blob",
					  json_object_get(rec.json, "blob"),
					  "seq", (json_int_t)rec.seq));
		} else if (!strcmp(rec.type, "write") ||
			   !strcmp(rec.type, "create") ||
			   (!strcmp(rec.type, "open") &&
			    (json_integer_value(
				     json_object_get(rec.json, "flags")) &
			     O_TRUNC)) ||
			   !strcmp(rec.type, "fallocate") ||
			   (!strcmp(rec.type, "setattr") &&
			    json_object_get(rec.json, "size"))) {
			if (!e) {
				e = json_object();
				json_object_set_new(state, path, e);
			}
			json_object_set_new(e, "dirty", json_true());
		} else if (!strcmp(rec.type, "unlink")) {
			json_object_del(state, path);
		} else if (!strcmp(rec.type, "rename") &&
			   json_is_string(json_object_get(rec.json, "to"))) {
			/* Applied after the replay, once committed is known. */
			json_array_append_new(
				renames,
				json_pack("{s:s,s:O,s:O,s:I}", "path", path,
					  "to", json_object_get(rec.json, "to"),
					  "flags",
					  json_object_get(rec.json, "flags"),
					  "seq", (json_int_t)rec.seq));
		}
	}
	hc_record_release(&rec);
	hc_reader_free(r);
	return rc;
}

/* fstatat for paths of any length, without following a last symlink. */
static int stat_long(int dirfd, const char *path, struct stat *st)
{
	int fd = hz_openat_long(dirfd, path, O_PATH | O_NOFOLLOW), rc;

	if (fd < 0)
		return -1;
	rc = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	close(fd);
	return rc;
}

/*
 * A commit the daemon made but died before recording: record it now (its
 * message names its records), so that every commit of main is in the
 * chain and the next commit's range starts after it.
 */
static int orphan_commit(struct hz_fs *fs, const char *last_recorded,
			 uint64_t *committed, const hc_actor *self)
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
	    last + 1 > *committed) {
		rc = hz_record(fs, "commit", self,
			       json_pack("{s:s,s:I,s:I,s:s}", "commit", head,
					 "first", (json_int_t)first, "last",
					 (json_int_t)last, "why", "recovered"),
			       NULL);
		if (rc == 0)
			*committed = last + 1;
	}
	free(msg);
	return rc;
}

/*
 * Store path's live content again, hoping it is blob; 0 if it was, 1 if
 * the version is lost (recorded as such).
 */
static int restore_blob(struct hz_fs *fs, const char *path, const char *blob,
			const hc_actor *self)
{
	struct vs_version v;
	struct stat st;
	int fd, rc;

	fd = hz_openat_long(fs->treefd, path, O_RDONLY | O_NOFOLLOW);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		rc = vs_store_fd(fs->vs, fd, (uint64_t)st.st_size, NULL, &v);
		close(fd);
		if (rc < 0)
			return rc;
		if (!strcmp(v.blob, blob))
			return 0;
	} else if (fd >= 0) {
		close(fd);
	}
	rc = hz_record(fs, "version-lost", self,
		       json_pack("{s:s,s:s}", "path", path, "blob", blob),
		       NULL);
	return rc < 0 ? rc : 1;
}

/* Version dirty files, stage uncommitted versions, commit. */
/* Move the entries of state at from (and below it) to to. */
static int move_state(json_t *state, const char *from, const char *to)
{
	json_t *moved = json_object();
	size_t len = strlen(from);
	const char *key;
	void *tmp;
	json_t *v;
	char *nk;

	if (!moved)
		return hc_error_set(HC_ENOMEM, "out of memory");
	json_object_foreach_safe(state, tmp, key, v)
	{
		if (strncmp(key, from, len) || (key[len] && key[len] != '/'))
			continue;
		if (asprintf(&nk, "%s%s", to, key + len) < 0) {
			json_decref(moved);
			return hc_error_set(HC_ENOMEM, "out of memory");
		}
		json_object_set(moved, nk, v);
		free(nk);
		json_object_del(state, key);
	}
	json_object_update(state, moved);
	json_decref(moved);
	return 0;
}

/*
 * The renames since the last commit: the snapshot must show the new
 * names (staged from the live tree, as the daemon does when it renames),
 * and what was written under the old name is dirty under the new one.
 */
static int recover_renames(struct hz_fs *fs, json_t *state, json_t *renames,
			   uint64_t committed, size_t *count)
{
	struct stat st;
	size_t i;
	json_t *e;
	int rc = 0;

	json_array_foreach(renames, i, e)
	{
		const char *from =
			json_string_value(json_object_get(e, "path"));
		const char *to = json_string_value(json_object_get(e, "to"));
		json_int_t flags =
			json_integer_value(json_object_get(e, "flags"));

		if (json_integer_value(json_object_get(e, "seq")) <
			    (json_int_t)committed ||
		    !from || !to)
			continue;
		if (flags & RENAME_EXCHANGE) {
			rc = move_state(state, from, "\x01");
			if (rc == 0)
				rc = move_state(state, to, from);
			if (rc == 0)
				rc = move_state(state, "\x01", to);
		} else {
			rc = move_state(state, from, to);
		}
		if (rc == 0 && stat_long(fs->treefd, from, &st) < 0)
			rc = vs_stage_remove(fs->vs, from);
		if (rc == 0 && stat_long(fs->treefd, to, &st) == 0)
			rc = hz_restage_path(fs, to);
		if (rc == 0 && (flags & RENAME_EXCHANGE) &&
		    stat_long(fs->treefd, from, &st) == 0)
			rc = hz_restage_path(fs, from);
		if (rc < 0)
			return rc;
		(*count)++;
	}
	return 0;
}

static int recover_versions(struct hz_fs *fs, json_t *report)
{
	json_t *state = json_object(), *versions = json_array(), *e;
	json_t *renames = json_array();
	size_t nrenames = 0;
	char last_commit[41] = "";
	uint64_t committed;
	size_t i, lost = 0;
	const char *path;
	size_t staged = 0, versioned = 0, jblobs = 0;
	uint64_t jtorn = 0;
	hc_actor self;
	int rc;

	hc_actor_self(&self);
	vs_journal_replayed(fs->vs, &jblobs, &jtorn);
	if (jblobs || jtorn) {
		/* Content of versions not yet committed when it stopped. */
		json_object_set_new(report, "journal_blobs",
				    json_integer((json_int_t)jblobs));
		if (jtorn)
			json_object_set_new(report, "journal_torn_bytes",
					    json_integer((json_int_t)jtorn));
		fuse_log(FUSE_LOG_NOTICE,
			 "hozen: read %zu uncommitted blob(s) back from the "
			 "journal%s\n",
			 jblobs,
			 jtorn ? "; its torn tail is kept aside in "
				 "git/hozen-journal.torn-*"
			       : "");
	}
	rc = replay_state(fs, state, versions, renames, &committed,
			  last_commit);
	if (rc < 0)
		goto out;
	rc = orphan_commit(fs, last_commit, &committed, &self);
	if (rc < 0)
		goto out;
	fs->commit_first = committed;
	/* Versions in git but in no commit: stage each, oldest first. */
	json_array_foreach(versions, i, e)
	{
		const char *vpath =
			json_string_value(json_object_get(e, "path"));
		const char *blob =
			json_string_value(json_object_get(e, "blob"));
		json_t *last = json_object_get(state, vpath);
		struct stat st;

		if (json_integer_value(json_object_get(e, "seq")) <
			    (json_int_t)committed ||
		    !vpath || !blob)
			continue;
		if (!vs_has(fs->vs, blob)) {
			/*
			 * Its object was not yet synced when the daemon died:
			 * the tree still has it if the file is unchanged.
			 */
			rc = restore_blob(fs, vpath, blob, &self);
			if (rc == 1) {
				lost++;
				rc = 0;
				continue;
			}
			if (rc < 0)
				goto out;
		}
		/* A file gone since is only kept, not put in the snapshot. */
		rc = vs_stage(fs->vs, vpath, blob,
			      stat_long(fs->treefd, vpath, &st) == 0 &&
					      (st.st_mode & 0111)
				      ? 0100755
				      : 0100644);
		if (rc == 0 && (!last || stat_long(fs->treefd, vpath, &st) < 0))
			rc = vs_stage_remove(fs->vs, vpath);
		if (rc < 0)
			goto out;
		staged++;
	}
	rc = recover_renames(fs, state, renames, committed, &nrenames);
	if (rc < 0)
		goto out;
	json_object_foreach(state, path, e)
	{
		struct vs_version v;
		struct stat st;
		char hex[HC_HEX_LEN + 1];
		int fd;

		if (json_is_true(json_object_get(e, "dirty"))) {
			/* Written, never versioned: version it now. */
			fd = hz_openat_long(fs->treefd, path,
					    O_RDONLY | O_NOFOLLOW);
			if (fd < 0 || fstat(fd, &st) < 0 ||
			    !S_ISREG(st.st_mode)) {
				if (fd >= 0)
					close(fd);
				continue; /* gone since: its records say */
			}
			rc = vs_store_fd(fs->vs, fd, (uint64_t)st.st_size, NULL,
					 &v);
			close(fd);
			if (rc == 0)
				rc = vs_stage(fs->vs, path, v.blob,
					      (st.st_mode & 0111) ? 0100755
								  : 0100644);
			if (rc < 0)
				goto out;
			hc_hex(v.sha256, HC_HASH_LEN, hex);
			rc = hz_record(
				fs, "version", &self,
				json_pack("{s:s,s:I,s:I,s:s,s:s,s:b,s:s}",
					  "path", path, "ino",
					  (json_int_t)st.st_ino, "size",
					  (json_int_t)v.size, "sha256", hex,
					  "blob", v.blob, "lfs", v.lfs, "why",
					  "recovery"),
				NULL);
			if (rc < 0)
				goto out;
			versioned++;
		}
	}
	json_object_set_new(report, "versioned",
			    json_integer((json_int_t)versioned));
	json_object_set_new(report, "restaged",
			    json_integer((json_int_t)staged));
	if (lost)
		json_object_set_new(report, "lost",
				    json_integer((json_int_t)lost));
	if (nrenames)
		json_object_set_new(report, "renames",
				    json_integer((json_int_t)nrenames));
	if (versioned || staged || nrenames) {
		fuse_log(FUSE_LOG_NOTICE,
			 "hozen: recovered %zu unversioned file(s) and %zu "
			 "uncommitted version(s)\n",
			 versioned, staged);
		rc = hz_commit(fs, "recovery");
	}
out:
	json_decref(state);
	json_decref(versions);
	json_decref(renames);
	return rc;
}

/* --------------------------------------------------------------- mount */

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

static int step_unmount(struct hz_fs *fs, void *arg)
{
	hc_actor self;

	hc_actor_self(&self);
	return hz_record(fs, "unmount", &self,
			 json_pack("{s:s}", "mountpoint", (const char *)arg),
			 NULL);
}

static int step_checkpoint(struct hz_fs *fs, void *arg)
{
	(void)arg;
	return checkpoint(fs);
}

static int open_store(struct hz_fs *fs, json_t *report)
{
	struct hc_verify_options vo = {.allow_unsealed = 1};
	struct hc_recover_report rrep;
	struct hc_verify_report vrep;
	hc_actor self;
	int rc;

	hc_actor_self(&self);
	rc = hc_store_open(&fs->store, fs->opts.store);
	if (rc == 0)
		rc = hc_store_origin(fs->store, &fs->origin);
	if (rc == 0)
		rc = hc_store_private_key(fs->store, fs->opts.passphrase,
					  &fs->key);
	if (rc < 0)
		return rc;
	/* A crash may have left a torn line or an unwritten checkpoint. */
	rc = hc_store_recover(fs->store, fs->key, &self, &rrep);
	if (rc == HC_EVERIFY && fs->opts.force) {
		json_object_set_new(report, "forced",
				    json_string(hc_error_message()));
		rc = 0;
	}
	if (rc == HC_EVERIFY || rc == HC_EFORMAT)
		return hc_error_prefix(rc, "cannot recover the store (mount "
					   "--force to mount it anyway)");
	if (rc < 0)
		return rc; /* e.g. HC_EBUSY: it is mounted already */
	rc = load_order(fs, report);
	if (rc < 0)
		return rc;
	if (rrep.torn)
		json_object_set_new(report, "torn",
				    json_pack("{s:I,s:s}", "bytes",
					      (json_int_t)rrep.torn_bytes,
					      "saved", rrep.torn_saved));
	rc = hc_verify_store(fs->store, &vo, &vrep);
	if (rc < 0)
		return rc;
	if (vrep.verdict != HC_VALID) {
		if (!fs->opts.force)
			return hc_error_set(HC_EVERIFY,
					    "the store fails verification at "
					    "%s: %s; 'hozen verify' shows why "
					    "(mount --force mounts it anyway, "
					    "and records that)",
					    vrep.where, vrep.reason);
		json_object_set_new(report, "forced",
				    json_pack("{s:s,s:s}", "where", vrep.where,
					      "reason", vrep.reason));
	}
	return 0;
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
	if (fs->treefd >= 0)
		close(fs->treefd);
	if (fs->mountfd >= 0)
		close(fs->mountfd);
	hc_store_free(fs->store);
	pthread_mutex_destroy(&fs->cmu);
	pthread_cond_destroy(&fs->ccv);
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

int fs_mount(const struct fs_options *opts)
{
	struct hc_log_options lo = {.flush_ms = 5};
	struct vs_options vo = {0};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	struct hz_fs fs;
	json_t *report = json_object();
	hc_actor self;
	char *mnt = NULL, *store_abs = NULL, *fsname = NULL;
	int rc, mounted = 0, i, ready_fd = -1;

	memset(&fs, 0, sizeof(fs));
	fs.opts = *opts;
	fs.treefd = fs.mountfd = fs.reserve_fd = -1;
	if (!fs.opts.commit_every)
		fs.opts.commit_every = 256;
	if (!fs.opts.commit_ms)
		fs.opts.commit_ms = 1000;
	if (!fs.opts.checkpoint_s)
		fs.opts.checkpoint_s = 60;
	pthread_mutex_init(&fs.cmu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&fs.ccv, &ca);
		pthread_condattr_destroy(&ca);
	}
	hc_actor_self(&self);
	umask(0);

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
	reserve_make(&fs);
	rc = hz_nodes_init(&fs);
	if (rc < 0)
		goto out;
	vo.lfs_threshold = opts->lfs_threshold;
	/* Objects are made durable a batch at a time (vs_sync, commits). */
	vo.fsync = 0;
	rc = vs_open(&fs.vs, hc_store_fd(fs.store), &vo);
	if (rc == 0)
		rc = hz_virt_init(&fs);
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
	mnt = realpath(opts->mountpoint, NULL);
	if (!mnt) {
		rc = hc_error_set(HC_ESYS, "cannot use mount point '%s'",
				  opts->mountpoint);
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
	rc = recover_versions(&fs, report);
	if (rc == 0)
		rc = hz_virt_load(&fs); /* /.hozen/versions */
	if (rc < 0)
		goto out;
	snprintf(fs.mountpoint, sizeof(fs.mountpoint), "%s", mnt);
	json_object_set_new(report, "mountpoint", json_string(mnt));
	json_object_set_new(report, "options", options_json(opts));
	json_object_set_new(report, "pid", json_integer(getpid()));
	rc = hz_record(&fs, "mount", &self, report, NULL);
	report = NULL;
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
	if (fs.log) {
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
out:
	if (fd >= 0)
		close(fd);
	if (f)
		endmntent(f);
	free(mnt);
	return rc;
}
