/* tests/unit/test_promql.c - lib/promql: lexer, parser, printer, engine.
 *
 * Parser: Prometheus' error messages and their line:column for malformed
 * queries (syntax errors with their yacc contexts, lexer errors, type
 * errors), operator precedence and associativity checked through the
 * printed tree, printing round trips (String() form parses back to the same
 * text), numbers and durations. Engine: corner cases the Prometheus test
 * scripts do not cover (see test_promql_scripts.c for those).
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "promql/ast.h"
#include "promql/engine.h"
#include "promql/parse.h"
#include "promql/storage.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"

/* --- parser ---------------------------------------------------------------- */

static char *
parse_print(const char *q, char *err, size_t errlen)
{
	struct promql_node *n = promql_parse(q, strlen(q), err, errlen);
	struct strbuf sb = STRBUF_INIT;

	if (n == NULL)
		return NULL;
	promql_node_format(n, &sb);
	promql_node_free(n);
	return strbuf_detach(&sb, NULL);
}

static void
expect_print(const char *in, const char *out)
{
	char err[512] = "";
	char *got = parse_print(in, err, sizeof(err));

	if (got == NULL)
		fail_msg("%s: unexpected error: %s", in, err);
	if (strcmp(got, out) != 0)
		fail_msg("%s: printed %s, want %s", in, got, out);
	mem_free(got);
}

/* expect_error checks the full message when want starts with a digit
 * (line:col), else that the message contains want. */
static void
expect_error(const char *in, const char *want)
{
	char err[512] = "";
	char *got = parse_print(in, err, sizeof(err));

	if (got != NULL) {
		fail_msg("%s: parsed as %s, want error %s", in, got, want);
		mem_free(got);
		return;
	}
	if (want[0] >= '0' && want[0] <= '9') {
		if (strcmp(err, want) != 0)
			fail_msg("%s: error %s, want %s", in, err, want);
	} else if (strstr(err, want) == NULL) {
		fail_msg("%s: error %s, want it to contain %s", in, err, want);
	}
}

static void
test_parse_print(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "1", "1" },
		{ "+Inf", "+Inf" },
		{ "-Inf", "-Inf" },
		{ "NaN", "NaN" },
		{ ".5", "0.5" },
		{ "5.", "5" },
		{ "0x1F", "31" },
		{ "0755", "493" },
		{ "1e6", "1e+06" },
		{ "123456", "123456" },
		{ "1234567", "1.234567e+06" },
		{ "0.00001", "1e-05" },
		{ "0.0001", "0.0001" },
		{ "\"a\\nb\"", "\"a\\nb\"" },
		{ "'it\\'s'", "\"it's\"" },
		{ "`raw\\n`", "\"raw\\\\n\"" },
		{ "-1", "-1" },
		{ "- - 1", "1" },
		{ "-(1)", "-(1)" },
		{ "foo", "foo" },
		{ "foo{}", "foo" },
		{ "{__name__=\"a\"}", "{__name__=\"a\"}" },
		{ "foo{b=\"c\",a=~\"x\"}", "foo{a=~\"x\",b=\"c\"}" },
		{ "foo{a!=\"b\", c!~\"d\",}", "foo{a!=\"b\",c!~\"d\"}" },
		{ "a:b:c{x=\"y\"}", "a:b:c{x=\"y\"}" },
		{ "sum", "sum" },
		{ "by", "by" },
		{ "offset", "offset" },
		{ "foo[5m]", "foo[5m]" },
		{ "foo[90s]", "foo[1m30s]" },
		{ "foo[1h30m]", "foo[1h30m]" },
		{ "foo[7d]", "foo[1w]" },
		{ "foo[8d]", "foo[8d]" },
		{ "foo offset 5m", "foo offset 5m" },
		{ "foo offset -7m", "foo offset -7m" },
		{ "foo[5m] offset 1m", "foo[5m] offset 1m" },
		{ "foo @ 10", "foo @ 10.000" },
		{ "foo @ 10.5", "foo @ 10.500" },
		{ "foo @ -10", "foo @ -10.000" },
		{ "foo @ start()", "foo @ start()" },
		{ "foo @ end()", "foo @ end()" },
		{ "foo offset 1m @ 3", "foo @ 3.000 offset 1m" },
		{ "foo[5m] @ 3 offset 1m", "foo[5m] @ 3.000 offset 1m" },
		{ "foo[1h:5m]", "foo[1h:5m]" },
		{ "foo[1h:]", "foo[1h:]" },
		{ "foo[1h:5m] offset 1m @ 100", "foo[1h:5m] @ 100.000 offset 1m" },
		{ "rate(foo[5m])[1h:]", "rate(foo[5m])[1h:]" },
		{ "sum by() (x)", "sum(x)" },
		{ "sum by(code) (x)", "sum by (code) (x)" },
		{ "sum(x) by (b, a)", "sum by (b, a) (x)" },
		{ "sum without() (x)", "sum without () (x)" },
		{ "SUM without(instance) (x)", "sum without (instance) (x)" },
		{ "topk(5, x)", "topk(5, x)" },
		{ "count_values(\"value\", x)", "count_values(\"value\", x)" },
		{ "quantile by (a,) (0.5, x)", "quantile by (a) (0.5, x)" },
		{ "a - on() c", "a - on () c" },
		{ "a - on(b) group_left(x, y) c", "a - on (b) group_left (x, y) c" },
		{ "a - on(b) group_left c", "a - on (b) group_left () c" },
		{ "a - on(b) group_right() (c)", "a - on (b) group_right () (c)" },
		{ "a - ignoring(b) c", "a - ignoring (b) c" },
		{ "a - ignoring() c", "a - c" },
		{ "up > bool 0", "up > bool 0" },
		{ "a and on(b) c", "a and on (b) c" },
		{ "a or b unless c", "a or b unless c" },
		{ "rate(x[5m])", "rate(x[5m])" },
		{ "label_join(x, \"d\", \",\", \"a\", \"b\")", "label_join(x, \"d\", \",\", \"a\", \"b\")" },
		{ "time()", "time()" },
		{ "-x", "-x" },
		{ "+x", "+x" },
		{ "# comment\nfoo # more\n", "foo" },
		{ "foo{a=\"\\u00e9\"}", "foo{a=\"é\"}" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_print(cases[i].in, cases[i].out);
}

/* Precedence and associativity, shown with parentheses made explicit by
 * the shape of the tree (checked by evaluating the printed text shape). */
static void
tree_shape(const struct promql_node *n, struct strbuf *out)
{
	switch (n->kind) {
	case PROMQL_BINARY:
		strbuf_putc(out, '(');
		tree_shape(n->u.bin.lhs, out);
		strbuf_printf(out, " %s%s ", promql_tok_string(n->u.bin.op),
		    n->u.bin.return_bool ? " bool" : "");
		tree_shape(n->u.bin.rhs, out);
		strbuf_putc(out, ')');
		break;
	case PROMQL_UNARY:
		strbuf_printf(out, "[%s", promql_tok_string(n->u.unary.op));
		tree_shape(n->u.unary.expr, out);
		strbuf_putc(out, ']');
		break;
	default:
		promql_node_format(n, out);
		break;
	}
}

static void
expect_shape(const char *in, const char *want)
{
	char err[512];
	struct promql_node *n = promql_parse(in, strlen(in), err, sizeof(err));
	struct strbuf sb = STRBUF_INIT;

	if (n == NULL)
		fail_msg("%s: %s", in, err);
	tree_shape(n, &sb);
	if (strcmp(strbuf_cstr(&sb), want) != 0)
		fail_msg("%s: shape %s, want %s", in, strbuf_cstr(&sb), want);
	strbuf_free(&sb);
	promql_node_free(n);
}

static void
test_precedence(void **state)
{
	(void)state;
	expect_shape("1 + 2 * 3", "(1 + (2 * 3))");
	expect_shape("1 * 2 + 3", "((1 * 2) + 3)");
	expect_shape("1 - 2 - 3", "((1 - 2) - 3)");
	expect_shape("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))");
	expect_shape("-2 ^ 2", "[-(2 ^ 2)]");
	expect_shape("-a * b", "([-a] * b)");
	expect_shape("-a ^ b", "[-(a ^ b)]");
	expect_shape("a or b and c", "(a or (b and c))");
	expect_shape("a and b or c", "((a and b) or c)");
	expect_shape("a unless b and c", "((a unless b) and c)");
	expect_shape("a == b + c", "(a == (b + c))");
	expect_shape("a > bool b or c", "((a > bool b) or c)");
	expect_shape("a + b offset 5m", "(a + b offset 5m)");
	expect_shape("a atan2 b * c", "((a atan2 b) * c)");
	expect_shape("a % b ^ c", "(a % (b ^ c))");
	expect_shape("2 ^ -1", "(2 ^ -1)");
	expect_shape("-2^---1*3", "([-(2 ^ -1)] * 3)");
	expect_shape("a @ 5 + b", "(a @ 5.000 + b)");
	expect_shape("- a @ 5", "[-a @ 5.000]");
}

static void
test_parse_errors(void **state)
{
	static const struct {
		const char *in, *err;
	} cases[] = {
		{ "", "1:1: parse error: no expression found in input" },
		{ "# just a comment\n\n", "no expression found in input" },
		{ "1+", "1:3: parse error: unexpected end of input" },
		{ ".", "1:1: parse error: unexpected character: '.'" },
		{ "2.5.", "unexpected character: '.'" },
		{ "100..4", "1:5: parse error: unexpected number \".4\"" },
		{ "0deadbeef", "bad number or duration syntax: \"0de\"" },
		{ "1 /", "unexpected end of input" },
		{ "*1", "1:1: parse error: unexpected <op:*>" },
		{ "(1))", "1:5: parse error: unexpected right parenthesis ')'" },
		{ "((1)", "unclosed left parenthesis" },
		{ "999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999", "out of range" },
		{ "(", "unclosed left parenthesis" },
		{ "1 and 1", "set operator \"and\" not allowed in binary scalar expression" },
		{ "1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier" },
		{ "1 or 1", "set operator \"or\" not allowed in binary scalar expression" },
		{ "1 !~ 1", "unexpected character after '!': '~'" },
		{ "1 =~ 1", "unexpected character after '=': '~'" },
		{ "-\"string\"", "unary expression only allowed on expressions of type scalar or instant vector, got \"string\"" },
		{ "-test[5m]", "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"" },
		{ "*test", "unexpected <op:*>" },
		{ "1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery" },
		{ "foo offset 1s offset 2s", "offset may not be set multiple times" },
		{ "a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>" },
		{ "foo and 1", "set operator \"and\" not allowed in binary scalar expression" },
		{ "1 or on(bar) foo", "vector matching only allowed between instant vectors" },
		{ "foo == on(bar) 10", "vector matching only allowed between instant vectors" },
		{ "foo + group_left(baz) bar", "unexpected <group_left>" },
		{ "foo and on(bar) group_left(baz) bar", "no grouping allowed for \"and\" operation" },
		{ "foo or on(bar) group_right(baz) bar", "no grouping allowed for \"or\" operation" },
		{ "http_requests{group=\"production\"} + on(instance) group_left(job,instance) cpu_count{type=\"smp\"}", "label \"instance\" must not occur in ON and GROUP clause at once" },
		{ "foo + bool bar", "bool modifier can only be used on comparison operators" },
		{ "foo and bool 10", "bool modifier can only be used on comparison operators" },
		{ "foo @ +Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf" },
		{ "foo @ -Inf", "1:1: parse error: timestamp out of bounds for @ modifier: -Inf" },
		{ "foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN" },
		{ "foo @ 9223372036854775808", "1:1: parse error: timestamp out of bounds for @ modifier: 9223372036854775808.000000" },
		{ "{", "unexpected end of input inside braces" },
		{ "}", "unexpected character: '}'" },
		{ "some{", "unexpected end of input inside braces" },
		{ "some}", "unexpected character: '}'" },
		{ "some_metric{a=b}", "unexpected identifier \"b\" in label matching, expected string" },
		{ "some_metric{a:b=\"b\"}", "unexpected character inside braces: ':'" },
		{ "foo{a*\"b\"}", "unexpected character inside braces: '*'" },
		{ "foo{a>=\"b\"}", "unexpected character inside braces: '>'" },
		{ "some_metric{a=\"\xff\"}", "1:15: parse error: invalid UTF-8 rune" },
		{ "foo{gibberish}", "unexpected \"}\" in label matching, expected label matching operator" },
		{ "foo{1}", "unexpected character inside braces: '1'" },
		{ "{}", "vector selector must contain at least one non-empty matcher" },
		{ "{x=\"\"}", "vector selector must contain at least one non-empty matcher" },
		{ "{x=~\".*\"}", "vector selector must contain at least one non-empty matcher" },
		{ "{x!~\".+\"}", "vector selector must contain at least one non-empty matcher" },
		{ "{x!=\"a\"}", "vector selector must contain at least one non-empty matcher" },
		{ "foo{__name__=\"bar\"}", "metric name must not be set twice: \"foo\" or \"bar\"" },
		{ "foo{__name__= =}", "1:15: parse error: unexpected \"=\" in label matching, expected string" },
		{ "foo{,}", "unexpected \",\" in label matching, expected identifier or \"}\"" },
		{ "foo{__name__ == \"bar\"}", "1:15: parse error: unexpected \"=\" in label matching, expected string" },
		{ "foo{__name__=\"bar\" lol}", "unexpected identifier \"lol\" in label matching, expected \",\" or \"}\"" },
		{ "foo{a=~\"(\"}", "error parsing regexp" },
		{ "foo[5mm]", "bad duration syntax: \"5mm\"" },
		{ "foo[5m1]", "bad duration syntax: \"5m1\"" },
		{ "foo[5m:1m1]", "bad number or duration syntax: \"1m1\"" },
		{ "foo[5y1hs]", "not a valid duration string: \"5y1hs\"" },
		{ "foo[5m1h]", "not a valid duration string: \"5m1h\"" },
		{ "foo[5m1m]", "not a valid duration string: \"5m1m\"" },
		{ "foo[0m]", "duration must be greater than 0" },
		{ "foo[]", "missing unit character in duration" },
		{ "foo[1]", "missing unit character in duration" },
		{ "some_metric[5m] OFFSET 1", "unexpected number \"1\" in offset, expected duration" },
		{ "some_metric[5m] OFFSET 1mm", "bad number or duration syntax: \"1mm\"" },
		{ "some_metric[5m] OFFSET", "unexpected end of input in offset, expected duration" },
		{ "some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range" },
		{ "some_metric[5m] @ 1m", "1:19: parse error: unexpected duration \"1m\" in @, expected timestamp" },
		{ "some_metric[5m] @", "1:18: parse error: unexpected end of input in @, expected timestamp" },
		{ "some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range" },
		{ "(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors" },
		{ "sum without(==)(some_metric)", "unexpected <op:==> in grouping opts, expected label" },
		{ "sum without(,)(some_metric)", "unexpected \",\" in grouping opts, expected label" },
		{ "sum without(foo,,)(some_metric)", "unexpected \",\" in grouping opts, expected label" },
		{ "sum some_metric by (test)", "unexpected identifier \"some_metric\"" },
		{ "sum (some_metric) by test", "unexpected identifier \"test\" in grouping opts" },
		{ "sum () by (test)", "no arguments for aggregate expression provided" },
		{ "MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier \"keep_common\"" },
		{ "MIN (some_metric) keep_common", "unexpected identifier \"keep_common\"" },
		{ "sum (some_metric) without (test) by (test)", "unexpected <by>" },
		{ "sum without (test) (some_metric) by (test)", "unexpected <by>" },
		{ "topk(some_metric)", "wrong number of arguments for aggregate expression provided, expected 2, got 1" },
		{ "topk(some_metric,)", "trailing commas not allowed in function call args" },
		{ "topk(some_metric, other_metric)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector" },
		{ "count_values(5, other_metric)", "1:14: parse error: expected type string in aggregation parameter, got scalar" },
		{ "rate(some_metric[5m]) @ 1234", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery" },
		{ "floor()", "expected 1 argument(s) in call to \"floor\", got 0" },
		{ "floor(some_metric, other_metric)", "expected 1 argument(s) in call to \"floor\", got 2" },
		{ "floor(1)", "expected type instant vector in call to function \"floor\", got scalar" },
		{ "hour(some_metric, some_metric, some_metric)", "expected at most 1 argument(s) in call to \"hour\", got 3" },
		{ "time(some_metric)", "expected 0 argument(s) in call to \"time\", got 1" },
		{ "non_existent_function_far_bar()", "unknown function with name \"non_existent_function_far_bar\"" },
		{ "rate(some_metric)", "expected type range vector in call to function \"rate\", got instant vector" },
		{ "label_replace(a, `b`, `c\xff`, `d`, `.*`)", "1:23: parse error: invalid UTF-8 rune" },
		{ "label_join(a, \"b\")", "expected at least 3 argument(s) in call to \"label_join\", got 2" },
		{ "-=", "unexpected \"=\"" },
		{ "++-++-+-+-<", "unexpected <op:<>" },
		{ "e-+=/(0)", "unexpected \"=\"" },
		{ "a>b()", "unknown function" },
		{ "rate(avg)", "expected type range vector" },
		{ "`\\``", "unterminated raw string" },
		{ "\"\\", "escape sequence not terminated" },
		{ "\"\\c\"", "unknown escape sequence U+0063 'c'" },
		{ "\"\\x.\"", "illegal character U+002E '.' in escape sequence" },
		{ "test[5d] OFFSET 10s [10m:5s]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead" },
		{ "(foo + bar{nm=\"val\"})[5m:][10m:5s]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead" },
		{ "rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector selectors" },
		{ "rate(food[1m])[1h] @ 100", "1:15: parse error: ranges only allowed for vector selectors" },
		{ "start()", "1:6: parse error: unexpected \"(\"" },
		{ "end()", "1:4: parse error: unexpected \"(\"" },
		{ "foo[5m:1]", "unexpected number \"1\" in subquery selector, expected duration or \"]\"" },
		{ "foo[5m", "unclosed left bracket" },
		{ "foo[5m x", "unclosed left bracket" },
		{ "foo]", "unexpected right bracket ']'" },
		{ "foo[5m][5m]", "1:8: parse error: ranges only allowed for vector selectors" },
		{ "sum(foo bar)", "unexpected identifier \"bar\" in aggregation" },
		{ "rate(foo bar)", "1:10: parse error: unexpected identifier \"bar\"" },
		{ "foo offset 0s", "duration must be greater than 0" },
		{ "foo\n+ * bar", "2:3: parse error: unexpected <op:*>" },
		{ "1 !", "unexpected character after '!': '\xef\xbf\xbd'" },
		{ "label_replace(up, < \"$1\")", "1:17: parse error: trailing commas not allowed in function call args" },
		{ "clamp(x,bool 1, 2)", "1:8: parse error: trailing commas not allowed in function call args" },
		{ "a / on (b) group_left", "1:22: parse error: unexpected end of input in grouping opts, expected \"(\"" },
		{ "a / on (b) group_left == (c)", "1:23: parse error: unexpected <op:==> in grouping opts, expected \"(\"" },
		{ "@ 1", "1:1: parse error: unexpected \"<Item 57385>\" <op:@>" },
		{ "x{a=~\"(\"}", "1:3: parse error: error parsing regexp: missing closing ): `^(?:()$`" },
		{ "x{a=~\"a)\"}", "1:3: parse error: error parsing regexp: unexpected ): `^(?:a))$`" },
		{ "\"x\" \"abcdefghijklmnop\"", "1:5: parse error: unexpected string \"\\\"abcdefghi\"..." },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].in, cases[i].err);
}

/* Everything that prints must parse back to the same text. */
static void
test_print_roundtrip(void **state)
{
	static const char *const queries[] = {
		"sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1h @ 100))",
		"histogram_quantile(0.9, sum without (instance) (rate(x_bucket[10m])))",
		"a / on (b) group_left (c, d) e * ignoring (f) g",
		"topk(3, x) or bottomk by (a) (2, y) unless z",
		"-(1 + 2) ^ -x",
		"x[1h:1m] @ end() offset -5m",
		"count_values without (a) (\"v\", x) > bool 2",
		"label_replace(up, \"x\", \"$1\", \"instance\", \"(.*):.*\")",
		"1e-07 + 1.5e+300 - -3.25",
		"foo{a=\"\\\"q\\\" \\\\ \\t\"}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		char err[512] = "";
		char *once = parse_print(queries[i], err, sizeof(err)), *twice;

		if (once == NULL)
			fail_msg("%s: %s", queries[i], err);
		twice = parse_print(once, err, sizeof(err));
		if (twice == NULL)
			fail_msg("%s: reparse of %s: %s", queries[i], once, err);
		assert_string_equal(once, twice);
		mem_free(once);
		mem_free(twice);
	}
}

static void
test_numbers_durations(void **state)
{
	char err[256];
	double v;
	int64_t ms;

	(void)state;
	assert_int_equal(promql_parse_number("12.34e6", 7, &v, err, sizeof(err)), 0);
	assert_true(v == 12340000);
	assert_int_equal(promql_parse_number("0x10", 4, &v, err, sizeof(err)), 0);
	assert_true(v == 16);
	assert_int_equal(promql_parse_number("010", 3, &v, err, sizeof(err)), 0);
	assert_true(v == 8);
	assert_int_equal(promql_parse_number("09", 2, &v, err, sizeof(err)), 0);
	assert_true(v == 9);
	assert_int_equal(promql_parse_number("-Inf", 4, &v, err, sizeof(err)), 0);
	assert_true(isinf(v) && v < 0);
	assert_int_equal(promql_parse_number("nan", 3, &v, err, sizeof(err)), 0);
	assert_true(isnan(v));
	assert_int_equal(promql_parse_number("1e400", 5, &v, err, sizeof(err)), -1);
	assert_string_equal(err, "strconv.ParseFloat: parsing \"1e400\": value out of range");
	assert_int_equal(promql_parse_number("0x", 2, &v, err, sizeof(err)), -1);
	assert_string_equal(err, "strconv.ParseFloat: parsing \"0x\": invalid syntax");
	assert_int_equal(promql_parse_duration("1h30m", 5, &ms, err, sizeof(err)), 0);
	assert_true(ms == 5400000);
	assert_int_equal(promql_parse_duration("0s", 2, &ms, err, sizeof(err)), -1);
	assert_string_equal(err, "duration must be greater than 0");
	assert_int_equal(promql_parse_duration("1000y", 5, &ms, err, sizeof(err)), -1);
	assert_string_equal(err, "duration out of range");
}

/* Nesting is bounded so that no input can exhaust the stack. */
static void
test_depth_limit(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	char err[512];
	struct promql_node *n;
	int i;

	(void)state;
	for (i = 0; i < 600; i++)
		strbuf_putc(&sb, '(');
	strbuf_putc(&sb, '1');
	for (i = 0; i < 600; i++)
		strbuf_putc(&sb, ')');
	assert_null(promql_parse(sb.buf, sb.len, err, sizeof(err)));
	assert_string_equal(err, "1:501: parse error: expression nested more than 500 levels deep");
	strbuf_reset(&sb);
	for (i = 0; i < 100000; i++)
		strbuf_puts(&sb, "x+");
	strbuf_putc(&sb, 'x');
	assert_null(promql_parse(sb.buf, sb.len, err, sizeof(err)));
	assert_string_equal(err, "1:1: parse error: expression nested more than 500 levels deep");
	strbuf_reset(&sb);
	for (i = 0; i < 100000; i++)
		strbuf_putc(&sb, '-');
	strbuf_putc(&sb, 'x');
	assert_null(promql_parse(sb.buf, sb.len, err, sizeof(err)));
	strbuf_reset(&sb);
	for (i = 0; i < 498; i++)
		strbuf_puts(&sb, "abs(");
	strbuf_putc(&sb, 'x');
	for (i = 0; i < 498; i++)
		strbuf_putc(&sb, ')');
	n = promql_parse(sb.buf, sb.len, err, sizeof(err));
	assert_non_null(n);
	assert_int_equal(n->depth, 499);
	promql_node_free(n);
	strbuf_free(&sb);
}

static void
test_series_desc(void **state)
{
	static const struct {
		const char *in;
		const char *labels;
		const char *vals;
	} cases[] = {
		{ "metric 1 2 3", "{__name__=\"metric\"}", "1 2 3" },
		{ "m{a=\"b\"} 0+10x3", "{__name__=\"m\", a=\"b\"}", "0 10 20 30" },
		{ "{a=\"b\",} 1-2x2 _ _x2 stale", "{a=\"b\"}", "1 -1 -3 _ _ _ stale" },
		{ "m 0x3", "{__name__=\"m\"}", "0 0 0 0" },
		{ "m Inf -Inf NaN +5", "{__name__=\"m\"}", "+Inf -Inf NaN 5" },
		{ "sum:x 9.988465674311579e+307", "{__name__=\"sum:x\"}", "9.98846567431158e+307" },
		{ "{} 1", "{}", "1" },
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf sb = STRBUF_INIT;
		struct promql_seq_value *vals;
		struct labels *ls;
		size_t n;
		char err[256];

		if (promql_parse_series(cases[i].in, strlen(cases[i].in), &ls, &vals, &n,
		    err, sizeof(err)) < 0)
			fail_msg("%s: %s", cases[i].in, err);
		labels_format(ls, &sb);
		assert_string_equal(strbuf_cstr(&sb), cases[i].labels);
		strbuf_reset(&sb);
		for (j = 0; j < n; j++) {
			uint64_t bits;

			memcpy(&bits, &vals[j].v, sizeof(bits));
			if (j > 0)
				strbuf_putc(&sb, ' ');
			if (vals[j].omitted)
				strbuf_putc(&sb, '_');
			else if (bits == 0x7ff0000000000002ULL)
				strbuf_puts(&sb, "stale");
			else
				promql_format_float(vals[j].v, 'g', &sb);
		}
		if (strcmp(strbuf_cstr(&sb), cases[i].vals) != 0)
			fail_msg("%s: values %s, want %s", cases[i].in, strbuf_cstr(&sb), cases[i].vals);
		strbuf_free(&sb);
		labels_free(ls);
		mem_free(vals);
	}
}


/* --- engine ---------------------------------------------------------------- */

struct fx {
	struct tsdb_head *h;
	struct promql_storage st;
	struct promql_engine *e;
};

static void
fx_init(struct fx *f, const struct promql_engine_opts *o)
{
	char err[256];

	f->h = tsdb_head_new(NULL, err, sizeof(err));
	assert_non_null(f->h);
	promql_storage_head(&f->st, f->h);
	f->e = promql_engine_new(o);
}

static void
fx_free(struct fx *f)
{
	promql_engine_free(f->e);
	tsdb_head_free(f->h);
}

/* fx_load appends a test-script series description, one value per step. */
static void
fx_load(struct fx *f, const char *desc, int64_t step)
{
	struct promql_seq_value *vals;
	struct labels *ls;
	size_t n, i;
	char err[256];

	if (promql_parse_series(desc, strlen(desc), &ls, &vals, &n, err, sizeof(err)) < 0)
		fail_msg("%s: %s", desc, err);
	for (i = 0; i < n; i++) {
		uint64_t ref = 0;

		if (!vals[i].omitted)
			assert_int_equal(tsdb_head_append(f->h, &ref, ls, (int64_t)i * step, vals[i].v), 0);
	}
	labels_free(ls);
	mem_free(vals);
}

static void
fmt_result(const struct promql_result *r, struct strbuf *sb)
{
	size_t i, j;

	switch (r->type) {
	case PROMQL_TYPE_SCALAR:
		strbuf_puts(sb, "scalar ");
		promql_format_float(r->scalar, 'g', sb);
		break;
	case PROMQL_TYPE_STRING:
		strbuf_printf(sb, "string %s", r->str);
		break;
	case PROMQL_TYPE_VECTOR:
		for (i = 0; i < r->nvec; i++) {
			if (i > 0)
				strbuf_puts(sb, " | ");
			labels_format(r->vec[i].ls, sb);
			strbuf_putc(sb, ' ');
			promql_format_float(r->vec[i].v, 'g', sb);
		}
		break;
	case PROMQL_TYPE_MATRIX:
		for (i = 0; i < r->nmat; i++) {
			if (i > 0)
				strbuf_puts(sb, " | ");
			labels_format(r->mat[i].ls, sb);
			for (j = 0; j < r->mat[i].n; j++) {
				strbuf_putc(sb, ' ');
				promql_format_float(r->mat[i].points[j].v, 'g', sb);
				strbuf_printf(sb, "@%lld", (long long)r->mat[i].points[j].t / 1000);
			}
		}
		break;
	default:
		break;
	}
}

static char *
fx_query(struct fx *f, const char *q, int64_t start, int64_t end, int64_t step,
    const volatile bool *cancel, enum promql_errclass *cls)
{
	struct promql_result r;
	struct promql_error e;
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (step == 0)
		rc = promql_query_instant(f->e, &f->st, q, strlen(q), start, cancel, &r, &e);
	else
		rc = promql_query_range(f->e, &f->st, q, strlen(q), start, end, step, cancel, &r, &e);
	if (cls != NULL)
		*cls = rc < 0 ? e.cls : PROMQL_ERR_NONE;
	if (rc < 0) {
		strbuf_printf(&sb, "error: %s", e.msg);
		return strbuf_detach(&sb, NULL);
	}
	fmt_result(&r, &sb);
	promql_result_free(&r);
	return strbuf_detach(&sb, NULL);
}

static void
expect_query(struct fx *f, const char *q, int64_t start, int64_t end, int64_t step, const char *want)
{
	char *got = fx_query(f, q, start, end, step, NULL, NULL);

	if (strcmp(got, want) != 0)
		fail_msg("%s [%lld..%lld/%lld]:\n   got: %s\n  want: %s", q, (long long)start,
		    (long long)end, (long long)step, got, want);
	mem_free(got);
}

static void
test_engine_staleness_lookback(void **state)
{
	struct fx f;
	struct promql_engine_opts o = { 0 };

	(void)state;
	fx_init(&f, NULL);
	fx_load(&f, "m 1 2 stale _ 4", 10000);
	expect_query(&f, "m", 15000, 15000, 0, "{__name__=\"m\"} 2");
	expect_query(&f, "m", 20000, 20000, 0, "");
	expect_query(&f, "m", 0, 50000, 10000,
	    "{__name__=\"m\"} 1@0 2@10 4@40 4@50");
	/* a stale marker never enters a range */
	expect_query(&f, "count_over_time(m[1m])", 60000, 60000, 0, "{} 3");
	/* the sample at exactly t - 5m still counts */
	expect_query(&f, "m", 340000, 340000, 0, "{__name__=\"m\"} 4");
	expect_query(&f, "m", 340001, 340001, 0, "");
	fx_free(&f);

	o.lookback_delta = 60000;
	fx_init(&f, &o);
	fx_load(&f, "m 1", 10000);
	expect_query(&f, "m", 60000, 60000, 0, "{__name__=\"m\"} 1");
	expect_query(&f, "m", 60001, 60001, 0, "");
	fx_free(&f);
}

static void
test_engine_results(void **state)
{
	struct fx f;
	enum promql_errclass cls;
	char *got;

	(void)state;
	fx_init(&f, NULL);
	fx_load(&f, "b{x=\"2\"} 0+1x10", 60000);
	fx_load(&f, "a{x=\"1\"} 0+2x10", 60000);
	fx_load(&f, "b{x=\"1\"} 0+3x10", 60000);
	/* range results are sorted by labels; steps start at start */
	expect_query(&f, "{__name__=~\"a|b\"}", 60000, 180000, 60000,
	    "{__name__=\"a\", x=\"1\"} 2@60 4@120 6@180 | {__name__=\"b\", x=\"1\"} 3@60 6@120 9@180 | "
	    "{__name__=\"b\", x=\"2\"} 1@60 2@120 3@180");
	/* instant results keep evaluation order */
	expect_query(&f, "sort_desc({__name__=~\"a|b\"})", 60000, 60000, 0,
	    "{__name__=\"b\", x=\"1\"} 3 | {__name__=\"a\", x=\"1\"} 2 | {__name__=\"b\", x=\"2\"} 1");
	/* a range vector evaluated instantly keeps the samples' times */
	expect_query(&f, "a[2m]", 180000, 180000, 0, "{__name__=\"a\", x=\"1\"} 2@60 4@120 6@180");
	expect_query(&f, "\"hello\"", 0, 0, 0, "string hello");
	expect_query(&f, "1 + 2", 0, 0, 0, "scalar 3");
	expect_query(&f, "time()", 0, 120000, 60000, "{} 0@0 60@60 120@120");
	{
		struct strbuf q = STRBUF_INIT;
		int i;

		for (i = 0; i < 240; i++)
			strbuf_puts(&q, "sum(");
		strbuf_puts(&q, "a");
		for (i = 0; i < 240; i++)
			strbuf_puts(&q, ") + 1");
		expect_query(&f, q.buf, 60000, 60000, 0, "{} 242");
		strbuf_free(&q);
	}
	/* a negative offset looks ahead */
	expect_query(&f, "a offset -2m", 60000, 60000, 0, "{__name__=\"a\", x=\"1\"} 6");
	/* @ start() and @ end() in a range query */
	expect_query(&f, "a @ end()", 60000, 120000, 60000, "{__name__=\"a\", x=\"1\"} 4@60 4@120");
	expect_query(&f, "a @ start()", 60000, 120000, 60000, "{__name__=\"a\", x=\"1\"} 2@60 2@120");
	/* subquery steps are aligned to multiples of the step */
	expect_query(&f, "count_over_time(a[150s:1m])", 150000, 150000, 0, "{x=\"1\"} 3");
	expect_query(&f, "count_over_time(a[150s:1m])", 170000, 170000, 0, "{x=\"1\"} 2");
	/* a range query of a range vector is refused */
	got = fx_query(&f, "a[1m]", 0, 60000, 60000, NULL, &cls);
	assert_string_equal(got, "error: invalid expression type \"range vector\" for range query, "
	    "must be Scalar or instant Vector");
	assert_int_equal(cls, PROMQL_ERR_BAD_DATA);
	mem_free(got);
	got = fx_query(&f, "sum(", 0, 0, 0, NULL, &cls);
	assert_string_equal(got, "error: 1:5: parse error: unclosed left parenthesis");
	assert_int_equal(cls, PROMQL_ERR_BAD_DATA);
	mem_free(got);
	/* count_values labels use Go's 'f' formatting */
	fx_load(&f, "v{i=\"1\"} 1000000", 60000);
	fx_load(&f, "v{i=\"2\"} 0.1", 60000);
	fx_load(&f, "v{i=\"3\"} -0.0000001", 60000);
	expect_query(&f, "count_values(\"val\", v)", 0, 0, 0,
	    "{val=\"1000000\"} 1 | {val=\"0.1\"} 1 | {val=\"-0.0000001\"} 1");
	fx_free(&f);
}

static void
test_engine_errors(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	fx_load(&f, "m{job=\"a\", i=\"1\"} 1", 60000);
	fx_load(&f, "m{job=\"a\", i=\"2\"} 2", 60000);
	fx_load(&f, "n{job=\"a\", i=\"1\"} 3", 60000);
	fx_load(&f, "o{job=\"a\", i=\"1\"} 3 4 5", 60000);
	expect_query(&f, "n + on(job) m", 0, 0, 0,
	    "error: found duplicate series for the match group {job=\"a\"} on the right hand-side "
	    "of the operation: [{__name__=\"m\", i=\"2\", job=\"a\"}, {__name__=\"m\", i=\"1\", "
	    "job=\"a\"}];many-to-many matching not allowed: matching labels must be unique on one side");
	expect_query(&f, "m + on(job) group_right n", 0, 0, 0,
	    "error: found duplicate series for the match group {job=\"a\"} on the left hand-side "
	    "of the operation: [{__name__=\"m\", i=\"2\", job=\"a\"}, {__name__=\"m\", i=\"1\", "
	    "job=\"a\"}];many-to-many matching not allowed: matching labels must be unique on one side");
	expect_query(&f, "m + on(job) n", 0, 0, 0, "error: multiple matches for labels: "
	    "many-to-one matching must be explicit (group_left/group_right)");
	expect_query(&f, "m * on(job) group_left n", 0, 0, 0, "{i=\"1\", job=\"a\"} 3 | {i=\"2\", job=\"a\"} 6");
	expect_query(&f, "(m or on() n) + on(job) group_left(i) n", 0, 0, 0,
	    "error: multiple matches for labels: grouping labels must ensure unique matches");
	expect_query(&f, "{__name__=~\"n|o\"} * 2", 0, 0, 0,
	    "error: vector cannot contain metrics with the same labelset");
	expect_query(&f, "topk(NaN, m)", 0, 0, 0, "error: Scalar value NaN overflows int64");
	expect_query(&f, "topk(1e20, m)", 0, 0, 0, "error: Scalar value 1e+20 overflows int64");
	expect_query(&f, "topk(0, m)", 0, 0, 0, "");
	expect_query(&f, "count_values(\"a-b\", m)", 0, 0, 0, "error: invalid label name \"a-b\"");
	expect_query(&f, "holt_winters(m[5m], 2, 0.5)", 0, 0, 0,
	    "error: invalid smoothing factor. Expected: 0 < sf < 1, got: 2.000000");
	expect_query(&f, "holt_winters(m[5m], 0.5, 1)", 0, 0, 0,
	    "error: invalid trend factor. Expected: 0 < tf < 1, got: 1.000000");
	/* NaN compares false: no error, and one sample gives no value */
	expect_query(&f, "holt_winters(m[5m], 0.5, NaN)", 0, 0, 0, "");
	expect_query(&f, "label_replace(m, \"a-b\", \"\", \"\", \"\")", 0, 0, 0,
	    "error: invalid destination label name in label_replace(): a-b");
	expect_query(&f, "label_replace(m, \"a\", \"\", \"\", \"(\")", 0, 0, 0,
	    "error: invalid regular expression in label_replace(): (");
	expect_query(&f, "label_join(m, \"a\", \"\", \"b-c\")", 0, 0, 0,
	    "error: invalid source label name in label_join(): b-c");
	expect_query(&f, "(o[5m] @ 120)", 0, 0, 0, "error: unexpected number of samples");
	/* absent() labels: equality matchers only, set once, empty is unset */
	expect_query(&f, "absent(nonexistent{a=\"\",b=\"x\"})", 0, 0, 0, "{b=\"x\"} 1");
	expect_query(&f, "absent(nonexistent{a=\"\",a=\"y\"})", 0, 0, 0, "{} 1");
	expect_query(&f, "absent(nonexistent{a!=\"q\",a=\"y\",b=~\"z\",b=\"w\"})", 0, 0, 0,
	    "{a=\"y\", b=\"w\"} 1");
	fx_free(&f);
}

static void
test_engine_dates(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	/* Go's calendar arithmetic, wrap-around included (checked against
	 * Prometheus 2.42) */
	expect_query(&f, "hour(vector(1/0))", 0, 0, 0, "{} 15");
	expect_query(&f, "year(vector(0/0))", 0, 0, 0, "{} 2.92277026596e+11");
	expect_query(&f, "month(vector(-1e12))", 0, 0, 0, "{} 4");
	expect_query(&f, "day_of_week(vector(-1))", 0, 0, 0, "{} 3");
	expect_query(&f, "days_in_month(vector(-1e15))", 0, 0, 0, "{} 30");
	expect_query(&f, "minute(vector(1e300))", 0, 0, 0, "{} 30");
	expect_query(&f, "day_of_year(vector(951782400))", 0, 0, 0, "{} 60");
	expect_query(&f, "days_in_month(vector(951782400))", 0, 0, 0, "{} 29");
	expect_query(&f, "year()", -1500, -1500, 0, "{} 1969");
	/* times at the ends of int64 wrap as in Go instead of misbehaving */
	expect_query(&f, "vector(1) + on() count(up @ 9223372036854775 offset -292y)", 0, 0, 0, "");
	expect_query(&f, "rate(up[5m] @ -9223372036854775)[1h:1m] offset 292y", 0, 0, 0, "");
	expect_query(&f, "up", INT64_MAX - 1000, INT64_MAX, 0, "");
	expect_query(&f, "time()", INT64_MAX - 1000, INT64_MAX, 400,
	    "{} 9.223372036854774e+15@9223372036854774 9.223372036854774e+15@9223372036854775");
	expect_query(&f, "hour()", -1500, -1500, 0, "{} 23");
	fx_free(&f);
}

static void
test_engine_at_quirk(void **state)
{
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	fx_load(&f, "m 0 1 4 9 16 25 36 49 64 81 100 121 144 169 196 225 256 289 324 361 400", 60000);
	/* the range is fixed by @ for a function evaluated once ... */
	expect_query(&f, "deriv(m[5m] @ 600)", 0, 120000, 60000, "{} 0.25@0 0.25@60 0.25@120");
	/* ... but predict_linear runs at every step, and Prometheus 2.42 then
	 * moves the window with the step, within the data the query selects
	 * ([300s, 600s]): 6, then 5, then 4 samples */
	expect_query(&f, "predict_linear(m[5m] @ 600, 60)", 0, 120000, 60000,
	    "{} -38.333333333333336@0 -30@60 -20@120");
	/* a subquery there is evaluated past the @ time by the range (where
	 * the data the query selects ends and the lookback repeats it) */
	expect_query(&f, "count_over_time(m[3m:1m] @ 600)", 0, 120000, 60000, "{} 4@0 4@60 4@120");
	expect_query(&f, "predict_linear(m[3m:1m] @ 600, 0)", 0, 120000, 60000,
	    "{} -71@0 -21.700000000000003@60 46.8@120");
	fx_free(&f);
}

static void
test_engine_limits(void **state)
{
	struct promql_engine_opts o = { 0 };
	enum promql_errclass cls;
	volatile bool cancel = true;
	struct fx f;
	char name[64];
	int i;
	char *got;

	(void)state;
	o.max_samples = 10;
	fx_init(&f, &o);
	for (i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "m{i=\"%d\"} 1 2 3", i);
		fx_load(&f, name, 60000);
	}
	got = fx_query(&f, "m", 0, 0, 0, NULL, &cls);
	assert_string_equal(got, "error: query processing would load too many samples into "
	    "memory in query execution");
	assert_int_equal(cls, PROMQL_ERR_EXECUTION);
	mem_free(got);
	expect_query(&f, "m{i=\"1\"}", 0, 120000, 60000, "{__name__=\"m\", i=\"1\"} 1@0 2@60 3@120");
	got = fx_query(&f, "sum(m)", 0, 0, 0, &cancel, &cls);
	assert_string_equal(got, "error: query was canceled in expression evaluation");
	assert_int_equal(cls, PROMQL_ERR_CANCELED);
	mem_free(got);
	fx_free(&f);

	o.max_samples = 0;
	o.timeout = 1;
	fx_init(&f, &o);
	fx_load(&f, "m 0+1x1000", 15000);
	got = fx_query(&f, "sum_over_time(rate(m[1h])[30d:1s])", 15000000, 15000000, 0, NULL, &cls);
	assert_string_equal(got, "error: query timed out in expression evaluation");
	assert_int_equal(cls, PROMQL_ERR_TIMEOUT);
	mem_free(got);
	fx_free(&f);
}

/* A storage that fails every select. */
static void *
failing_select(void *ctx, struct matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
    const struct promql_series_set_ops **ops, char *err, size_t errlen)
{
	(void)ctx;
	(void)ms;
	(void)n;
	(void)mint;
	(void)maxt;
	(void)ops;
	snprintf(err, errlen, "disk on fire");
	return NULL;
}

static void
test_engine_storage_error(void **state)
{
	struct promql_storage st = { 0 };
	struct promql_engine *e = promql_engine_new(NULL);
	struct promql_result r;
	struct promql_error err;

	(void)state;
	st.select = failing_select;
	assert_int_equal(promql_query_instant(e, &st, "rate(x[5m])", 11, 0, NULL, &r, &err), -1);
	assert_string_equal(err.msg, "expanding series: disk on fire");
	assert_int_equal(err.cls, PROMQL_ERR_STORAGE);
	assert_int_equal(promql_query_instant(e, &st, "1 + 1", 5, 0, NULL, &r, &err), 0);
	assert_true(r.type == PROMQL_TYPE_SCALAR && r.scalar == 2);
	promql_result_free(&r);
	promql_engine_free(e);
}

static void
test_format_float(void **state)
{
	static const struct {
		double v;
		const char *g, *f;
	} cases[] = {
		{ 0, "0", "0" },
		{ -0.0, "-0", "-0" },
		{ 1, "1", "1" },
		{ 1e6, "1e+06", "1000000" },
		{ 123456, "123456", "123456" },
		{ 1e21, "1e+21", "1000000000000000000000" },
		{ 0.0001, "0.0001", "0.0001" },
		{ 0.00001, "1e-05", "0.00001" },
		{ 1.5e-300, "1.5e-300", NULL },
		{ 0.1 + 0.2, "0.30000000000000004", "0.30000000000000004" },
		{ 9.988465674311579e+307, "9.98846567431158e+307", NULL },
		{ 5e-324, "5e-324", NULL },
		{ -2.5, "-2.5", "-2.5" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf sb = STRBUF_INIT;

		promql_format_float(cases[i].v, 'g', &sb);
		assert_string_equal(strbuf_cstr(&sb), cases[i].g);
		if (cases[i].f != NULL) {
			strbuf_reset(&sb);
			promql_format_float(cases[i].v, 'f', &sb);
			assert_string_equal(strbuf_cstr(&sb), cases[i].f);
		}
		strbuf_free(&sb);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_print),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_numbers_durations),
		cmocka_unit_test(test_series_desc),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_format_float),
		cmocka_unit_test(test_engine_staleness_lookback),
		cmocka_unit_test(test_engine_results),
		cmocka_unit_test(test_engine_errors),
		cmocka_unit_test(test_engine_dates),
		cmocka_unit_test(test_engine_at_quirk),
		cmocka_unit_test(test_engine_limits),
		cmocka_unit_test(test_engine_storage_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
