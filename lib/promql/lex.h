/* lib/promql/lex.h - the PromQL lexer: tokens, positions, Prometheus' wording.
 *
 * A state machine over the query text that yields one token per call, the
 * way Prometheus 2.42's promql/parser lexer does: the same token kinds (in
 * the same order, so operator/aggregator/keyword ranges can be tested), the
 * same treatment of keywords ("sum", "by", "inf", ...; case-insensitive),
 * durations inside brackets, strings with Go escapes, comments, and the
 * same error texts ("unclosed left parenthesis", "bad number or duration
 * syntax: \"0de\"", ...). A series-description mode lexes the value lists of
 * Prometheus' test scripts ("1+2x10 _ stale"). Positions are byte offsets.
 * A lexer reads borrowed input and owns nothing; one thread uses it.
 */
#ifndef STRATA_PROMQL_LEX_H
#define STRATA_PROMQL_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

enum promql_tok {
	PROMQL_T_EOF,
	PROMQL_T_ERROR,
	PROMQL_T_COMMENT,
	PROMQL_T_EQL,
	PROMQL_T_BLANK,
	PROMQL_T_COLON,
	PROMQL_T_COMMA,
	PROMQL_T_DURATION,
	PROMQL_T_IDENTIFIER,
	PROMQL_T_LEFT_BRACE,
	PROMQL_T_LEFT_BRACKET,
	PROMQL_T_LEFT_PAREN,
	PROMQL_T_METRIC_IDENTIFIER,
	PROMQL_T_NUMBER,
	PROMQL_T_RIGHT_BRACE,
	PROMQL_T_RIGHT_BRACKET,
	PROMQL_T_RIGHT_PAREN,
	PROMQL_T_SEMICOLON,
	PROMQL_T_SPACE,
	PROMQL_T_STRING,
	PROMQL_T_TIMES,

	PROMQL_T_OPERATORS_START,
	PROMQL_T_ADD,
	PROMQL_T_DIV,
	PROMQL_T_EQLC,
	PROMQL_T_EQL_REGEX,
	PROMQL_T_GTE,
	PROMQL_T_GTR,
	PROMQL_T_LAND,
	PROMQL_T_LOR,
	PROMQL_T_LSS,
	PROMQL_T_LTE,
	PROMQL_T_LUNLESS,
	PROMQL_T_MOD,
	PROMQL_T_MUL,
	PROMQL_T_NEQ,
	PROMQL_T_NEQ_REGEX,
	PROMQL_T_POW,
	PROMQL_T_SUB,
	PROMQL_T_AT,
	PROMQL_T_ATAN2,
	PROMQL_T_OPERATORS_END,

	PROMQL_T_AGGREGATORS_START,
	PROMQL_T_AVG,
	PROMQL_T_BOTTOMK,
	PROMQL_T_COUNT,
	PROMQL_T_COUNT_VALUES,
	PROMQL_T_GROUP,
	PROMQL_T_MAX,
	PROMQL_T_MIN,
	PROMQL_T_QUANTILE,
	PROMQL_T_STDDEV,
	PROMQL_T_STDVAR,
	PROMQL_T_SUM,
	PROMQL_T_TOPK,
	PROMQL_T_AGGREGATORS_END,

	PROMQL_T_KEYWORDS_START,
	PROMQL_T_BOOL,
	PROMQL_T_BY,
	PROMQL_T_GROUP_LEFT,
	PROMQL_T_GROUP_RIGHT,
	PROMQL_T_IGNORING,
	PROMQL_T_OFFSET,
	PROMQL_T_ON,
	PROMQL_T_WITHOUT,
	PROMQL_T_KEYWORDS_END,

	PROMQL_T_START,
	PROMQL_T_END,
};

struct promql_item {
	enum promql_tok typ;
	size_t pos;		/* byte offset of the first byte */
	const char *val;	/* into the input, or the error message */
	size_t len;
};

struct promql_lexer {
	const char *input;
	size_t len;
	size_t pos, start;
	int state;		/* internal: the next state function */
	int paren_depth;
	bool brace_open, bracket_open, got_colon;
	bool series_desc;	/* lexing a test-script series description */
	char errbuf[256];	/* holds the text of an ERROR item */
};

/* promql_lex_init prepares l to lex input[0..len) (borrowed). */
void promql_lex_init(struct promql_lexer *l, const char *input, size_t len, bool series_desc);
/* promql_lex_next fills *it with the next item; after an ERROR or EOF it
 * keeps returning EOF. An ERROR item's val is l->errbuf. */
void promql_lex_next(struct promql_lexer *l, struct promql_item *it);

/* promql_tok_is_operator, _aggregator, _keyword, _comparison, _set_op
 * classify token kinds as Prometheus' ItemType methods do. */
bool promql_tok_is_operator(enum promql_tok t);
bool promql_tok_is_aggregator(enum promql_tok t);
bool promql_tok_is_aggregator_with_param(enum promql_tok t);
bool promql_tok_is_keyword(enum promql_tok t);
bool promql_tok_is_comparison(enum promql_tok t);
bool promql_tok_is_set_op(enum promql_tok t);
/* promql_tok_string returns Prometheus' ItemTypeStr of t ("+", "sum",
 * "group_left", ...) or NULL when it has none. */
const char *promql_tok_string(enum promql_tok t);
/* promql_item_desc appends the description Prometheus' parser uses in
 * "unexpected ..." messages (`<op:+>`, `identifier "foo"`, `end of input`). */
void promql_item_desc(const struct promql_item *it, struct strbuf *out);

/* promql_quote_rune appends r as Go's %q prints a rune ('a', '\n', '�'). */
void promql_quote_rune(long r, struct strbuf *out);
/* promql_is_label tells whether s[0..len) is a valid label name. */
bool promql_is_label(const char *s, size_t len);

#endif
