/* lib/rules/rulefmt.h - Prometheus 2.42 rule files: parse and validate.
 *
 * A rule file is YAML: groups (name, interval, limit, rules), each rule a
 * recording rule (record, expr, labels) or an alerting rule (alert, expr,
 * for, keep_firing_for, labels, annotations). rulefmt_parse() reads one the
 * way Prometheus' model/rulefmt does (yaml.v3 with known fields, then
 * Validate) and reports the same messages, prefixed with the file name:
 *
 *   FILE: yaml: unmarshal errors:\n  line 6: field foo not found in type rulefmt.RuleNode
 *   FILE: 4:17: group "g1", rule 1, "x": invalid recording rule name: 1bad
 *   FILE: group "g", rule 1, "A": label "sev": template: __alert_A:1: function "humanizee" not defined
 *
 * Expressions are parsed with lib/promql and alert templates with
 * lib/rules/template.h, as Prometheus checks them at load. Label and
 * annotation maps are kept sorted by name. The result is a plain tree owned
 * by the caller; no threads, no global state.
 */
#ifndef STRATA_RULES_RULEFMT_H
#define STRATA_RULES_RULEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A label or annotation. */
struct rulefmt_kv {
	char *name;
	char *value;
};

struct rulefmt_rule {
	bool alert;			/* an alerting rule, else a recording rule */
	char *name;			/* the record or alert name */
	char *expr;			/* as written */
	int64_t for_ms;
	int64_t keep_firing_for_ms;
	struct rulefmt_kv *labels;	/* sorted by name */
	size_t n_labels;
	struct rulefmt_kv *annotations;	/* sorted by name */
	size_t n_annotations;
};

struct rulefmt_group {
	char *name;
	int64_t interval_ms;		/* 0: the global evaluation_interval */
	int64_t limit;			/* 0: none */
	struct rulefmt_rule *rules;
	size_t n_rules;
};

struct rulefmt_file {
	char *path;
	struct rulefmt_group *groups;
	size_t n_groups;
};

/* A list of error messages. */
struct rulefmt_errors {
	char **v;
	size_t n;
};

/* rulefmt_parse parses and validates buf[0..len); name prefixes messages.
 * Returns 0 with *out (free with rulefmt_file_free), or -1 with one or more
 * messages appended to errs (free with rulefmt_errors_free). */
int rulefmt_parse(const char *buf, size_t len, const char *name,
    struct rulefmt_file **out, struct rulefmt_errors *errs);
/* rulefmt_load reads the file at path and parses it. A file that cannot be
 * read gives "FILE: open FILE: no such file or directory". */
int rulefmt_load(const char *path, struct rulefmt_file **out,
    struct rulefmt_errors *errs);
/* rulefmt_file_free releases f; NULL is a no-op. */
void rulefmt_file_free(struct rulefmt_file *f);

/* rulefmt_errors_add appends a printf-formatted message. */
void rulefmt_errors_add(struct rulefmt_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* rulefmt_errors_free releases the messages and empties e. */
void rulefmt_errors_free(struct rulefmt_errors *e);

/* rulefmt_parse_duration parses a Prometheus duration (model.ParseDuration:
 * "1d2h", "0"; units y w d h m s ms in that order) into ms. Returns 0, or -1
 * with "not a valid duration string: \"x\"", "empty duration string" or
 * "duration out of range" in err. */
int rulefmt_parse_duration(const char *s, size_t len, int64_t *ms, char *err,
    size_t errlen);

/* rulefmt_alert_template_name writes "__alert_" + name into buf. */
void rulefmt_alert_template_name(const char *alert, char *buf, size_t len);

#endif
