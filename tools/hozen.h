/*
 * hozen.h - the subcommands of the hozen command and what they share.
 *
 * Each cmd_<verb>() parses its own options with getopt_long, calls the
 * modules and returns the process exit code: 0 ok, 1 the evidence failed
 * verification, 2 usage or runtime error.
 */
#ifndef HOZEN_TOOLS_H
#define HOZEN_TOOLS_H

#include "hashchain.h"

enum { EXIT_OK = 0, EXIT_INVALID = 1, EXIT_ERROR = 2 };

int cmd_init(int argc, char **argv);
int cmd_note(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_prove(int argc, char **argv);
int cmd_case(int argc, char **argv);
int cmd_release(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_unmount(int argc, char **argv);

/* Print "hozen: MESSAGE" to stderr; returns EXIT_ERROR. */
int fail_usage(const char *verb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report the option getopt_long could not take; returns EXIT_ERROR. */
int fail_option(const char *verb, char **argv);
/* Print "hozen: " + the last hashchain error; returns its exit code. */
int fail_hc(int code);
/* Print a verb's help when asked (-h/--help) and return 1, else 0. */
int print_help(const char *help);
/* Read a passphrase file's first line into a malloc'd string, or NULL. */
int read_passphrase(const char *path, char **out);
/*
 * s[0..n) made safe to print on a terminal (malloc'd, NUL-terminated,
 * NULL when out of memory): control characters (C0, DEL) and bytes that
 * are not valid UTF-8 become \xHH, C1 controls \u0080..\u009f, and
 * with backslash a backslash becomes \\ (leave it out for text that is
 * JSON already).  The result is valid UTF-8.
 */
char *term_safe(const char *s, size_t n, int backslash);
/* Parse a non-negative decimal seq; 0 ok, -1 not a number. */
int parse_u64(const char *s, uint64_t *out);

#endif
