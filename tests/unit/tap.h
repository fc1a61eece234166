/*
 * tap.h - a minimal Test Anything Protocol emitter for the unit tests.
 *
 *   ok(cond, "name %d", i);   one test point
 *   return tap_done();        prints the plan, exit status 1 on failure
 */
#ifndef HOZEN_TAP_H
#define HOZEN_TAP_H

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3), unused)) static int
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

__attribute__((format(printf, 1, 2), unused)) static void diag(const char *fmt,
							       ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

__attribute__((unused)) static int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

static int tap_rm_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove a test's temporary directory tree. */
__attribute__((unused)) static void tap_rmrf(const char *dir)
{
	nftw(dir, tap_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
