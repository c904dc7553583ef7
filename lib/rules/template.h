/* lib/rules/template.h - the Go text/template subset of Prometheus' alert templates.
 *
 * Alerting rules template their labels and annotations with Go's
 * text/template and the functions of Prometheus' template package. This
 * module parses and executes the part of that language rules use in
 * practice, with Go's output and Go's error messages (positions, "at <...>"
 * contexts) so that an annotation reads the same as under Prometheus 2.42:
 *
 *   text, {{ pipeline }}, {{- trim -}}, comments, $x := and $x =,
 *   if / else if / else / end, with / else / end, range (over maps and query
 *   results, with $i, $e :=), fields (.Labels.job, $labels.job, .Value),
 *   literals (strings, raw strings, numbers, chars, true, false, nil),
 *   parenthesised pipelines, and the functions: humanize, humanize1024,
 *   humanizeDuration, humanizePercentage, humanizeTimestamp, printf, print,
 *   println, toUpper, toLower, title, stripPort, stripDomain, reReplaceAll,
 *   match, query, first, label, value, strvalue, sortByLabel, args,
 *   safeHtml, graphLink, tableLink, pathPrefix, externalURL, parseDuration,
 *   toTime and the builtins and, or, not, len, index, eq, ne, lt, le, gt,
 *   ge, html, js, urlquery. "template", "define" and "block" are refused.
 *
 * A parsed struct tmpl is immutable and may be executed by several threads
 * at once; each execution allocates its own state.
 */
#ifndef STRATA_RULES_TEMPLATE_H
#define STRATA_RULES_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "util/strbuf.h"

/* The variables Prometheus defines in front of every alert template. */
#define TMPL_ALERT_DEFS \
	"{{$labels := .Labels}}" \
	"{{$externalLabels := .ExternalLabels}}" \
	"{{$externalURL := .ExternalURL}}" \
	"{{$value := .Value}}"

/* One sample of a query made from a template. */
struct tmpl_sample {
	struct labels *ls;	/* one reference */
	double v;
};

/* tmpl_query_fn runs an instant query at ts (ms) for the template function
 * "query". Returns 0 with *out (mem_alloc'd array of *n samples, each
 * holding a labels reference; the template releases them) or -1 with the
 * message in err. */
typedef int (*tmpl_query_fn)(void *arg, const char *q, int64_t ts,
    struct tmpl_sample **out, size_t *n, char *err, size_t errlen);

/* What an alert template sees: Prometheus' AlertTemplateData. */
struct tmpl_env {
	const struct labels *labels;		/* .Labels, $labels (may be NULL) */
	const struct labels *external_labels;	/* .ExternalLabels (may be NULL) */
	const char *external_url;		/* .ExternalURL (may be NULL: "") */
	double value;				/* .Value, $value */
	int64_t ts;				/* evaluation time (ms), for query */
	tmpl_query_fn query;			/* NULL: query fails */
	void *query_arg;
};

struct tmpl;

/* tmpl_parse parses text[0..len) as the template called name (the name
 * appears in messages). Returns the template (free with tmpl_free) or NULL
 * with Go's message in err ("template: NAME:LINE: function \"x\" not
 * defined"). */
struct tmpl *tmpl_parse(const char *text, size_t len, const char *name,
    char *err, size_t errlen);
/* tmpl_free releases t; NULL is a no-op. */
void tmpl_free(struct tmpl *t);

/* tmpl_execute appends the output of t run on env to out. Returns 0, or -1
 * with Go's message in err ("template: NAME:1:115: executing \"NAME\" at
 * <humanize \"x\">: error calling humanize: ..."); out then holds what was
 * written before the error. */
int tmpl_execute(const struct tmpl *t, const struct tmpl_env *env,
    struct strbuf *out, char *err, size_t errlen);

/* tmpl_has_actions tells whether text contains "{{" (else it expands to
 * itself and needs no template). */
bool tmpl_has_actions(const char *text, size_t len);

/* Go's formatting, shared with the rules module and its tests. */

/* tmpl_format_g appends v as fmt's %.<prec>g ("NaN", "+Inf", "-Inf"). */
void tmpl_format_g(struct strbuf *out, double v, int prec);
/* tmpl_format_time appends ms as Go's time.Time.String() in UTC:
 * "2023-11-14 22:13:20.5 +0000 UTC". */
void tmpl_format_time(struct strbuf *out, int64_t ms);

#endif
