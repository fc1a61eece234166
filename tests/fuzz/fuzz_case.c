/*
 * fuzz_case.c - libFuzzer target for the case parsers: case_import (the
 * export's JSON and the edit document), the ISO 8601 date parser, and
 * the replay of case records.  Must never crash or leak; what a
 * successful import promises is checked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "case.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	case_t *c = NULL;
	case_replay *r = NULL;
	json_t *out = NULL;
	char *text, *doc = NULL;
	hc_record rec;
	time_t t;
	int off;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	(void)case_parse_date(text, &t, &off);

	if (case_new(&c) == 0 && case_import(c, text, size) == 0) {
		/* An imported case exports and re-renders. */
		if (case_to_json(c, 0, &out) < 0 ||
		    case_edit_text(c, "fuzz", &doc) < 0)
			abort();
	}
	json_decref(out);
	free(doc);
	case_free(c);

	/* The input as one record line, replayed. */
	memset(&rec, 0, sizeof(rec));
	if (case_replay_new(&r) == 0 && hc_record_parse(&rec, text, size) == 0)
		(void)case_replay_on_record(r, &rec);
	hc_record_release(&rec);
	case_replay_free(r);
	free(text);
	return 0;
}
