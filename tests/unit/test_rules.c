/* tests/unit/test_rules.c - lib/rules: rule files, alert templates, the rule manager.
 *
 * The expected texts are what Prometheus 2.42 (promtool check rules, and
 * promtool test rules for template expansions) prints for the same input.
 * The manager is driven by an injected clock in manual mode, so every
 * evaluation instant is chosen by the test and nothing sleeps.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include <unistd.h>

#include "api/metrics.h"
#include "api/rules.h"
#include "config/config.h"
#include "http/server.h"
#include "labels/labels.h"
#include "labels/selector.h"
#include "promql/ast.h"
#include "promql/engine.h"
#include "promql/storage.h"
#include "rules/query.h"
#include "rules/rulefmt.h"
#include "rules/rules.h"
#include "rules/template.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"

/* --- templates ------------------------------------------------------------ */

static int
fake_query(void *arg, const char *q, int64_t ts, struct tmpl_sample **out, size_t *n,
    char *err, size_t errlen)
{
	(void)arg;
	(void)ts;
	*out = NULL;
	*n = 0;
	if (strcmp(q, "m") == 0) {
		struct label l[3] = { { "__name__", "m" }, { "instance", "i:9" }, { "job", "j" } };

		*out = mem_alloc(sizeof(**out));
		(*out)[0].ls = labels_new(l, 3);
		(*out)[0].v = 1234567;
		*n = 1;
		return 0;
	}
	if (strcmp(q, "m{") == 0) {
		snprintf(err, errlen, "1:3: parse error: unexpected end of input inside braces");
		return -1;
	}
	return 0;
}

/* expand runs text as an alert template of alert "A" on m{instance="i:9",
 * job="j"} = 1234567 with external label site="s1", returning the output or
 * Prometheus' "<error expanding template: ...>" (or "PARSE: msg"). */
static char *
expand(const char *text)
{
	struct label l[3] = { { "__name__", "m" }, { "instance", "i:9" }, { "job", "j" } };
	struct label e[1] = { { "site", "s1" } };
	struct labels *ls = labels_new(l, 3), *es = labels_new(e, 1);
	struct tmpl_env env;
	struct strbuf t = STRBUF_INIT, out = STRBUF_INIT;
	struct tmpl *tp;
	char err[2048];

	memset(&env, 0, sizeof(env));
	env.labels = ls;
	env.external_labels = es;
	env.external_url = "http://prom.example:9090/prefix";
	env.value = 1234567;
	env.query = fake_query;
	strbuf_puts(&t, TMPL_ALERT_DEFS);
	strbuf_puts(&t, text);
	tp = tmpl_parse(t.buf, t.len, "__alert_A", err, sizeof(err));
	if (tp == NULL) {
		strbuf_printf(&out, "PARSE: %s", err);
	} else if (tmpl_execute(tp, &env, &out, err, sizeof(err)) < 0) {
		strbuf_reset(&out);
		strbuf_printf(&out, "<error expanding template: error executing template __alert_A: %s>", err);
	}
	tmpl_free(tp);
	strbuf_free(&t);
	labels_free(ls);
	labels_free(es);
	return strbuf_detach(&out, NULL);
}

static void
check_expand(const char *text, const char *want)
{
	char *got = expand(text);

	if (strcmp(got, want) != 0)
		fail_msg("template %s\n  want: %s\n  got:  %s", text, want, got);
	mem_free(got);
}

static void
test_template_values(void **state)
{
	(void)state;
	check_expand("{{ $value }} {{ .Value }} {{ $labels.instance }} {{ .Labels.job }} "
	    "{{ $externalLabels.site }}|{{ $labels.nope }}|",
	    "1.234567e+06 1.234567e+06 i:9 j s1||");
	check_expand("plain text", "plain text");
	check_expand("{{ . }}",
	    "{map[__name__:m instance:i:9 job:j] map[site:s1] http://prom.example:9090/prefix 1.234567e+06}");
	check_expand("{{ $labels }}", "map[__name__:m instance:i:9 job:j]");
	check_expand("{{ $externalURL }} {{ pathPrefix }} {{ externalURL }}",
	    "http://prom.example:9090/prefix /prefix http://prom.example:9090/prefix");
	check_expand("{{- \" x \" -}} y {{- /* c */ -}} z", " x yz");
	check_expand("a {{- 1 }} b {{ 2 -}} c", "a1 b 2c");
	check_expand("{{ 'a' }} {{ 1_000 }} {{ 0b101 }} {{ 0o17 }} {{ 1e2 }} {{ -5 }}",
	    "97 1000 5 15 100 -5");
	check_expand("{{ $x := 5 }}{{ $x }}{{ with $labels.job }}[{{ . }}]{{ end }}"
	    "{{ with $labels.nope }}[{{ . }}]{{ else }}none{{ end }}", "5[j]none");
	check_expand("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2");
	check_expand("{{ if gt $value 1.0 }}big{{ else if eq $value 1.0 }}one{{ else }}small{{ end }}",
	    "big");
	check_expand("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
	    "__name__=m;instance=i:9;job=j;");
	check_expand("{{ range $labels }}{{ . }},{{ else }}none{{ end }}", "m,i:9,j,");
	check_expand("{{ eq $value 1234567.0 }} {{ eq \"a\" \"b\" \"a\" }} {{ ne 1 2 }} "
	    "{{ lt \"a\" \"b\" }} {{ ge 2 2 }}", "true true true true true");
	check_expand("{{ print 1 2 \"a\" \"b\" 3 }} {{ and 1 0 }} {{ or 0 \"\" \"z\" }} {{ not 0 }} "
	    "{{ html \"<a&b>\" }} {{ urlquery \"a b&c\" }}", "1 2ab3 0 z true &lt;a&amp;b&gt; a+b%26c");
	check_expand("{{ println 1 \"a\" }}|", "1 a\n|");
	check_expand("{{ len \"abc\" }} {{ index $labels \"job\" }} {{ index $labels \"nope\" }}|",
	    "3 j |");
	check_expand("{{ js \"a'b\\\"<c>\" }} {{ html \"a\\\"b'\" }}",
	    "a\\'b\\\"\\u003Cc\\u003E a&#34;b&#39;");
	check_expand("{{ args 1 \"a\" }} {{ (args 1 \"a\").arg1 }}", "map[arg0:1 arg1:a] a");
	check_expand("{{ \"abc\" | printf \"%s-%s\" \"x\" }}", "x-abc");
}

static void
test_template_functions(void **state)
{
	(void)state;
	check_expand("{{ humanize 1234567 }} {{ humanize 0.00012 }} {{ humanize1024 1048576 }} "
	    "{{ humanizeDuration 3725.5 }} {{ humanizeDuration 0.25 }} {{ humanizePercentage 0.1234 }} "
	    "{{ humanizeTimestamp 1700000000.5 }}",
	    "1.235M 120u 1Mi 1h 2m 5s 250ms 12.34% 2023-11-14 22:13:20.5 +0000 UTC");
	check_expand("{{ $value | humanize }} {{ \"1e3\" | humanize }}", "1.235M 1k");
	check_expand("{{ humanizeDuration -3725 }} {{ humanizeDuration 86400 }} "
	    "{{ humanizeDuration 1.5 }} {{ humanizeDuration 0.000001 }}", "-1h 2m 5s 1d 0h 0m 0s 1.5s 1us");
	check_expand("{{ humanize1024 0.5 }} {{ humanize1024 -2048 }} {{ humanize -0.001 }} "
	    "{{ humanize 1e30 }}", "0.5 -2ki -1m 1e+06Y");
	check_expand("{{ humanizeTimestamp 0 }} {{ humanizeTimestamp -1.5 }} "
	    "{{ humanizeTimestamp \"1.7e9\" }}",
	    "1970-01-01 00:00:00 +0000 UTC 1969-12-31 23:59:58.5 +0000 UTC 2023-11-14 22:13:20 +0000 UTC");
	check_expand("{{ printf \"%.2f %d %s %v %q %5.1f|%-4s|\" 3.14159 42 \"str\" 1e6 \"q\" 2.25 \"ab\" }}",
	    "3.14 42 str 1e+06 \"q\"   2.2|ab  |");
	check_expand("{{ printf \"%5.2f%%\" 12.3456 }} {{ printf \"%x %X %o\" 255 255 8 }} "
	    "{{ printf \"%+d %05d %-5d|\" 3 42 7 }}", "12.35% ff FF 10 +3 00042 7    |");
	check_expand("{{ printf \"%v %v %v %v\" true nil $labels 1.5 }}",
	    "true <nil> map[__name__:m instance:i:9 job:j] 1.5");
	check_expand("{{ printf \"%g %e %G %.3g %10.4e\" 0.000012345 123456.789 1e21 3.14159 42.0 }}",
	    "1.2345e-05 1.234568e+05 1E+21 3.14 4.2000e+01");
	check_expand("{{ printf \"%s\" 1 }} {{ printf \"%t\" 1 }} {{ printf \"%q\" 65 }} {{ printf \"%c\" 65 }}",
	    "%!s(int=1) %!t(int=1) 'A' A");
	check_expand("{{ printf \"%d\" 1.5 }} {{ printf \"%s\" }} {{ printf \"%s\" \"a\" \"b\" }}",
	    "%!d(float64=1.5) %!s(MISSING) a%!(EXTRA string=b)");
	check_expand("{{ printf \"%.2f\" \"x\" }}", "%!f(string=x)");
	check_expand("{{ .Value | printf \"%.1f\" }}", "1234567.0");
	check_expand("{{ toUpper \"abc\" }} {{ title \"hello world\" }} {{ stripPort \"host:80\" }} "
	    "{{ stripDomain \"a.b.c:80\" }} {{ reReplaceAll \"(a+)\" \"<$1>\" \"baaac\" }} "
	    "{{ match \"a.c\" \"xabcx\" }}", "ABC Hello World host a:80 b<aaa>c true");
	check_expand("{{ title \"hello_world foo-bar\" }} {{ toLower \"\xc3\x80" "BC\" }}",
	    "Hello_world Foo-Bar \xc3\xa0" "bc");
	check_expand("{{ stripDomain \"10.0.0.1:80\" }} {{ stripDomain \"foo.example.com\" }} "
	    "{{ stripDomain \"[::1]:80\" }} {{ stripPort \"[::1]:80\" }} {{ stripPort \"noport\" }}",
	    "10.0.0.1:80 foo [::1]:80 ::1 noport");
	check_expand("{{ graphLink \"up == 0\" }} {{ tableLink \"up\" }} {{ parseDuration \"1h30m\" }} "
	    "{{ toTime 1700000000 }}",
	    "/graph?g0.expr=up+%3D%3D+0&g0.tab=0 /graph?g0.expr=up&g0.tab=1 5400 2023-11-14 22:13:20 +0000 UTC");
	/* queries */
	check_expand("{{ with query \"m\" }}{{ . | first | value | humanize }}{{ end }}", "1.235M");
	check_expand("{{ range query \"m\" }}{{ .Labels.job }}:{{ .Value }};{{ end }}", "j:1.234567e+06;");
	check_expand("{{ range $i, $s := query \"m\" }}{{ $i }}={{ label \"instance\" $s }};{{ end }}",
	    "0=i:9;");
	check_expand("{{ with query \"nothing\" }}x{{ else }}empty{{ end }}", "empty");
	check_expand("{{ query \"m\" | first | strvalue }}|", "|");
	check_expand("{{ index $labels \"nope\" }}|{{ index (query \"m\") 0 }}",
	    "|{map[__name__:m instance:i:9 job:j] 1.234567e+06}");
	check_expand("{{ sortByLabel \"job\" (query \"m\") | len }}", "1");
	check_expand("{{ range query \"m\" }}{{ break }}{{ end }}done", "done");
	/* named templates */
	check_expand("{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" $labels.job }}{{ template \"x\" }}",
	    "[j][<no value>]");
	check_expand("{{ block \"b\" $value }}<{{ . | humanize }}>{{ end }}|{{ template \"b\" 5 }}",
	    "<1.235M>|<5>");
}

#define XERR(pos, at, msg) "<error expanding template: error executing template __alert_A: " \
	"template: __alert_A:" pos ": executing \"__alert_A\" at <" at ">: " msg ">"

static void
test_template_exec_errors(void **state)
{
	(void)state;
	check_expand("{{ humanize \"x\" }}", XERR("1:115", "humanize \"x\"",
	    "error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax"));
	check_expand("{{ .Foo }}", XERR("1:115", ".Foo", "can't evaluate field Foo in type struct { "
	    "Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"));
	check_expand("line1\n{{ humanize \"y\" }}", XERR("2:3", "humanize \"y\"",
	    "error calling humanize: strconv.ParseFloat: parsing \"y\": invalid syntax"));
	check_expand("{{ humanize }}", XERR("1:115", "humanize",
	    "wrong number of args for humanize: want 1 got 0"));
	check_expand("{{ 1.5 }} {{ 1e3 }} {{ 0x10 }} {{ true }} {{ nil | print }}",
	    XERR("1:157", "nil", "nil is not a command"));
	check_expand("{{ first (query \"nothing\") }}", XERR("1:115", "first (query \"nothing\")",
	    "error calling first: first() called on vector with no elements"));
	check_expand("{{ eq $value 1 }}", XERR("1:115", "eq $value 1",
	    "error calling eq: incompatible types for comparison"));
	check_expand("{{ lt true false }}", XERR("1:115", "lt true false",
	    "error calling lt: invalid type for comparison"));
	check_expand("{{ 1 2 }}", XERR("1:115", "1", "can't give argument to non-function 1"));
	check_expand("{{ printf }}", XERR("1:115", "printf",
	    "wrong number of args for printf: want at least 1 got 0"));
	check_expand("{{ printf 1 }}", XERR("1:122", "1", "expected string; found 1"));
	check_expand("{{ value \"x\" }}", XERR("1:121", "\"x\"",
	    "can't handle \"x\" for arg of type *template.sample"));
	check_expand("{{ first \"x\" }}", XERR("1:121", "\"x\"",
	    "can't handle \"x\" for arg of type template.queryResult"));
	check_expand("{{ toUpper $value }}", XERR("1:123", "$value",
	    "wrong type for value; expected string; got float64"));
	check_expand("{{ humanize true }}", XERR("1:115", "humanize true",
	    "error calling humanize: can't convert bool to float"));
	check_expand("{{ reReplaceAll \"a*\" \"-\" \"baaac\" }} {{ reReplaceAll \"(?P<x>b)\" \"[${x}]$1x\" \"abc\" }} "
	    "{{ reReplaceAll \"(\" \"x\" \"y\" }}", XERR("1:199", "reReplaceAll \"(\" \"x\" \"y\"",
	    "error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`"));
	check_expand("{{ match \"(\" \"x\" }}", XERR("1:115", "match \"(\" \"x\"",
	    "error calling match: error parsing regexp: missing closing ): `(`"));
	check_expand("{{ len \"abc\" }} {{ len 3 }}", XERR("1:131", "len 3",
	    "error calling len: len of type int"));
	check_expand("{{ $labels.job.foo }}", XERR("1:122", "$labels.job.foo",
	    "can't evaluate field foo in type string"));
	check_expand("{{ $value.foo }}", XERR("1:121", "$value.foo",
	    "can't evaluate field foo in type float64"));
	check_expand("{{ range 5 }}{{ end }}", XERR("1:121", "5", "range can't iterate over 5"));
	check_expand("{{ template \"x\" }}", XERR("1:124", "{{template \"x\"}}", "template \"x\" not defined"));
	check_expand("{{ query \"m{\" }}", XERR("1:115", "query \"m{\"",
	    "error calling query: 1:3: parse error: unexpected end of input inside braces"));
	check_expand("{{ (1) }} {{ (\"x\").foo }}", XERR("1:126", "\"x\"",
	    "can't evaluate field foo in type string"));
	check_expand("{{ (query \"m\").foo }}", XERR("1:122", "\"m\"",
	    "can't evaluate field foo in type template.queryResult"));
	check_expand("{{ define \"z\" }}{{ humanize \"q\" }}{{ end }}{{ template \"z\" }}",
	    "<error expanding template: error executing template __alert_A: template: __alert_A:1:131: "
	    "executing \"z\" at <humanize \"q\">: error calling humanize: strconv.ParseFloat: parsing \"q\": "
	    "invalid syntax>");
	/* Go would recurse until its limit; strata stops earlier, with Go's message */
	check_expand("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}",
	    "<error expanding template: error executing template __alert_A: template: __alert_A:1:140: "
	    "executing \"r\" at <{{template \"r\"}}>: exceeded maximum template depth (1000)>");
	/* bounded work and output where Go would run on */
	{
		/* 3^13 nested iterations */
		struct strbuf sb = STRBUF_INIT;
		char *got;
		int i;

		for (i = 0; i < 13; i++)
			strbuf_puts(&sb, "{{ range $labels }}");
		strbuf_puts(&sb, "x");
		for (i = 0; i < 13; i++)
			strbuf_puts(&sb, "{{ end }}");
		got = expand(sb.buf);
		assert_non_null(strstr(got, "strata: template execution exceeded 1000000 steps>"));
		mem_free(got);
		strbuf_free(&sb);
	}
	{
		char *got = expand("{{ $x := printf \"%900000d\" 1 }}{{ print $x $x }}");

		assert_non_null(strstr(got, "strata: template output exceeded 1048576 bytes>"));
		mem_free(got);
		got = expand("{{ reReplaceAll \"\" (printf \"%900000d\" 1) \"abc\" }}");
		assert_non_null(strstr(got, "strata: template output exceeded 1048576 bytes>"));
		mem_free(got);
		got = expand("{{ range $labels }}{{ printf \"%600000d\" 1 }}{{ end }}");
		assert_non_null(strstr(got, "strata: template output exceeded 1048576 bytes>"));
		mem_free(got);
	}
	check_expand("{{ parseDuration \"x\" }}", XERR("1:115", "parseDuration \"x\"",
	    "error calling parseDuration: not a valid duration string: \"x\""));
	check_expand("{{ toTime \"x\" }}", XERR("1:115", "toTime \"x\"",
	    "error calling toTime: strconv.ParseFloat: parsing \"x\": invalid syntax"));
}

static void
test_template_parse_errors(void **state)
{
	(void)state;
	check_expand("{{ $labels.x | humanizee }}",
	    "PARSE: template: __alert_A:1: function \"humanizee\" not defined");
	check_expand("{{ if }}", "PARSE: template: __alert_A:1: missing value for if");
	check_expand("{{ else }}", "PARSE: template: __alert_A:1: unexpected {{else}}");
	check_expand("{{ end }}", "PARSE: template: __alert_A:1: unexpected {{end}}");
	check_expand("{{ if true }}unclosed", "PARSE: template: __alert_A:1: unexpected EOF");
	check_expand("{{ humanize 1", "PARSE: template: __alert_A:1: unclosed action");
	check_expand("{{ \"unterminated }}", "PARSE: template: __alert_A:1: unterminated quoted string");
	check_expand("{{ break }}", "PARSE: template: __alert_A:1: {{break}} outside {{range}}");
	check_expand("{{ if true }}{{ $y := 3 }}{{ end }}{{ $y }}",
	    "PARSE: template: __alert_A:1: undefined variable \"$y\"");
	check_expand("{{ range $k, $v, $z := $labels }}{{ end }}",
	    "PARSE: template: __alert_A:1: too many declarations in range");
	check_expand("{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}",
	    "PARSE: template: __alert_A:1: expected end; found {{else}}");
	check_expand("{{ \"a\" | \"b\" }}",
	    "PARSE: template: __alert_A:1: non executable command in pipeline stage 2");
	check_expand("x\n{{ nope }}", "PARSE: template: __alert_A:2: function \"nope\" not defined");
	check_expand("{{ 1 )", "PARSE: template: __alert_A:1: unexpected \")\" in command");
	check_expand("{{ .a.b }}{{ \"s\".x }}", "PARSE: template: __alert_A:1: unexpected . after term \"\\\"s\\\"\"");
	check_expand("{{ (1 }}", "PARSE: template: __alert_A:1: unclosed left paren");
	check_expand("{{ define \"y\" }}{{ $value }}{{ end }}{{ template \"y\" }}",
	    "PARSE: template: __alert_A:1: undefined variable \"$value\"");
	/* nesting is bounded: C stacks do not grow */
	{
		struct strbuf sb = STRBUF_INIT;
		char *got;
		int i;

		strbuf_puts(&sb, "{{ ");
		for (i = 0; i < 5000; i++)
			strbuf_putc(&sb, '(');
		strbuf_putc(&sb, '1');
		for (i = 0; i < 5000; i++)
			strbuf_putc(&sb, ')');
		strbuf_puts(&sb, " }}");
		got = expand(sb.buf);
		assert_string_equal(got,
		    "PARSE: template: __alert_A:1: strata: template nesting deeper than 1000");
		mem_free(got);
		strbuf_reset(&sb);
		for (i = 0; i < 5000; i++)
			strbuf_puts(&sb, "{{ if true }}");
		got = expand(sb.buf);
		assert_string_equal(got,
		    "PARSE: template: __alert_A:1: strata: template nesting deeper than 1000");
		mem_free(got);
		strbuf_free(&sb);
	}
}

/* --- rule files ----------------------------------------------------------- */

/* parse_errors parses text as FILE and returns its messages joined by
 * newlines ("" when the file is valid). */
static char *
parse_errors(const char *text)
{
	struct rulefmt_errors errs = { NULL, 0 };
	struct rulefmt_file *f = NULL;
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	if (rulefmt_parse(text, strlen(text), "t.yml", &f, &errs) < 0) {
		assert_null(f);
		assert_true(errs.n > 0);
		for (i = 0; i < errs.n; i++) {
			strbuf_puts(&sb, errs.v[i]);
			strbuf_putc(&sb, '\n');
		}
	} else {
		assert_non_null(f);
		assert_int_equal(errs.n, 0);
	}
	rulefmt_errors_free(&errs);
	rulefmt_file_free(f);
	return strbuf_detach(&sb, NULL);
}

static void
check_parse(const char *text, const char *want)
{
	char *got = parse_errors(text);

	if (strcmp(got, want) != 0)
		fail_msg("rule file:\n%s\n  want: %s\n  got:  %s", text, want, got);
	mem_free(got);
}

static void
test_rulefmt_valid(void **state)
{
	const char *text =
	    "groups:\n"
	    "  - name: g1\n"
	    "    interval: 30s\n"
	    "    limit: 10\n"
	    "    rules:\n"
	    "      - record: job:up:sum\n"
	    "        expr: sum by (job) (up)\n"
	    "        labels:\n"
	    "          tier: b\n"
	    "          env: prod\n"
	    "      - alert: Down\n"
	    "        expr: up == 0\n"
	    "        for: 5m\n"
	    "        keep_firing_for: 1m\n"
	    "        labels:\n"
	    "          severity: page\n"
	    "        annotations:\n"
	    "          summary: '{{ $labels.instance }} is down'\n"
	    "  -\n"
	    "  - name: g2\n"
	    "    rules:\n"
	    "    -\n";
	struct rulefmt_errors errs = { NULL, 0 };
	struct rulefmt_file *f = NULL;
	const struct rulefmt_rule *r;

	(void)state;
	assert_int_equal(rulefmt_parse(text, strlen(text), "t.yml", &f, &errs), 0);
	assert_int_equal(f->n_groups, 2);
	assert_string_equal(f->groups[0].name, "g1");
	assert_int_equal(f->groups[0].interval_ms, 30000);
	assert_int_equal(f->groups[0].limit, 10);
	assert_int_equal(f->groups[0].n_rules, 2);
	r = &f->groups[0].rules[0];
	assert_false(r->alert);
	assert_string_equal(r->name, "job:up:sum");
	assert_string_equal(r->expr, "sum by (job) (up)");
	assert_int_equal(r->n_labels, 2);
	assert_string_equal(r->labels[0].name, "env");	/* sorted */
	assert_string_equal(r->labels[1].value, "b");
	r = &f->groups[0].rules[1];
	assert_true(r->alert);
	assert_string_equal(r->name, "Down");
	assert_int_equal(r->for_ms, 300000);
	assert_int_equal(r->keep_firing_for_ms, 60000);
	assert_int_equal(r->n_annotations, 1);
	assert_string_equal(r->annotations[0].value, "{{ $labels.instance }} is down");
	/* null items are skipped, as yaml.v3 does */
	assert_string_equal(f->groups[1].name, "g2");
	assert_int_equal(f->groups[1].n_rules, 0);
	assert_int_equal(f->groups[1].interval_ms, 0);
	rulefmt_file_free(f);

	check_parse("", "");
	check_parse("# nothing\n", "");
	check_parse("groups: []\n", "");
	check_parse("groups:\n  - name: g1\n    limit: -3\n    rules:\n      - record: a\n        expr: 1\n"
	    "      - alert: b\n        expr: vector(1)\n        keep_firing_for: 1m\n", "");
	check_parse("groups:\n  - name: 5\n    limit: 1.5\n    rules:\n      - record: true\n        expr: 5\n"
	    "        labels:\n          a: 1\n          b: null\n          c: 1.5\n          d: 0x10\n"
	    "      - alert: \"x\"\n        expr: up\n        for: 0\n        labels:\n          a: 1\n"
	    "          ~: 2\n", "");
}

static void
test_rulefmt_errors(void **state)
{
	(void)state;
	/* promtool check rules output of Prometheus 2.42 for each file */
	check_parse("groups:\n  - name: g1\n    interval: 30s\n    rules:\n      - record: job:up:sum\n"
	    "        expr: sum by (job) (up)\n        foo: bar\n      - alert: X\n        expr: up == 0\n"
	    "        for: abc\n", "t.yml: not a valid duration string: \"abc\"\n");
	check_parse("groups:\n  - name: g1\n    rules:\n      - record: job:up:sum\n        alert: Foo\n"
	    "        expr: sum by (job) (up\n        annotations:\n          a: b\n        for: 5m\n"
	    "        labels:\n          __name__: x\n          \"bad-name\": y\n      - expr: up\n"
	    "      - record: \"1bad\"\n        expr: \"\"\n  - name: g1\n    rules:\n      - alert: Y\n"
	    "        expr: up\n        labels:\n          sev: \"{{ $labels.x | humanizee }}\"\n"
	    "        annotations:\n          summary: \"{{ if }}\"\n  - rules: []\n",
	    "t.yml: 4:17: 5:16: group \"g1\", rule 1, \"Foo\": only one of 'record' and 'alert' must be set\n"
	    "t.yml: 6:15: group \"g1\", rule 1, \"Foo\": could not parse expression: 1:17: parse error: unclosed left parenthesis\n"
	    "t.yml: 4:17: group \"g1\", rule 1, \"Foo\": invalid field 'annotations' in recording rule\n"
	    "t.yml: 4:17: group \"g1\", rule 1, \"Foo\": invalid field 'for' in recording rule\n"
	    "t.yml: group \"g1\", rule 1, \"Foo\": invalid label name: __name__\n"
	    "t.yml: group \"g1\", rule 1, \"Foo\": invalid label name: bad-name\n"
	    "t.yml: 0:0: group \"g1\", rule 2, \"\": one of 'record' or 'alert' must be set\n"
	    "t.yml: 15:15: group \"g1\", rule 3, \"1bad\": field 'expr' must be set in rule\n"
	    "t.yml: 14:17: group \"g1\", rule 3, \"1bad\": invalid recording rule name: 1bad\n"
	    "t.yml: 16:5: groupname: \"g1\" is repeated in the same file\n"
	    "t.yml: group \"g1\", rule 1, \"Y\": label \"sev\": template: __alert_Y:1: function \"humanizee\" not defined\n"
	    "t.yml: group \"g1\", rule 1, \"Y\": annotation \"summary\": template: __alert_Y:1: missing value for if\n"
	    "t.yml: 24:5: Groupname must not be empty\n");
	check_parse("groups:\n  - name: g1\n    rules:\n      - record: a\n        expr: up\n        foo: bar\n",
	    "t.yml: yaml: unmarshal errors:\n  line 6: field foo not found in type rulefmt.RuleNode\n");
	check_parse("groups:\n  - name: g1\n    foo: 1\n    rules:\n      - record: a\n        expr: up\n",
	    "t.yml: yaml: unmarshal errors:\n  line 3: field foo not found in type rulefmt.RuleGroup\n");
	check_parse("group:\n  - name: g1\n",
	    "t.yml: yaml: unmarshal errors:\n  line 1: field group not found in type rulefmt.RuleGroups\n");
	check_parse("groups:\n  - name: g1\n    limit: abc\n    rules:\n      - record: a\n        expr: up\n",
	    "t.yml: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `abc` into int\n");
	check_parse("groups:\n  - name: g1\n    interval: 0s\n    rules:\n      - record: a\n        expr: up\n"
	    "        labels:\n          x: [1]\n",
	    "t.yml: yaml: unmarshal errors:\n  line 8: cannot unmarshal !!seq into string\n");
	check_parse("groups:\n  - name: [g1]\n",
	    "t.yml: yaml: unmarshal errors:\n  line 2: cannot unmarshal !!seq into string\n");
	check_parse("groups: x\n",
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `x` into []rulefmt.RuleGroup\n"
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `x` into []yaml.Node\n");
	check_parse("[1,2",
	    "t.yml: yaml: line 1: did not find expected ',' or ']'\n"
	    "t.yml: yaml: line 1: did not find expected ',' or ']'\n");
	check_parse("[1]\n",
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into rulefmt.RuleGroups\n"
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into rulefmt.ruleGroups\n");
	check_parse("abc\n",
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `abc` into rulefmt.RuleGroups\n"
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `abc` into rulefmt.ruleGroups\n");
	check_parse("groups: {a: 1}\n",
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!map into []rulefmt.RuleGroup\n"
	    "t.yml: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!map into []yaml.Node\n");
	check_parse("groups:\n  - abc\n  - [1]\n",
	    "t.yml: yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `abc` into rulefmt.RuleGroup\n"
	    "  line 3: cannot unmarshal !!seq into rulefmt.RuleGroup\n");
	check_parse("groups:\n  - name: a\n    rules:\n    - abc\n    - record: a\n      expr: up\n"
	    "      labels: [1]\n      annotations: x\n",
	    "t.yml: yaml: unmarshal errors:\n  line 4: cannot unmarshal !!str `abc` into rulefmt.RuleNode\n"
	    "  line 7: cannot unmarshal !!seq into map[string]string\n"
	    "  line 8: cannot unmarshal !!str `x` into map[string]string\n");
	check_parse("groups:\n  - name: a\n    limit: \"5\"\n    interval: [1]\n    rules:\n    - record: a\n"
	    "      expr: [up]\n",
	    "t.yml: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `5` into int\n"
	    "  line 4: cannot unmarshal !!seq into string\n");
	check_parse("groups:\n  - name: g\n    name: h\n    rules:\n",
	    "t.yml: yaml: unmarshal errors:\n  line 3: mapping key \"name\" already defined at line 2\n");
	check_parse("groups:\n  - name: g\n    rules: 5\n",
	    "t.yml: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!int `5` into []rulefmt.RuleNode\n");
	check_parse("groups:\n  - name: g\n    limit: 99999999999999999999\n    rules:\n",
	    "t.yml: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!float `9999999...` into int\n");
	check_parse("groups:\n  - name: g\n    interval: 99999999999999999999y\n    rules:\n",
	    "t.yml: duration out of range\n");
	check_parse("groups:\n  - name: g\n    interval: 1h1d\n    rules:\n",
	    "t.yml: not a valid duration string: \"1h1d\"\n");
	check_parse("groups:\n  - name: 5\n    limit: 1.5\n    rules:\n      - alert: \"x\"\n        expr: up\n"
	    "        for: \"\"\n", "t.yml: empty duration string\n");
}

static void
test_rulefmt_duration(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
		const char *err;
	} cases[] = {
		{ "0", 0, NULL }, { "0s", 0, NULL }, { "5m", 300000, NULL },
		{ "1h30m", 5400000, NULL }, { "1d2h3m4s5ms", 93784005, NULL },
		{ "1y", 31536000000LL, NULL }, { "2w", 1209600000, NULL }, { "10ms", 10, NULL },
		{ "", 0, "empty duration string" },
		{ "1x", 0, "not a valid duration string: \"1x\"" },
		{ "1m1h", 0, "not a valid duration string: \"1m1h\"" },
		{ "1.5h", 0, "not a valid duration string: \"1.5h\"" },
		{ "-1m", 0, "not a valid duration string: \"-1m\"" },
		{ "1h1h", 0, "not a valid duration string: \"1h1h\"" },
		{ "300y", 0, "duration out of range" },
		{ "292y", 9208512000000LL, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		int64_t ms = -1;
		int rc = rulefmt_parse_duration(cases[i].s, strlen(cases[i].s), &ms, err, sizeof(err));

		if (cases[i].err == NULL) {
			if (rc != 0 || ms != cases[i].ms)
				fail_msg("%s: rc %d ms %lld err %s", cases[i].s, rc, (long long)ms, err);
		} else {
			assert_int_equal(rc, -1);
			assert_string_equal(err, cases[i].err);
		}
	}
}

/* --- the manager -------------------------------------------------------- */

#define SEC INT64_C(1000000000)
#define MINUTE (60 * SEC)
#define T0 (INT64_C(1700000000) * SEC)

struct fx {
	char dir[64];
	char *paths[8];
	size_t npaths;
	struct tsdb_head *h;
	struct promql_storage st;
	struct promql_engine *e;
	struct rules_manager *m;
	int64_t now;		/* ns, the manager's clock */
	int64_t base_ms;	/* dump() prints times relative to this */
	size_t notified;	/* alerts handed to the notifier */
	char last_notified[256];
	int64_t last_ends_at;	/* ns, of the last alert handed over */
};

static int64_t
fx_clock(void *arg)
{
	return ((struct fx *)arg)->now;
}

static void
fx_notify(void *arg, const char *expr, const struct rules_notify_alert *a, size_t n)
{
	struct fx *f = arg;
	struct strbuf sb = STRBUF_INIT;

	(void)expr;
	f->notified += n;
	if (n > 0) {
		labels_format(a[n - 1].labels, &sb);
		snprintf(f->last_notified, sizeof(f->last_notified), "%s", strbuf_cstr(&sb));
		f->last_ends_at = a[n - 1].ends_at;
	}
	strbuf_free(&sb);
}

static void
fx_init_delay(struct fx *f, int64_t eval_delay_ms)
{
	struct rules_manager_opts o;
	char err[256];

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/strata-rules-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->h = tsdb_head_new(NULL, err, sizeof(err));
	assert_non_null(f->h);
	promql_storage_head(&f->st, f->h);
	f->e = promql_engine_new(NULL);
	f->now = T0;
	memset(&o, 0, sizeof(o));
	o.query = rules_query_engine;
	o.engine = f->e;
	o.storage = &f->st;
	o.head = f->h;
	o.now_ns = fx_clock;
	o.clock_arg = f;
	o.manual = true;
	o.external_url = "http://strata.example:9090";
	o.notify = fx_notify;
	o.notify_arg = f;
	o.eval_delay_ms = eval_delay_ms;
	f->m = rules_manager_new(&o, err, sizeof(err));
	assert_non_null(f->m);
}

static void
fx_init(struct fx *f)
{
	fx_init_delay(f, 0);
}

static void
fx_free(struct fx *f)
{
	size_t i;

	rules_manager_free(f->m);
	promql_engine_free(f->e);
	tsdb_head_free(f->h);
	for (i = 0; i < f->npaths; i++) {
		unlink(f->paths[i]);
		mem_free(f->paths[i]);
	}
	rmdir(f->dir);
}

/* fx_write writes a rule file (replacing it) and returns its path. */
static const char *
fx_write(struct fx *f, const char *name, const char *text)
{
	char path[256];
	FILE *fp;
	size_t i;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	for (i = 0; i < f->npaths; i++)
		if (strcmp(f->paths[i], path) == 0)
			return f->paths[i];
	assert_true(f->npaths < 8);
	f->paths[f->npaths] = mem_strdup(path);
	return f->paths[f->npaths++];
}

static int
fx_update(struct fx *f, int64_t interval_ms, const char *path, char *err, size_t errlen)
{
	const char *files[1] = { path };

	return rules_manager_update(f->m, interval_ms, files, path != NULL ? 1 : 0, NULL, err, errlen);
}

/* fx_first returns the first evaluation instant of a group started now. */
static int64_t
fx_first(struct fx *f, const char *path, const char *group, int64_t interval_ms)
{
	return rules_eval_timestamp(path, group, interval_ms, f->now) + interval_ms * 1000000;
}

static void
fx_run_at(struct fx *f, int64_t now)
{
	f->now = now;
	rules_manager_run(f->m);
}

static void
fx_add(struct fx *f, int64_t t_ms, double v, const char *name, const char *lname, const char *lval)
{
	struct label l[2] = { { "__name__", name }, { lname, lval } };
	struct labels *ls = labels_new(l, lname != NULL ? 2 : 1);

	assert_int_equal(tsdb_head_append(f->h, NULL, ls, t_ms, v), 0);
	labels_free(ls);
}

static double
stale_value(void)
{
	uint64_t bits = CHUNK_STALE_NAN_BITS;
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

/* fx_dump lists every sample of the series matching sel:
 * "{labels} v@t v@t\n" with t in ms after f->base_ms, "stale" for markers. */
static char *
fx_dump(struct fx *f, const char *sel)
{
	struct selector s;
	struct tsdb_series_set *ss;
	struct strbuf out = STRBUF_INIT;
	char err[256];

	assert_int_equal(selector_parse(sel, strlen(sel), &s, err, sizeof(err)), 0);
	ss = tsdb_head_select(f->h, s.ms, s.n, INT64_MIN, INT64_MAX);
	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		int64_t t;
		double v;

		labels_format(tsdb_series_set_labels(ss), &out);
		while (tsdb_iter_next(it, &t, &v)) {
			uint64_t bits;

			memcpy(&bits, &v, sizeof(bits));
			strbuf_putc(&out, ' ');
			if (bits == CHUNK_STALE_NAN_BITS)
				strbuf_puts(&out, "stale");
			else
				promql_format_float(v, 'g', &out);
			strbuf_printf(&out, "@%lld", (long long)(t - f->base_ms));
		}
		strbuf_putc(&out, '\n');
	}
	tsdb_series_set_free(ss);
	selector_free(&s);
	return strbuf_detach(&out, NULL);
}

static void
check_dump(struct fx *f, const char *sel, const char *want)
{
	char *got = fx_dump(f, sel);

	if (strcmp(got, want) != 0)
		fail_msg("%s\n  want: %s\n  got:  %s", sel, want, got);
	mem_free(got);
}

static const struct rules_rule_info *
snap_rule(const struct rules_snapshot *s, const char *group, const char *rule)
{
	size_t i, j;

	for (i = 0; i < s->n_groups; i++)
		for (j = 0; j < s->groups[i].n_rules; j++)
			if (strcmp(s->groups[i].name, group) == 0 &&
			    strcmp(s->groups[i].rules[j].name, rule) == 0)
				return &s->groups[i].rules[j];
	fail_msg("no rule %s in group %s", rule, group);
	return NULL;
}

static const struct rules_group_info *
snap_group(const struct rules_snapshot *s, const char *group)
{
	size_t i;

	for (i = 0; i < s->n_groups; i++)
		if (strcmp(s->groups[i].name, group) == 0)
			return &s->groups[i];
	fail_msg("no group %s", group);
	return NULL;
}

static void
test_eval_timestamp(void **state)
{
	/* Instants observed from Prometheus 2.42 with rule_files: [rules.yml]:
	 * group "align-a" (2s) recorded at ...x.990, "other group" (3s) at
	 * ...y.621 (mod 3s). */
	int64_t now = INT64_C(1795644279000000000), t, ta;
	int i;

	(void)state;
	t = rules_eval_timestamp("rules.yml", "align-a", 2000, now);
	assert_true(t <= now && now - t < 2 * SEC);
	assert_int_equal((t / 1000000) % 2000, 1990);
	assert_int_equal(t % (2 * SEC), INT64_C(1990109581));
	ta = t;
	t = rules_eval_timestamp("rules.yml", "other group", 3000, now);
	assert_int_equal((t / 1000000) % 3000, 621);
	/* the slot is a function of the instant class, not of now */
	for (i = 0; i < 50; i++) {
		int64_t n2 = now + i * INT64_C(123456789);
		int64_t t2 = rules_eval_timestamp("rules.yml", "align-a", 2000, n2);

		assert_true(t2 <= n2 && n2 - t2 < 2 * SEC);
		assert_int_equal((t2 - ta) % (2 * SEC), 0);
	}
	/* another name, another slot */
	assert_int_not_equal(rules_eval_timestamp("rules.yml", "align-b", 2000, now) % (2 * SEC),
	    ta % (2 * SEC));
}

static void
test_recording_order(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512];
	struct rules_snapshot *s;
	const struct rules_group_info *g;

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "r.yml",
	    "groups:\n"
	    "- name: g\n"
	    "  rules:\n"
	    "  - record: a\n"
	    "    expr: vector(1)\n"
	    "  - record: b\n"
	    "    expr: a * 2\n"		/* sees a at the same instant */
	    "    labels: {tier: x, __x: ''}\n"
	    "  - record: c\n"
	    "    expr: scalar(b) + 1\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	assert_true(t1 > f.now && t1 <= f.now + 60 * SEC);
	f.base_ms = t1 / 1000000;
	fx_run_at(&f, t1 - 1);
	check_dump(&f, "{__name__=~\"a|b|c\"}", "");
	fx_run_at(&f, t1);
	check_dump(&f, "{__name__=~\"a|b|c\"}",
	    "{__name__=\"a\"} 1@0\n{__name__=\"b\", tier=\"x\"} 2@0\n{__name__=\"c\"} 3@0\n");
	/* one evaluation per instant */
	fx_run_at(&f, t1 + 30 * SEC);
	fx_run_at(&f, t1 + 60 * SEC);
	check_dump(&f, "{__name__=\"a\"}", "{__name__=\"a\"} 1@0 1@60000\n");
	s = rules_manager_snapshot(f.m);
	g = snap_group(s, "g");
	assert_int_equal(g->iterations, 2);
	assert_int_equal(g->evaluations, 6);
	assert_int_equal(g->failures, 0);
	assert_int_equal(g->missed, 0);
	assert_true(g->last_samples == 3);
	assert_int_equal(g->last_eval, t1 + 60 * SEC);
	assert_int_equal(snap_rule(s, "g", "b")->health, RULES_HEALTH_OK);
	assert_string_equal(snap_rule(s, "g", "b")->query, "a * 2");
	assert_string_equal(snap_rule(s, "g", "c")->query, "scalar(b) + 1");
	rules_snapshot_free(s);

	/* evaluations running late: the instants in between are missed */
	fx_run_at(&f, t1 + 60 * SEC + 3 * 60 * SEC + 30 * SEC);
	check_dump(&f, "{__name__=\"a\"}", "{__name__=\"a\"} 1@0 1@60000 1@240000\n");
	s = rules_manager_snapshot(f.m);
	g = snap_group(s, "g");
	assert_int_equal(g->iterations, 5);
	assert_int_equal(g->missed, 2);
	rules_snapshot_free(s);
	fx_free(&f);
}

/* With an evaluation delay the instant t is evaluated at wall time t +
 * delay, so samples of t that arrive late (a central's pulls) are seen, and
 * the result is still written at t. */
static void
test_eval_delay(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000, delay = 20000, next;
	char err[512];

	(void)state;
	fx_init_delay(&f, delay);
	p = fx_write(&f, "d.yml",
	    "groups:\n"
	    "- name: delayed\n"
	    "  rules:\n"
	    "  - record: up:count\n"
	    "    expr: count(up)\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	/* the first slot after the delayed clock's now */
	t1 = rules_eval_timestamp(p, "delayed", iv, f.now - delay * 1000000) + iv * 1000000;
	f.base_ms = t1 / 1000000;
	fx_run_at(&f, t1);			/* on time without a delay: too early here */
	check_dump(&f, "{__name__=\"up:count\"}", "");
	fx_add(&f, t1 / 1000000, 1, "up", "instance", "a");	/* arrives late */
	fx_add(&f, t1 / 1000000 - 1000, 1, "up", "instance", "b");
	fx_run_at(&f, t1 + delay * 1000000 - 1);
	check_dump(&f, "{__name__=\"up:count\"}", "");
	f.now = t1 + delay * 1000000;
	next = rules_manager_run(f.m);
	check_dump(&f, "{__name__=\"up:count\"}", "{__name__=\"up:count\"} 2@0\n");
	/* the next instant is due one interval later, on the wall clock */
	assert_int_equal(next, t1 + (iv + delay) * 1000000);
	/* a shorter delay set later moves the next evaluation earlier */
	rules_manager_set_eval_delay(f.m, 5000);
	fx_run_at(&f, t1 + (iv + 5000) * 1000000);
	check_dump(&f, "{__name__=\"up:count\"}", "{__name__=\"up:count\"} 2@0 2@60000\n");
	fx_free(&f);
}

/* An alert evaluated with a delay is valid for 4 resend periods from the
 * wall clock, not from its (earlier) evaluation instant. */
static void
test_eval_delay_alert_expiry(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000, delay = 20000;
	char err[512];

	(void)state;
	fx_init_delay(&f, delay);
	p = fx_write(&f, "a.yml",
	    "groups:\n"
	    "- name: alerts\n"
	    "  rules:\n"
	    "  - alert: Always\n"
	    "    expr: vector(1) > 0\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = rules_eval_timestamp(p, "alerts", iv, f.now - delay * 1000000) + iv * 1000000;
	f.now = t1 + delay * 1000000;
	rules_manager_run(f.m);
	assert_int_equal(f.notified, 1);
	/* max(interval, resend delay 1m) = 60 s, four times, plus the delay */
	assert_int_equal(f.last_ends_at, t1 + (4 * 60000 + delay) * 1000000);
	fx_free(&f);
}

static void
test_recording_errors_and_limit(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512];
	struct rules_snapshot *s;
	const struct rules_rule_info *r;

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "r.yml",
	    "groups:\n"
	    "- name: g\n"
	    "  limit: 2\n"
	    "  rules:\n"
	    "  - record: many\n"
	    "    expr: x\n"
	    "  - record: same\n"
	    "    expr: '{__name__=~\"x|y\", i=\"1\"}'\n"
	    "  - record: str\n"
	    "    expr: '\"s\"'\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	f.base_ms = t1 / 1000000;
	fx_add(&f, f.base_ms - 1000, 1, "x", "i", "1");
	fx_add(&f, f.base_ms - 1000, 2, "x", "i", "2");
	fx_add(&f, f.base_ms - 1000, 3, "y", "i", "1");
	fx_run_at(&f, t1);
	check_dump(&f, "{__name__=~\"same|str\"}", "");
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "many");
	assert_int_equal(r->health, RULES_HEALTH_OK);
	r = snap_rule(s, "g", "same");
	assert_int_equal(r->health, RULES_HEALTH_ERR);
	assert_string_equal(r->last_error,
	    "vector contains metrics with the same labelset after applying rule labels");
	r = snap_rule(s, "g", "str");
	assert_string_equal(r->last_error, "rule result is not a vector or scalar");
	assert_int_equal(snap_group(s, "g")->failures, 2);
	rules_snapshot_free(s);
	check_dump(&f, "{__name__=\"many\"}",
	    "{__name__=\"many\", i=\"1\"} 1@0\n{__name__=\"many\", i=\"2\"} 2@0\n");

	/* a third series breaks the limit of 2: nothing is written, and the
	 * previous series are not marked stale (the rule failed) */
	fx_add(&f, f.base_ms + 1000, 4, "x", "i", "3");
	fx_run_at(&f, t1 + 60 * SEC);
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "many");
	assert_int_equal(r->health, RULES_HEALTH_ERR);
	assert_string_equal(r->last_error, "exceeded limit of 2 with 3 series");
	rules_snapshot_free(s);
	check_dump(&f, "{__name__=\"many\"}",
	    "{__name__=\"many\", i=\"1\"} 1@0\n{__name__=\"many\", i=\"2\"} 2@0\n");
	fx_free(&f);
}

static void
test_staleness(void **state)
{
	struct fx f;
	const char *p, *q;
	int64_t t1, t_rm, iv = 60000;
	char err[512];

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "r.yml",
	    "groups:\n"
	    "- name: g\n"
	    "  rules:\n"
	    "  - record: r\n"
	    "    expr: x\n");
	q = fx_write(&f, "other.yml",
	    "groups:\n"
	    "- name: h\n"
	    "  rules:\n"
	    "  - record: keep\n"
	    "    expr: vector(7)\n");
	{
		const char *files[2] = { p, q };

		assert_int_equal(rules_manager_update(f.m, iv, files, 2, NULL, err, sizeof(err)), 0);
	}
	t1 = fx_first(&f, p, "g", iv);
	f.base_ms = t1 / 1000000;
	fx_add(&f, f.base_ms - 1000, 1, "x", "i", "1");
	fx_add(&f, f.base_ms - 1000, 2, "x", "i", "2");
	fx_run_at(&f, t1);
	/* x{i="2"} goes stale: so does r{i="2"} at the next instant */
	fx_add(&f, f.base_ms + 1000, 1, "x", "i", "1");
	fx_add(&f, f.base_ms + 1000, stale_value(), "x", "i", "2");
	fx_run_at(&f, t1 + 60 * SEC);
	check_dump(&f, "{__name__=\"r\"}",
	    "{__name__=\"r\", i=\"1\"} 1@0 1@60000\n{__name__=\"r\", i=\"2\"} 2@0 stale@60000\n");
	/* it comes back: a new sample after the marker */
	fx_add(&f, f.base_ms + 61000, 5, "x", "i", "2");
	fx_run_at(&f, t1 + 120 * SEC);
	check_dump(&f, "{__name__=\"r\", i=\"2\"}", "{__name__=\"r\", i=\"2\"} 2@0 stale@60000 5@120000\n");

	/* the group is removed: its series are marked stale two intervals
	 * later, stamped with the time of the removal; the other file's group
	 * is untouched */
	t_rm = t1 + 130 * SEC;
	f.now = t_rm;
	{
		const char *files[1] = { q };

		assert_int_equal(rules_manager_update(f.m, iv, files, 1, NULL, err, sizeof(err)), 0);
	}
	fx_run_at(&f, t_rm + 119 * SEC);
	check_dump(&f, "{__name__=\"r\", i=\"1\"}", "{__name__=\"r\", i=\"1\"} 1@0 1@60000 1@120000\n");
	fx_run_at(&f, t_rm + 120 * SEC);
	check_dump(&f, "{__name__=\"r\"}",
	    "{__name__=\"r\", i=\"1\"} 1@0 1@60000 1@120000 stale@130000\n"
	    "{__name__=\"r\", i=\"2\"} 2@0 stale@60000 5@120000 stale@130000\n");
	fx_free(&f);
}

static void
test_removed_group_not_marked_after_stop(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512];

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "r.yml", "groups:\n- name: g\n  rules:\n  - record: r\n    expr: vector(1)\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	f.base_ms = t1 / 1000000;
	fx_run_at(&f, t1);
	f.now = t1 + 10 * SEC;
	assert_int_equal(fx_update(&f, iv, NULL, err, sizeof(err)), 0);
	rules_manager_stop(f.m);
	fx_run_at(&f, t1 + 300 * SEC);
	check_dump(&f, "{__name__=\"r\"}", "{__name__=\"r\"} 1@0\n");
	fx_free(&f);
}

static const char *alert_rules =
    "groups:\n"
    "- name: alerts\n"
    "  rules:\n"
    "  - alert: High\n"
    "    expr: x > 10\n"
    "    for: 2m\n"
    "    labels:\n"
    "      severity: page\n"
    "      where: '{{ $labels.i }}-{{ $externalLabels.site }}'\n"
    "    annotations:\n"
    "      summary: 'x is {{ $value | humanize }} on {{ $labels.i }}'\n"
    "      broken: '{{ humanize \"q\" }}'\n";

static void
test_alert_lifecycle(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512];
	struct rules_snapshot *s;
	const struct rules_rule_info *r;
	struct label el = { "site", "eu" };
	struct labels *ext = labels_new(&el, 1);
	int k;

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "a.yml", alert_rules);
	{
		const char *files[1] = { p };

		assert_int_equal(rules_manager_update(f.m, iv, files, 1, ext, err, sizeof(err)), 0);
	}
	t1 = fx_first(&f, p, "alerts", iv);
	f.base_ms = t1 / 1000000;
	for (k = -1; k < 4; k++)
		fx_add(&f, f.base_ms + k * 60000 - 1000, 20, "x", "i", "a");
	/* t1: pending; ALERTS is not written before the state was restored
	 * (after the second evaluation of the first load) */
	fx_run_at(&f, t1);
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "alerts", "High");
	assert_int_equal(r->state, RULES_PENDING);
	assert_int_equal(r->n_alerts, 1);
	assert_int_equal(r->alerts[0].state, RULES_PENDING);
	assert_int_equal(r->alerts[0].active_at, t1);
	assert_true(r->alerts[0].value == 20);
	{
		struct strbuf sb = STRBUF_INIT;

		labels_format(r->alerts[0].labels, &sb);
		assert_string_equal(strbuf_cstr(&sb),
		    "{alertname=\"High\", i=\"a\", severity=\"page\", where=\"a-eu\"}");
		strbuf_free(&sb);
	}
	assert_int_equal(r->alerts[0].n_annotations, 2);
	assert_string_equal(r->alerts[0].annotations[0].name, "broken");
	assert_string_equal(r->alerts[0].annotations[0].value,
	    "<error expanding template: error executing template __alert_High: template: __alert_High:1:115: "
	    "executing \"__alert_High\" at <humanize \"q\">: error calling humanize: strconv.ParseFloat: "
	    "parsing \"q\": invalid syntax>");
	assert_string_equal(r->alerts[0].annotations[1].value, "x is 20 on a");
	rules_snapshot_free(s);
	check_dump(&f, "{__name__=~\"ALERTS.*\"}", "");
	assert_int_equal(f.notified, 0);	/* pending alerts are not sent */

	fx_run_at(&f, t1 + 60 * SEC);
	check_dump(&f, "{__name__=~\"ALERTS.*\"}", "");
	/* t1+2m: firing, and written from now on */
	fx_run_at(&f, t1 + 120 * SEC);
	check_dump(&f, "{__name__=\"ALERTS\"}",
	    "{__name__=\"ALERTS\", alertname=\"High\", alertstate=\"firing\", i=\"a\", severity=\"page\", where=\"a-eu\"} 1@120000\n");
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "alerts", "High");
	assert_int_equal(r->state, RULES_FIRING);
	assert_int_equal(r->alerts[0].fired_at, t1 + 120 * SEC);
	rules_snapshot_free(s);
	assert_int_equal(f.notified, 1);
	assert_string_equal(f.last_notified,
	    "{alertname=\"High\", i=\"a\", severity=\"page\", where=\"a-eu\"}");
	{
		/* ALERTS_FOR_STATE holds ActiveAt in Unix seconds */
		struct rules_vector v;
		char qe[256];
		struct rules_manager_opts o;

		memset(&o, 0, sizeof(o));
		o.engine = f.e;
		o.storage = &f.st;
		assert_int_equal(rules_query_engine(&o, "ALERTS_FOR_STATE", f.base_ms + 120000, NULL, &v,
		    qe, sizeof(qe)), 0);
		assert_int_equal(v.n, 1);
		assert_true(v.v[0].v == (double)(t1 / SEC));
		rules_vector_free(&v);
	}
	/* the condition ends: resolved, the series go stale, the alert is kept
	 * (inactive) for 15 minutes, then forgotten */
	fx_run_at(&f, t1 + 180 * SEC);
	fx_add(&f, f.base_ms + 181000, stale_value(), "x", "i", "a");
	fx_run_at(&f, t1 + 240 * SEC);
	check_dump(&f, "{__name__=\"ALERTS\"}",
	    "{__name__=\"ALERTS\", alertname=\"High\", alertstate=\"firing\", i=\"a\", severity=\"page\", where=\"a-eu\"} "
	    "1@120000 1@180000 stale@240000\n");
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "alerts", "High");
	assert_int_equal(r->state, RULES_INACTIVE);
	assert_int_equal(r->n_alerts, 1);
	assert_int_equal(r->alerts[0].state, RULES_INACTIVE);
	assert_int_equal(r->alerts[0].resolved_at, t1 + 240 * SEC);
	rules_snapshot_free(s);
	/* sent when firing and when resolved; at +3m the resend delay (1m,
	 * strictly exceeded) had not passed */
	assert_int_equal(f.notified, 2);
	fx_run_at(&f, t1 + 240 * SEC + 15 * MINUTE);
	s = rules_manager_snapshot(f.m);
	assert_int_equal(snap_rule(s, "alerts", "High")->n_alerts, 1);
	rules_snapshot_free(s);
	fx_run_at(&f, t1 + 240 * SEC + 16 * MINUTE);
	s = rules_manager_snapshot(f.m);
	assert_int_equal(snap_rule(s, "alerts", "High")->n_alerts, 0);
	rules_snapshot_free(s);
	labels_free(ext);
	fx_free(&f);
}

static void
test_alert_keep_firing_and_limit(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512];
	struct rules_snapshot *s;
	const struct rules_rule_info *r;

	(void)state;
	fx_init(&f);
	/* a first load, so that a reload marks alerting rules as restored */
	assert_int_equal(fx_update(&f, iv, NULL, err, sizeof(err)), 0);
	p = fx_write(&f, "a.yml",
	    "groups:\n"
	    "- name: g\n"
	    "  limit: 2\n"
	    "  rules:\n"
	    "  - alert: Sticky\n"
	    "    expr: x > 0\n"
	    "    keep_firing_for: 2m\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	f.base_ms = t1 / 1000000;
	fx_add(&f, f.base_ms - 1000, 1, "x", "i", "a");
	fx_run_at(&f, t1);	/* for 0: firing at once, written at once */
	check_dump(&f, "{__name__=\"ALERTS\"}",
	    "{__name__=\"ALERTS\", alertname=\"Sticky\", alertstate=\"firing\", i=\"a\"} 1@0\n");
	fx_add(&f, f.base_ms + 1000, stale_value(), "x", "i", "a");
	fx_run_at(&f, t1 + 60 * SEC);	/* gone, but keeps firing */
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "Sticky");
	assert_int_equal(r->alerts[0].state, RULES_FIRING);
	assert_int_equal(r->alerts[0].keep_firing_since, t1 + 60 * SEC);
	rules_snapshot_free(s);
	fx_run_at(&f, t1 + 120 * SEC);	/* 1m < 2m: still firing */
	fx_run_at(&f, t1 + 180 * SEC);	/* 2m: resolved */
	check_dump(&f, "{__name__=\"ALERTS\"}",
	    "{__name__=\"ALERTS\", alertname=\"Sticky\", alertstate=\"firing\", i=\"a\"} 1@0 1@60000 1@120000 "
	    "stale@180000\n");
	s = rules_manager_snapshot(f.m);
	assert_int_equal(snap_rule(s, "g", "Sticky")->alerts[0].state, RULES_INACTIVE);
	rules_snapshot_free(s);

	/* three alerts exceed the limit of 2: the rule fails and forgets them */
	fx_add(&f, f.base_ms + 181000, 1, "x", "i", "a");
	fx_add(&f, f.base_ms + 181000, 1, "x", "i", "b");
	fx_add(&f, f.base_ms + 181000, 1, "x", "i", "c");
	fx_run_at(&f, t1 + 240 * SEC);
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "Sticky");
	assert_int_equal(r->health, RULES_HEALTH_ERR);
	assert_string_equal(r->last_error, "exceeded limit of 2 with 3 alerts");
	assert_int_equal(r->n_alerts, 0);
	rules_snapshot_free(s);
	fx_free(&f);
}

static void
test_alert_duplicate_labelset(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512];
	struct rules_snapshot *s;

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "a.yml",
	    "groups:\n"
	    "- name: g\n"
	    "  rules:\n"
	    "  - alert: Dup\n"
	    "    expr: '{__name__=~\"x|y\"}'\n");	/* x{i="a"} and y{i="a"} lose their names */
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	f.base_ms = t1 / 1000000;
	fx_add(&f, f.base_ms - 1000, 1, "x", "i", "a");
	fx_add(&f, f.base_ms - 1000, 1, "y", "i", "a");
	fx_run_at(&f, t1);
	s = rules_manager_snapshot(f.m);
	assert_string_equal(snap_rule(s, "g", "Dup")->last_error,
	    "vector contains metrics with the same labelset after applying alert labels");
	assert_int_equal(snap_rule(s, "g", "Dup")->n_alerts, 0);
	rules_snapshot_free(s);
	fx_free(&f);
}

static void
test_reload_keeps_state(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512];
	struct rules_snapshot *s;
	const struct rules_rule_info *r;
	const char *v1 =
	    "groups:\n"
	    "- name: g\n"
	    "  rules:\n"
	    "  - alert: A\n"
	    "    expr: x > 0\n"
	    "    for: 5m\n"
	    "  - record: gone\n"
	    "    expr: x\n";
	const char *v2 =
	    "groups:\n"
	    "- name: g\n"
	    "  rules:\n"
	    "  - record: new\n"
	    "    expr: vector(3)\n"
	    "  - alert: A\n"
	    "    expr: x > 0\n"
	    "    for: 5m\n";

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "a.yml", v1);
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	f.base_ms = t1 / 1000000;
	fx_add(&f, f.base_ms - 1000, 1, "x", "i", "a");
	fx_add(&f, f.base_ms + 59000, 1, "x", "i", "a");
	fx_add(&f, f.base_ms + 119000, 1, "x", "i", "a");
	fx_add(&f, f.base_ms + 179000, 1, "x", "i", "a");
	fx_run_at(&f, t1);
	fx_run_at(&f, t1 + 60 * SEC);

	/* the same file again: the running group stays as it is */
	f.now = t1 + 90 * SEC;
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "A");
	assert_int_equal(r->n_alerts, 1);
	assert_int_equal(r->alerts[0].active_at, t1);
	assert_int_equal(snap_group(s, "g")->iterations, 2);
	rules_snapshot_free(s);
	fx_run_at(&f, t1 + 120 * SEC);	/* still on the old schedule */
	check_dump(&f, "{__name__=\"gone\"}", "{__name__=\"gone\", i=\"a\"} 1@0 1@60000 1@120000\n");

	/* a changed group: alert state and counters carry over; the series of
	 * the removed rule are marked stale at the next evaluation */
	f.now = t1 + 150 * SEC;
	p = fx_write(&f, "a.yml", v2);
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "A");
	assert_int_equal(r->n_alerts, 1);
	assert_int_equal(r->alerts[0].state, RULES_PENDING);
	assert_int_equal(r->alerts[0].active_at, t1);
	assert_int_equal(snap_group(s, "g")->iterations, 3);
	assert_int_equal(snap_group(s, "g")->n_rules, 2);
	rules_snapshot_free(s);
	fx_run_at(&f, t1 + 180 * SEC);
	check_dump(&f, "{__name__=\"gone\"}",
	    "{__name__=\"gone\", i=\"a\"} 1@0 1@60000 1@120000 stale@180000\n");
	check_dump(&f, "{__name__=\"new\"}", "{__name__=\"new\"} 3@180000\n");
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "A");
	assert_int_equal(r->alerts[0].state, RULES_PENDING);	/* 3m of 5m */
	rules_snapshot_free(s);

	/* a reload that fails keeps everything */
	p = fx_write(&f, "a.yml", "groups:\n- name: g\n  rules:\n  - record: 1bad\n    expr: x\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "error loading rules, previous rule set restored: "));
	assert_non_null(strstr(err, "invalid recording rule name: 1bad"));
	s = rules_manager_snapshot(f.m);
	assert_int_equal(snap_group(s, "g")->n_rules, 2);
	assert_int_equal(snap_rule(s, "g", "A")->n_alerts, 1);
	rules_snapshot_free(s);
	fx_free(&f);
}

static void
test_restore_for_state(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000, down_ms;
	char err[512];
	struct rules_snapshot *s;
	const struct rules_rule_info *r;
	struct label l[3] = { { "__name__", "ALERTS_FOR_STATE" }, { "alertname", "Long" }, { "i", "a" } };
	struct labels *ls;
	int k;

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "a.yml",
	    "groups:\n"
	    "- name: g\n"
	    "  rules:\n"
	    "  - alert: Long\n"
	    "    expr: x > 0\n"
	    "    for: 1h\n");
	/* a previous life: pending since T0-30m, last written at T0-5m */
	ls = labels_new(l, 3);
	down_ms = (T0 - 5 * MINUTE) / 1000000;
	assert_int_equal(tsdb_head_append(f.h, NULL, ls, down_ms, (double)((T0 - 30 * MINUTE) / SEC)), 0);
	labels_free(ls);
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	f.base_ms = t1 / 1000000;
	for (k = -1; k < 3; k++)
		fx_add(&f, f.base_ms + k * 60000 - 1000, 1, "x", "i", "a");
	fx_run_at(&f, t1);
	fx_run_at(&f, t1 + 60 * SEC);
	/* after the second evaluation: ActiveAt moves forward by the time
	 * the server was down (25m spent pending, 35m to go) */
	s = rules_manager_snapshot(f.m);
	r = snap_rule(s, "g", "Long");
	assert_int_equal(r->n_alerts, 1);
	{
		int64_t down = (down_ms / 1000) * SEC, act = ((T0 - 30 * MINUTE) / SEC) * SEC;

		assert_int_equal(r->alerts[0].active_at, act + (t1 + 60 * SEC) - down);
	}
	rules_snapshot_free(s);
	fx_run_at(&f, t1 + 120 * SEC);
	check_dump(&f, "{__name__=\"ALERTS\"}",
	    "{__name__=\"ALERTS\", alertname=\"Long\", alertstate=\"pending\", i=\"a\"} 1@120000\n");
	fx_free(&f);
}

static void
test_apply_config(void **state)
{
	struct fx f;
	const char *p;
	struct cfg *c;
	struct strbuf yml = STRBUF_INIT;
	char err[1024];
	struct rules_snapshot *s;

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "one.rules.yml", "groups:\n- name: a\n  rules:\n  - record: r1\n    expr: vector(1)\n");
	fx_write(&f, "two.rules.yml",
	    "groups:\n- name: b\n  interval: 10s\n  rules:\n  - record: r2\n    expr: vector(2)\n");
	(void)p;
	strbuf_printf(&yml, "global:\n  evaluation_interval: 30s\n  external_labels: {site: x}\n"
	    "rule_files: ['*.rules.yml', 'missing.yml']\n");
	c = cfg_load_string(yml.buf, yml.len, "prom.yml", f.dir, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(rules_manager_apply(f.m, c, err, sizeof(err)), 0);
	s = rules_manager_snapshot(f.m);
	assert_int_equal(s->n_groups, 2);
	assert_string_equal(s->groups[0].name, "a");
	assert_int_equal(s->groups[0].interval_ms, 30000);
	assert_string_equal(s->groups[1].name, "b");
	assert_int_equal(s->groups[1].interval_ms, 10000);
	assert_non_null(strstr(s->groups[0].file, "/one.rules.yml"));
	rules_snapshot_free(s);
	cfg_free(c);
	strbuf_free(&yml);
	unlink(strbuf_cstr(&yml));
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/two.rules.yml", f.dir);
		unlink(path);
	}
	fx_free(&f);
}

/* --- /api/v1/rules, /api/v1/alerts, /metrics ------------------------------ */

static void
test_api_json(void **state)
{
	struct rulefmt_kv rlabels[1] = { { (char *)"sev", (char *)"page" } };
	struct rulefmt_kv rann[1] = { { (char *)"s", (char *)"v={{ $value }}" } };
	struct rulefmt_kv aann[1] = { { (char *)"s", (char *)"v=1234.5" } };
	struct rulefmt_kv reclabels[1] = { { (char *)"a", (char *)"b" } };
	struct label al[2] = { { "alertname", "Always" }, { "sev", "page" } };
	struct rules_alert_info alerts[2];
	struct rules_rule_info rules[3];
	struct rules_group_info group;
	struct rules_snapshot snap = { &group, 1 };
	struct strbuf out = STRBUF_INIT;

	(void)state;
	memset(alerts, 0, sizeof(alerts));
	memset(rules, 0, sizeof(rules));
	memset(&group, 0, sizeof(group));
	alerts[0].labels = labels_new(al, 2);
	alerts[0].annotations = aann;
	alerts[0].n_annotations = 1;
	alerts[0].state = RULES_FIRING;
	alerts[0].value = 1234.5;
	alerts[0].active_at = INT64_C(1795644507021943606);
	alerts[0].fired_at = INT64_C(1795644509021943606);
	alerts[0].resolved_at = RULES_TIME_ZERO;
	alerts[0].keep_firing_since = RULES_TIME_ZERO;
	alerts[1] = alerts[0];
	alerts[1].state = RULES_INACTIVE;	/* resolved: not shown */
	alerts[1].resolved_at = INT64_C(1795644510000000000);
	rules[0].alert = true;
	rules[0].name = (char *)"Always";
	rules[0].query = (char *)"vector(1234.5)";
	rules[0].for_ms = 2000;
	rules[0].keep_firing_for_ms = 60000;
	rules[0].labels = rlabels;
	rules[0].n_labels = 1;
	rules[0].annotations = rann;
	rules[0].n_annotations = 1;
	rules[0].health = RULES_HEALTH_OK;
	rules[0].eval_seconds = 0.000311552;
	rules[0].last_eval = INT64_C(1795644513022222005);
	rules[0].state = RULES_FIRING;
	rules[0].alerts = alerts;
	rules[0].n_alerts = 2;
	rules[1].name = (char *)"rec";
	rules[1].query = (char *)"vector(1)";
	rules[1].labels = reclabels;
	rules[1].n_labels = 1;
	rules[1].health = RULES_HEALTH_ERR;
	rules[1].last_error = (char *)"exceeded limit of 1 with 2 series";
	rules[1].eval_seconds = 0.000027632;
	rules[1].last_eval = INT64_C(1795644513022535901);
	rules[2].alert = true;
	rules[2].name = (char *)"Never";
	rules[2].query = (char *)"vector(1) == 0";
	rules[2].eval_seconds = 0.000035823;
	rules[2].last_eval = RULES_TIME_ZERO;
	group.name = (char *)"al";
	group.file = (char *)"rules2.yml";
	group.interval_ms = 1000;
	group.eval_seconds = 0.00039724;
	group.last_eval = INT64_C(1795644513022209036);
	group.rules = rules;
	group.n_rules = 3;

	/* the shape of Prometheus 2.42's answer for the same rules */
	api_rules_write(&snap, "", &out);
	assert_string_equal(strbuf_cstr(&out),
	    "{\"status\":\"success\",\"data\":{\"groups\":[{\"name\":\"al\",\"file\":\"rules2.yml\",\"rules\":["
	    "{\"state\":\"firing\",\"name\":\"Always\",\"query\":\"vector(1234.5)\",\"duration\":2,\"keepFiringFor\":60,"
	    "\"labels\":{\"sev\":\"page\"},\"annotations\":{\"s\":\"v={{ $value }}\"},\"alerts\":["
	    "{\"labels\":{\"alertname\":\"Always\",\"sev\":\"page\"},\"annotations\":{\"s\":\"v=1234.5\"},"
	    "\"state\":\"firing\",\"activeAt\":\"2026-11-25T22:08:27.021943606Z\",\"value\":\"1.2345e+03\"}],"
	    "\"health\":\"ok\",\"evaluationTime\":0.000311552,\"lastEvaluation\":\"2026-11-25T22:08:33.022222005Z\","
	    "\"type\":\"alerting\"},"
	    "{\"name\":\"rec\",\"query\":\"vector(1)\",\"labels\":{\"a\":\"b\"},\"health\":\"err\","
	    "\"lastError\":\"exceeded limit of 1 with 2 series\",\"evaluationTime\":0.000027632,"
	    "\"lastEvaluation\":\"2026-11-25T22:08:33.022535901Z\",\"type\":\"recording\"},"
	    "{\"state\":\"inactive\",\"name\":\"Never\",\"query\":\"vector(1) == 0\",\"duration\":0,\"keepFiringFor\":0,"
	    "\"labels\":{},\"annotations\":{},\"alerts\":[],\"health\":\"unknown\",\"evaluationTime\":0.000035823,"
	    "\"lastEvaluation\":\"0001-01-01T00:00:00Z\",\"type\":\"alerting\"}],"
	    "\"interval\":1,\"limit\":0,\"evaluationTime\":0.00039724,\"lastEvaluation\":\"2026-11-25T22:08:33.022209036Z\"}]}}");
	strbuf_reset(&out);
	api_rules_write(&snap, "record", &out);
	assert_non_null(strstr(strbuf_cstr(&out), "\"rules\":[{\"name\":\"rec\""));
	assert_null(strstr(strbuf_cstr(&out), "Always"));
	strbuf_reset(&out);
	api_rules_write(&snap, "alert", &out);
	assert_null(strstr(strbuf_cstr(&out), "\"rec\""));
	assert_non_null(strstr(strbuf_cstr(&out), "\"Never\""));
	strbuf_reset(&out);
	alerts[0].keep_firing_since = INT64_C(1795644512000000000);
	api_alerts_write(&snap, &out);
	assert_string_equal(strbuf_cstr(&out),
	    "{\"status\":\"success\",\"data\":{\"alerts\":["
	    "{\"labels\":{\"alertname\":\"Always\",\"sev\":\"page\"},\"annotations\":{\"s\":\"v=1234.5\"},"
	    "\"state\":\"firing\",\"activeAt\":\"2026-11-25T22:08:27.021943606Z\","
	    "\"keepFiringSince\":\"2026-11-25T22:08:32Z\",\"value\":\"1.2345e+03\"}]}}");
	strbuf_free(&out);
	labels_free(alerts[0].labels);
}

struct fetched {
	long status;
	struct strbuf body;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct fetched *fe = arg;

	strbuf_append(&fe->body, p, size * n);
	return size * n;
}

static void
fetch(const char *url, struct fetched *fe)
{
	CURL *c = curl_easy_init();

	strbuf_init(&fe->body);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, fe);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &fe->status);
	curl_easy_cleanup(c);
}

static void
test_api_http_and_metrics(void **state)
{
	struct fx f;
	const char *p;
	int64_t t1, iv = 60000;
	char err[512], base[64], url[128];
	struct http_server *srv;
	struct api_metrics *am;
	struct fetched fe;
	struct strbuf want = STRBUF_INIT;

	(void)state;
	fx_init(&f);
	p = fx_write(&f, "a.yml",
	    "groups:\n"
	    "- name: g\n"
	    "  rules:\n"
	    "  - record: r\n"
	    "    expr: vector(1)\n"
	    "  - alert: A\n"
	    "    expr: vector(1)\n"
	    "  - record: bad\n"
	    "    expr: '\"s\"'\n");
	assert_int_equal(fx_update(&f, iv, p, err, sizeof(err)), 0);
	t1 = fx_first(&f, p, "g", iv);
	srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(srv);
	am = api_metrics_new();
	api_metrics_add(am, api_metrics_rules, f.m);
	assert_int_equal(api_rules_route(f.m, srv), 0);
	assert_int_equal(api_metrics_route(am, srv), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", http_server_port(srv));

	/* before the first evaluation */
	snprintf(url, sizeof(url), "%s/api/v1/rules?type=record", base);
	fetch(url, &fe);
	assert_int_equal(fe.status, 200);
	strbuf_printf(&want, "{\"status\":\"success\",\"data\":{\"groups\":[{\"name\":\"g\",\"file\":\"%s\","
	    "\"rules\":[{\"name\":\"r\",\"query\":\"vector(1)\",\"health\":\"unknown\",\"evaluationTime\":0,"
	    "\"lastEvaluation\":\"0001-01-01T00:00:00Z\",\"type\":\"recording\"},"
	    "{\"name\":\"bad\",\"query\":\"\\\"s\\\"\",\"health\":\"unknown\",\"evaluationTime\":0,"
	    "\"lastEvaluation\":\"0001-01-01T00:00:00Z\",\"type\":\"recording\"}],"
	    "\"interval\":60,\"limit\":0,\"evaluationTime\":0,\"lastEvaluation\":\"0001-01-01T00:00:00Z\"}]}}", p);
	assert_string_equal(fe.body.buf, strbuf_cstr(&want));
	strbuf_free(&fe.body);

	fx_run_at(&f, t1);
	snprintf(url, sizeof(url), "%s/api/v1/rules?type=Bogus", base);
	fetch(url, &fe);
	assert_int_equal(fe.status, 400);
	assert_string_equal(fe.body.buf, "{\"status\":\"error\",\"errorType\":\"bad_data\","
	    "\"error\":\"invalid parameter \\\"type\\\": not supported value \\\"bogus\\\"\"}");
	strbuf_free(&fe.body);
	snprintf(url, sizeof(url), "%s/api/v1/rules?type=ALERT", base);
	fetch(url, &fe);
	assert_int_equal(fe.status, 200);
	assert_non_null(strstr(fe.body.buf, "\"name\":\"A\""));
	assert_null(strstr(fe.body.buf, "\"name\":\"r\""));
	assert_non_null(strstr(fe.body.buf, "\"state\":\"firing\""));
	strbuf_free(&fe.body);
	snprintf(url, sizeof(url), "%s/api/v1/alerts", base);
	fetch(url, &fe);
	assert_int_equal(fe.status, 200);
	assert_non_null(strstr(fe.body.buf, "{\"status\":\"success\",\"data\":{\"alerts\":[{\"labels\":"
	    "{\"alertname\":\"A\"},\"annotations\":{},\"state\":\"firing\",\"activeAt\":\""));
	assert_non_null(strstr(fe.body.buf, "\",\"value\":\"1e+00\"}]}}"));
	strbuf_free(&fe.body);

	snprintf(url, sizeof(url), "%s/metrics", base);
	fetch(url, &fe);
	assert_int_equal(fe.status, 200);
	strbuf_reset(&want);
	strbuf_printf(&want,
	    "# HELP prometheus_rule_evaluation_failures_total The total number of rule evaluation failures.\n"
	    "# TYPE prometheus_rule_evaluation_failures_total counter\n"
	    "prometheus_rule_evaluation_failures_total{rule_group=\"%s;g\"} 1\n"
	    "# HELP prometheus_rule_evaluations_total The total number of rule evaluations.\n"
	    "# TYPE prometheus_rule_evaluations_total counter\n"
	    "prometheus_rule_evaluations_total{rule_group=\"%s;g\"} 3\n"
	    "# HELP prometheus_rule_group_interval_seconds The interval of a rule group.\n"
	    "# TYPE prometheus_rule_group_interval_seconds gauge\n"
	    "prometheus_rule_group_interval_seconds{rule_group=\"%s;g\"} 60\n"
	    "# HELP prometheus_rule_group_iterations_missed_total The total number of rule group evaluations "
	    "missed due to slow rule group evaluation.\n"
	    "# TYPE prometheus_rule_group_iterations_missed_total counter\n"
	    "prometheus_rule_group_iterations_missed_total{rule_group=\"%s;g\"} 0\n"
	    "# HELP prometheus_rule_group_iterations_total The total number of scheduled rule group evaluations, "
	    "whether executed or missed.\n"
	    "# TYPE prometheus_rule_group_iterations_total counter\n"
	    "prometheus_rule_group_iterations_total{rule_group=\"%s;g\"} 1\n", p, p, p, p, p);
	assert_non_null(strstr(fe.body.buf, strbuf_cstr(&want)));
	strbuf_reset(&want);
	strbuf_printf(&want, "prometheus_rule_group_last_evaluation_samples{rule_group=\"%s;g\"} 1\n"
	    "# HELP prometheus_rule_group_last_evaluation_timestamp_seconds The timestamp of the last rule "
	    "group evaluation in seconds.\n"
	    "# TYPE prometheus_rule_group_last_evaluation_timestamp_seconds gauge\n"
	    "prometheus_rule_group_last_evaluation_timestamp_seconds{rule_group=\"%s;g\"} ", p, p);
	assert_non_null(strstr(fe.body.buf, strbuf_cstr(&want)));
	strbuf_reset(&want);
	strbuf_printf(&want, "prometheus_rule_group_rules{rule_group=\"%s;g\"} 3\n", p);
	assert_non_null(strstr(fe.body.buf, strbuf_cstr(&want)));
	assert_non_null(strstr(fe.body.buf, "# TYPE prometheus_rule_group_last_duration_seconds gauge\n"));
	strbuf_free(&fe.body);
	strbuf_free(&want);

	http_server_free(srv);
	api_metrics_free(am);
	fx_free(&f);
}

static void
test_threaded(void **state)
{
	/* the real clock and threads: a 100ms group evaluates on its slots,
	 * then is removed and marks its series stale two intervals later */
	struct fx f;
	struct rules_manager_opts o;
	struct rules_manager *m;
	const char *p;
	char err[512];
	struct timespec ts;
	int64_t slot, start, deadline;
	char *dump;
	struct rules_snapshot *s;

	(void)state;
	fx_init(&f);
	memset(&o, 0, sizeof(o));
	o.query = rules_query_engine;
	o.engine = f.e;
	o.storage = &f.st;
	o.head = f.h;
	m = rules_manager_new(&o, err, sizeof(err));
	assert_non_null(m);
	p = fx_write(&f, "t.yml",
	    "groups:\n- name: fast\n  interval: 100ms\n  rules:\n  - record: tick\n    expr: vector(1)\n");
	{
		const char *files[1] = { p };

		clock_gettime(CLOCK_REALTIME, &ts);
		start = (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
		assert_int_equal(rules_manager_update(m, 60000, files, 1, NULL, err, sizeof(err)), 0);
	}
	slot = rules_eval_timestamp(p, "fast", 100, start) % (100 * 1000000);
	deadline = start + 5 * SEC;
	for (;;) {
		s = rules_manager_snapshot(m);
		/* three evaluations that ran (a loaded machine misses some) */
		if (s->groups[0].iterations - s->groups[0].missed >= 3 || start > deadline) {
			rules_snapshot_free(s);
			break;
		}
		rules_snapshot_free(s);
		usleep(20000);
		clock_gettime(CLOCK_REALTIME, &ts);
		start = (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
	}
	f.base_ms = 0;
	dump = fx_dump(&f, "{__name__=\"tick\"}");
	{
		/* every sample sits on the group's slot (ms precision) */
		const char *q = dump;
		int n = 0;

		while ((q = strchr(q, '@')) != NULL) {
			long long t = atoll(++q);

			assert_int_equal((t * 1000000) % (100 * 1000000) / 1000000, slot / 1000000);
			n++;
		}
		assert_true(n >= 3);
	}
	mem_free(dump);
	/* removal: stale markers after two intervals, stamped with the time
	 * the group stopped. Removed in the middle of an interval: stopped in
	 * the millisecond of an evaluation, the group's marker would share
	 * that evaluation's timestamp and be dropped as a duplicate, as
	 * Prometheus drops it. */
	clock_gettime(CLOCK_REALTIME, &ts);
	start = (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
	usleep((useconds_t)(((slot + 50 * 1000000 - start % (100 * 1000000)) % (100 * 1000000) +
	    100 * 1000000) % (100 * 1000000) / 1000));
	assert_int_equal(rules_manager_update(m, 60000, NULL, 0, NULL, err, sizeof(err)), 0);
	for (deadline = 0; deadline < 250; deadline++) {
		dump = fx_dump(&f, "{__name__=\"tick\"}");
		if (strstr(dump, "stale") != NULL)
			break;
		mem_free(dump);
		dump = NULL;
		usleep(20000);
	}
	assert_non_null(dump);
	assert_non_null(strstr(dump, "stale"));
	mem_free(dump);
	rules_manager_free(m);
	fx_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template_values),
		cmocka_unit_test(test_template_functions),
		cmocka_unit_test(test_template_exec_errors),
		cmocka_unit_test(test_template_parse_errors),
		cmocka_unit_test(test_rulefmt_valid),
		cmocka_unit_test(test_rulefmt_errors),
		cmocka_unit_test(test_rulefmt_duration),
		cmocka_unit_test(test_eval_timestamp),
		cmocka_unit_test(test_recording_order),
		cmocka_unit_test(test_eval_delay),
		cmocka_unit_test(test_eval_delay_alert_expiry),
		cmocka_unit_test(test_recording_errors_and_limit),
		cmocka_unit_test(test_staleness),
		cmocka_unit_test(test_removed_group_not_marked_after_stop),
		cmocka_unit_test(test_alert_lifecycle),
		cmocka_unit_test(test_alert_keep_firing_and_limit),
		cmocka_unit_test(test_alert_duplicate_labelset),
		cmocka_unit_test(test_reload_keeps_state),
		cmocka_unit_test(test_restore_for_state),
		cmocka_unit_test(test_apply_config),
		cmocka_unit_test(test_api_json),
		cmocka_unit_test(test_api_http_and_metrics),
		cmocka_unit_test(test_threaded),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
