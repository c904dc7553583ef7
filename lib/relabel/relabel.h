/* lib/relabel/relabel.h - Prometheus relabeling: rules and their application.
 *
 * A rule is built from its configuration fields as written (struct
 * relabel_spec, filled by lib/config from YAML), validated with Prometheus
 * 2.42's rules and messages, and compiled once. Applying a list of rules to
 * a labels_builder is what target relabeling, metric relabeling, alert and
 * remote-write relabeling do. Rules are immutable after relabel_rule_new()
 * and may be applied from any thread (each caller brings its own builder).
 *
 * hashmod is bit-identical to Prometheus: MD5 of the joined source values,
 * bytes 8..15 as a big-endian uint64, modulo the modulus. shard/ uses
 * relabel_hashmod() for static sharding so both agree on every target.
 */
#ifndef STRATA_RELABEL_RELABEL_H
#define STRATA_RELABEL_RELABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"

enum relabel_action {
	RELABEL_REPLACE,
	RELABEL_KEEP,
	RELABEL_DROP,
	RELABEL_KEEPEQUAL,
	RELABEL_DROPEQUAL,
	RELABEL_HASHMOD,
	RELABEL_LABELMAP,
	RELABEL_LABELDROP,
	RELABEL_LABELKEEP,
	RELABEL_LOWERCASE,
	RELABEL_UPPERCASE,
};

/* The fields of one relabel_configs entry as written; NULL (or has_* false)
 * means the field was absent and Prometheus' default applies. All strings
 * are borrowed for the duration of relabel_rule_new().
 *
 * A YAML null sets a field to Go's zero value, not the default: pass ""
 * for a null separator, regex, target_label or replacement, and
 * has_modulus with 0 for a null modulus. action "" (from action: null)
 * fails with "relabel action cannot be empty". source_labels != NULL counts
 * as written even when n_source_labels is 0 ("source_labels: []"), which
 * labeldrop/labelkeep refuse as Prometheus does. Any regex written (not
 * NULL), even "(.*)", counts as set for keepequal/dropequal. */
struct relabel_spec {
	const char *action;		/* default "replace" */
	const char *const *source_labels;
	size_t n_source_labels;
	const char *separator;		/* default ";" */
	const char *regex;		/* default "(.*)" */
	bool has_modulus;
	uint64_t modulus;
	const char *target_label;	/* default "" */
	const char *replacement;	/* default "$1" */
};

struct relabel_rule;

/* relabel_rule_new validates and compiles spec. Returns NULL with
 * Prometheus' message in err (e.g. "relabel configuration for hashmod
 * requires non-zero modulus"). Caller frees with relabel_rule_free(). */
struct relabel_rule *relabel_rule_new(const struct relabel_spec *spec,
    char *err, size_t errlen);
void relabel_rule_free(struct relabel_rule *r);
enum relabel_action relabel_rule_action(const struct relabel_rule *r);
/* relabel_action_name returns the YAML name of an action ("replace", ...). */
const char *relabel_action_name(enum relabel_action a);

/* relabel_apply runs rules[0..n) over lb in order. Returns false when a rule
 * dropped the set (lb's contents are then unspecified), true otherwise. */
bool relabel_apply(struct relabel_rule *const *rules, size_t n,
    struct labels_builder *lb);

/* relabel_process runs rules[0..n) over a copy of in. Returns the new set
 * (caller frees with labels_free()) or NULL when a rule dropped it. */
struct labels *relabel_process(struct relabel_rule *const *rules, size_t n,
    const struct labels *in);

/* relabel_hashmod returns Prometheus' hashmod of s[0..len) modulo mod (> 0). */
uint64_t relabel_hashmod(const char *s, size_t len, uint64_t mod);

#endif
