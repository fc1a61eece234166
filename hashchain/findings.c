/*
 * findings.c - the list of problems a verification found.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashchain.h"

struct hc_findings {
	pthread_mutex_t mu;
	struct hc_finding *items; /* the first HC_FINDINGS_MAX */
	size_t n, cap;
	size_t total; /* every finding added, kept or not */
};

int hc_findings_new(hc_findings **out)
{
	hc_findings *f = calloc(1, sizeof(*f));

	if (!f)
		return hc_error_set(HC_ENOMEM, "out of memory");
	pthread_mutex_init(&f->mu, NULL);
	*out = f;
	return 0;
}

void hc_findings_free(hc_findings *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f->items);
	free(f);
}

void hc_findings_add(hc_findings *f, int64_t seq, uint64_t checkpoint,
		     const char *where, const char *fmt, ...)
{
	struct hc_finding *it;
	va_list ap;

	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->total++;
	if (f->n == f->cap && f->cap < HC_FINDINGS_MAX) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct hc_finding *more;

		if (cap > HC_FINDINGS_MAX)
			cap = HC_FINDINGS_MAX;
		more = realloc(f->items, cap * sizeof(*more));
		if (more) {
			f->items = more;
			f->cap = cap;
		}
	}
	if (f->n < f->cap) {
		it = &f->items[f->n++];
		it->seq = seq;
		it->checkpoint = checkpoint;
		snprintf(it->where, sizeof(it->where), "%s",
			 where ? where : "");
		va_start(ap, fmt);
		vsnprintf(it->reason, sizeof(it->reason), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&f->mu);
}

size_t hc_findings_count(hc_findings *f)
{
	size_t n;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->mu);
	n = f->total;
	pthread_mutex_unlock(&f->mu);
	return n;
}

size_t hc_findings_kept(hc_findings *f)
{
	size_t n;

	if (!f)
		return 0;
	pthread_mutex_lock(&f->mu);
	n = f->n;
	pthread_mutex_unlock(&f->mu);
	return n;
}

const struct hc_finding *hc_findings_get(hc_findings *f, size_t i)
{
	const struct hc_finding *it = NULL;

	pthread_mutex_lock(&f->mu);
	if (i < f->n)
		it = &f->items[i];
	pthread_mutex_unlock(&f->mu);
	return it;
}
