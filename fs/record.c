/*
 * record.c - turning filesystem events into chain records: actors, paths,
 * refused and failed acts, and the one place that maps codes to errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fsint.h"

/* ------------------------------------------------------------- actors */

/*
 * The actor of a request is read from /proc when the request comes:
 * the process may have exec'd, renamed itself or a thread, or died and
 * its pid been reused since its last request.  To keep that cheap, the
 * thread's /proc/TID/comm and the process's /proc/PID/comm stay open per
 * thread id: an open /proc file belongs to its task, so reading it again
 * gives that task's current name, and fails (ESRCH) once the task is gone
 * -- a reused pid is another task and gets files of its own.  exe is
 * read every time (exec changes it and nothing tells).
 */
#define ACTOR_SLOTS 256

static struct actor_slot {
	pthread_mutex_t mu;
	pid_t tid;  /* 0: empty */
	pid_t tgid; /* its process */
	int tfd;    /* /proc/TID/comm */
	int pfd;    /* /proc/TGID/comm (tgid != tid), else -1 */
} actor_cache[ACTOR_SLOTS];
static pthread_once_t actor_once = PTHREAD_ONCE_INIT;

static void actor_init(void)
{
	size_t i;

	for (i = 0; i < ACTOR_SLOTS; i++) {
		pthread_mutex_init(&actor_cache[i].mu, NULL);
		actor_cache[i].tfd = actor_cache[i].pfd = -1;
	}
}

static void slot_close(struct actor_slot *s)
{
	if (s->tfd >= 0)
		close(s->tfd);
	if (s->pfd >= 0)
		close(s->pfd);
	s->tfd = s->pfd = -1;
	s->tid = s->tgid = 0;
}

static int proc_open(pid_t pid, const char *what)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* A comm file read again from its start; -1 if its task is gone. */
static int comm_read(int fd, char *out, size_t n)
{
	ssize_t len = pread(fd, out, n - 1, 0);

	if (len <= 0) {
		out[0] = '\0';
		return -1;
	}
	out[len] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* Fill out from slot s for tid (s->mu held); -1 to open it again. */
static int slot_read(struct actor_slot *s, pid_t tid, hc_actor *out)
{
	char path[64];
	ssize_t len;

	if (s->tid != tid || s->tfd < 0)
		return -1;
	if (s->tgid == tid) {
		if (comm_read(s->tfd, out->comm, sizeof(out->comm)) < 0)
			return -1;
		out->pid = tid;
	} else {
		if (comm_read(s->tfd, out->thread, sizeof(out->thread)) < 0 ||
		    s->pfd < 0 ||
		    comm_read(s->pfd, out->comm, sizeof(out->comm)) < 0)
			return -1;
		out->pid = s->tgid;
		out->tid = tid;
	}
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)out->pid);
	len = readlink(path, out->exe, sizeof(out->exe) - 1);
	out->exe[len > 0 ? len : 0] = '\0';
	return 0;
}

void hz_actor(struct hz_fs *fs, fuse_req_t req, hc_actor *out)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	pid_t tid = ctx->pid;
	struct actor_slot *s;

	(void)fs;
	memset(out, 0, sizeof(*out));
	out->uid = ctx->uid;
	out->gid = ctx->gid;
	out->pid = tid;
	if (tid <= 0)
		return; /* the kernel itself: no process */
	pthread_once(&actor_once, actor_init);
	s = &actor_cache[(size_t)tid % ACTOR_SLOTS];
	pthread_mutex_lock(&s->mu);
	if (slot_read(s, tid, out) < 0) {
		slot_close(s);
		/* The files first, then the process: never a stale tgid. */
		s->tfd = proc_open(tid, "comm");
		s->tgid = hc_proc_tgid(tid);
		if (s->tgid > 0 && s->tgid != tid)
			s->pfd = proc_open(s->tgid, "comm");
		s->tid = tid;
		memset(out, 0, sizeof(*out));
		out->uid = ctx->uid;
		out->gid = ctx->gid;
		out->pid = tid;
		if (s->tgid <= 0 || slot_read(s, tid, out) < 0) {
			/* Gone already: what the request says is all. */
			slot_close(s);
			memset(out->comm, 0, sizeof(out->comm));
			memset(out->thread, 0, sizeof(out->thread));
			out->exe[0] = '\0';
			out->pid = tid;
			out->tid = 0;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

/* -------------------------------------------------------------- paths */

int hz_json_path(json_t *fields, const char *key, const char *path)
{
	json_t *s = json_string(path);
	char b64key[64];
	unsigned char *b64;
	size_t n;
	int rc;

	if (s)
		return json_object_set_new(fields, key, s) ? HC_ENOMEM : 0;
	/* Not UTF-8: keep the bytes exactly, in base64, under KEY_b64. */
	n = strlen(path);
	b64 = malloc(4 * ((n + 2) / 3) + 1);
	if (!b64)
		return HC_ENOMEM;
	EVP_EncodeBlock(b64, (const unsigned char *)path, (int)n);
	snprintf(b64key, sizeof(b64key), "%s_b64", key);
	rc = json_object_set_new(fields, b64key, json_string((char *)b64));
	free(b64);
	return rc ? HC_ENOMEM : 0;
}

char *hz_fid_path(struct hz_fs *fs, uint64_t fid)
{
	char **paths = NULL, *p = NULL;

	pthread_mutex_lock(&fs->mmu);
	if (tm_paths(fs->model, fid, &paths) == 0 && paths[0])
		p = strdup(paths[0]);
	pthread_mutex_unlock(&fs->mmu);
	tm_paths_free(paths);
	return p;
}

int hz_json_file(json_t *fields, struct hz_fs *fs, uint64_t fid)
{
	char *path;
	int rc = 0;

	if (fid == TM_NONE)
		return 0;
	path = hz_fid_path(fs, fid);
	if (path)
		rc = hz_json_path(fields, "path", path);
	free(path);
	if (rc == 0 &&
	    json_object_set_new(fields, "fid", json_integer((json_int_t)fid)))
		rc = HC_ENOMEM;
	return rc;
}

/* ------------------------------------------------------------ records */

/* The time of this thread's last record (hz_record_time). */
static _Thread_local char last_time[40];

const char *hz_record_time(void)
{
	return last_time;
}

int hz_record(struct hz_fs *fs, const char *type, const hc_actor *actor,
	      json_t *fields, uint64_t *seq_out)
{
	struct hc_appended app;
	json_t *rec;
	int rc;

	if (!fields)
		return hc_error_set(HC_ENOMEM, "out of memory");
	/*
	 * The model follows the chain record by record, in its order, so
	 * that it is what a verifier replaying the chain gets.
	 */
	pthread_mutex_lock(&fs->mmu);
	rc = hc_log_append(fs->log, type, actor, fields, &app);
	if (rc == 0 && fs->model) {
		/* tm_apply reads the members the record has after the
		 * common ones; those are what fields holds. */
		rec = fields;
		if (tm_apply(fs->model, app.seq, type, rec, "", NULL) ==
		    HC_ENOMEM)
			fuse_log(FUSE_LOG_ERR,
				 "hozen: out of memory following record "
				 "%llu in the model\n",
				 (unsigned long long)app.seq);
	}
	pthread_mutex_unlock(&fs->mmu);
	json_decref(fields);
	if (rc == 0)
		memcpy(last_time, app.time, sizeof(last_time));
	if (rc == 0 && seq_out)
		*seq_out = app.seq;
	if (rc < 0)
		fuse_log(FUSE_LOG_ERR, "hozen: cannot record '%s': %s\n", type,
			 hc_error_message());
	return rc;
}

int hz_refuse(struct hz_fs *fs, const hc_actor *actor, const char *op,
	      const char *path, uint64_t fid, int err)
{
	json_t *f = json_pack("{s:s,s:i,s:s}", "op", op, "errno", err, "error",
			      strerrorname_np(err) ? strerrorname_np(err)
						   : "unknown");

	if (f && path)
		hz_json_path(f, "path", path);
	if (f && fid != TM_NONE)
		json_object_set_new(f, "fid", json_integer((json_int_t)fid));
	/* A refusal stands even if it cannot be recorded. */
	(void)hz_record(fs, "refused", actor, f, NULL);
	return -err;
}

int hz_failed(struct hz_fs *fs, const hc_actor *actor, uint64_t of,
	      const char *op, int err, const char *path, const char *to,
	      uint64_t fid)
{
	json_t *f = json_pack("{s:I,s:s,s:i,s:s}", "of", (json_int_t)of, "op",
			      op, "errno", err, "error",
			      strerrorname_np(err) ? strerrorname_np(err)
						   : "unknown");
	int rc;

	if (f && path)
		hz_json_path(f, "path", path);
	if (f && to)
		hz_json_path(f, "to", to);
	if (f && fid != TM_NONE)
		json_object_set_new(f, "fid", json_integer((json_int_t)fid));
	rc = hz_record(fs, "failed", actor, f, NULL);
	if (rc < 0)
		/* The act did not happen, and the chain says it did. */
		fuse_log(FUSE_LOG_ERR,
			 "hozen: record %llu's act failed and that cannot be "
			 "recorded: %s\n",
			 (unsigned long long)of, hc_error_message());
	return -err;
}

int hz_errno(int code)
{
	switch (code) {
	case HC_OK:
		return 0;
	case HC_ESYS: {
		int e = hc_error_errno();

		return -(e ? e : EIO);
	}
	case HC_ENOMEM:
		return -ENOMEM;
	case HC_ENOENT:
		return -ENOENT;
	case HC_EEXIST:
		return -EEXIST;
	case HC_EBUSY:
		return -EBUSY;
	case HC_EINVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}
