/*
 * hozen.c - the hozen command: dispatch to subcommands, shared helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hozen.h"

static const char usage[] =
	"usage: hozen COMMAND [OPTIONS] ...\n"
	"\n"
	"hozen keeps evidence during incident response: every change is a\n"
	"record in a signed SHA-256 hash chain.\n"
	"\n"
	"commands:\n"
	"  init STORE            create a store (keys, chain, genesis)\n"
	"  mount STORE DIR       serve the store on DIR, recording every\n"
	"                        change and versioning every file\n"
	"  unmount DIR           unmount and wait until the store is sealed\n"
	"  note STORE TEXT...    record a responder's note in the chain\n"
	"  log STORE             show the records (--json for JSON lines)\n"
	"  checkpoint STORE      sign the chain's current Merkle root\n"
	"  verify STORE          verify the chain and every checkpoint\n"
	"  verify --proof FILE --key KEY\n"
	"                        verify a proof offline\n"
	"  prove STORE --seq N   inclusion proof of a record\n"
	"  prove STORE --consistency OLD[:NEW]\n"
	"                        consistency proof between checkpoints\n"
	"  recover STORE         preserve a torn tail after a crash, reseal\n"
	"  case STORE [VERB]     the case and its preservation order: show,\n"
	"                        set, edit, import, export, check\n"
	"  release STORE         lift the preservation order (after its end,\n"
	"                        or --revoked-by AUTHORITY)\n"
	"\n"
	"Run 'hozen COMMAND --help' for a command's options, 'man hozen'\n"
	"for the manual.  Exit status: 0 ok, 1 the evidence failed\n"
	"verification (or is not sealed), 2 usage or runtime error.\n";

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
	{"init", cmd_init},	  {"note", cmd_note},
	{"log", cmd_log},	  {"checkpoint", cmd_checkpoint},
	{"verify", cmd_verify},	  {"prove", cmd_prove},
	{"recover", cmd_recover}, {"case", cmd_case},
	{"release", cmd_release}, {"mount", cmd_mount},
	{"unmount", cmd_unmount},
};

int fail_usage(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hozen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hozen %s --help'.\n", verb);
	return EXIT_ERROR;
}

int fail_option(const char *verb, char **argv)
{
	const char *arg = argv[optind - 1];

	if (!strncmp(arg, "--", 2))
		return fail_usage(
			verb, "option '%s' is unknown or needs a value", arg);
	if (optopt)
		return fail_usage(verb,
				  "option '-%c' is unknown or needs a value",
				  optopt);
	return fail_usage(verb, "option '%s' is unknown", arg);
}

int fail_hc(int code)
{
	fprintf(stderr, "hozen: %s\n", hc_error_message());
	return hc_error_exit_code(code);
}

int print_help(const char *help)
{
	fputs(help, stdout);
	return EXIT_OK;
}

int read_passphrase(const char *path, char **out)
{
	char *text = NULL;
	int rc;

	*out = NULL;
	if (!path)
		return 0;
	rc = hc_read_file(AT_FDCWD, path, 4096, &text, NULL);
	if (rc < 0)
		return rc;
	text[strcspn(text, "\r\n")] = '\0';
	*out = text;
	return 0;
}

/* Length of the well-formed UTF-8 sequence at s (n > 0), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t need, k;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] < 0xe0) {
		need = 1;
		min = 0x80;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] < 0xf0) {
		need = 2;
		min = 0x800;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] < 0xf5) {
		need = 3;
		min = 0x10000;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need + 1)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return need + 1;
}

char *term_safe(const char *s, size_t n, int backslash)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char *out, *p;
	size_t i = 0, k;
	uint32_t c;

	/* At most 6 bytes ("\u009f") for each byte of input. */
	out = malloc(6 * n + 1);
	if (!out)
		return NULL;
	p = out;
	while (i < n) {
		k = utf8_len(u + i, n - i, &c);
		if (k == 0 || c < 0x20 || c == 0x7f) {
			*p++ = '\\';
			*p++ = 'x';
			*p++ = hex[u[i] >> 4];
			*p++ = hex[u[i] & 15];
			i++;
		} else if (c >= 0x80 && c <= 0x9f) {
			memcpy(p, "\\u00", 4);
			p += 4;
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
			i += k;
		} else if (c == '\\' && backslash) {
			*p++ = '\\';
			*p++ = '\\';
			i++;
		} else {
			memcpy(p, s + i, k);
			p += k;
			i += k;
		}
	}
	*p = '\0';
	return out;
}

int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	size_t i;

	opterr = 0; /* the commands say it themselves, with "hozen:" */
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_ERROR;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("hozen %s (record format %d)\n", HOZEN_VERSION,
		       HC_FORMAT_VERSION);
		return EXIT_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "hozen: unknown command '%s'\n%s", argv[1], usage);
	return EXIT_ERROR;
}
