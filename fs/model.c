/*
 * model.c - the live tree as the chain's records determine it (model.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "model.h"

/* ------------------------------------------------------------ tables */

struct tm_entry;

struct tm_file {
	struct tm_file *hnext;
	uint64_t fid;
	mode_t mode;  /* type bits (0: unknown) and permission bits */
	int has_bits; /* the permission bits are known */
	int has_owner;
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	int content;
	uint8_t sha[HC_HASH_LEN];
	uint64_t size;
	char blob[41];
	char *target; /* symlinks */
	int locked;
	uint64_t versions;
	uint64_t attr_seq; /* last record that set mode or owner */
	struct tm_entry **names;
	size_t nnames, cap;
	uint64_t children;     /* directories: entries in it */
	struct tm_entry *kids; /* directories: those entries */
	/* scratch of tm_check_tree */
	dev_t seen_dev;
	ino_t seen_ino;
	int seen;
};

struct tm_entry {
	struct tm_entry *hnext;
	uint64_t dir;
	char *name;
	struct tm_file *file;
	uint64_t seq;			/* the record that made it what it is */
	struct tm_entry *snext, *sprev; /* the entries of its directory */
	int seen;			/* scratch of tm_check_tree */
};

/* One entry change an act made: (dir, name) went from old to new. */
struct tm_change {
	uint64_t dir;
	char *name;
	uint64_t old_fid, new_fid; /* TM_NONE: no entry */
	uint64_t old_seq;
};

/* What undoing an act needs. */
struct tm_undo {
	uint64_t seq; /* TM_NONE: unused slot */
	const char *type;
	int reverted;
	int bad;   /* it could not have happened: a `failed` record must say */
	char *why; /* then: where and why, for the finding (malloc'd) */
	struct tm_change ch[2];
	int nch;
	uint64_t created; /* a fid it created, or TM_NONE */
	/* attributes it set */
	uint64_t afid;
	int has_attr;
	mode_t old_mode;
	int old_has_bits;
	int old_has_owner;
	uid_t old_uid;
	gid_t old_gid;
	uint64_t old_attr_seq;
};

struct tm_model {
	struct tm_file **files;
	size_t nfb, nfiles;
	struct tm_entry **ents;
	size_t neb, nents;
	struct tm_undo *undo; /* ring of TM_UNDO_DEPTH */
	int worm;	      /* the last mount record locks what it versions */
	uint64_t last_mount;
	uint64_t bad_left; /* undo slots with bad set, not yet failed */
	hc_findings *f;	   /* of the current tm_apply */
	const char *where; /* of the current tm_apply */
};

static size_t fid_bucket(const tm_model *m, uint64_t fid)
{
	return (size_t)(hc_fnv1a(HC_FNV1A_INIT, &fid, sizeof(fid)) &
			(m->nfb - 1));
}

static size_t ent_bucket(const tm_model *m, uint64_t dir, const char *name)
{
	uint64_t h = hc_fnv1a(HC_FNV1A_INIT, &dir, sizeof(dir));

	return (size_t)(hc_fnv1a(h, name, strlen(name)) & (m->neb - 1));
}

static struct tm_file *file_get(const tm_model *m, uint64_t fid)
{
	struct tm_file *f;

	if (fid == TM_NONE)
		return NULL;
	for (f = m->files[fid_bucket(m, fid)]; f; f = f->hnext)
		if (f->fid == fid)
			return f;
	return NULL;
}

static int grow_files(tm_model *m)
{
	size_t n = m->nfb * 2, i, b;
	struct tm_file **nb = calloc(n, sizeof(*nb)), *f, *next;

	if (!nb)
		return hc_error_set(HC_ENOMEM, "out of memory");
	for (i = 0; i < m->nfb; i++)
		for (f = m->files[i]; f; f = next) {
			next = f->hnext;
			b = (size_t)(hc_fnv1a(HC_FNV1A_INIT, &f->fid,
					      sizeof(f->fid)) &
				     (n - 1));
			f->hnext = nb[b];
			nb[b] = f;
		}
	free(m->files);
	m->files = nb;
	m->nfb = n;
	return 0;
}

static int file_add(tm_model *m, uint64_t fid, mode_t mode,
		    struct tm_file **out)
{
	struct tm_file *f;
	size_t b;

	if (m->nfiles >= m->nfb && grow_files(m) < 0)
		return HC_ENOMEM;
	f = calloc(1, sizeof(*f));
	if (!f)
		return hc_error_set(HC_ENOMEM, "out of memory");
	f->fid = fid;
	f->mode = mode;
	b = fid_bucket(m, fid);
	f->hnext = m->files[b];
	m->files[b] = f;
	m->nfiles++;
	*out = f;
	return 0;
}

static void file_free(struct tm_file *f)
{
	free(f->target);
	free(f->names);
	free(f);
}

/* Forget a fid that has no name (undoing its creation). */
static void file_del(tm_model *m, uint64_t fid)
{
	struct tm_file **pp, *f;

	for (pp = &m->files[fid_bucket(m, fid)]; (f = *pp); pp = &f->hnext)
		if (f->fid == fid) {
			*pp = f->hnext;
			file_free(f);
			m->nfiles--;
			return;
		}
}

static struct tm_entry *ent_get(const tm_model *m, uint64_t dir,
				const char *name)
{
	struct tm_entry *e;

	for (e = m->ents[ent_bucket(m, dir, name)]; e; e = e->hnext)
		if (e->dir == dir && !strcmp(e->name, name))
			return e;
	return NULL;
}

static int grow_ents(tm_model *m)
{
	size_t n = m->neb * 2, i, b;
	struct tm_entry **nb = calloc(n, sizeof(*nb)), *e, *next;
	uint64_t h;

	if (!nb)
		return hc_error_set(HC_ENOMEM, "out of memory");
	for (i = 0; i < m->neb; i++)
		for (e = m->ents[i]; e; e = next) {
			next = e->hnext;
			h = hc_fnv1a(HC_FNV1A_INIT, &e->dir, sizeof(e->dir));
			b = (size_t)(hc_fnv1a(h, e->name, strlen(e->name)) &
				     (n - 1));
			e->hnext = nb[b];
			nb[b] = e;
		}
	free(m->ents);
	m->ents = nb;
	m->neb = n;
	return 0;
}

static int name_add(struct tm_file *f, struct tm_entry *e)
{
	if (f->nnames == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 1;
		struct tm_entry **nn = realloc(f->names, cap * sizeof(*nn));

		if (!nn)
			return hc_error_set(HC_ENOMEM, "out of memory");
		f->names = nn;
		f->cap = cap;
	}
	f->names[f->nnames++] = e;
	return 0;
}

static void name_del(struct tm_file *f, struct tm_entry *e)
{
	size_t i;

	for (i = 0; i < f->nnames; i++)
		if (f->names[i] == e) {
			memmove(&f->names[i], &f->names[i + 1],
				(f->nnames - i - 1) * sizeof(*f->names));
			f->nnames--;
			return;
		}
}

/*
 * Make (dir, name) name fid (TM_NONE: remove it), made by record seq.
 * Both fids must exist in the model.
 */
static int ent_set(tm_model *m, uint64_t dir, const char *name, uint64_t fid,
		   uint64_t seq)
{
	struct tm_entry *e = ent_get(m, dir, name), **pp;
	struct tm_file *d = file_get(m, dir), *f = file_get(m, fid);
	size_t b;

	if (e && e->file && e->file->fid == fid) {
		e->seq = seq;
		return 0;
	}
	if (e) {
		name_del(e->file, e);
		if (fid == TM_NONE) {
			b = ent_bucket(m, dir, name);
			for (pp = &m->ents[b]; *pp; pp = &(*pp)->hnext)
				if (*pp == e) {
					*pp = e->hnext;
					break;
				}
			if (d) {
				d->children--;
				if (e->sprev)
					e->sprev->snext = e->snext;
				else
					d->kids = e->snext;
				if (e->snext)
					e->snext->sprev = e->sprev;
			}
			free(e->name);
			free(e);
			m->nents--;
			return 0;
		}
		e->file = f;
		e->seq = seq;
		return name_add(f, e);
	}
	if (fid == TM_NONE)
		return 0;
	if (m->nents >= m->neb && grow_ents(m) < 0)
		return HC_ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(name))) {
		free(e);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	e->dir = dir;
	e->file = f;
	e->seq = seq;
	if (name_add(f, e) < 0) {
		free(e->name);
		free(e);
		return HC_ENOMEM;
	}
	b = ent_bucket(m, dir, name);
	e->hnext = m->ents[b];
	m->ents[b] = e;
	m->nents++;
	if (d) {
		d->children++;
		e->snext = d->kids;
		if (d->kids)
			d->kids->sprev = e;
		d->kids = e;
	}
	return 0;
}

/* ------------------------------------------------------------- paths */

int tm_record_path(json_t *rec, const char *key, char **out)
{
	char b64key[64];
	const char *s = json_string_value(json_object_get(rec, key)), *b64;
	size_t n;
	char *p;
	int k;

	if (s) {
		if (strlen(s) != json_string_length(json_object_get(rec, key)))
			return hc_error_set(HC_EFORMAT, "'%s' holds a NUL byte",
					    key);
		*out = strdup(s);
		return *out ? 0 : hc_error_set(HC_ENOMEM, "out of memory");
	}
	snprintf(b64key, sizeof(b64key), "%s_b64", key);
	b64 = json_string_value(json_object_get(rec, b64key));
	if (!b64)
		return HC_ENOENT; /* not an error: the member is optional */
	n = strlen(b64);
	if (n == 0 || n % 4 || n > INT_MAX)
		return hc_error_set(HC_EFORMAT, "'%s' is not base64", b64key);
	p = malloc(n / 4 * 3 + 1);
	if (!p)
		return hc_error_set(HC_ENOMEM, "out of memory");
	k = EVP_DecodeBlock((unsigned char *)p, (const unsigned char *)b64,
			    (int)n);
	if (k < 0) {
		free(p);
		return hc_error_set(HC_EFORMAT, "'%s' is not base64", b64key);
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	k -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
	p[k] = '\0';
	if (strlen(p) != (size_t)k) {
		free(p);
		return hc_error_set(HC_EFORMAT, "'%s' holds a NUL byte",
				    b64key);
	}
	*out = p;
	return 0;
}

char *tm_printable(const char *path)
{
	const unsigned char *s = (const unsigned char *)path;
	size_t n = strlen(path), i = 0, o = 0;
	char *out = malloc(4 * n + 1);

	if (!out)
		return NULL;
	while (i < n) {
		size_t len = 0;

		/* Well-formed UTF-8 of 2 to 4 bytes passes as it is. */
		if (s[i] >= 0xc2 && s[i] <= 0xf4) {
			len = s[i] < 0xe0 ? 2 : s[i] < 0xf0 ? 3 : 4;
			if (i + len > n) {
				len = 0;
			} else {
				size_t j;

				for (j = 1; j < len; j++)
					if ((s[i + j] & 0xc0) != 0x80)
						len = 0;
			}
		}
		if (len) {
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		} else if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\') {
			snprintf(out + o, 5, "\\x%02x", s[i]);
			o += 4;
			i++;
		} else {
			out[o++] = (char)s[i++];
		}
	}
	out[o] = '\0';
	return out;
}

/*
 * Resolve path to the directory that holds its last name and that name
 * (pointing into path's copy *buf, which the caller frees).  The root
 * itself ("") has no parent: HC_EINVAL.
 */
static int resolve(tm_model *m, const char *path, uint64_t *dir,
		   const char **name, char **buf)
{
	char *p, *slash, *comp;
	uint64_t cur = TM_ROOT;
	struct tm_entry *e;

	if (!*path)
		return hc_error_set(HC_EINVAL, "the root has no name");
	p = strdup(path);
	if (!p)
		return hc_error_set(HC_ENOMEM, "out of memory");
	comp = p;
	while ((slash = strchr(comp, '/'))) {
		*slash = '\0';
		if (!*comp || !strcmp(comp, ".") || !strcmp(comp, "..")) {
			free(p);
			return hc_error_set(HC_EINVAL, "bad path");
		}
		e = ent_get(m, cur, comp);
		if (!e || !S_ISDIR(e->file->mode)) {
			free(p);
			return hc_error_set(HC_ENOENT,
					    "no directory '%s' in the tree",
					    comp);
		}
		cur = e->file->fid;
		comp = slash + 1;
	}
	if (!*comp || !strcmp(comp, ".") || !strcmp(comp, "..")) {
		free(p);
		return hc_error_set(HC_EINVAL, "bad path");
	}
	*dir = cur;
	*name = comp;
	*buf = p;
	return 0;
}

/* The path of (dir, name) into a malloc'd string. */
static char *path_of(tm_model *m, uint64_t dir, const char *name)
{
	size_t len = strlen(name), cap = len + 64, at;
	char *buf = malloc(cap), *nb;
	struct tm_file *d;
	int guard = 0;

	if (!buf)
		return NULL;
	/* Built backwards: name, then each directory up to the root. */
	at = cap - len - 1;
	memcpy(buf + at, name, len + 1);
	while (dir != TM_ROOT && guard++ < 1 << 20) {
		struct tm_entry *e;
		size_t n;

		d = file_get(m, dir);
		if (!d || d->nnames == 0)
			break; /* a directory with no name: cannot happen */
		e = d->names[0];
		n = strlen(e->name);
		while (at < n + 1) {
			size_t used = cap - at;

			nb = malloc(2 * cap + n);
			if (!nb) {
				free(buf);
				return NULL;
			}
			memcpy(nb + 2 * cap + n - used, buf + at, used);
			free(buf);
			at = 2 * cap + n - used;
			cap = 2 * cap + n;
			buf = nb;
		}
		buf[--at] = '/';
		at -= n;
		memcpy(buf + at, e->name, n);
		dir = e->dir;
	}
	memmove(buf, buf + at, cap - at);
	return buf;
}

static char *entry_path(tm_model *m, const struct tm_entry *e)
{
	return path_of(m, e->dir, e->name);
}

int tm_openat(int dirfd, const char *path, int flags)
{
	const char *p = path, *slash;
	int fd = dirfd, next, err;

	/* Short paths in one call; long ones a directory at a time. */
	if (strlen(path) < PATH_MAX / 2)
		return openat(dirfd, path, flags | O_CLOEXEC);
	while ((slash = strchr(p, '/'))) {
		char *name = strndup(p, (size_t)(slash - p));

		if (!name) {
			errno = ENOMEM;
			next = -1;
		} else {
			next = openat(fd, name,
				      O_PATH | O_DIRECTORY | O_NOFOLLOW |
					      O_CLOEXEC);
		}
		err = errno;
		free(name);
		if (fd != dirfd)
			close(fd);
		if (next < 0) {
			errno = err;
			return -1;
		}
		fd = next;
		p = slash + 1;
	}
	next = openat(fd, p, flags | O_CLOEXEC);
	err = errno;
	if (fd != dirfd)
		close(fd);
	errno = err;
	return next;
}

/* ------------------------------------------------------------ records */

int tm_new(tm_model **out)
{
	tm_model *m = calloc(1, sizeof(*m));
	struct tm_file *root;
	size_t i;

	if (!m)
		return hc_error_set(HC_ENOMEM, "out of memory");
	m->nfb = m->neb = 1024;
	m->files = calloc(m->nfb, sizeof(*m->files));
	m->ents = calloc(m->neb, sizeof(*m->ents));
	m->undo = calloc(TM_UNDO_DEPTH, sizeof(*m->undo));
	if (!m->files || !m->ents || !m->undo ||
	    file_add(m, TM_ROOT, S_IFDIR | 0755, &root) < 0) {
		tm_free(m);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	root->has_bits = 1;
	for (i = 0; i < TM_UNDO_DEPTH; i++)
		m->undo[i].seq = TM_NONE;
	*out = m;
	return 0;
}

static void undo_clear(struct tm_undo *u)
{
	int i;

	for (i = 0; i < u->nch; i++)
		free(u->ch[i].name);
	free(u->why);
	memset(u, 0, sizeof(*u));
	u->seq = TM_NONE;
}

void tm_free(tm_model *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; m->files && i < m->nfb; i++) {
		struct tm_file *f = m->files[i], *next;

		for (; f; f = next) {
			next = f->hnext;
			file_free(f);
		}
	}
	for (i = 0; m->ents && i < m->neb; i++) {
		struct tm_entry *e = m->ents[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			free(e->name);
			free(e);
		}
	}
	for (i = 0; m->undo && i < TM_UNDO_DEPTH; i++)
		undo_clear(&m->undo[i]);
	free(m->undo);
	free(m->files);
	free(m->ents);
	free(m);
}

__attribute__((format(printf, 3, 4))) static void
finding(tm_model *m, uint64_t seq, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	hc_findings_add(m->f, (int64_t)seq, 0, m->where, "%s", reason);
}

/* The finding of an act that could not have happened ("WHERE\tWHY"). */
static void report_bad(hc_findings *f, const struct tm_undo *u,
		       const char *more)
{
	const char *why = u->why ? u->why : "";
	const char *tab = strchr(why, '\t');
	char where[256];

	snprintf(where, sizeof(where), "%.*s", tab ? (int)(tab - why) : 0, why);
	hc_findings_add(f, (int64_t)u->seq, 0, where, "%s%s",
			tab ? tab + 1 : why, more);
}

/* The undo slot of the act seq is making (cleared). */
static struct tm_undo *undo_start(tm_model *m, uint64_t seq, const char *type)
{
	struct tm_undo *u = &m->undo[seq % TM_UNDO_DEPTH];

	if (u->seq != TM_NONE && u->bad && !u->reverted) {
		/* Pushed out before a `failed` record said so. */
		report_bad(m->f, u, "");
		m->bad_left--;
	}
	undo_clear(u);
	u->seq = seq;
	u->type = type;
	u->created = TM_NONE;
	u->afid = TM_NONE;
	return u;
}

static struct tm_undo *undo_find(tm_model *m, uint64_t seq)
{
	struct tm_undo *u = &m->undo[seq % TM_UNDO_DEPTH];

	return u->seq == seq ? u : NULL;
}

/*
 * The act of record seq cannot have happened as recorded: a `failed`
 * record must follow, else tm_finish (or the ring) reports it.
 */
__attribute__((format(printf, 3, 4))) static void
impossible(tm_model *m, struct tm_undo *u, const char *fmt, ...)
{
	va_list ap;

	char why[512];

	int n = snprintf(why, sizeof(why), "%.200s\t",
			 m->where ? m->where : "");

	va_start(ap, fmt);
	vsnprintf(why + n, sizeof(why) - (size_t)n, fmt, ap);
	va_end(ap);
	free(u->why);
	u->why = strdup(why);
	u->bad = 1;
	m->bad_left++;
}

/* Change (dir, name) to fid as part of act u. */
static int change(tm_model *m, struct tm_undo *u, uint64_t dir,
		  const char *name, uint64_t fid)
{
	struct tm_entry *e = ent_get(m, dir, name);
	struct tm_change *c = &u->ch[u->nch];

	c->name = strdup(name);
	if (!c->name)
		return hc_error_set(HC_ENOMEM, "out of memory");
	c->dir = dir;
	c->old_fid = e ? e->file->fid : TM_NONE;
	c->old_seq = e ? e->seq : 0;
	c->new_fid = fid;
	u->nch++;
	return ent_set(m, dir, name, fid, u->seq);
}

static void set_attrs(struct tm_undo *u, struct tm_file *f)
{
	u->afid = f->fid;
	u->has_attr = 1;
	u->old_mode = f->mode;
	u->old_has_bits = f->has_bits;
	u->old_has_owner = f->has_owner;
	u->old_uid = f->uid;
	u->old_gid = f->gid;
	u->old_attr_seq = f->attr_seq;
	f->attr_seq = u->seq;
}

static int get_u64(json_t *rec, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(rec, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* The fid a record is about: its "fid", else what its path names. */
static struct tm_file *record_file(tm_model *m, json_t *rec, uint64_t seq,
				   const char *path)
{
	uint64_t fid, dir;
	struct tm_entry *e;
	struct tm_file *f;
	const char *name;
	char *buf = NULL;

	if (get_u64(rec, "fid", &fid) == 0) {
		f = file_get(m, fid);
		if (!f)
			finding(m, seq,
				"the record names fid %" PRIu64
				", which no record created",
				fid);
		return f;
	}
	if (json_object_get(rec, "fid")) {
		finding(m, seq, "'fid' is not a non-negative integer");
		return NULL;
	}
	if (!path)
		return NULL;
	if (!*path)
		return file_get(m, TM_ROOT);
	if (resolve(m, path, &dir, &name, &buf) < 0)
		return NULL;
	e = ent_get(m, dir, name);
	free(buf);
	return e ? e->file : NULL;
}

/* "mode", "uid", "gid" of a record into f (as act u). */
static void take_attrs(tm_model *m, struct tm_undo *u, struct tm_file *f,
		       json_t *rec, int full_mode)
{
	json_t *mode = json_object_get(rec, "mode");
	json_t *uid = json_object_get(rec, "uid");
	json_t *gid = json_object_get(rec, "gid");

	if (!json_is_integer(mode) && !json_is_integer(uid) &&
	    !json_is_integer(gid))
		return;
	set_attrs(u, f);
	if (json_is_integer(mode)) {
		mode_t v = (mode_t)json_integer_value(mode);

		/* Creation records give st_mode, setattr the bits. */
		if (full_mode)
			f->mode = v & (S_IFMT | 07777);
		else
			f->mode = (f->mode & S_IFMT) | (v & 07777);
		f->has_bits = 1;
	}
	if (json_is_integer(uid) && json_is_integer(gid)) {
		f->uid = (uid_t)json_integer_value(uid);
		f->gid = (gid_t)json_integer_value(gid);
		f->has_owner = 1;
	} else if (json_is_integer(uid) && f->has_owner) {
		f->uid = (uid_t)json_integer_value(uid);
	} else if (json_is_integer(gid) && f->has_owner) {
		f->gid = (gid_t)json_integer_value(gid);
	}
}

static void pending(struct tm_file *f)
{
	if (f && S_ISREG(f->mode))
		f->content = TM_PENDING;
}

/* create, mkdir, mknod, symlink: a new fid (the record's seq) at path. */
static int apply_create(tm_model *m, uint64_t seq, const char *type,
			json_t *rec, const char *path)
{
	struct tm_undo *u = undo_start(m, seq, type);
	uint64_t fid = seq, dir, v;
	const char *name;
	char *buf = NULL, *target = NULL;
	struct tm_file *f;
	json_t *mode = json_object_get(rec, "mode");
	mode_t type_bits = !strcmp(type, "mkdir")     ? S_IFDIR
			   : !strcmp(type, "symlink") ? S_IFLNK
			   : !strcmp(type, "create")  ? S_IFREG
						      : 0;
	int rc;

	if (get_u64(rec, "fid", &v) == 0 && v != seq) {
		finding(m, seq, "a %s record's fid must be its seq", type);
		return 0;
	}
	if (!path) {
		finding(m, seq, "the %s record names no path", type);
		return 0;
	}
	rc = resolve(m, path, &dir, &name, &buf);
	if (rc == HC_ENOMEM)
		return rc;
	if (rc < 0) {
		impossible(m, u, "%s of '%.200s': %s", type, path,
			   hc_error_message());
		return 0;
	}
	if (ent_get(m, dir, name)) {
		/* The act failed (EEXIST); its `failed` record says so. */
		impossible(m, u, "%s of '%.200s', which exists", type, path);
		free(buf);
		return 0;
	}
	if (file_get(m, fid)) {
		finding(m, seq, "fid %" PRIu64 " already exists", fid);
		free(buf);
		return 0;
	}
	rc = file_add(m, fid, 0, &f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	u->created = fid;
	(void)mode;
	take_attrs(m, u, f, rec, 1);
	u->has_attr = 0; /* undoing the creation forgets the fid */
	/* The record type decides the type (mknod: its mode's). */
	if (type_bits)
		f->mode = type_bits | (f->mode & 07777);
	if ((f->mode & S_IFMT) == 0 && !strcmp(type, "mknod")) {
		impossible(m, u, "mknod record without a file type");
		file_del(m, fid);
		free(buf);
		return 0;
	}
	if (S_ISREG(f->mode)) {
		/* A new file is empty until written. */
		f->content = TM_KNOWN;
		hc_sha256("", 0, f->sha);
		f->size = 0;
	}
	if (!strcmp(type, "mknod"))
		f->rdev =
			(dev_t)json_integer_value(json_object_get(rec, "rdev"));
	if (!strcmp(type, "symlink")) {
		rc = tm_record_path(rec, "target", &target);
		if (rc == HC_ENOMEM) {
			free(buf);
			return rc;
		}
		f->target = target; /* NULL if an older record lacks it */
		snprintf(f->blob, sizeof(f->blob), "%s",
			 json_string_value(json_object_get(rec, "blob")) ?: "");
	}
	rc = change(m, u, dir, name, fid);
	free(buf);
	return rc;
}

static int apply_link(tm_model *m, uint64_t seq, json_t *rec, const char *path)
{
	struct tm_undo *u = undo_start(m, seq, "link");
	char *target = NULL, *buf = NULL;
	struct tm_file *f;
	const char *name;
	uint64_t dir;
	int rc;

	rc = tm_record_path(rec, "target", &target);
	if (rc == HC_ENOMEM)
		return rc;
	f = record_file(m, rec, seq, target);
	free(target);
	if (!path || !f) {
		impossible(m, u, "link of a file the model does not have");
		return 0;
	}
	if (S_ISDIR(f->mode)) {
		impossible(m, u, "link of a directory");
		return 0;
	}
	rc = resolve(m, path, &dir, &name, &buf);
	if (rc == HC_ENOMEM)
		return rc;
	if (rc < 0 || ent_get(m, dir, name)) {
		impossible(m, u, "link to '%.200s': %s", path,
			   rc < 0 ? hc_error_message() : "it exists");
		free(buf);
		return 0;
	}
	rc = change(m, u, dir, name, f->fid);
	free(buf);
	return rc;
}

static int apply_remove(tm_model *m, uint64_t seq, const char *type,
			json_t *rec, const char *path)
{
	struct tm_undo *u = undo_start(m, seq, type);
	struct tm_entry *e;
	const char *name;
	char *buf = NULL;
	uint64_t dir, fid;
	int rc, isdir = !strcmp(type, "rmdir");

	if (!path) {
		finding(m, seq, "the %s record names no path", type);
		return 0;
	}
	rc = resolve(m, path, &dir, &name, &buf);
	if (rc == HC_ENOMEM)
		return rc;
	e = rc == 0 ? ent_get(m, dir, name) : NULL;
	if (!e) {
		impossible(m, u,
			   "%s of '%.200s', which the tree does not "
			   "have",
			   type, path);
		free(buf);
		return 0;
	}
	if (get_u64(rec, "fid", &fid) == 0 && fid != e->file->fid) {
		finding(m, seq,
			"%s names fid %" PRIu64 " but '%.200s' is fid %" PRIu64,
			type, fid, path, e->file->fid);
		free(buf);
		return 0;
	}
	if (isdir != !!S_ISDIR(e->file->mode) && e->file->mode) {
		impossible(m, u, "%s of '%.200s', which is %sa directory", type,
			   path, isdir ? "not " : "");
		free(buf);
		return 0;
	}
	if (isdir && e->file->children) {
		impossible(m, u, "rmdir of '%.200s', which is not empty", path);
		free(buf);
		return 0;
	}
	rc = change(m, u, dir, name, TM_NONE);
	free(buf);
	return rc;
}

/* 1 if directory fid a is b or below it. */
static int below(tm_model *m, uint64_t a, uint64_t b)
{
	int guard = 0;

	while (guard++ < 1 << 20) {
		struct tm_file *f;

		if (a == b)
			return 1;
		if (a == TM_ROOT)
			return 0;
		f = file_get(m, a);
		if (!f || f->nnames == 0)
			return 0;
		a = f->names[0]->dir;
	}
	return 0;
}

static int apply_rename(tm_model *m, uint64_t seq, json_t *rec,
			const char *path)
{
	struct tm_undo *u = undo_start(m, seq, "rename");
	char *to = NULL, *b1 = NULL, *b2 = NULL;
	const char *n1, *n2;
	struct tm_entry *src, *dst;
	uint64_t d1, d2, sfid, dfid;
	uint64_t flags = 0;
	int rc;

	(void)get_u64(rec, "flags", &flags);
	rc = tm_record_path(rec, "to", &to);
	if (rc == HC_ENOMEM)
		return rc;
	if (!path || !to) {
		finding(m, seq, "the rename record lacks 'path' or 'to'");
		free(to);
		return 0;
	}
	rc = resolve(m, path, &d1, &n1, &b1);
	if (rc == 0)
		rc = resolve(m, to, &d2, &n2, &b2);
	if (rc == HC_ENOMEM)
		goto out;
	src = rc == 0 ? ent_get(m, d1, n1) : NULL;
	if (!src) {
		impossible(m, u,
			   "rename of '%.200s', which the tree does not "
			   "have",
			   path);
		rc = 0;
		goto out;
	}
	dst = ent_get(m, d2, n2);
	sfid = src->file->fid;
	dfid = dst ? dst->file->fid : TM_NONE;
	rc = 0;
	if (src == dst)
		goto out; /* a rename to itself does nothing */
	if ((flags & RENAME_EXCHANGE) && !dst) {
		impossible(m, u, "exchange with '%.200s', which does not exist",
			   to);
		goto out;
	}
	if ((flags & RENAME_NOREPLACE) && dst) {
		impossible(m, u, "rename over '%.200s', which exists", to);
		goto out;
	}
	if (S_ISDIR(src->file->mode) && below(m, d2, sfid)) {
		impossible(m, u, "rename of a directory into itself");
		goto out;
	}
	if (dst && (flags & RENAME_EXCHANGE) && S_ISDIR(dst->file->mode) &&
	    below(m, d1, dfid)) {
		impossible(m, u, "exchange of a directory into itself");
		goto out;
	}
	if (dst && !(flags & RENAME_EXCHANGE)) {
		int sd = !!S_ISDIR(src->file->mode);
		int dd = !!S_ISDIR(dst->file->mode);

		if ((sd != dd && src->file->mode && dst->file->mode) ||
		    (dd && dst->file->children)) {
			impossible(m, u, "rename over '%.200s': %s", to,
				   dd && dst->file->children
					   ? "a directory that is not empty"
					   : "a different kind of file");
			goto out;
		}
	}
	rc = change(m, u, d2, n2, sfid);
	if (rc == 0)
		rc = change(m, u, d1, n1,
			    (flags & RENAME_EXCHANGE) ? dfid : TM_NONE);
out:
	free(b1);
	free(b2);
	free(to);
	return rc;
}

static int apply_setattr(tm_model *m, uint64_t seq, json_t *rec,
			 const char *path)
{
	struct tm_undo *u = undo_start(m, seq, "setattr");
	struct tm_file *f = record_file(m, rec, seq, path);

	if (!f) {
		impossible(m, u, "setattr of a file the tree does not have");
		return 0;
	}
	take_attrs(m, u, f, rec, 0);
	if (json_object_get(rec, "size"))
		pending(f);
	return 0;
}

static int apply_version(tm_model *m, uint64_t seq, json_t *rec,
			 const char *path)
{
	struct tm_file *f = record_file(m, rec, seq, path);
	const char *hex = json_string_value(json_object_get(rec, "sha256"));
	const char *blob = json_string_value(json_object_get(rec, "blob"));
	uint64_t size;

	if (!f) {
		finding(m, seq, "a version of a file the tree does not have");
		return 0;
	}
	if (!hex || hc_unhex(hex, f->sha, HC_HASH_LEN) < 0 || !blob ||
	    get_u64(rec, "size", &size) < 0) {
		finding(m, seq, "version record lacks sha256, size or blob");
		return 0;
	}
	f->content = TM_KNOWN;
	f->size = size;
	snprintf(f->blob, sizeof(f->blob), "%s", blob);
	f->versions++;
	if (m->worm)
		f->locked = 1;
	return 0;
}

/* Undo act u in the model: 0, or HC_EINVAL if a later act changed it. */
static int undo(tm_model *m, struct tm_undo *u)
{
	int i;

	if (u->reverted)
		return 0;
	if (u->bad) {
		/* Nothing was applied: only the finding goes. */
		u->reverted = 1;
		m->bad_left--;
		return 0;
	}
	for (i = 0; i < u->nch; i++) {
		struct tm_change *c = &u->ch[i];
		struct tm_entry *e = ent_get(m, c->dir, c->name);
		uint64_t now = e ? e->file->fid : TM_NONE;

		if (now != c->new_fid || (e && e->seq != u->seq))
			return hc_error_set(
				HC_EINVAL,
				"a later record changed what record "
				"%" PRIu64 " did",
				u->seq);
	}
	if (u->has_attr) {
		struct tm_file *f = file_get(m, u->afid);

		if (!f || f->attr_seq != u->seq)
			return hc_error_set(
				HC_EINVAL,
				"a later record changed what record "
				"%" PRIu64 " did",
				u->seq);
	}
	for (i = u->nch - 1; i >= 0; i--) {
		struct tm_change *c = &u->ch[i];
		int rc = ent_set(m, c->dir, c->name, c->old_fid, c->old_seq);

		if (rc < 0)
			return rc;
	}
	if (u->has_attr) {
		struct tm_file *f = file_get(m, u->afid);

		f->mode = u->old_mode;
		f->has_bits = u->old_has_bits;
		f->has_owner = u->old_has_owner;
		f->uid = u->old_uid;
		f->gid = u->old_gid;
		f->attr_seq = u->old_attr_seq;
	}
	if (u->created != TM_NONE) {
		struct tm_file *f = file_get(m, u->created);

		if (f && f->nnames == 0)
			file_del(m, u->created);
	}
	u->reverted = 1;
	return 0;
}

int tm_revert(tm_model *m, uint64_t seq)
{
	struct tm_undo *u = undo_find(m, seq);

	if (!u)
		return hc_error_set(HC_ENOENT,
				    "record %" PRIu64
				    " is not an act the model "
				    "can undo",
				    seq);
	return undo(m, u);
}

uint64_t tm_last_change(tm_model *m, const char *path)
{
	const char *name;
	char *buf = NULL;
	uint64_t dir, best = 0;
	size_t i;
	int k;

	if (resolve(m, path, &dir, &name, &buf) < 0)
		return 0;
	for (i = 0; i < TM_UNDO_DEPTH; i++) {
		struct tm_undo *u = &m->undo[i];

		if (u->seq == TM_NONE || u->reverted || u->bad ||
		    u->seq <= best)
			continue;
		for (k = 0; k < u->nch; k++)
			if (u->ch[k].dir == dir && !strcmp(u->ch[k].name, name))
				best = u->seq;
	}
	free(buf);
	return best;
}

const char *tm_act_type(tm_model *m, uint64_t seq)
{
	struct tm_undo *u = undo_find(m, seq);

	return u ? u->type : NULL;
}

static int apply_failed(tm_model *m, uint64_t seq, json_t *rec)
{
	struct tm_undo *u;
	uint64_t of;

	if (get_u64(rec, "of", &of) < 0 || of >= seq) {
		finding(m, seq,
			"a failed record must name an earlier record "
			"('of')");
		return 0;
	}
	u = undo_find(m, of);
	if (!u) {
		/*
		 * A failed write, fallocate or truncation leaves the content
		 * pending; nothing else to undo.  Other acts must be among
		 * the last TM_UNDO_DEPTH.
		 */
		const char *op = json_string_value(json_object_get(rec, "op"));

		if (op && (!strcmp(op, "write") || !strcmp(op, "fallocate") ||
			   !strcmp(op, "open") || !strcmp(op, "setxattr") ||
			   !strcmp(op, "removexattr")))
			return 0;
		finding(m, seq,
			"record %" PRIu64 " failed, but it is not an act the "
			"verifier can undo (more than %u acts before)",
			of, TM_UNDO_DEPTH);
		return 0;
	}
	if (undo(m, u) == HC_EINVAL)
		finding(m, seq, "%s", hc_error_message());
	return 0;
}

int tm_apply(tm_model *m, uint64_t seq, const char *type, json_t *rec,
	     const char *where, hc_findings *f)
{
	char *path = NULL;
	int rc = 0;

	m->f = f;
	m->where = where;
	if (!strcmp(type, "genesis")) {
		json_t *a = json_object_get(rec, "actor");
		struct tm_file *root = file_get(m, TM_ROOT);

		root->uid =
			(uid_t)json_integer_value(json_object_get(a, "uid"));
		root->gid =
			(gid_t)json_integer_value(json_object_get(a, "gid"));
		root->has_owner = 1;
		return 0;
	}
	if (!strcmp(type, "mount")) {
		json_t *o = json_object_get(rec, "options");
		json_t *p = json_object_get(rec, "preservation");

		m->last_mount = seq;
		m->worm = json_is_true(json_object_get(o, "worm")) &&
			  (!p || json_is_true(json_object_get(p, "in_force")));
		return 0;
	}
	if (!strcmp(type, "failed"))
		return apply_failed(m, seq, rec);
	rc = tm_record_path(rec, "path", &path);
	if (rc == HC_ENOMEM)
		return rc;
	if (rc == HC_EFORMAT)
		finding(m, seq, "%s", hc_error_message());
	rc = 0;
	if (!strcmp(type, "create") || !strcmp(type, "mkdir") ||
	    !strcmp(type, "mknod") || !strcmp(type, "symlink")) {
		rc = apply_create(m, seq, type, rec, path);
	} else if (!strcmp(type, "link")) {
		rc = apply_link(m, seq, rec, path);
	} else if (!strcmp(type, "unlink") || !strcmp(type, "rmdir")) {
		rc = apply_remove(m, seq, type, rec, path);
	} else if (!strcmp(type, "rename")) {
		rc = apply_rename(m, seq, rec, path);
	} else if (!strcmp(type, "setattr")) {
		rc = apply_setattr(m, seq, rec, path);
	} else if (!strcmp(type, "setxattr") &&
		   json_is_integer(json_object_get(rec, "mode"))) {
		/* A POSIX access ACL: its permission bits. */
		rc = apply_setattr(m, seq, rec, path);
	} else if (!strcmp(type, "version")) {
		rc = apply_version(m, seq, rec, path);
	} else if (!strcmp(type, "write") || !strcmp(type, "write-short") ||
		   !strcmp(type, "fallocate") ||
		   (!strcmp(type, "open") &&
		    (json_integer_value(json_object_get(rec, "flags")) &
		     O_TRUNC))) {
		struct tm_file *fl = record_file(m, rec, seq, path);

		if (!fl && json_object_get(rec, "fid"))
			; /* record_file said why */
		else if (!fl)
			finding(m, seq, "a %s of a file the tree does not have",
				type);
		pending(fl);
	}
	free(path);
	return rc;
}

size_t tm_finish(tm_model *m, hc_findings *f)
{
	size_t i, n = 0;

	for (i = 0; i < TM_UNDO_DEPTH && m->bad_left; i++) {
		struct tm_undo *u = &m->undo[i];

		if (u->seq == TM_NONE || !u->bad || u->reverted)
			continue;
		report_bad(f, u,
			   ", and no 'failed' record says it did not happen");
		n++;
	}
	return n;
}

/* ------------------------------------------------------------ queries */

int tm_lookup(tm_model *m, const char *path, uint64_t *fid)
{
	struct tm_entry *e;
	const char *name;
	char *buf = NULL;
	uint64_t dir;
	int rc;

	if (!*path) {
		*fid = TM_ROOT;
		return 0;
	}
	rc = resolve(m, path, &dir, &name, &buf);
	if (rc < 0)
		return rc;
	e = ent_get(m, dir, name);
	free(buf);
	if (!e)
		return hc_error_set(HC_ENOENT, "no such file in the tree");
	*fid = e->file->fid;
	return 0;
}

static void info_of(const struct tm_file *f, struct tm_info *out)
{
	memset(out, 0, sizeof(*out));
	out->fid = f->fid;
	out->mode = f->mode;
	out->has_owner = f->has_owner;
	out->uid = f->uid;
	out->gid = f->gid;
	out->rdev = f->rdev;
	out->content = f->content;
	memcpy(out->sha256, f->sha, HC_HASH_LEN);
	out->size = f->size;
	memcpy(out->blob, f->blob, sizeof(out->blob));
	out->locked = f->locked;
	out->nlink = (uint32_t)f->nnames;
	out->versions = f->versions;
}

int tm_get(tm_model *m, uint64_t fid, struct tm_info *out)
{
	struct tm_file *f = file_get(m, fid);

	if (!f)
		return hc_error_set(HC_ENOENT, "no fid %" PRIu64, fid);
	info_of(f, out);
	return 0;
}

void tm_paths_free(char **paths)
{
	size_t i;

	for (i = 0; paths && paths[i]; i++)
		free(paths[i]);
	free(paths);
}

int tm_paths(tm_model *m, uint64_t fid, char ***out)
{
	struct tm_file *f = file_get(m, fid);
	char **p;
	size_t i;

	if (!f)
		return hc_error_set(HC_ENOENT, "no fid %" PRIu64, fid);
	p = calloc(f->nnames + 1 + (fid == TM_ROOT), sizeof(*p));
	if (!p)
		return hc_error_set(HC_ENOMEM, "out of memory");
	if (fid == TM_ROOT && !(p[0] = strdup(""))) {
		free(p);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	for (i = 0; i < f->nnames; i++) {
		p[i] = entry_path(m, f->names[i]);
		if (!p[i]) {
			tm_paths_free(p);
			return hc_error_set(HC_ENOMEM, "out of memory");
		}
	}
	*out = p;
	return 0;
}

int tm_foreach(tm_model *m, int (*fn)(void *ctx, const struct tm_info *i),
	       void *ctx)
{
	struct tm_info info;
	size_t i;
	int rc;

	for (i = 0; i < m->nfb; i++) {
		struct tm_file *f;

		for (f = m->files[i]; f; f = f->hnext) {
			info_of(f, &info);
			rc = fn(ctx, &info);
			if (rc)
				return rc;
		}
	}
	return 0;
}

void tm_counts(tm_model *m, uint64_t *files, uint64_t *names,
	       uint64_t *npending)
{
	size_t i;
	uint64_t p = 0;

	for (i = 0; i < m->nfb; i++) {
		struct tm_file *f;

		for (f = m->files[i]; f; f = f->hnext)
			p += f->content == TM_PENDING && f->nnames;
	}
	*files = m->nfiles;
	*names = m->nents;
	*npending = p;
}

static int walk_model(tm_model *m, struct tm_file *d, const char *prefix,
		      int (*fn)(void *, const char *, const struct tm_info *),
		      void *ctx, int depth)
{
	struct tm_info info;
	struct tm_entry *e;
	int rc = 0;

	if (depth > 1 << 16)
		return hc_error_set(HC_EINVAL, "directories nested too deep");
	for (e = d->kids; e && rc == 0; e = e->snext) {
		size_t a = strlen(prefix), b = strlen(e->name);
		char *path = malloc(a + b + 2);

		if (!path)
			return hc_error_set(HC_ENOMEM, "out of memory");
		memcpy(path, prefix, a);
		if (a)
			path[a++] = '/';
		memcpy(path + a, e->name, b + 1);
		info_of(e->file, &info);
		rc = fn(ctx, path, &info);
		if (rc == 0 && S_ISDIR(e->file->mode))
			rc = walk_model(m, e->file, path, fn, ctx, depth + 1);
		free(path);
	}
	return rc;
}

int tm_walk(tm_model *m, const char *path,
	    int (*fn)(void *ctx, const char *path, const struct tm_info *i),
	    void *ctx)
{
	struct tm_file *d;
	uint64_t fid;
	int rc;

	rc = tm_lookup(m, path, &fid);
	if (rc < 0)
		return rc;
	d = file_get(m, fid);
	if (!d || !S_ISDIR(d->mode))
		return 0;
	return walk_model(m, d, path, fn, ctx, 0);
}

void tm_lock(tm_model *m, uint64_t fid)
{
	struct tm_file *f = file_get(m, fid);

	if (f)
		f->locked = 1;
}

uint64_t tm_last_mount(tm_model *m)
{
	return m->last_mount;
}

/* ------------------------------------------------------------- check */

struct ino_slot {
	dev_t dev;
	ino_t ino;
	uint64_t fid;
	int used;
};

struct chk {
	tm_model *m;
	const struct tm_check_options *o;
	hc_findings *f;
	struct tm_check_report rep;
	uint8_t *buf; /* for hashing */
	/* regular files seen, by inode: two fids must not share one */
	struct ino_slot *inos;
	size_t ninos, cap;
};

#define HASH_BUF (1u << 20)

__attribute__((format(printf, 5, 6))) static void diff(struct chk *c, int kind,
						       uint64_t seq,
						       const char *path,
						       const char *fmt, ...)
{
	char reason[512], where[512], *pp;
	va_list ap;

	c->rep.diffs++;
	if (c->o->on_diff && c->o->on_diff(c->o->ctx, seq, path, kind))
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	pp = tm_printable(path);
	snprintf(where, sizeof(where), "tree/%.490s", pp ? pp : "?");
	free(pp);
	hc_findings_add(c->f, seq ? (int64_t)seq : -1, 0, where, "%s", reason);
}

/* The fid another name of this inode had, or TM_NONE (noting this one). */
static uint64_t ino_seen(struct chk *c, const struct stat *st, uint64_t fid)
{
	size_t i, mask;

	if (c->ninos * 2 >= c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 1024, j;
		struct ino_slot *n = calloc(cap, sizeof(*n));

		if (!n)
			return TM_NONE; /* the check goes on without it */
		for (j = 0; j < c->cap; j++) {
			if (!c->inos[j].used)
				continue;
			i = (size_t)(c->inos[j].ino * 0x9e3779b97f4a7c15ull) &
			    (cap - 1);
			while (n[i].used)
				i = (i + 1) & (cap - 1);
			n[i] = c->inos[j];
		}
		free(c->inos);
		c->inos = n;
		c->cap = cap;
	}
	mask = c->cap - 1;
	i = (size_t)(st->st_ino * 0x9e3779b97f4a7c15ull) & mask;
	for (; c->inos[i].used; i = (i + 1) & mask)
		if (c->inos[i].ino == st->st_ino &&
		    c->inos[i].dev == st->st_dev)
			return c->inos[i].fid;
	c->inos[i].used = 1;
	c->inos[i].dev = st->st_dev;
	c->inos[i].ino = st->st_ino;
	c->inos[i].fid = fid;
	c->ninos++;
	return TM_NONE;
}

/* SHA-256 of the regular file name in dfd into out. */
static int hash_file(struct chk *c, int dfd, const char *name,
		     uint8_t out[HC_HASH_LEN], uint64_t *bytes)
{
	hc_sha256_ctx *h = NULL;
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = openat(dfd, name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOATIME | O_CLOEXEC);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name,
			    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return hc_error_set(HC_EFORMAT, "not a regular file");
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = hc_sha256_new(&h);
	*bytes = 0;
	while (rc == 0 && (n = read(fd, c->buf, HASH_BUF)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = hc_error_set(HC_ESYS, "cannot read");
			break;
		}
		rc = hc_sha256_update(h, c->buf, (size_t)n);
		*bytes += (uint64_t)n;
	}
	if (rc == 0)
		rc = hc_sha256_final(h, out);
	hc_sha256_free(h);
	close(fd);
	return rc;
}

/*
 * The fid mark of name in dfd: 1 with *fid, 0 if none, 2 if malformed,
 * -1 if it cannot be read (not root, no xattrs); *pfd an O_PATH fd.
 */
static int read_fid(int dfd, const char *name, int *pfd, uint64_t *fid)
{
	char proc[64], val[32], *end;
	ssize_t n;

	*pfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (*pfd < 0)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", *pfd);
	n = getxattr(proc, TM_XATTR_FID, val, sizeof(val) - 1);
	if (n < 0)
		return errno == ENODATA ? 0 : -1;
	val[n] = '\0';
	errno = 0;
	*fid = strtoull(val, &end, 10);
	if (n == 0 || *end || errno || (val[0] == '0' && n > 1))
		return 2;
	return 1;
}

static void check_fid(struct chk *c, int dfd, const char *name,
		      const char *path, const struct tm_entry *e)
{
	char proc[64], val[32];
	uint64_t fid = TM_NONE;
	int pfd = -1, r;

	r = read_fid(dfd, name, &pfd, &fid);
	if (r < 0) {
		/* Not root, or no xattrs here: the names decide. */
	} else if (r == 0 || r == 2 || fid != e->file->fid) {
		if (c->o->fix_fids && r == 0 && pfd >= 0) {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
			snprintf(val, sizeof(val), "%" PRIu64, e->file->fid);
			if (setxattr(proc, TM_XATTR_FID, val, strlen(val), 0) <
			    0)
				diff(c, TM_DIFF_OTHER, e->seq, path,
				     "cannot mark it as fid %" PRIu64 ": %s",
				     e->file->fid, strerror(errno));
		} else if (r != 0) {
			diff(c, TM_DIFF_OTHER, e->seq, path,
			     "is marked as fid %" PRIu64
			     " where the chain says "
			     "%" PRIu64,
			     fid, e->file->fid);
		}
	}
	if (pfd >= 0)
		close(pfd);
}

static const char *kind(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symlink";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	default:
		return "a file of unknown type";
	}
}

/* One name on disk against the model. */
static int check_entry(struct chk *c, int dfd, const char *name,
		       const char *path, struct tm_entry *e,
		       const struct stat *st)
{
	struct tm_file *f = e->file;
	uint8_t sha[HC_HASH_LEN];
	uint64_t other, bytes = 0;
	int rc;

	c->rep.entries++;
	if ((f->mode & S_IFMT) &&
	    (st->st_mode & S_IFMT) != (f->mode & S_IFMT)) {
		diff(c, TM_DIFF_NAME, e->seq, path,
		     "is %s where the chain says %s", kind(st->st_mode),
		     kind(f->mode));
		return 0;
	}
	if (f->has_bits && !S_ISLNK(st->st_mode) &&
	    (st->st_mode & 07777) != (f->mode & 07777))
		diff(c, TM_DIFF_ATTR, f->attr_seq, path,
		     "has mode %04o where the chain says %04o",
		     (unsigned)(st->st_mode & 07777),
		     (unsigned)(f->mode & 07777));
	if (f->has_owner && (st->st_uid != f->uid || st->st_gid != f->gid))
		diff(c, TM_DIFF_ATTR, f->attr_seq, path,
		     "is owned by %u:%u where the chain says %u:%u",
		     (unsigned)st->st_uid, (unsigned)st->st_gid,
		     (unsigned)f->uid, (unsigned)f->gid);
	check_fid(c, dfd, name, path, e);
	if (S_ISLNK(st->st_mode) && f->target) {
		size_t want = strlen(f->target);
		char *buf = malloc(want + 2);
		ssize_t n;

		if (!buf)
			return hc_error_set(HC_ENOMEM, "out of memory");
		n = readlinkat(dfd, name, buf, want + 2);
		if (n < 0 || (size_t)n != want || memcmp(buf, f->target, want))
			diff(c, TM_DIFF_OTHER, e->seq, path,
			     "points elsewhere than the chain says");
		free(buf);
	}
	if ((S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) &&
	    st->st_rdev != f->rdev)
		diff(c, TM_DIFF_OTHER, e->seq, path,
		     "is device %u:%u where the chain says %u:%u",
		     major(st->st_rdev), minor(st->st_rdev), major(f->rdev),
		     minor(f->rdev));
	if (!S_ISREG(st->st_mode))
		return 0;
	if (f->seen) {
		/* Another name of the same fid: the same inode. */
		if (f->seen_ino != st->st_ino || f->seen_dev != st->st_dev)
			diff(c, TM_DIFF_OTHER, e->seq, path,
			     "should be a hard link of another name of fid "
			     "%" PRIu64 ", and is a different file",
			     f->fid);
		return 0;
	}
	f->seen = 1;
	f->seen_ino = st->st_ino;
	f->seen_dev = st->st_dev;
	other = ino_seen(c, st, f->fid);
	if (other != TM_NONE && other != f->fid) {
		diff(c, TM_DIFF_OTHER, e->seq, path,
		     "is the same file as fid %" PRIu64 " (a hard link the "
		     "chain does not show)",
		     other);
		return 0;
	}
	if (f->content == TM_PENDING) {
		c->rep.pending++;
		return 0;
	}
	if (!c->o->hash || f->content != TM_KNOWN)
		return 0;
	if (c->o->skip_hash && c->o->skip_hash(c->o->ctx, f->fid, st))
		return 0;
	if ((uint64_t)st->st_size != f->size) {
		diff(c, TM_DIFF_OTHER, e->seq, path,
		     "has %" PRIu64 " bytes where its last version has %" PRIu64
		     " (changed behind the filesystem?)",
		     (uint64_t)st->st_size, f->size);
		return 0;
	}
	rc = hash_file(c, dfd, name, sha, &bytes);
	if (rc == HC_ENOMEM)
		return rc;
	if (rc < 0) {
		diff(c, TM_DIFF_OTHER, e->seq, path, "cannot be read: %s",
		     hc_error_message());
		return 0;
	}
	c->rep.hashed++;
	c->rep.bytes += bytes;
	if (memcmp(sha, f->sha, HC_HASH_LEN))
		diff(c, TM_DIFF_OTHER, e->seq, path,
		     "differs from its last version in the chain (changed "
		     "behind the filesystem?)");
	return 0;
}

static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, a);
	if (a)
		p[a++] = '/';
	memcpy(p + a, name, b + 1);
	return p;
}

static int walk(struct chk *c, int dfd, uint64_t dirfid, const char *dpath)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return hc_error_set(HC_ESYS, "cannot read 'tree/%.300s'",
				    dpath);
	}
	while (rc == 0) {
		struct tm_entry *e;
		struct stat st;
		char *path;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = hc_error_set(HC_ESYS,
						  "cannot read 'tree/%.300s'",
						  dpath);
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		path = join(dpath, de->d_name);
		if (!path) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			break;
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			diff(c, TM_DIFF_OTHER, 0, path,
			     "cannot be examined: %s", strerror(errno));
			free(path);
			continue;
		}
		e = ent_get(c->m, dirfid, de->d_name);
		if (!e) {
			diff(c, TM_DIFF_NAME, 0, path,
			     "is %s that no record explains%s",
			     kind(st.st_mode),
			     S_ISDIR(st.st_mode) ? " (nor what is in it)" : "");
			free(path);
			continue;
		}
		e->seen = 1;
		rc = check_entry(c, dfd, de->d_name, path, e, &st);
		if (rc == 0 && S_ISDIR(st.st_mode) && S_ISDIR(e->file->mode)) {
			int sub = openat(dfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						 O_CLOEXEC);

			if (sub < 0) {
				diff(c, TM_DIFF_OTHER, e->seq, path,
				     "cannot be opened: %s", strerror(errno));
			} else {
				rc = walk(c, sub, e->file->fid, path);
				close(sub);
			}
		}
		free(path);
	}
	closedir(d);
	return rc;
}

int tm_check_tree(tm_model *m, int treefd, const struct tm_check_options *o,
		  hc_findings *f, struct tm_check_report *out)
{
	static const struct tm_check_options none;
	struct tm_file *root = file_get(m, TM_ROOT);
	struct chk c;
	struct stat st;
	size_t i;
	int rc;

	memset(&c, 0, sizeof(c));
	c.m = m;
	c.o = o ? o : &none;
	c.f = f;
	c.buf = malloc(HASH_BUF);
	if (!c.buf)
		return hc_error_set(HC_ENOMEM, "out of memory");
	for (i = 0; i < m->nfb; i++) {
		struct tm_file *fl;

		for (fl = m->files[i]; fl; fl = fl->hnext)
			fl->seen = 0;
	}
	for (i = 0; i < m->neb; i++) {
		struct tm_entry *e;

		for (e = m->ents[i]; e; e = e->hnext)
			e->seen = 0;
	}
	/* The root: its mode and owner (it has no name, no fid mark). */
	if (fstat(treefd, &st) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot examine 'tree'");
		goto out;
	}
	if (root->has_bits && (st.st_mode & 07777) != (root->mode & 07777))
		diff(&c, TM_DIFF_ATTR, root->attr_seq, "",
		     "(the root) has mode %04o where the chain says %04o",
		     (unsigned)(st.st_mode & 07777),
		     (unsigned)(root->mode & 07777));
	if (root->has_owner &&
	    (st.st_uid != root->uid || st.st_gid != root->gid))
		diff(&c, TM_DIFF_ATTR, root->attr_seq, "",
		     "(the root) is owned by %u:%u where the chain says %u:%u",
		     (unsigned)st.st_uid, (unsigned)st.st_gid,
		     (unsigned)root->uid, (unsigned)root->gid);
	rc = walk(&c, treefd, TM_ROOT, "");
	if (rc < 0)
		goto out;
	/* Names the chain has that the tree lacks (the topmost only). */
	for (i = 0; i < m->neb; i++) {
		struct tm_entry *e;

		for (e = m->ents[i]; e; e = e->hnext) {
			struct tm_file *d;
			char *path;

			if (e->seen)
				continue;
			d = file_get(m, e->dir);
			if (e->dir != TM_ROOT &&
			    (!d || d->nnames == 0 || !d->names[0]->seen))
				continue; /* its directory is missing too */
			path = entry_path(m, e);
			if (!path) {
				rc = hc_error_set(HC_ENOMEM, "out of memory");
				goto out;
			}
			diff(&c, TM_DIFF_NAME, e->seq, path,
			     "is missing: the chain says it is %s",
			     kind(e->file->mode));
			free(path);
		}
	}
	if (out)
		*out = c.rep;
out:
	free(c.buf);
	free(c.inos);
	return rc;
}
