/*
 * scan.c - what a reading of the chain learns about the files (scan.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan.h"

int fs_scan_init(struct fs_scan *s, hc_findings *f, vs_repo *vs)
{
	memset(s, 0, sizeof(*s));
	s->findings = f;
	s->vs = vs;
	s->recent = json_array();
	s->missing = json_object();
	if (!s->recent || !s->missing || tm_new(&s->model) < 0) {
		fs_scan_release(s);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	return 0;
}

void fs_scan_release(struct fs_scan *s)
{
	tm_free(s->model);
	json_decref(s->recent);
	json_decref(s->missing);
	memset(s, 0, sizeof(*s));
}

static void check_version(struct fs_scan *s, const hc_record *rec,
			  const char *where)
{
	const char *blob =
		json_string_value(json_object_get(rec->json, "blob"));
	const char *hex =
		json_string_value(json_object_get(rec->json, "sha256"));
	json_t *size = json_object_get(rec->json, "size");
	uint8_t sha[HC_HASH_LEN];
	int rc;

	if (!blob || !hex || !json_is_integer(size) ||
	    hc_unhex(hex, sha, HC_HASH_LEN) < 0)
		return; /* the model says so */
	if (!s->check_content) {
		if (!vs_has(s->vs, blob))
			json_object_set_new(s->missing, blob,
					    json_integer((json_int_t)rec->seq));
		return;
	}
	rc = vs_check_version(s->vs, blob, (uint64_t)json_integer_value(size),
			      sha,
			      json_is_true(json_object_get(rec->json, "lfs")));
	if (rc == HC_ENOENT) {
		/* Allowed only if a later version-lost record says so. */
		json_object_set_new(s->missing, blob,
				    json_integer((json_int_t)rec->seq));
		return;
	}
	if (rc < 0) {
		hc_findings_add(s->findings, (int64_t)rec->seq, 0, where,
				"version %s: %s", blob, hc_error_message());
		return;
	}
	s->nversions++;
}

static void check_commit(struct fs_scan *s, const hc_record *rec,
			 const char *where)
{
	const char *id =
		json_string_value(json_object_get(rec->json, "commit"));
	json_int_t first =
		json_integer_value(json_object_get(rec->json, "first"));
	json_int_t last =
		json_integer_value(json_object_get(rec->json, "last"));
	char trailer[96], *msg = NULL;
	int rc;

	if (!id) {
		hc_findings_add(s->findings, (int64_t)rec->seq, 0, where,
				"commit record names no commit");
		return;
	}
	rc = vs_commit_message(s->vs, id, &msg);
	if (rc < 0) {
		hc_findings_add(s->findings, (int64_t)rec->seq, 0, where,
				"commit %s: %s", id, hc_error_message());
		return;
	}
	snprintf(trailer, sizeof(trailer),
		 "Hozen-Records: %" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT
		 "\n",
		 first, last);
	if (!strstr(msg, trailer) || last >= (json_int_t)rec->seq)
		hc_findings_add(s->findings, (int64_t)rec->seq, 0, where,
				"commit %s does not cover records "
				"%" JSON_INTEGER_FORMAT
				"..%" JSON_INTEGER_FORMAT " as the chain says",
				id, first, last);
	free(msg);
	s->ncommits++;
}

int fs_scan_record(struct fs_scan *s, const hc_record *rec, const char *where)
{
	const char *type = rec->type;
	json_t *j = rec->json;
	int rc;

	s->records++;
	rc = tm_apply(s->model, rec->seq, type, j, where, s->findings);
	if (rc < 0)
		return rc;
	if (!strcmp(type, "mount")) {
		s->last_mount = rec->seq;
		s->open = 1;
	} else if (!strcmp(type, "unmount")) {
		json_t *seal = json_object_get(j, "seal");
		const char *hex =
			json_string_value(json_object_get(seal, "sha256"));

		s->open = 0;
		if (hex && strlen(hex) == HC_HEX_LEN) {
			memcpy(s->seal, hex, sizeof(s->seal));
			s->seal_seq = rec->seq;
		}
	} else if (!strcmp(type, "version")) {
		const char *blob =
			json_string_value(json_object_get(j, "blob"));

		if (s->vs && s->check_git && blob)
			check_version(s, rec, where);
		json_array_append_new(s->recent,
				      json_pack("{s:O?,s:s?,s:I}", "fid",
						json_object_get(j, "fid"),
						"blob", blob, "seq",
						(json_int_t)rec->seq));
	} else if (!strcmp(type, "version-lost")) {
		const char *blob =
			json_string_value(json_object_get(j, "blob"));

		if (blob)
			json_object_del(s->missing, blob);
	} else if (!strcmp(type, "commit")) {
		const char *id =
			json_string_value(json_object_get(j, "commit"));
		const char *v =
			json_string_value(json_object_get(j, "versions"));
		json_t *last = json_object_get(j, "last");

		if (s->vs && s->check_git)
			check_commit(s, rec, where);
		snprintf(s->main, sizeof(s->main), "%s", id ? id : "");
		snprintf(s->versions, sizeof(s->versions), "%s", v ? v : "");
		s->versions_named = v != NULL;
		if (json_is_integer(last))
			s->covered = (uint64_t)json_integer_value(last) + 1;
		json_array_clear(s->recent);
	}
	if (!s->vs && s->check_git &&
	    (!strcmp(type, "version") || !strcmp(type, "commit")))
		hc_findings_add(s->findings, (int64_t)rec->seq, 0, where,
				"the chain names a %s but the store has no git "
				"repository",
				type);
	return 0;
}

int fs_scan_finish(struct fs_scan *s)
{
	const char *blob;
	json_t *seq;

	tm_finish(s->model, s->findings);
	json_object_foreach(s->missing, blob, seq)
	{
		hc_findings_add(s->findings, json_integer_value(seq), 0, "git",
				"version %s named at seq %" JSON_INTEGER_FORMAT
				" is not in git",
				blob, json_integer_value(seq));
	}
	return 0;
}

/* -------------------------------------------------------------- seal */

struct seal_row {
	uint64_t fid;
	char line[160];
};

struct seal_build {
	tm_model *m;
	int treefd;
	struct seal_row *rows;
	size_t n, cap;
	int rc;
};

static int seal_one(void *ctx, const struct tm_info *i)
{
	struct seal_build *b = ctx;
	char **paths = NULL;
	struct stat st;
	int fd, rc = 0;

	if (!S_ISREG(i->mode) || i->content != TM_KNOWN || i->nlink == 0)
		return 0;
	if (tm_paths(b->m, i->fid, &paths) < 0 || !paths[0]) {
		tm_paths_free(paths);
		return 0;
	}
	fd = tm_openat(b->treefd, paths[0], O_PATH | O_NOFOLLOW);
	tm_paths_free(paths);
	if (fd < 0)
		return 0; /* not there: the next mount looks at it */
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	close(fd);
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		struct seal_row *nr = realloc(b->rows, cap * sizeof(*nr));

		if (!nr) {
			b->rc = hc_error_set(HC_ENOMEM, "out of memory");
			return 1;
		}
		b->rows = nr;
		b->cap = cap;
	}
	b->rows[b->n].fid = i->fid;
	snprintf(b->rows[b->n].line, sizeof(b->rows[b->n].line),
		 "%" PRIu64 " %llu %lld %lld.%09ld %lld.%09ld\n", i->fid,
		 (unsigned long long)st.st_ino, (long long)st.st_size,
		 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	b->n++;
	return rc;
}

static int row_cmp(const void *a, const void *b)
{
	const struct seal_row *x = a, *y = b;

	return x->fid < y->fid ? -1 : x->fid > y->fid;
}

int fs_seal_make(tm_model *m, int treefd, char **out, size_t *len,
		 uint64_t *files)
{
	static const char head[] = "hozen seal 1\n";
	struct seal_build b = {m, treefd, NULL, 0, 0, 0};
	size_t i, used, cap;
	char *buf;

	tm_foreach(m, seal_one, &b);
	if (b.rc < 0) {
		free(b.rows);
		return b.rc;
	}
	if (b.n) /* rows is NULL when there is no file */
		qsort(b.rows, b.n, sizeof(*b.rows), row_cmp);
	cap = sizeof(head) + b.n * sizeof(b.rows[0].line);
	buf = malloc(cap);
	if (!buf) {
		free(b.rows);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	memcpy(buf, head, sizeof(head) - 1);
	used = sizeof(head) - 1;
	for (i = 0; i < b.n; i++) {
		size_t l = strlen(b.rows[i].line);

		memcpy(buf + used, b.rows[i].line, l);
		used += l;
	}
	free(b.rows);
	*out = buf;
	*len = used;
	*files = b.n;
	return 0;
}

int fs_seal_load(int storefd, const char *hex, json_t **out)
{
	uint8_t want[HC_HASH_LEN], got[HC_HASH_LEN];
	char *buf = NULL, *line, *nl;
	size_t len = 0;
	json_t *t;
	int rc;

	if (hc_unhex(hex, want, HC_HASH_LEN) < 0)
		return hc_error_set(HC_EFORMAT, "bad seal hash");
	rc = hc_read_file(storefd, FS_SEAL_FILE, 1u << 30, &buf, &len);
	if (rc < 0)
		return rc;
	rc = hc_sha256(buf, len, got);
	if (rc == 0 && memcmp(want, got, HC_HASH_LEN))
		rc = hc_error_set(HC_EVERIFY,
				  "'%s' is not the seal the last unmount "
				  "recorded",
				  FS_SEAL_FILE);
	if (rc == 0 && strncmp(buf, "hozen seal 1\n", 13))
		rc = hc_error_set(HC_EFORMAT, "'%s' is not a seal",
				  FS_SEAL_FILE);
	t = rc == 0 ? json_object() : NULL;
	if (rc == 0 && !t)
		rc = hc_error_set(HC_ENOMEM, "out of memory");
	for (line = buf + 13; rc == 0 && line < buf + len; line = nl + 1) {
		char *sp;

		nl = memchr(line, '\n', (size_t)(buf + len - line));
		if (!nl)
			break;
		*nl = '\0';
		sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		json_object_set_new(t, line, json_string(sp + 1));
	}
	free(buf);
	if (rc < 0) {
		json_decref(t);
		return rc;
	}
	*out = t;
	return 0;
}

int fs_seal_same(json_t *seal, uint64_t fid, const struct stat *st)
{
	char key[32], want[128];
	const char *have;

	snprintf(key, sizeof(key), "%" PRIu64, fid);
	have = json_string_value(json_object_get(seal, key));
	if (!have)
		return 0;
	snprintf(want, sizeof(want), "%llu %lld %lld.%09ld %lld.%09ld",
		 (unsigned long long)st->st_ino, (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		 (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
	return !strcmp(want, have);
}

/* ---------------------------------------------------------- snapshot */

static int head_entry(void *ctx, const char *path, const char *blob,
		      unsigned mode)
{
	json_t *head = ctx;
	char val[64];

	snprintf(val, sizeof(val), "%s %o", blob, mode);
	return json_object_set_new_nocheck(head, path, json_string_nocheck(val))
		       ? hc_error_set(HC_ENOMEM, "out of memory")
		       : 0;
}

struct snap {
	json_t *head;
	vs_repo *vs;
	int (*fn)(void *ctx, const char *path, const char *blob, unsigned mode);
	void *ctx;
};

static int snap_entry(void *ctx, const char *path, const struct tm_info *i)
{
	struct snap *s = ctx;
	char val[64];
	const char *have;
	unsigned mode;
	int rc = 0;

	if (S_ISDIR(i->mode))
		return 0;
	if (!vs_path_storable(s->vs, path))
		return 0; /* never in a snapshot (versions.h, vs_stage) */
	if (S_ISREG(i->mode) && i->content == TM_KNOWN && i->blob[0])
		mode = (i->mode & 0111) ? 0100755 : 0100644;
	else if (S_ISLNK(i->mode) && i->blob[0])
		mode = 0120000;
	else {
		/* Nothing to show yet (changed since its version). */
		json_object_del(s->head, path);
		return 0;
	}
	snprintf(val, sizeof(val), "%s %o", i->blob, mode);
	have = json_string_value(json_object_get(s->head, path));
	if (!have || strcmp(have, val))
		rc = s->fn(s->ctx, path, i->blob, mode);
	json_object_del(s->head, path);
	return rc;
}

int fs_snapshot_diff(tm_model *m, vs_repo *vs,
		     int (*fn)(void *ctx, const char *path, const char *blob,
			       unsigned mode),
		     void *ctx)
{
	struct snap s = {json_object(), vs, fn, ctx};
	const char *path;
	json_t *v;
	int rc;

	if (!s.head)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = vs_head_foreach(vs, head_entry, s.head);
	if (rc == 0)
		rc = tm_walk(m, "", snap_entry, &s);
	json_object_foreach(s.head, path, v)
	{
		if (rc)
			break;
		rc = fn(ctx, path, NULL, 0);
	}
	json_decref(s.head);
	return rc;
}
