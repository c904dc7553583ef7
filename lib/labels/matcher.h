/* lib/labels/matcher.h - label matchers: =, !=, =~, !~.
 *
 * A matcher tests one label value; a missing label is tested as "". Regex
 * matchers are fully anchored (lib/labels/regex.h). A matcher is immutable
 * after matcher_new() and may be used from any thread.
 */
#ifndef STRATA_LABELS_MATCHER_H
#define STRATA_LABELS_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "labels/labels.h"
#include "labels/regex.h"
#include "util/strbuf.h"

enum matcher_op {
	MATCH_EQUAL,		/* = */
	MATCH_NOT_EQUAL,	/* != */
	MATCH_REGEX,		/* =~ */
	MATCH_NOT_REGEX,	/* !~ */
};

struct matcher {
	enum matcher_op op;
	char *name;		/* owned */
	char *value;		/* owned: the literal or the pattern */
	struct regex *re;	/* owned; NULL unless op is a regex op */
};

/* matcher_new copies name and value and compiles value for regex ops.
 * Returns NULL with the reason in err. Caller frees with matcher_free(). */
struct matcher *matcher_new(enum matcher_op op, const char *name,
    const char *value, char *err, size_t errlen);
void matcher_free(struct matcher *m);
/* matcher_matches tests value ("" for a missing label). */
bool matcher_matches(const struct matcher *m, const char *value);
/* matcher_matches_empty tells whether the matcher accepts a missing label. */
bool matcher_matches_empty(const struct matcher *m);
/* matcher_literal returns the one value m accepts (m's value for =, the
 * pattern's literal for a =~ without metacharacters), else NULL: index
 * lookups use it to fetch one list instead of scanning every value.
 * The string is owned by m. */
const char *matcher_literal(const struct matcher *m);
/* matcher_matches_labels tests the matcher's label in ls. */
bool matcher_matches_labels(const struct matcher *m, const struct labels *ls);
/* matcher_op_string returns "=", "!=", "=~" or "!~". */
const char *matcher_op_string(enum matcher_op op);
/* matcher_format appends name op "value" (Go-quoted) to out. */
void matcher_format(const struct matcher *m, struct strbuf *out);

#endif
