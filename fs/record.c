/*
 * record.c - turning filesystem events into chain records: actors, paths,
 * refused attempts, and the one place that maps codes to errno.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "fsint.h"

/* ------------------------------------------------------------- actors */

/*
 * /proc costs two opens per lookup; a process's comm and exe rarely
 * change, so they are cached per pid for a second (a reused pid within a
 * second is the price).
 */
#define ACTOR_SLOTS 256

static struct {
	pid_t pid;
	struct timespec at;
	char comm[64];
	char exe[4096];
} actor_cache[ACTOR_SLOTS];
static pthread_mutex_t actor_mu = PTHREAD_MUTEX_INITIALIZER;

void hz_actor(struct hz_fs *fs, fuse_req_t req, hc_actor *out)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct timespec now;
	size_t slot = (size_t)ctx->pid % ACTOR_SLOTS;
	int hit = 0;

	(void)fs;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&actor_mu);
	if (actor_cache[slot].pid == ctx->pid && ctx->pid > 0 &&
	    now.tv_sec - actor_cache[slot].at.tv_sec < 1) {
		memset(out, 0, sizeof(*out));
		out->uid = ctx->uid;
		out->gid = ctx->gid;
		out->pid = ctx->pid;
		memcpy(out->comm, actor_cache[slot].comm, sizeof(out->comm));
		memcpy(out->exe, actor_cache[slot].exe, sizeof(out->exe));
		hit = 1;
	}
	pthread_mutex_unlock(&actor_mu);
	if (hit)
		return;
	hc_actor_from_pid(out, ctx->pid, ctx->uid, ctx->gid);
	pthread_mutex_lock(&actor_mu);
	actor_cache[slot].pid = ctx->pid;
	actor_cache[slot].at = now;
	memcpy(actor_cache[slot].comm, out->comm, sizeof(out->comm));
	memcpy(actor_cache[slot].exe, out->exe, sizeof(out->exe));
	pthread_mutex_unlock(&actor_mu);
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
	int rc;

	if (!fields)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = hc_log_append(fs->log, type, actor, fields, &app);
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
	      const char *path, int err)
{
	json_t *f = json_pack("{s:s,s:i,s:s}", "op", op, "errno", err, "error",
			      strerrorname_np(err) ? strerrorname_np(err)
						   : "unknown");

	if (f && path)
		hz_json_path(f, "path", path);
	/* A refusal stands even if it cannot be recorded. */
	(void)hz_record(fs, "refused", actor, f, NULL);
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
