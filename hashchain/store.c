/*
 * store.c - creating and opening a store, its keys and its checkpoints.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "internal.h"

#define MARKER_TEXT "hozen store\nformat 1\n"
#define CKPT_MAX    (64u << 10)

struct hc_store {
	int fd;
	char *path;
	char *origin; /* from the genesis record, read on demand */
	/* Opened for verification: why HOZEN is not the marker, or NULL. */
	char *marker_problem;
};

void hc_checkpoint_name(uint64_t size, char out[64])
{
	snprintf(out, 64, "%s/%020" PRIu64 ".ckpt", HC_CKPT_DIR, size);
}

/* ---------------------------------------------------------------- init */

static int make_dirs(int fd)
{
	static const char *const dirs[] = {"keys", HC_CHAIN_DIR, HC_CKPT_DIR,
					   "git", "tree"};
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (mkdirat(fd, dirs[i], 0700) < 0)
			return hc_error_set(HC_ESYS, "cannot create '%s'",
					    dirs[i]);
	/*
	 * tree/ is the root of the mount: its users see and may change its
	 * mode (FORMAT.md section 1); the 0700 store keeps others out.
	 */
	if (fchmodat(fd, "tree", 0755, 0) < 0)
		return hc_error_set(HC_ESYS, "cannot chmod 'tree'");
	return hc_fsync_dir(fd, ".");
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

int hc_store_init(const char *path, const struct hc_init_options *opts)
{
	struct hc_init_options o = {0};
	char id[33], origin[64], base[PATH_MAX], now[40], *copy = NULL;
	uint8_t rnd[16];
	hc_key *key = NULL;
	json_t *fields = NULL;
	hc_store *s = NULL;
	hc_log *log = NULL;
	hc_actor self;
	const char *name;
	int fd = -1, rc;

	if (opts)
		o = *opts;
	if (mkdir(path, 0700) < 0) {
		if (errno != EEXIST)
			return hc_error_set(HC_ESYS, "cannot create '%s'",
					    path);
		if (!dir_is_empty(path))
			return hc_error_set(HC_EEXIST,
					    "'%s' exists and is not an empty "
					    "directory",
					    path);
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open '%s'", path);
	/* An empty directory given to us becomes private too. */
	if (fchmod(fd, 0700) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot chmod '%s'", path);
		goto out;
	}
	rc = make_dirs(fd);
	if (rc < 0)
		goto out;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		rc = hc_error_openssl("random store id");
		goto out;
	}
	hc_hex(rnd, sizeof(rnd), id);
	snprintf(origin, sizeof(origin), "hozen/%s", id);
	name = o.name;
	if (!name) {
		copy = strdup(path);
		if (!copy) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
		snprintf(base, sizeof(base), "%s", basename(copy));
		name = base;
	}

	rc = hc_key_generate(&key, origin);
	if (rc == 0)
		rc = hc_key_save_private(key, fd, HC_KEY_PRIVATE, o.passphrase);
	if (rc == 0)
		rc = hc_key_save_public_pem(key, fd, HC_KEY_PEM);
	if (rc == 0) {
		char line[256];
		int n = snprintf(line, sizeof(line), "%s\n", hc_key_vkey(key));

		rc = n > 0 && (size_t)n < sizeof(line)
			     ? hc_create_file(fd, HC_KEY_VKEY, line, (size_t)n,
					      0400)
			     : hc_error_set(HC_EINVAL, "verifier key too long");
	}
	if (rc < 0)
		goto out;

	hc_time_now(now);
	fields =
		json_pack("{s:{s:s,s:s,s:s},s:s,s:{s:s,s:s},s:s}", "store",
			  "name", name, "id", id, "origin", origin, "created",
			  now, "key", "alg", "ed25519", "vkey",
			  hc_key_vkey(key), "software", "hozen " HOZEN_VERSION);
	if (!fields) {
		rc = hc_error_set(HC_EINVAL,
				  "cannot build the genesis record (is the "
				  "store name valid UTF-8?)");
		goto out;
	}
	if (o.genesis_extra &&
	    json_object_update_missing(fields, o.genesis_extra) < 0) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	hc_actor_self(&self);
	rc = hc_log_create(fd, &self, fields);
	if (rc < 0)
		goto out;
	/* The marker last: a store without it was never completed. */
	rc = hc_create_file(fd, HC_MARKER, MARKER_TEXT, strlen(MARKER_TEXT),
			    0400);
	if (rc < 0)
		goto out;
	/* Seal the genesis so that a new store verifies. */
	rc = hc_log_open(&log, fd, NULL, NULL);
	if (rc == 0)
		rc = hc_store_checkpoint(log, key, origin, &self, NULL);
	if (rc == 0) {
		rc = hc_log_close(log);
		log = NULL;
	}
out:
	hc_log_close(log);
	hc_store_free(s);
	json_decref(fields);
	hc_key_free(key);
	free(copy);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---------------------------------------------------------------- open */

/*
 * Check the marker.  A missing marker is not a store (HC_ENOENT); one
 * that is not exactly MARKER_TEXT, or not a regular file, is a store that
 * fails verification: for verification *problem gets why (malloc'd),
 * otherwise HC_EVERIFY.  A marker of another format is HC_EFORMAT.
 */
static int check_marker(hc_store *s, const char *path, int verify)
{
	static const char head[] = "hozen store\nformat ";
	char *marker = NULL, why[256];
	size_t len = 0;
	int rc;

	rc = hc_read_file(s->fd, HC_MARKER, 4096, &marker, &len);
	if (rc == HC_ENOENT)
		return hc_error_set(
			HC_ENOENT,
			"'%s' is not a hozen store (no '%s' marker; "
			"create one with 'hozen init')",
			path, HC_MARKER);
	if (rc == HC_EFORMAT) {
		snprintf(why, sizeof(why), "%s", hc_error_message());
	} else if (rc < 0) {
		return hc_error_prefix(rc, "'%s'", path);
	} else if (len == strlen(MARKER_TEXT) &&
		   !memcmp(marker, MARKER_TEXT, len)) {
		free(marker);
		return 0;
	} else if (len > strlen(head) && !memcmp(marker, head, strlen(head)) &&
		   marker[strlen(head)] >= '1' && marker[strlen(head)] <= '9' &&
		   strcmp(marker + strlen(head), "1\n") != 0 &&
		   strspn(marker + strlen(head), "0123456789") + 1 ==
			   len - strlen(head) &&
		   marker[len - 1] == '\n') {
		rc = hc_error_set(HC_EFORMAT,
				  "'%s/%s': a store of format %.*s, which this "
				  "hozen (format %d) cannot read",
				  path, HC_MARKER,
				  (int)(len - strlen(head) - 1),
				  marker + strlen(head), HC_FORMAT_VERSION);
		free(marker);
		return rc;
	} else {
		snprintf(why, sizeof(why),
			 "'%s' is not the marker of FORMAT.md section 1 "
			 "(exactly \"hozen store\\nformat 1\\n\")",
			 HC_MARKER);
	}
	free(marker);
	if (!verify)
		return hc_error_set(HC_EVERIFY,
				    "'%s': %s; refusing to use it (run 'hozen "
				    "verify')",
				    path, why);
	s->marker_problem = strdup(why);
	if (!s->marker_problem)
		return hc_error_set(HC_ENOMEM, "out of memory");
	return 0;
}

static int store_open(hc_store **out, const char *path, int verify)
{
	hc_store *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return hc_error_set(HC_ENOMEM, "out of memory");
	s->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->fd < 0) {
		int e = errno;

		hc_error_set(HC_ESYS, "cannot open store '%s'", path);
		rc = e == ENOENT ? HC_ENOENT : HC_ESYS;
		goto fail;
	}
	s->path = strdup(path);
	if (!s->path) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto fail;
	}
	rc = check_marker(s, path, verify);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	hc_store_free(s);
	return rc;
}

int hc_store_open(hc_store **out, const char *path)
{
	return store_open(out, path, 0);
}

int hc_store_open_verify(hc_store **out, const char *path)
{
	return store_open(out, path, 1);
}

const char *hc_store_marker_problem(const hc_store *s)
{
	return s->marker_problem;
}

int hc_store_fd(const hc_store *s)
{
	return s->fd;
}

const char *hc_store_path(const hc_store *s)
{
	return s->path;
}

int hc_store_public_key(const hc_store *s, hc_key **out)
{
	char *text = NULL;
	int rc;

	rc = hc_read_file(s->fd, HC_KEY_VKEY, 4096, &text, NULL);
	if (rc == 0) {
		text[strcspn(text, "\r\n")] = '\0';
		rc = hc_key_parse_vkey(out, text);
	}
	if (rc < 0)
		rc = hc_error_prefix(rc, "%s", HC_KEY_VKEY);
	free(text);
	return rc;
}

int hc_store_private_key(const hc_store *s, const char *passphrase,
			 hc_key **out)
{
	char path[PATH_MAX];
	hc_key *key = NULL, *pub = NULL;
	const char *origin;
	int rc, n;

	rc = hc_store_origin((hc_store *)s, &origin);
	if (rc < 0)
		return rc;
	n = snprintf(path, sizeof(path), "%s/%s", s->path, HC_KEY_PRIVATE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return hc_error_set(HC_EINVAL, "store path too long");
	rc = hc_key_load_private(&key, path, origin, passphrase);
	if (rc == 0)
		rc = hc_store_public_key(s, &pub);
	/* Nothing may be signed with a key the store does not name. */
	if (rc == 0 && !hc_key_equal_public(key, pub))
		rc = hc_error_set(HC_EVERIFY,
				  "'%s' is not the store's signing key (its "
				  "public key is not '%s'): replaced?",
				  HC_KEY_PRIVATE, HC_KEY_VKEY);
	hc_key_free(pub);
	if (rc < 0) {
		hc_key_free(key);
		return rc;
	}
	*out = key;
	return 0;
}

int hc_store_origin(hc_store *s, const char **out)
{
	hc_reader *r = NULL;
	hc_record rec;
	const char *origin;
	int rc;

	if (s->origin) {
		*out = s->origin;
		return 0;
	}
	memset(&rec, 0, sizeof(rec));
	rc = hc_reader_open(&r, s->fd);
	if (rc < 0)
		return rc;
	rc = hc_reader_next(r, &rec);
	if (rc == 0 || rc == HC_ETORN)
		rc = hc_error_set(HC_EVERIFY, "chain: no genesis record");
	if (rc < 0)
		goto out;
	origin = json_string_value(
		json_object_get(json_object_get(rec.json, "store"), "origin"));
	if (rec.seq != 0 || strcmp(rec.type, "genesis") != 0 || !origin) {
		rc = hc_error_set(HC_EVERIFY,
				  "%s: the first record is not a "
				  "genesis naming the store origin",
				  hc_reader_where(r));
		goto out;
	}
	s->origin = strdup(origin);
	if (!s->origin) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	*out = s->origin;
	rc = 0;
out:
	hc_record_release(&rec);
	hc_reader_free(r);
	return rc;
}

void hc_store_free(hc_store *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s->origin);
	free(s->marker_problem);
	free(s);
}

/* --------------------------------------------------------- checkpoints */

int hc_store_checkpoint(hc_log *log, const hc_key *key, const char *origin,
			const hc_actor *actor, struct hc_checkpoint_result *out)
{
	struct hc_checkpoint_result res;
	struct hc_appended app;
	hc_checkpoint *ck = NULL;
	hc_merkle tree;
	int rc;

	memset(&res, 0, sizeof(res));
	if (!hc_key_has_private(key))
		return hc_error_set(HC_EINVAL, "checkpoint needs the private "
					       "signing key");
	rc = hc_log_append_tree(log, "checkpoint", actor, NULL, &app, &tree);
	if (rc < 0)
		return rc;
	rc = hc_log_sync(log, app.seq);
	if (rc < 0)
		return rc;
	res.size = tree.size;
	rc = hc_merkle_root(&tree, res.root);
	if (rc == 0)
		rc = hc_checkpoint_sign(&ck, origin, res.size, res.root, NULL,
					key);
	if (rc < 0)
		return rc;
	hc_checkpoint_name(res.size, res.path);
	rc = hc_atomic_write(hc_log_storefd(log), res.path, ck->text,
			     strlen(ck->text), 0400);
	hc_checkpoint_free(ck);
	if (rc == 0 && out)
		*out = res;
	return rc;
}

int hc_store_checkpoints(const hc_store *s, uint64_t **out, size_t *n_out)
{
	int fd, rc;

	fd = openat(s->fd, HC_CKPT_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open '%s'", HC_CKPT_DIR);
	rc = hc_list_numbered(fd, ".ckpt", out, n_out);
	close(fd);
	if (rc < 0)
		return hc_error_prefix(rc, "%s", HC_CKPT_DIR);
	return 0;
}

int hc_store_read_checkpoint(const hc_store *s, uint64_t size,
			     const hc_key *key, hc_checkpoint **out)
{
	hc_checkpoint *ck = NULL;
	char path[64], *text = NULL;
	size_t len = 0;
	int rc;

	hc_checkpoint_name(size, path);
	rc = hc_read_file(s->fd, path, CKPT_MAX, &text, &len);
	if (rc == 0)
		rc = hc_checkpoint_parse(&ck, text, len, key);
	if (rc == 0 && ck->size != size)
		rc = hc_error_set(HC_EVERIFY,
				  "it signs tree size %" PRIu64
				  ", not the size its name says",
				  ck->size);
	if (rc < 0) {
		rc = hc_error_prefix(rc, "%s", path);
		hc_checkpoint_free(ck);
	} else {
		*out = ck;
	}
	free(text);
	return rc;
}

/* --------------------------------------------------------------- recover */

/*
 * Rewrite the checkpoints the chain announces but checkpoints/ lacks, as
 * the log's opening found them (it reads every record once).
 */
static int rewrite_missing(hc_store *s, const hc_log *log, const hc_key *key,
			   const char *origin, size_t *rewritten,
			   uint64_t *sealed)
{
	const struct hc_ck_unsigned *miss;
	hc_checkpoint *ck = NULL;
	char path[64];
	size_t i, n;
	int rc = 0;

	hc_log_unsigned(log, &miss, &n, sealed);
	for (i = 0; i < n && rc == 0; i++) {
		hc_checkpoint_name(miss[i].size, path);
		rc = hc_checkpoint_sign(&ck, origin, miss[i].size, miss[i].root,
					NULL, key);
		if (rc == 0)
			rc = hc_atomic_write(s->fd, path, ck->text,
					     strlen(ck->text), 0400);
		hc_checkpoint_free(ck);
		ck = NULL;
		if (rc == 0)
			(*rewritten)++;
	}
	return rc;
}

int hc_store_recover(hc_store *s, const hc_key *key, const hc_actor *actor,
		     struct hc_recover_report *out)
{
	struct hc_log_options opts = {.recover = 1};
	struct hc_log_open_report orep;
	struct hc_recover_report rep;
	hc_log *log = NULL;
	const char *origin;
	uint64_t sealed = 0, end;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = hc_store_origin(s, &origin);
	if (rc < 0)
		return rc;
	/* Opening with recover preserves a torn tail and checks the chain. */
	rc = hc_log_open(&log, s->fd, &opts, &orep);
	if (rc < 0)
		return rc;
	rep.torn = orep.torn;
	rep.torn_bytes = orep.torn_bytes;
	memcpy(rep.torn_saved, orep.torn_saved, sizeof(rep.torn_saved));
	rc = rewrite_missing(s, log, key, origin, &rep.rewritten, &sealed);
	/*
	 * Records no checkpoint record announced (but the torn tail's
	 * recovery record, this recovery's own): the key adopts them now,
	 * and says so.
	 */
	end = hc_log_size(log) - (orep.torn ? 1 : 0);
	if (rc == 0 && end > sealed) {
		json_t *f = json_pack("{s:I,s:I}", "first", (json_int_t)sealed,
				      "last", (json_int_t)(end - 1));

		rc = f ? hc_log_append(log, "adopt", actor, f, NULL)
		       : hc_error_set(HC_ENOMEM, "out of memory");
		json_decref(f);
		rep.adopted = 1;
		rep.adopted_first = sealed;
		rep.adopted_last = end - 1;
	}
	if (rc == 0)
		rc = hc_store_checkpoint(log, key, origin, actor,
					 &rep.checkpoint);
	if (rc == 0) {
		rc = hc_log_close(log);
		log = NULL;
	}
	hc_log_close(log);
	if (rc == 0 && out)
		*out = rep;
	return rc;
}
