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

#include "labels/labels.h"
#include "rules/rulefmt.h"
#include "rules/template.h"
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
