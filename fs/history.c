/*
 * history.c - the commits of STORE/git and the index of the chain's
 * versions, for /.hozen/ (see history.h).
 *
 * The commit cache is VS_REF's first-parent history, oldest first, with
 * an open-addressing table from commit id to its place.  When the ref
 * moves, the walk from the new head stops at the first commit the cache
 * knows: an append costs the new commits only.
 *
 * The index is a tree of path components.  A component is found from
 * its parent and name through one hash table for the whole index; its
 * children are also kept in a list, in the order they were first seen,
 * for listings.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>
#include <openssl/evp.h>

#include "history.h"
#include "model.h"
#include "versions.h"

struct commit {
	git_oid id, tree;
	int64_t time;
};

struct hs_path {
	struct hs_path *parent;
	struct hs_path *hnext;		     /* hash chain */
	struct hs_path *first, *last, *next; /* children; siblings */
	struct hs_version *v;		     /* versions, chain order */
	uint32_t nv, capv;
	size_t len;
	char name[]; /* len bytes and a NUL */
};

struct hs_history {
	/* glock protects repo, odb and the commit cache. */
	pthread_mutex_t glock;
	git_repository *repo;
	git_odb *odb;
	struct commit *commits; /* oldest first */
	size_t ncommits, capcommits;
	size_t *slots; /* commit index + 1, 0 for empty; nslots a power of 2 */
	size_t nslots;

	/* ilock protects the index. */
	pthread_rwlock_t ilock;
	struct hs_path *root;
	struct hs_path **buckets; /* nbuckets a power of 2 */
	size_t nbuckets, npaths;
	uint64_t nversions;
};

/* ------------------------------------------------------------ helpers */

/* 40 lower-case hex digits, exactly. */
static int is_hex40(const char *s)
{
	return strlen(s) == GIT_OID_HEXSZ &&
	       strspn(s, "0123456789abcdef") == GIT_OID_HEXSZ;
}

/*
 * An RFC 3339 UTC time as records give it: YYYY-MM-DDTHH:MM:SS, an
 * optional fraction of 1 to 9 digits, Z.
 */
static int parse_time(const char *s, struct timespec *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm;
	long frac = 0;
	int digits = 0;
	size_t i;
	time_t t;

	if (!s || strlen(s) < sizeof(shape))
		return HC_EINVAL;
	for (i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
				    : s[i] != shape[i])
			return HC_EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	tm.tm_hour = atoi(s + 11);
	tm.tm_min = atoi(s + 14);
	tm.tm_sec = atoi(s + 17);
	s += sizeof(shape) - 1;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9' && digits < 9; s++, digits++)
			frac = frac * 10 + (*s - '0');
		if (digits == 0)
			return HC_EINVAL;
		for (i = (size_t)digits; i < 9; i++)
			frac *= 10;
	}
	if (strcmp(s, "Z") || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return HC_EINVAL;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return HC_EINVAL;
	out->tv_sec = t;
	out->tv_nsec = frac;
	return 0;
}

/* ------------------------------------------------------------- opening */

int hs_open(hs_history **out, int storefd)
{
	hs_history *h;
	char proc[64], path[PATH_MAX];
	ssize_t n;
	int gitfd, rc = 0, g;

	if (!out)
		return hc_error_set(HC_EINVAL, "hs_open: bad arguments");
	gitfd = openat(storefd, "git",
		       O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (gitfd < 0)
		return hc_error_set(errno == ENOENT ? HC_ENOENT : HC_ESYS,
				    "cannot open the store's 'git'");
	/* libgit2 wants a path: the directory's, whatever the cwd. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", gitfd);
	n = readlink(proc, path, sizeof(path) - 1);
	close(gitfd);
	if (n < 0 || (size_t)n >= sizeof(path) - 1)
		return hc_error_set(HC_ESYS,
				    "cannot find the path of the store's "
				    "'git'");
	path[n] = '\0';
	g = git_libgit2_init();
	if (g < 0)
		return vs_git_error(g, "cannot initialise libgit2");
	h = calloc(1, sizeof(*h));
	if (!h) {
		git_libgit2_shutdown();
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	/* From here hs_free undoes everything. */
	pthread_mutex_init(&h->glock, NULL);
	pthread_rwlock_init(&h->ilock, NULL);
	h->root = calloc(1, sizeof(*h->root) + 1);
	h->buckets = calloc(1024, sizeof(*h->buckets));
	if (!h->root || !h->buckets) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	h->nbuckets = 1024;
	g = git_repository_open_bare(&h->repo, path);
	if (g == 0)
		g = git_repository_odb(&h->odb, h->repo);
	if (g < 0) {
		rc = vs_git_error(g, "cannot open repository '%s'", path);
		if (rc == HC_ENOENT)
			rc = hc_error_set(HC_EFORMAT,
					  "'%s' is not a git repository", path);
		goto out;
	}
	*out = h;
	h = NULL;
out:
	hs_free(h);
	return rc;
}

void hs_free(hs_history *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->nbuckets; i++) {
		struct hs_path *p = h->buckets[i], *next;

		for (; p; p = next) {
			next = p->hnext;
			free(p->v);
			free(p);
		}
	}
	free(h->buckets);
	if (h->root)
		free(h->root->v);
	free(h->root);
	free(h->commits);
	free(h->slots);
	git_odb_free(h->odb);
	git_repository_free(h->repo);
	pthread_rwlock_destroy(&h->ilock);
	pthread_mutex_destroy(&h->glock);
	free(h);
	git_libgit2_shutdown();
}

/* ------------------------------------------------------------- commits */

static size_t slot_of(const hs_history *h, const git_oid *id)
{
	uint64_t k;

	/* An object id is already uniform: its first bytes will do. */
	memcpy(&k, id->id, sizeof(k));
	return (size_t)k & (h->nslots - 1);
}

/* The place of commit id in the cache, or (size_t)-1; glock held. */
static size_t commit_find(const hs_history *h, const git_oid *id)
{
	size_t s;

	if (!h->nslots)
		return (size_t)-1;
	for (s = slot_of(h, id); h->slots[s]; s = (s + 1) & (h->nslots - 1))
		if (git_oid_equal(&h->commits[h->slots[s] - 1].id, id))
			return h->slots[s] - 1;
	return (size_t)-1;
}

/* Forget every cached commit; glock held. */
static void cache_reset(hs_history *h)
{
	h->ncommits = 0;
	if (h->slots)
		memset(h->slots, 0, h->nslots * sizeof(*h->slots));
}

static void slot_put(hs_history *h, size_t i)
{
	size_t s;

	for (s = slot_of(h, &h->commits[i].id); h->slots[s];
	     s = (s + 1) & (h->nslots - 1))
		;
	h->slots[s] = i + 1;
}

/*
 * Index the cached commits from first on (all of them again when the
 * table is too small or rewind); glock held.
 */
static int commits_index(hs_history *h, size_t first, int rewind)
{
	size_t want = h->nslots ? h->nslots : 64, i, *slots;

	while (want < 2 * h->ncommits)
		want *= 2;
	if (want != h->nslots || rewind) {
		slots = calloc(want, sizeof(*slots));
		if (!slots)
			return hc_error_set(HC_ENOMEM, "out of memory");
		free(h->slots);
		h->slots = slots;
		h->nslots = want;
		first = 0;
	}
	for (i = first; i < h->ncommits; i++)
		slot_put(h, i);
	return 0;
}

/*
 * Bring the cache to VS_REF's first-parent history; glock held.  0, or 1
 * if the ref names no commit yet.
 */
static int refresh_locked(hs_history *h)
{
	struct commit *fresh = NULL, *grown;
	size_t n = 0, cap = 0, keep = 0, at, i;
	git_commit *c = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	git_oid head, id;
	int g, rc = 0;

	g = git_reference_name_to_id(&head, h->repo, VS_REF);
	if (g == GIT_ENOTFOUND) {
		cache_reset(h);
		return 1;
	}
	if (g < 0)
		return vs_git_error(g, "cannot read '%s'", VS_REF);
	if (h->ncommits &&
	    git_oid_equal(&head, &h->commits[h->ncommits - 1].id))
		return 0;
	for (id = head;;) {
		at = commit_find(h, &id);
		if (at != (size_t)-1) {
			keep = at + 1;
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			grown = realloc(fresh, cap * sizeof(*fresh));
			if (!grown) {
				rc = hc_error_set(HC_ENOMEM, "out of memory");
				goto out;
			}
			fresh = grown;
		}
		g = git_commit_lookup(&c, h->repo, &id);
		if (g < 0) {
			git_oid_tostr(hex, sizeof(hex), &id);
			rc = vs_git_error(g, "cannot read commit '%s'", hex);
			if (rc == HC_ENOENT)
				rc = hc_error_set(HC_EFORMAT,
						  "commit '%s' of '%s' is "
						  "missing from git",
						  hex, VS_REF);
			goto out;
		}
		fresh[n].id = id;
		fresh[n].tree = *git_commit_tree_id(c);
		fresh[n].time = (int64_t)git_commit_time(c);
		n++;
		if (git_commit_parentcount(c) == 0) {
			keep = 0; /* a history the cache does not know */
			break;
		}
		id = *git_commit_parent_id(c, 0);
		git_commit_free(c);
		c = NULL;
	}
	if (keep + n > h->capcommits) {
		size_t want = h->capcommits ? h->capcommits : 64;

		while (want < keep + n)
			want *= 2;
		grown = realloc(h->commits, want * sizeof(*grown));
		if (!grown) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
		h->commits = grown;
		h->capcommits = want;
	}
	/* The walk went newest first; the cache is oldest first. */
	for (i = 0; i < n; i++)
		h->commits[keep + i] = fresh[n - 1 - i];
	i = h->ncommits;
	h->ncommits = keep + n;
	rc = commits_index(h, keep, keep < i);
	if (rc < 0)
		cache_reset(h); /* a cache it cannot index: read it anew */
out:
	git_commit_free(c);
	free(fresh);
	return rc;
}

int hs_latest(hs_history *h, char hex[41], int64_t *time_out)
{
	int rc;

	pthread_mutex_lock(&h->glock);
	rc = refresh_locked(h);
	if (rc == 0) {
		git_oid_tostr(hex, 41, &h->commits[h->ncommits - 1].id);
		if (time_out)
			*time_out = h->commits[h->ncommits - 1].time;
	}
	pthread_mutex_unlock(&h->glock);
	return rc;
}

int hs_commits_each(hs_history *h,
		    int (*fn)(void *ctx, const char *hex, int64_t time),
		    void *ctx)
{
	char hex[GIT_OID_HEXSZ + 1];
	size_t i;
	int rc;

	pthread_mutex_lock(&h->glock);
	rc = refresh_locked(h);
	if (rc == 1)
		rc = 0;
	for (i = h->ncommits; rc == 0 && i > 0; i--) {
		git_oid_tostr(hex, sizeof(hex), &h->commits[i - 1].id);
		rc = fn(ctx, hex, h->commits[i - 1].time);
	}
	pthread_mutex_unlock(&h->glock);
	return rc;
}

int hs_commit(hs_history *h, const char *hex, uint8_t tree[HS_OID_LEN],
	      int64_t *time_out)
{
	git_oid id;
	size_t at;
	int rc;

	if (!is_hex40(hex) || git_oid_fromstr(&id, hex) < 0)
		return hc_error_set(HC_ENOENT, "'%.64s' is not a commit id",
				    hex);
	pthread_mutex_lock(&h->glock);
	rc = refresh_locked(h);
	at = rc == 0 ? commit_find(h, &id) : (size_t)-1;
	if (rc >= 0 && at == (size_t)-1)
		rc = hc_error_set(HC_ENOENT,
				  "commit '%s' is not in the history of '%s'",
				  hex, VS_REF);
	if (rc == 0) {
		memcpy(tree, h->commits[at].tree.id, HS_OID_LEN);
		if (time_out)
			*time_out = h->commits[at].time;
	}
	pthread_mutex_unlock(&h->glock);
	return rc;
}

/* --------------------------------------------------------------- trees */

static int kind_of(git_filemode_t mode)
{
	switch (mode) {
	case GIT_FILEMODE_TREE:
		return HS_DIR;
	case GIT_FILEMODE_BLOB:
		return HS_FILE;
	case GIT_FILEMODE_BLOB_EXECUTABLE:
		return HS_EXEC;
	case GIT_FILEMODE_LINK:
		return HS_LINK;
	default:
		return 0; /* a submodule: hozen writes none */
	}
}

/* tree from git; glock held. */
static int tree_locked(hs_history *h, const uint8_t oid[HS_OID_LEN],
		       git_tree **out)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_oid id;
	int g, rc;

	memcpy(id.id, oid, HS_OID_LEN);
	g = git_tree_lookup(out, h->repo, &id);
	if (g == 0)
		return 0;
	git_oid_tostr(hex, sizeof(hex), &id);
	rc = vs_git_error(g, "cannot read tree '%s'", hex);
	/* A commit names it: missing is damage, not absence. */
	return rc == HC_ENOENT
		       ? hc_error_set(HC_EFORMAT,
				      "tree '%s' is missing from git", hex)
		       : rc;
}

/* The size of blob id's content, an LFS pointer's object's; glock held. */
static int blob_size_locked(hs_history *h, const git_oid *id, uint64_t *out)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_odb_object *obj = NULL;
	uint8_t sha[HC_HASH_LEN];
	git_object_t type;
	uint64_t psize;
	size_t len;
	int g;

	git_oid_tostr(hex, sizeof(hex), id);
	g = git_odb_read_header(&len, &type, h->odb, id);
	if (g == GIT_ENOTFOUND)
		return hc_error_set(HC_EFORMAT, "blob '%s' is missing from git",
				    hex);
	if (g < 0)
		return vs_git_error(g, "cannot read blob '%s'", hex);
	if (type != GIT_OBJECT_BLOB)
		return hc_error_set(HC_EFORMAT,
				    "object '%s' is a %s, not a blob", hex,
				    git_object_type2string(type));
	*out = len;
	if (len > VS_POINTER_MAX)
		return 0;
	g = git_odb_read(&obj, h->odb, id);
	if (g < 0)
		return vs_git_error(g, "cannot read blob '%s'", hex);
	if (vs_parse_pointer(git_odb_object_data(obj), len, sha, &psize) == 0)
		*out = psize;
	git_odb_object_free(obj);
	return 0;
}

int hs_tree_entry(hs_history *h, const uint8_t tree[HS_OID_LEN],
		  const char *name, struct hs_entry *out)
{
	const git_tree_entry *e = NULL;
	struct hs_entry ent;
	git_tree *t = NULL;
	int rc;

	memset(&ent, 0, sizeof(ent));
	pthread_mutex_lock(&h->glock);
	rc = tree_locked(h, tree, &t);
	if (rc == 0) {
		e = git_tree_entry_byname(t, name);
		ent.kind = e ? kind_of(git_tree_entry_filemode(e)) : 0;
		if (!ent.kind)
			rc = hc_error_set(HC_ENOENT, "no '%s' in the tree",
					  name);
	}
	if (rc == 0) {
		memcpy(ent.oid, git_tree_entry_id(e)->id, HS_OID_LEN);
		if (ent.kind != HS_DIR)
			rc = blob_size_locked(h, git_tree_entry_id(e),
					      &ent.size);
	}
	git_tree_free(t);
	pthread_mutex_unlock(&h->glock);
	if (rc == 0)
		*out = ent;
	return rc;
}

int hs_tree_each(hs_history *h, const uint8_t tree[HS_OID_LEN],
		 int (*fn)(void *ctx, const char *name, int kind), void *ctx)
{
	const git_tree_entry *e;
	git_tree *t = NULL;
	size_t i, n;
	int rc, kind;

	pthread_mutex_lock(&h->glock);
	rc = tree_locked(h, tree, &t);
	n = rc == 0 ? git_tree_entrycount(t) : 0;
	for (i = 0; rc == 0 && i < n; i++) {
		e = git_tree_entry_byindex(t, i);
		kind = kind_of(git_tree_entry_filemode(e));
		if (kind)
			rc = fn(ctx, git_tree_entry_name(e), kind);
	}
	git_tree_free(t);
	pthread_mutex_unlock(&h->glock);
	return rc;
}

/* -------------------------------------------------------------- index */

static size_t bucket_of(const hs_history *h, const hs_path *parent,
			const char *name, size_t len)
{
	uint64_t k = hc_fnv1a(HC_FNV1A_INIT, &parent, sizeof(parent));

	return (size_t)hc_fnv1a(k, name, len) & (h->nbuckets - 1);
}

/* The child name (len bytes) of parent, or NULL; ilock held. */
static hs_path *child_find(const hs_history *h, const hs_path *parent,
			   const char *name, size_t len)
{
	hs_path *p;

	for (p = h->buckets[bucket_of(h, parent, name, len)]; p; p = p->hnext)
		if (p->parent == parent && p->len == len &&
		    !memcmp(p->name, name, len))
			return p;
	return NULL;
}

/* Twice the buckets when the table is full; ilock held for writing. */
static void grow_buckets(hs_history *h)
{
	size_t n = h->nbuckets * 2, i;
	hs_path **b = calloc(n, sizeof(*b)), *p, *next, **old = h->buckets;
	size_t oldn = h->nbuckets;

	if (!b)
		return; /* longer chains, still correct */
	h->buckets = b;
	h->nbuckets = n;
	for (i = 0; i < oldn; i++)
		for (p = old[i]; p; p = next) {
			size_t k = bucket_of(h, p->parent, p->name, p->len);

			next = p->hnext;
			p->hnext = b[k];
			b[k] = p;
		}
	free(old);
}

/* The child name of parent, made if missing; ilock held for writing. */
static int child_get(hs_history *h, hs_path *parent, const char *name,
		     size_t len, hs_path **out)
{
	hs_path *p = child_find(h, parent, name, len);
	size_t k;

	if (!p) {
		p = calloc(1, sizeof(*p) + len + 1);
		if (!p)
			return hc_error_set(HC_ENOMEM, "out of memory");
		memcpy(p->name, name, len);
		p->len = len;
		p->parent = parent;
		if (parent->last)
			parent->last->next = p;
		else
			parent->first = p;
		parent->last = p;
		k = bucket_of(h, parent, name, len);
		p->hnext = h->buckets[k];
		h->buckets[k] = p;
		if (++h->npaths > h->nbuckets)
			grow_buckets(h);
	}
	*out = p;
	return 0;
}

/* 1 if path (len bytes) is relative, its components non-empty, no "."/"..". */
static int path_ok(const char *path, size_t len)
{
	const char *p = path, *end = path + len, *slash;
	size_t n;

	if (len == 0 || memchr(path, '\0', len))
		return 0;
	while (p < end) {
		slash = memchr(p, '/', (size_t)(end - p));
		n = slash ? (size_t)(slash - p) : (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n + 1;
	}
	return path[len - 1] != '/';
}

/* Add a checked version of path (len bytes); ilock held for writing. */
static int add_locked(hs_history *h, const char *path, size_t len,
		      const struct hs_version *v)
{
	const char *p = path, *end = path + len, *slash;
	hs_path *at = h->root;
	struct hs_version *grown;
	size_t n;
	int rc;

	while (p < end) {
		slash = memchr(p, '/', (size_t)(end - p));
		n = slash ? (size_t)(slash - p) : (size_t)(end - p);
		rc = child_get(h, at, p, n, &at);
		if (rc < 0)
			return rc;
		p += n + 1;
	}
	if (at->nv == at->capv) {
		uint32_t cap = at->capv ? at->capv * 2 : 1;

		if (at->capv >= UINT32_MAX / 2)
			return hc_error_set(HC_ENOMEM,
					    "too many versions of one path");
		grown = realloc(at->v, cap * sizeof(*grown));
		if (!grown)
			return hc_error_set(HC_ENOMEM, "out of memory");
		at->v = grown;
		at->capv = cap;
	}
	at->v[at->nv++] = *v;
	h->nversions++;
	return 0;
}

/* The version of a record's members, or HC_EINVAL. */
static int version_of(const char *blob, uint64_t size, const char *time,
		      struct hs_version *out)
{
	memset(out, 0, sizeof(*out));
	if (!blob || !is_hex40(blob) ||
	    hc_unhex(blob, out->blob, HS_OID_LEN) < 0)
		return hc_error_set(HC_EINVAL, "bad blob id '%.64s'",
				    blob ? blob : "(none)");
	if (parse_time(time, &out->time) < 0)
		return hc_error_set(HC_EINVAL, "bad record time '%.64s'",
				    time ? time : "(none)");
	out->size = size;
	return 0;
}

int hs_add(hs_history *h, const char *path, const char *blob, uint64_t size,
	   const char *time)
{
	struct hs_version v;
	int rc;

	if (!path || !path_ok(path, strlen(path)))
		return hc_error_set(HC_EINVAL, "bad version path '%.256s'",
				    path ? path : "(none)");
	rc = version_of(blob, size, time, &v);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&h->ilock);
	rc = add_locked(h, path, strlen(path), &v);
	pthread_rwlock_unlock(&h->ilock);
	return rc;
}

/* One record into the index (h->ilock held); HC_EINVAL if unusable. */
static int load_locked(hs_history *h, const hc_record *rec)
{
	struct hs_version v;
	json_t *size = json_object_get(rec->json, "size");
	char *path = NULL;
	int rc;

	rc = tm_record_path(rec->json, "path", &path);
	if (rc == HC_ENOMEM)
		return rc;
	if (rc < 0 || !path_ok(path, strlen(path)) || !json_is_integer(size) ||
	    json_integer_value(size) < 0)
		rc = HC_EINVAL;
	if (rc == 0)
		rc = version_of(
			json_string_value(json_object_get(rec->json, "blob")),
			(uint64_t)json_integer_value(size),
			json_string_value(json_object_get(rec->json, "time")),
			&v);
	if (rc == 0)
		rc = add_locked(h, path, strlen(path), &v);
	free(path);
	return rc;
}

int hs_load_record(hs_history *h, const hc_record *rec)
{
	int rc;

	if (strcmp(rec->type, "version"))
		return 0;
	pthread_rwlock_wrlock(&h->ilock);
	rc = load_locked(h, rec);
	pthread_rwlock_unlock(&h->ilock);
	return rc;
}

int hs_load(hs_history *h, int storefd, uint64_t *skipped)
{
	hc_reader *r = NULL;
	uint64_t bad = 0;
	hc_record rec;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rc = hc_reader_open(&r, storefd);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&h->ilock);
	while ((rc = hc_reader_next(r, &rec)) == 1) {
		if (strcmp(rec.type, "version"))
			continue;
		rc = load_locked(h, &rec);
		if (rc == HC_EINVAL) {
			bad++;
			rc = 0;
		}
		if (rc < 0)
			break;
	}
	pthread_rwlock_unlock(&h->ilock);
	hc_record_release(&rec);
	hc_reader_free(r);
	if (rc < 0)
		return hc_error_prefix(rc, "cannot index the chain's versions");
	if (skipped)
		*skipped = bad;
	return 0;
}

const hs_path *hs_root(hs_history *h)
{
	return h->root;
}

/* N of "@N": a decimal from 1 without a leading zero; 0 if not one. */
static uint32_t version_number(const char *s)
{
	uint64_t n = 0;
	size_t i;

	if (s[0] < '1' || s[0] > '9')
		return 0;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return 0;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	return n <= UINT32_MAX ? (uint32_t)n : 0;
}

int hs_lookup(hs_history *h, const hs_path *dir, const char *name,
	      const hs_path **sub, struct hs_version *v)
{
	const char *at = strrchr(name, '@');
	uint32_t n = at ? version_number(at + 1) : 0;
	hs_path *p;
	int rc = HC_ENOENT;

	pthread_rwlock_rdlock(&h->ilock);
	if (n) {
		p = child_find(h, dir, name, (size_t)(at - name));
		if (p && n <= p->nv) {
			*v = p->v[n - 1];
			rc = HS_FILE;
		}
	}
	if (rc == HC_ENOENT) {
		p = child_find(h, dir, name, strlen(name));
		if (p && p->first) {
			*sub = p;
			rc = HS_DIR;
		}
	}
	pthread_rwlock_unlock(&h->ilock);
	if (rc == HC_ENOENT)
		return hc_error_set(HC_ENOENT, "no version '%s'", name);
	return rc;
}

/* 1 if NAME@N names a version, which hides the directory p; ilock held. */
static int shadowed(const hs_history *h, const hs_path *dir, const hs_path *p)
{
	const char *at = strrchr(p->name, '@');
	uint32_t n = at ? version_number(at + 1) : 0;
	const hs_path *file =
		n ? child_find(h, dir, p->name, (size_t)(at - p->name)) : NULL;

	return file && n <= file->nv;
}

int hs_dir_each(hs_history *h, const hs_path *dir,
		int (*fn)(void *ctx, const char *name, int kind), void *ctx)
{
	const hs_path *p;
	char *buf = NULL, *grown;
	size_t cap = 0;
	uint32_t i;
	int rc = 0;

	pthread_rwlock_rdlock(&h->ilock);
	for (p = dir->first; rc == 0 && p; p = p->next) {
		if (p->first && !shadowed(h, dir, p))
			rc = fn(ctx, p->name, HS_DIR);
		if (rc == 0 && p->nv && p->len + 12 > cap) {
			cap = p->len + 12;
			grown = realloc(buf, cap);
			if (!grown) {
				rc = hc_error_set(HC_ENOMEM, "out of memory");
				break;
			}
			buf = grown;
		}
		for (i = 0; rc == 0 && i < p->nv; i++) {
			snprintf(buf, cap, "%s@%u", p->name, i + 1);
			rc = fn(ctx, buf, HS_FILE);
		}
	}
	pthread_rwlock_unlock(&h->ilock);
	free(buf);
	return rc;
}

uint64_t hs_versions(hs_history *h)
{
	uint64_t n;

	pthread_rwlock_rdlock(&h->ilock);
	n = h->nversions;
	pthread_rwlock_unlock(&h->ilock);
	return n;
}
