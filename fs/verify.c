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
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "fsint.h"

struct fv {
	hc_store *store;
	int treefd;
	vs_repo *vs;
	struct fs_verify_report *rep;
	hc_findings *findings;
	json_t *state;	 /* path -> {"sha256", "size", "seq"} */
	json_t *missing; /* blob -> seq: not in git, unless declared lost */
};

__attribute__((format(printf, 4, 5))) static void
fv_fail(struct fv *v, int64_t seq, const char *where, const char *fmt, ...)
{
	va_list ap;

	if (!v->rep->ok)
		return;
	v->rep->ok = 0;
	v->rep->fail_seq = seq;
	snprintf(v->rep->where, sizeof(v->rep->where), "%s", where);
	va_start(ap, fmt);
	vsnprintf(v->rep->reason, sizeof(v->rep->reason), fmt, ap);
	va_end(ap);
	hc_findings_add(v->findings, seq, 0, where, "%s", v->rep->reason);
}

/* Move every state entry at from or below it to to. */
static void move_prefix(json_t *state, const char *from, const char *to)
{
	size_t n = strlen(from);
	json_t *moved = json_object(), *e;
	const char *path;
	void *tmp;

	json_object_foreach_safe(state, tmp, path, e)
	{
		if (strncmp(path, from, n) || (path[n] && path[n] != '/'))
			continue;
		{
			char *np;

			if (asprintf(&np, "%s%s", to, path + n) < 0)
				continue;
			json_object_set(moved, np, e);
			free(np);
		}
		json_object_del(state, path);
	}
	json_object_update(state, moved);
	json_decref(moved);
}

static void remove_prefix(json_t *state, const char *from)
{
	size_t n = strlen(from);
	const char *path;
	json_t *e;
	void *tmp;

	json_object_foreach_safe(state, tmp, path, e)
	{
		(void)e;
		if (!strncmp(path, from, n) && (!path[n] || path[n] == '/'))
			json_object_del(state, path);
	}
}

static int check_version(struct fv *v, const hc_record *rec, const char *where)
{
	const char *blob =
		json_string_value(json_object_get(rec->json, "blob"));
	const char *hex =
		json_string_value(json_object_get(rec->json, "sha256"));
	json_t *size = json_object_get(rec->json, "size");
	uint8_t sha[HC_HASH_LEN];
	int rc;

	if (!blob || !hex || !json_is_integer(size) ||
	    hc_unhex(hex, sha, HC_HASH_LEN) < 0) {
		fv_fail(v, (int64_t)rec->seq, where,
			"version record lacks blob, size or sha256");
		return 0;
	}
	rc = vs_check_version(v->vs, blob, (uint64_t)json_integer_value(size),
			      sha,
			      json_is_true(json_object_get(rec->json, "lfs")));
	if (rc == HC_ENOENT) {
		/* Allowed only if a later version-lost record says so. */
		json_object_set_new(v->missing, blob,
				    json_integer((json_int_t)rec->seq));
		return 0;
	}
	if (rc == HC_EVERIFY || rc == HC_EFORMAT) {
		fv_fail(v, (int64_t)rec->seq, where, "version %s: %s", blob,
			hc_error_message());
		return 0;
	}
	v->rep->versions++;
	return rc;
}

static int check_commit(struct fv *v, const hc_record *rec, const char *where)
{
	const char *id =
		json_string_value(json_object_get(rec->json, "commit"));
	json_int_t first =
		json_integer_value(json_object_get(rec->json, "first"));
	json_int_t last =
		json_integer_value(json_object_get(rec->json, "last"));
	char trailer[96];
	char *msg = NULL;
	int rc;

	if (!id) {
		fv_fail(v, (int64_t)rec->seq, where,
			"commit record names no commit");
		return 0;
	}
	rc = vs_commit_message(v->vs, id, &msg);
	if (rc == HC_ENOENT || rc == HC_EFORMAT) {
		fv_fail(v, (int64_t)rec->seq, where, "commit %s: %s", id,
			hc_error_message());
		return 0;
	}
	if (rc < 0)
		return rc;
	snprintf(trailer, sizeof(trailer),
		 "Hozen-Records: %" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT
		 "\n",
		 first, last);
	if (!strstr(msg, trailer) || last >= (json_int_t)rec->seq)
		fv_fail(v, (int64_t)rec->seq, where,
			"commit %s does not cover records %" JSON_INTEGER_FORMAT
			"..%" JSON_INTEGER_FORMAT " as the chain says",
			id, first, last);
	free(msg);
	v->rep->commits++;
	return 0;
}

/* Track what the chain says each live path holds. */
static void track(struct fv *v, const hc_record *rec)
{
	const char *path =
		json_string_value(json_object_get(rec->json, "path"));
	const char *to = json_string_value(json_object_get(rec->json, "to"));

	if (!path)
		return;
	if (!strcmp(rec->type, "version")) {
		json_object_set_new(
			v->state, path,
			json_pack("{s:O,s:O,s:I}", "sha256",
				  json_object_get(rec->json, "sha256"), "size",
				  json_object_get(rec->json, "size"), "seq",
				  (json_int_t)rec->seq));
	} else if (!strcmp(rec->type, "write") ||
		   !strcmp(rec->type, "create") ||
		   (!strcmp(rec->type, "open") &&
		    (json_integer_value(json_object_get(rec->json, "flags")) &
		     O_TRUNC)) ||
		   !strcmp(rec->type, "fallocate") ||
		   (!strcmp(rec->type, "setattr") &&
		    json_object_get(rec->json, "size"))) {
		json_t *e = json_object_get(v->state, path);

		/* Changed since its version: the next version says. */
		if (e)
			json_object_set_new(e, "pending", json_true());
		else
			json_object_set_new(v->state, path,
					    json_pack("{s:b}", "pending", 1));
	} else if (!strcmp(rec->type, "unlink") ||
		   !strcmp(rec->type, "rmdir")) {
		remove_prefix(v->state, path);
	} else if (!strcmp(rec->type, "rename") && to) {
		json_int_t flags =
			json_integer_value(json_object_get(rec->json, "flags"));

		if (flags & 2 /* RENAME_EXCHANGE */) {
			move_prefix(v->state, path, "\x01swap");
			move_prefix(v->state, to, path);
			move_prefix(v->state, "\x01swap", to);
		} else {
			remove_prefix(v->state, to);
			move_prefix(v->state, path, to);
		}
	}
}

/* The live tree holds what the chain's last versions say. */
static int check_tree(struct fv *v)
{
	const char *path;
	json_t *e;
	char where[512];

	json_object_foreach(v->state, path, e)
	{
		const char *hex =
			json_string_value(json_object_get(e, "sha256"));
		uint8_t want[HC_HASH_LEN], got[HC_HASH_LEN];
		hc_sha256_ctx *c = NULL;
		char buf[1 << 16];
		struct stat st;
		ssize_t n;
		int fd, rc;

		if (json_is_true(json_object_get(e, "pending")) || !hex)
			continue; /* written after its last version */
		if (v->treefd < 0) {
			fv_fail(v,
				json_integer_value(json_object_get(e, "seq")),
				"tree", "the store has no live tree ('tree/')");
			return 0;
		}
		snprintf(where, sizeof(where), "tree/%.500s", path);
		fd = hz_openat_long(v->treefd, path, O_RDONLY | O_NOFOLLOW);
		if (fd < 0 && errno == ELOOP)
			continue; /* a symlink: its target is its blob */
		if (fd < 0) {
			fv_fail(v,
				json_integer_value(json_object_get(e, "seq")),
				where,
				"the chain's last version of '%s' is not in "
				"the live tree",
				path);
			return 0;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		rc = hc_sha256_new(&c);
		while (rc == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			rc = hc_sha256_update(c, buf, (size_t)n);
		if (rc == 0)
			rc = hc_sha256_final(c, got);
		hc_sha256_free(c);
		close(fd);
		if (rc < 0)
			return rc;
		if (hc_unhex(hex, want, HC_HASH_LEN) < 0 ||
		    memcmp(want, got, HC_HASH_LEN)) {
			fv_fail(v,
				json_integer_value(json_object_get(e, "seq")),
				where,
				"'%s' differs from its last version in the "
				"chain (changed behind the filesystem?)",
				path);
			return 0;
		}
		v->rep->files++;
	}
	return 0;
}

int fs_verify(const char *store, hc_findings *findings,
	      struct fs_verify_report *out)
{
	struct fs_verify_report rep;
	struct fv v;
	hc_reader *r = NULL;
	hc_record rec;
	int rc;

	memset(&rep, 0, sizeof(rep));
	memset(&v, 0, sizeof(v));
	memset(&rec, 0, sizeof(rec));
	rep.ok = 1;
	rep.fail_seq = -1;
	v.rep = &rep;
	v.findings = findings;
	v.state = json_object();
	v.missing = json_object();
	v.treefd = -1;
	rc = hc_store_open(&v.store, store);
	if (rc == 0) {
		v.treefd =
			openat(hc_store_fd(v.store), "tree",
			       O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* A copy of a store may lack empty directories (git does). */
		if (v.treefd < 0 && errno != ENOENT)
			rc = hc_error_set(HC_ESYS, "cannot open 'tree'");
	}
	if (rc == 0)
		rc = vs_open_existing(&v.vs, hc_store_fd(v.store));
	if (rc == HC_ENOENT)
		rc = 0; /* never mounted; unless the chain says otherwise */
	if (rc == 0)
		rc = hc_reader_open(&r, hc_store_fd(v.store));
	if (rc < 0)
		goto out;
	while (rep.ok && (rc = hc_reader_next(r, &rec)) == 1) {
		const char *where = hc_reader_where(r);

		if (!v.vs && (!strcmp(rec.type, "version") ||
			      !strcmp(rec.type, "commit"))) {
			fv_fail(&v, (int64_t)rec.seq, where,
				"the chain names a %s but the store has no git "
				"repository",
				rec.type);
			break;
		}
		if (!strcmp(rec.type, "version-lost"))
			json_object_del(v.missing,
					json_string_value(json_object_get(
						rec.json, "blob"))
						?: "");
		if (!strcmp(rec.type, "version"))
			rc = check_version(&v, &rec, where);
		else if (!strcmp(rec.type, "commit"))
			rc = check_commit(&v, &rec, where);
		if (rc < 0)
			goto out;
		track(&v, &rec);
	}
	if (rc < 0 && rep.ok)
		goto out; /* the chain verified: this is an I/O error */
	rc = 0;
	if (rep.ok && json_object_size(v.missing)) {
		const char *blob;
		json_t *seq;

		json_object_foreach(v.missing, blob, seq)
		{
			fv_fail(&v, json_integer_value(seq), "git",
				"version %s named at seq %" JSON_INTEGER_FORMAT
				" is not in git",
				blob, json_integer_value(seq));
			break;
		}
	}
	if (rep.ok)
		rc = check_tree(&v);
	if (rc == 0)
		*out = rep;
out:
	hc_record_release(&rec);
	hc_reader_free(r);
	vs_close(v.vs);
	if (v.treefd >= 0)
		close(v.treefd);
	hc_store_free(v.store);
	json_decref(v.state);
	json_decref(v.missing);
	return rc;
}
