/* lib/rules/template.c - the Go text/template subset of Prometheus' alert templates.
 *
 * Three stages, each following Go's text/template/parse and exec closely so
 * that output and messages agree: a lexer (lex.go's states: text, trim
 * markers, comments, the tokens of an action), a recursive-descent parser
 * (parse.go: actions, pipelines, commands, operands, control structures,
 * variable scopes, function existence checks) building a tree in the
 * template's arena, and an executor (exec.go: pipelines, field chains on
 * maps and structs, function calls with Go's argument checks, truth,
 * printing with fmt's rules) whose values are a small tagged union standing
 * in for reflect.Value. Execution allocates from a per-run arena; an error
 * unwinds to tmpl_execute with longjmp, as exec.go panics.
 *
 * Positions are byte offsets into the whole text (the alert definitions
 * Prometheus prepends included), which is what Go reports as
 * "NAME:LINE:COL" in execution errors.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "labels/regex.h"
#include "promql/ast.h"
#include "rules/template.h"
#include "util/mem.h"
#include "util/time.h"

/* --- arena --------------------------------------------------------------- */

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct arena_blk *head;
};

static void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk *b = a->head;

	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > 8192 ? n : 8192;

		b = mem_alloc(sizeof(*b) + cap);
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	b->used += n;
	return (char *)b->data + b->used - n;
}

static void *
arena_zalloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);

	memset(p, 0, n);
	return p;
}

static char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void
arena_free(struct arena *a)
{
	while (a->head != NULL) {
		struct arena_blk *b = a->head;

		a->head = b->next;
		mem_free(b);
	}
}

/* --- lexer (text/template/parse/lex.go) ------------------------------------ */

enum item_type {
	I_ERROR,
	I_BOOL,
	I_CHAR,
	I_CHARCONST,
	I_COMMENT,
	I_DECLARE,
	I_EOF,
	I_FIELD,
	I_IDENT,
	I_LEFT,
	I_LPAREN,
	I_NUMBER,
	I_PIPE,
	I_RAWSTRING,
	I_RIGHT,
	I_RPAREN,
	I_SPACE,
	I_STRING,
	I_TEXT,
	I_VARIABLE,
	I_ASSIGN,
	I_KEYWORD,	/* delimits the keywords, as in Go */
	I_BLOCK,
	I_BREAK,
	I_CONTINUE,
	I_DOT,
	I_DEFINE,
	I_ELSE,
	I_END,
	I_IF,
	I_NIL,
	I_RANGE,
	I_TEMPLATE,
	I_WITH,
};

struct item {
	enum item_type typ;
	size_t pos;
	const char *val;	/* into the text, or an arena message for I_ERROR */
	size_t len;
	int line;
};

struct lexer {
	const char *in;
	size_t len, pos, start;
	int line, start_line;
	int paren_depth;
	struct arena *ar;
	struct item *items;
	size_t n, cap;
	bool done;
};

static bool
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_alnum(int c)
{
	return c == '_' || isalnum(c) || c >= 0x80;
}

static int
lx_peek_at(const struct lexer *l, size_t pos)
{
	return pos < l->len ? (unsigned char)l->in[pos] : -1;
}

static int
lx_next(struct lexer *l)
{
	int c = lx_peek_at(l, l->pos);

	if (c < 0)
		return -1;
	l->pos++;
	if (c == '\n')
		l->line++;
	return c;
}

static void
lx_backup(struct lexer *l)
{
	l->pos--;
	if (l->in[l->pos] == '\n')
		l->line--;
}

static bool
lx_has_prefix(const struct lexer *l, size_t pos, const char *p)
{
	size_t n = strlen(p);

	return pos <= l->len && l->len - pos >= n && memcmp(l->in + pos, p, n) == 0;
}

static void
lx_push(struct lexer *l, enum item_type t, size_t pos, const char *val, size_t len, int line)
{
	struct item *it;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->items = mem_realloc(l->items, l->cap * sizeof(*l->items));
	}
	it = &l->items[l->n++];
	it->typ = t;
	it->pos = pos;
	it->val = val;
	it->len = len;
	it->line = line;
}

static void
lx_emit(struct lexer *l, enum item_type t)
{
	lx_push(l, t, l->start, l->in + l->start, l->pos - l->start, l->start_line);
	l->start = l->pos;
	l->start_line = l->line;
}

static void
lx_ignore(struct lexer *l)
{
	size_t i;

	for (i = l->start; i < l->pos; i++)
		if (l->in[i] == '\n')
			l->start_line++;
	l->start = l->pos;
	l->start_line = l->line;
}

static void lx_errorf(struct lexer *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
lx_errorf(struct lexer *l, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	lx_push(l, I_ERROR, l->start, arena_strndup(l->ar, buf, strlen(buf)), strlen(buf),
	    l->start_line);
	l->done = true;
}

/* Go's %#U of a rune: U+0041 'A'. */
static void
lx_rune_desc(int c, char *buf, size_t len)
{
	if (c < 0)
		snprintf(buf, len, "U+FFFFFFFF");
	else if (c >= 0x20 && c < 0x7f)
		snprintf(buf, len, "U+%04X '%c'", c, c);
	else
		snprintf(buf, len, "U+%04X", c);
}

static bool
lx_has_left_trim(const struct lexer *l, size_t pos)
{
	return lx_peek_at(l, pos) == '-' && is_space(lx_peek_at(l, pos + 1));
}

static bool
lx_has_right_trim(const struct lexer *l, size_t pos)
{
	return is_space(lx_peek_at(l, pos)) && lx_peek_at(l, pos + 1) == '-';
}

/* lx_at_right_delim: at "}}" or " -}}"; *trim tells which. */
static bool
lx_at_right_delim(const struct lexer *l, bool *trim)
{
	if (lx_has_right_trim(l, l->pos) && lx_has_prefix(l, l->pos + 2, "}}")) {
		*trim = true;
		return true;
	}
	*trim = false;
	return lx_has_prefix(l, l->pos, "}}");
}

static bool
lx_at_terminator(const struct lexer *l)
{
	int c = lx_peek_at(l, l->pos);

	if (is_space(c))
		return true;
	switch (c) {
	case -1: case '.': case ',': case '|': case ':': case ')': case '(':
		return true;
	}
	return lx_has_prefix(l, l->pos, "}}");
}

static void
lx_skip_left_trim_space(struct lexer *l)
{
	while (l->pos < l->len && is_space((unsigned char)l->in[l->pos]))
		lx_next(l);
}

static bool
lx_accept(struct lexer *l, const char *valid)
{
	int c = lx_next(l);

	if (c > 0 && strchr(valid, c) != NULL)
		return true;
	if (c >= 0)
		lx_backup(l);
	return false;
}

static void
lx_accept_run(struct lexer *l, const char *valid)
{
	while (lx_accept(l, valid))
		;
}

static bool
lx_scan_number(struct lexer *l)
{
	const char *digits = "0123456789_";

	lx_accept(l, "+-");
	if (lx_accept(l, "0")) {
		if (lx_accept(l, "xX"))
			digits = "0123456789abcdefABCDEF_";
		else if (lx_accept(l, "oO"))
			digits = "01234567_";
		else if (lx_accept(l, "bB"))
			digits = "01_";
	}
	lx_accept_run(l, digits);
	if (lx_accept(l, "."))
		lx_accept_run(l, digits);
	if (strlen(digits) == 11 && lx_accept(l, "eE")) {
		lx_accept(l, "+-");
		lx_accept_run(l, "0123456789_");
	}
	if (strlen(digits) == 23 && lx_accept(l, "pP")) {
		lx_accept(l, "+-");
		lx_accept_run(l, "0123456789_");
	}
	lx_accept(l, "i");
	if (is_alnum(lx_peek_at(l, l->pos))) {
		lx_next(l);
		return false;
	}
	return true;
}

static const struct {
	const char *word;
	enum item_type typ;
} lx_keywords[] = {
	{ "block", I_BLOCK }, { "break", I_BREAK }, { "continue", I_CONTINUE },
	{ "define", I_DEFINE }, { "else", I_ELSE }, { "end", I_END }, { "if", I_IF },
	{ "range", I_RANGE }, { "nil", I_NIL }, { "template", I_TEMPLATE },
	{ "with", I_WITH },
};

/* lx_inside_action lexes one action's tokens up to and including "}}". */
static void
lx_inside_action(struct lexer *l)
{
	char rd[32];

	for (;;) {
		bool trim;
		int c;

		if (lx_at_right_delim(l, &trim)) {
			if (l->paren_depth != 0) {
				lx_errorf(l, "unclosed left paren");
				return;
			}
			if (trim) {
				l->pos += 2;
				lx_ignore(l);
			}
			l->pos += 2;
			lx_emit(l, I_RIGHT);
			if (trim) {
				lx_skip_left_trim_space(l);
				lx_ignore(l);
			}
			return;
		}
		c = lx_next(l);
		if (c < 0) {
			lx_errorf(l, "unclosed action");
			return;
		}
		if (is_space(c)) {
			int nsp = 1;

			while (is_space(lx_peek_at(l, l->pos))) {
				lx_next(l);
				nsp++;
			}
			if (lx_has_right_trim(l, l->pos - 1) && lx_has_prefix(l, l->pos + 1, "}}")) {
				lx_backup(l);
				if (nsp == 1)
					continue;
			}
			lx_emit(l, I_SPACE);
			continue;
		}
		switch (c) {
		case '=':
			lx_emit(l, I_ASSIGN);
			continue;
		case ':':
			if (lx_next(l) != '=') {
				lx_errorf(l, "expected :=");
				return;
			}
			lx_emit(l, I_DECLARE);
			continue;
		case '|':
			lx_emit(l, I_PIPE);
			continue;
		case '"':
			for (;;) {
				c = lx_next(l);
				if (c == '\\') {
					c = lx_next(l);
					if (c >= 0 && c != '\n')
						continue;
				}
				if (c < 0 || c == '\n') {
					lx_errorf(l, "unterminated quoted string");
					return;
				}
				if (c == '"')
					break;
			}
			lx_emit(l, I_STRING);
			continue;
		case '`':
			for (;;) {
				c = lx_next(l);
				if (c < 0) {
					lx_errorf(l, "unterminated raw quoted string");
					return;
				}
				if (c == '`')
					break;
			}
			lx_emit(l, I_RAWSTRING);
			continue;
		case '\'':
			for (;;) {
				c = lx_next(l);
				if (c == '\\') {
					c = lx_next(l);
					if (c >= 0 && c != '\n')
						continue;
				}
				if (c < 0 || c == '\n') {
					lx_errorf(l, "unterminated character constant");
					return;
				}
				if (c == '\'')
					break;
			}
			lx_emit(l, I_CHARCONST);
			continue;
		case '(':
			l->paren_depth++;
			lx_emit(l, I_LPAREN);
			continue;
		case ')':
			lx_emit(l, I_RPAREN);
			l->paren_depth--;
			if (l->paren_depth < 0) {
				lx_errorf(l, "unexpected right paren U+0029 ')'");
				return;
			}
			continue;
		}
		if (c == '$' || (c == '.' && !(lx_peek_at(l, l->pos) >= '0' && lx_peek_at(l, l->pos) <= '9'))) {
			/* a field or a variable */
			if (lx_at_terminator(l)) {
				lx_emit(l, c == '$' ? I_VARIABLE : I_DOT);
				continue;
			}
			for (;;) {
				c = lx_next(l);
				if (!is_alnum(c)) {
					if (c >= 0)
						lx_backup(l);
					break;
				}
			}
			if (!lx_at_terminator(l)) {
				lx_rune_desc(lx_peek_at(l, l->pos), rd, sizeof(rd));
				lx_errorf(l, "bad character %s", rd);
				return;
			}
			lx_emit(l, l->in[l->start] == '$' ? I_VARIABLE : I_FIELD);
			continue;
		}
		if (c == '.' || c == '+' || c == '-' || (c >= '0' && c <= '9')) {
			lx_backup(l);
			if (!lx_scan_number(l)) {
				struct strbuf q = STRBUF_INIT;

				labels_quote(l->in + l->start, l->pos - l->start, &q);
				lx_errorf(l, "bad number syntax: %s", strbuf_cstr(&q));
				strbuf_free(&q);
				return;
			}
			lx_emit(l, I_NUMBER);
			continue;
		}
		if (is_alnum(c)) {
			size_t i, wlen;
			enum item_type t = I_IDENT;

			while (is_alnum(lx_peek_at(l, l->pos)))
				lx_next(l);
			if (!lx_at_terminator(l)) {
				lx_rune_desc(lx_peek_at(l, l->pos), rd, sizeof(rd));
				lx_errorf(l, "bad character %s", rd);
				return;
			}
			wlen = l->pos - l->start;
			for (i = 0; i < sizeof(lx_keywords) / sizeof(lx_keywords[0]); i++)
				if (strlen(lx_keywords[i].word) == wlen &&
				    memcmp(lx_keywords[i].word, l->in + l->start, wlen) == 0)
					t = lx_keywords[i].typ;
			if (t == I_IDENT && ((wlen == 4 && memcmp(l->in + l->start, "true", 4) == 0) ||
			    (wlen == 5 && memcmp(l->in + l->start, "false", 5) == 0)))
				t = I_BOOL;
			lx_emit(l, t);
			continue;
		}
		if (c < 0x80 && isprint(c)) {
			lx_emit(l, I_CHAR);
			continue;
		}
		lx_rune_desc(c, rd, sizeof(rd));
		lx_errorf(l, "unrecognized character in action: %s", rd);
		return;
	}
}

/* lx_run tokenizes the whole text (stopping at the first error). */
static void
lx_run(struct lexer *l)
{
	while (!l->done) {
		const char *p = NULL;
		size_t i, ldn, trimlen = 0, textend;

		for (i = l->pos; i + 1 < l->len; i++)
			if (l->in[i] == '{' && l->in[i + 1] == '{') {
				p = l->in + i;
				break;
			}
		if (p == NULL) {
			while (l->pos < l->len)
				lx_next(l);
			if (l->pos > l->start)
				lx_emit(l, I_TEXT);
			lx_push(l, I_EOF, l->pos, l->in + l->pos, 0, l->line);
			return;
		}
		ldn = (size_t)(p - l->in);
		if (lx_has_left_trim(l, ldn + 2))
			trimlen = 2;
		textend = ldn;
		if (trimlen) {
			while (textend > l->start && is_space((unsigned char)l->in[textend - 1]))
				textend--;
		}
		while (l->pos < textend)
			lx_next(l);
		if (l->pos > l->start)
			lx_emit(l, I_TEXT);
		while (l->pos < ldn)
			lx_next(l);
		lx_ignore(l);
		/* left delimiter */
		l->pos += 2;
		if (lx_has_prefix(l, l->pos + trimlen, "/*")) {
			size_t j;
			bool found = false, trim;

			l->pos += trimlen;
			lx_ignore(l);
			l->pos += 2;
			for (j = l->pos; j + 1 < l->len; j++)
				if (l->in[j] == '*' && l->in[j + 1] == '/') {
					found = true;
					break;
				}
			if (!found) {
				lx_errorf(l, "unclosed comment");
				return;
			}
			while (l->pos < j + 2)
				lx_next(l);
			if (!lx_at_right_delim(l, &trim)) {
				lx_errorf(l, "comment ends before closing delimiter");
				return;
			}
			if (trim)
				l->pos += 2;
			l->pos += 2;
			if (trim)
				lx_skip_left_trim_space(l);
			lx_ignore(l);
			continue;
		}
		lx_emit(l, I_LEFT);
		l->pos += trimlen;
		lx_ignore(l);
		l->paren_depth = 0;
		lx_inside_action(l);
	}
}

/* --- tree ---------------------------------------------------------------- */

enum node_kind {
	N_LIST,
	N_TEXT,
	N_ACTION,
	N_IF,
	N_WITH,
	N_RANGE,
	N_BREAK,
	N_CONTINUE,
	N_ELSE,		/* parse-time only */
	N_END,		/* parse-time only */
	N_PIPE,
	N_CMD,
	N_FIELD,
	N_VAR,
	N_IDENT,
	N_DOT,
	N_NIL,
	N_BOOL,
	N_NUMBER,
	N_STRING,
	N_CHAIN,
	N_TEMPLATE,	/* {{template "name"}}: no template is ever defined */
};

struct tfunc;

struct node {
	enum node_kind kind;
	size_t pos;
	int line;
	/* list, command args, pipe commands, pipe declarations */
	struct node **v;
	size_t n, cap;
	/* text, string value, number/string/char source text */
	const char *s;
	size_t len;
	const char *src;
	size_t srclen;
	/* field/variable/chain identifiers */
	const char **ids;
	size_t nids;
	/* action, control: pipe; control: list, else list; chain: the term */
	struct node *pipe, *list, *elist;
	/* pipe */
	bool is_assign;
	struct node **decl;
	size_t ndecl;
	/* identifier */
	const struct tfunc *fn;
	/* bool, number */
	bool b;
	bool is_int, is_uint, is_float;
	int64_t i;
	uint64_t u;
	double f;
};

/* A template named by {{define}} or {{block}}. */
struct tdef {
	const char *name;
	struct node *root;
};

#define TMPL_MAX_NEST 1000	/* parse nesting and {{template}} depth (C stacks do not grow) */
#define TMPL_MAX_STEPS 1000000	/* nodes walked by one execution */
#define TMPL_MAX_OUTPUT (1u << 20)	/* bytes one execution may write */

struct tmpl {
	char *name;
	char *text;
	size_t len;
	struct arena ar;
	struct node *root;
	struct tdef *defs;	/* in the arena */
	size_t ndefs;
};

/* --- values ------------------------------------------------------------- */

enum tv_kind {
	TV_NONE,	/* no value (Go's invalid reflect.Value) */
	TV_NIL,		/* an untyped nil in an interface */
	TV_BOOL,
	TV_INT,
	TV_FLOAT,
	TV_STRING,
	TV_HTML,	/* html/template.HTML from safeHtml */
	TV_MAP,		/* map[string]string */
	TV_ARGS,	/* map[string]interface {} from args */
	TV_RESULT,	/* template.queryResult */
	TV_SAMPLE,	/* *template.sample */
	TV_TIME,	/* *time.Time */
	TV_ROOT,	/* the alert template data */
};

struct tmap {
	size_t n;
	const char **k, **v;	/* sorted by key */
};

struct tv;

struct targs {
	size_t n;
	const char **k;		/* "arg0".. sorted as strings */
	struct tv *v;
};

struct tsample {
	struct tmap labels;
	double v;
};

struct tresult {
	size_t n;
	struct tsample **v;
};

struct tv {
	enum tv_kind k;
	bool b;
	int64_t i;
	double f;
	const char *s;
	size_t len;
	const struct tmap *map;
	const struct targs *args;
	const struct tresult *res;
	const struct tsample *smp;
	int64_t ms;
};

/* --- parser (text/template/parse/parse.go) --------------------------------- */

struct parser {
	struct tmpl *t;
	struct item *items;
	size_t nitems, cur;
	const char **vars;
	size_t nvars, capvars;
	size_t vars_base;	/* a definition sees only its own variables */
	int range_depth;
	int action_line;
	int depth;
	jmp_buf jb;
	char *err;
	size_t errlen;
};

enum targ {
	A_ANY,		/* interface{} or reflect.Value */
	A_STRING,
	A_RESULT,	/* template.queryResult */
	A_SAMPLE,	/* *template.sample */
};

struct texec;
typedef int (*tfunc_impl)(struct texec *x, struct tv *a, size_t n, struct tv *ret);

struct tfunc {
	const char *name;
	int nin;		/* parameters; the last is variadic when variadic */
	bool variadic;
	enum targ in[3];
	tfunc_impl fn;
	bool can_fail;		/* returns (value, error) */
};

static const struct tfunc *func_lookup(const char *name, size_t len);

static void p_fail(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

static void
p_fail(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->err, p->errlen, "template: %s:%d: ", p->t->name, line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	longjmp(p->jb, 1);
}

/* The item list always ends with I_EOF or I_ERROR; reading past it keeps
 * returning that last item. */
static struct item *
p_at(struct parser *p, size_t i)
{
	return &p->items[i < p->nitems ? i : p->nitems - 1];
}

static struct item *
p_next(struct parser *p)
{
	return p_at(p, p->cur++);
}

static struct item *
p_peek(struct parser *p)
{
	return p_at(p, p->cur);
}

static void
p_backup(struct parser *p)
{
	p->cur--;
}

static struct item *
p_next_nonspace(struct parser *p)
{
	struct item *it;

	do
		it = p_next(p);
	while (it->typ == I_SPACE);
	return it;
}

static struct item *
p_peek_nonspace(struct parser *p)
{
	while (p_at(p, p->cur)->typ == I_SPACE)
		p->cur++;
	return p_at(p, p->cur);
}

/* item_string formats an item as Go's item.String() does. */
static void
item_string(const struct item *it, struct strbuf *out)
{
	size_t i, runes = 0;

	if (it->typ == I_EOF) {
		strbuf_puts(out, "EOF");
		return;
	}
	if (it->typ == I_ERROR) {
		strbuf_append(out, it->val, it->len);
		return;
	}
	if (it->typ > I_KEYWORD) {
		strbuf_putc(out, '<');
		strbuf_append(out, it->val, it->len);
		strbuf_putc(out, '>');
		return;
	}
	for (i = 0; i < it->len; i++)
		if (((unsigned char)it->val[i] & 0xc0) != 0x80)
			runes++;
	if (runes > 10) {
		/* %.10q: the first ten runes, quoted, then ... */
		for (i = 0, runes = 0; i < it->len; i++) {
			if (((unsigned char)it->val[i] & 0xc0) != 0x80) {
				if (runes == 10)
					break;
				runes++;
			}
		}
		labels_quote(it->val, i, out);
		strbuf_puts(out, "...");
		return;
	}
	labels_quote(it->val, it->len, out);
}

static void p_unexpected(struct parser *p, const struct item *it, const char *context)
	__attribute__((noreturn));

static void
p_unexpected(struct parser *p, const struct item *it, const char *context)
{
	struct strbuf sb = STRBUF_INIT;
	char msg[512];

	item_string(it, &sb);
	if (it->typ == I_ERROR) {
		if (p->action_line != 0 && p->action_line != it->line)
			snprintf(msg, sizeof(msg), "%s in action started at %s:%d",
			    strbuf_cstr(&sb), p->t->name, p->action_line);
		else
			snprintf(msg, sizeof(msg), "%s", strbuf_cstr(&sb));
	} else {
		snprintf(msg, sizeof(msg), "unexpected %s in %s", strbuf_cstr(&sb), context);
	}
	strbuf_free(&sb);
	p_fail(p, it->line, "%s", msg);
}

static struct node *
p_node(struct parser *p, enum node_kind k, size_t pos, int line)
{
	struct node *n = arena_zalloc(&p->t->ar, sizeof(*n));

	n->kind = k;
	n->pos = pos;
	n->line = line;
	return n;
}

static void
p_append(struct parser *p, struct node ***v, size_t *n, size_t *cap, struct node *x)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct node **nv = arena_alloc(&p->t->ar, ncap * sizeof(*nv));

		if (*n)
			memcpy(nv, *v, *n * sizeof(*nv));
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = x;
}

static void
node_add(struct parser *p, struct node *parent, struct node *child)
{
	p_append(p, &parent->v, &parent->n, &parent->cap, child);
}

static void
p_push_var(struct parser *p, const char *name)
{
	if (p->nvars == p->capvars) {
		p->capvars = p->capvars ? p->capvars * 2 : 8;
		p->vars = mem_realloc(p->vars, p->capvars * sizeof(*p->vars));
	}
	p->vars[p->nvars++] = name;
}

/* split_ids splits "$x.a.b" or ".a.b" into identifiers ("$x", "a", "b"). */
static void
split_ids(struct parser *p, struct node *n, const char *s, size_t len, bool field)
{
	size_t i, start, cap = 1;
	const char **ids;

	for (i = 0; i < len; i++)
		if (s[i] == '.')
			cap++;
	ids = arena_alloc(&p->t->ar, cap * sizeof(*ids));
	n->nids = 0;
	i = field ? 1 : 0;
	start = i;
	for (; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (i > start || !field)
				ids[n->nids++] = arena_strndup(&p->t->ar, s + start, i - start);
			start = i + 1;
		}
	}
	n->ids = ids;
}

static struct node *
p_new_var(struct parser *p, size_t pos, int line, const char *s, size_t len)
{
	struct node *n = p_node(p, N_VAR, pos, line);

	split_ids(p, n, s, len, false);
	return n;
}

static struct node *
p_use_var(struct parser *p, const struct item *it)
{
	struct node *v = p_new_var(p, it->pos, it->line, it->val, it->len);
	size_t i;

	for (i = p->vars_base; i < p->nvars; i++)
		if (strcmp(p->vars[i], v->ids[0]) == 0)
			return v;
	{
		struct strbuf q = STRBUF_INIT;
		char msg[256];

		labels_quote(v->ids[0], strlen(v->ids[0]), &q);
		snprintf(msg, sizeof(msg), "undefined variable %s", strbuf_cstr(&q));
		strbuf_free(&q);
		p_fail(p, it->line, "%s", msg);
	}
}

/* Go's strconv.Unquote for "..." and '...' literals; returns -1 on bad syntax. */
static int
go_unquote(struct arena *ar, const char *s, size_t len, const char **out, size_t *outlen)
{
	struct strbuf sb = STRBUF_INIT;
	char q;
	size_t i;

	if (len < 2)
		return -1;
	q = s[0];
	if (s[len - 1] != q)
		return -1;
	if (q == '`') {
		for (i = 1; i + 1 < len; i++)
			if (s[i] == '`')
				return -1;
		*out = arena_strndup(ar, s + 1, len - 2);
		*outlen = len - 2;
		return 0;
	}
	for (i = 1; i + 1 < len; i++) {
		unsigned long cp;
		int nd = 0, base = 0, k;
		char c = s[i];

		if (c == q)
			goto bad;
		if (c != '\\') {
			strbuf_putc(&sb, c);
			continue;
		}
		if (++i + 1 >= len)
			goto bad;
		c = s[i];
		switch (c) {
		case 'a': strbuf_putc(&sb, '\a'); continue;
		case 'b': strbuf_putc(&sb, '\b'); continue;
		case 'f': strbuf_putc(&sb, '\f'); continue;
		case 'n': strbuf_putc(&sb, '\n'); continue;
		case 'r': strbuf_putc(&sb, '\r'); continue;
		case 't': strbuf_putc(&sb, '\t'); continue;
		case 'v': strbuf_putc(&sb, '\v'); continue;
		case '\\': strbuf_putc(&sb, '\\'); continue;
		case '\'': case '"':
			if (c != q)
				goto bad;
			strbuf_putc(&sb, c);
			continue;
		case 'x': nd = 2; base = 16; break;
		case 'u': nd = 4; base = 16; break;
		case 'U': nd = 8; base = 16; break;
		default:
			if (c >= '0' && c <= '7') {
				nd = 3;
				base = 8;
				i--;
				break;
			}
			goto bad;
		}
		cp = 0;
		for (k = 0; k < nd; k++) {
			int d;

			if (++i + 1 > len - 1)
				goto bad;
			c = s[i];
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (base == 16 && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (base == 16 && c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				goto bad;
			if (d >= base)
				goto bad;
			cp = cp * (unsigned long)base + (unsigned long)d;
		}
		if (base == 8 || nd == 2) {
			if (cp > 255)
				goto bad;
			strbuf_putc(&sb, (char)cp);
			continue;
		}
		if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			goto bad;
		if (cp < 0x80) {
			strbuf_putc(&sb, (char)cp);
		} else if (cp < 0x800) {
			strbuf_putc(&sb, (char)(0xc0 | (cp >> 6)));
			strbuf_putc(&sb, (char)(0x80 | (cp & 0x3f)));
		} else if (cp < 0x10000) {
			strbuf_putc(&sb, (char)(0xe0 | (cp >> 12)));
			strbuf_putc(&sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
			strbuf_putc(&sb, (char)(0x80 | (cp & 0x3f)));
		} else {
			strbuf_putc(&sb, (char)(0xf0 | (cp >> 18)));
			strbuf_putc(&sb, (char)(0x80 | ((cp >> 12) & 0x3f)));
			strbuf_putc(&sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
			strbuf_putc(&sb, (char)(0x80 | (cp & 0x3f)));
		}
	}
	*out = arena_strndup(ar, sb.buf ? sb.buf : "", sb.len);
	*outlen = sb.len;
	strbuf_free(&sb);
	return 0;
bad:
	strbuf_free(&sb);
	return -1;
}

/* decode_rune returns the code point at s (UTF-8) and its length. */
static uint32_t
decode_rune(const char *s, size_t len, size_t *n)
{
	const unsigned char *u = (const unsigned char *)s;

	if (len >= 2 && (u[0] & 0xe0) == 0xc0) {
		*n = 2;
		return ((uint32_t)(u[0] & 0x1f) << 6) | (u[1] & 0x3f);
	}
	if (len >= 3 && (u[0] & 0xf0) == 0xe0) {
		*n = 3;
		return ((uint32_t)(u[0] & 0x0f) << 12) | ((uint32_t)(u[1] & 0x3f) << 6) | (u[2] & 0x3f);
	}
	if (len >= 4 && (u[0] & 0xf8) == 0xf0) {
		*n = 4;
		return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3f) << 12) |
		    ((uint32_t)(u[2] & 0x3f) << 6) | (u[3] & 0x3f);
	}
	*n = len > 0 ? 1 : 0;
	return len > 0 ? u[0] : 0;
}

/* strip_underscores copies s without '_' into buf. */
static void
strip_underscores(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, j = 0;

	for (i = 0; i < len && j + 1 < buflen; i++)
		if (s[i] != '_')
			buf[j++] = s[i];
	buf[j] = '\0';
}

static struct node *
p_number(struct parser *p, const struct item *it)
{
	struct node *n = p_node(p, N_NUMBER, it->pos, it->line);
	char buf[128], *end;

	n->src = it->val;
	n->srclen = it->len;
	if (it->typ == I_CHARCONST) {
		const char *v;
		size_t vlen, rl;
		uint32_t r;

		if (go_unquote(&p->t->ar, it->val, it->len, &v, &vlen) < 0 || vlen == 0)
			p_fail(p, it->line, "malformed character constant: %.*s", (int)it->len, it->val);
		r = decode_rune(v, vlen, &rl);
		if (rl != vlen)
			p_fail(p, it->line, "malformed character constant: %.*s", (int)it->len, it->val);
		n->is_int = n->is_uint = n->is_float = true;
		n->i = r;
		n->u = r;
		n->f = r;
		return n;
	}
	if (it->len > 0 && it->val[it->len - 1] == 'i')
		p_fail(p, it->line, "complex numbers are not supported by strata: %.*s",
		    (int)it->len, it->val);
	strip_underscores(it->val, it->len, buf, sizeof(buf));
	errno = 0;
	n->u = strtoull(buf, &end, 0);
	if (*end == '\0' && errno == 0 && buf[0] != '-' && buf[0] != '+' && buf[0] != '\0')
		n->is_uint = true;
	errno = 0;
	n->i = strtoll(buf, &end, 0);
	if (*end == '\0' && errno == 0 && buf[0] != '\0')
		n->is_int = true;
	if (buf[0] == '0' && (buf[1] == 'o' || buf[1] == 'O' || buf[1] == 'b' || buf[1] == 'B')) {
		/* strtoll knows neither 0o nor 0b */
		int base = (buf[1] == 'o' || buf[1] == 'O') ? 8 : 2;

		errno = 0;
		n->u = strtoull(buf + 2, &end, base);
		if (*end == '\0' && errno == 0 && buf[2] != '\0') {
			n->is_uint = true;
			if (n->u <= INT64_MAX) {
				n->is_int = true;
				n->i = (int64_t)n->u;
			}
		}
	}
	if (n->is_int) {
		n->is_float = true;
		n->f = (double)n->i;
	} else if (n->is_uint) {
		n->is_float = true;
		n->f = (double)n->u;
	} else {
		errno = 0;
		n->f = strtod(buf, &end);
		if (*end == '\0' && buf[0] != '\0' && errno == 0) {
			n->is_float = true;
			if (!n->is_int && n->f == (double)(int64_t)n->f && fabs(n->f) < 9.2e18) {
				n->is_int = true;
				n->i = (int64_t)n->f;
			}
			if (!n->is_uint && n->f >= 0 && n->f == (double)(uint64_t)n->f && n->f < 1.8e19) {
				n->is_uint = true;
				n->u = (uint64_t)n->f;
			}
		}
	}
	if (!n->is_int && !n->is_uint && !n->is_float) {
		struct strbuf q = STRBUF_INIT;
		char msg[256];

		labels_quote(it->val, it->len, &q);
		snprintf(msg, sizeof(msg), "illegal number syntax: %s", strbuf_cstr(&q));
		strbuf_free(&q);
		p_fail(p, it->line, "%s", msg);
	}
	return n;
}

static struct node *p_pipeline(struct parser *p, const char *context, enum item_type end);

static struct node *
p_term(struct parser *p)
{
	struct item *it = p_next_nonspace(p);
	struct node *n;

	switch (it->typ) {
	case I_IDENT: {
		const struct tfunc *f = func_lookup(it->val, it->len);

		if (f == NULL) {
			struct strbuf q = STRBUF_INIT;
			char msg[256];

			labels_quote(it->val, it->len, &q);
			snprintf(msg, sizeof(msg), "function %s not defined", strbuf_cstr(&q));
			strbuf_free(&q);
			p_fail(p, it->line, "%s", msg);
		}
		n = p_node(p, N_IDENT, it->pos, it->line);
		n->s = arena_strndup(&p->t->ar, it->val, it->len);
		n->len = it->len;
		n->fn = f;
		return n;
	}
	case I_DOT:
		return p_node(p, N_DOT, it->pos, it->line);
	case I_NIL:
		return p_node(p, N_NIL, it->pos, it->line);
	case I_VARIABLE:
		return p_use_var(p, it);
	case I_FIELD:
		n = p_node(p, N_FIELD, it->pos, it->line);
		split_ids(p, n, it->val, it->len, true);
		return n;
	case I_BOOL:
		n = p_node(p, N_BOOL, it->pos, it->line);
		n->b = it->val[0] == 't';
		return n;
	case I_CHARCONST:
	case I_NUMBER:
		return p_number(p, it);
	case I_LPAREN:
		return p_pipeline(p, "parenthesized pipeline", I_RPAREN);
	case I_STRING:
	case I_RAWSTRING:
		n = p_node(p, N_STRING, it->pos, it->line);
		n->src = it->val;
		n->srclen = it->len;
		if (go_unquote(&p->t->ar, it->val, it->len, &n->s, &n->len) < 0)
			p_fail(p, it->line, "invalid syntax");
		return n;
	default:
		p_backup(p);
		return NULL;
	}
}

static void node_string(const struct node *n, struct strbuf *out);

static struct node *
p_operand(struct parser *p)
{
	struct node *n = p_term(p);

	if (n == NULL)
		return NULL;
	if (p_peek(p)->typ == I_FIELD) {
		struct strbuf sb = STRBUF_INIT;
		size_t pos = p_peek(p)->pos;
		int line = p_peek(p)->line;
		struct node *c;

		node_string(n, &sb);
		while (p_peek(p)->typ == I_FIELD) {
			struct item *f = p_next(p);

			strbuf_append(&sb, f->val, f->len);
		}
		switch (n->kind) {
		case N_FIELD:
			c = p_node(p, N_FIELD, pos, line);
			split_ids(p, c, sb.buf, sb.len, true);
			break;
		case N_VAR:
			c = p_new_var(p, pos, line, sb.buf, sb.len);
			break;
		case N_BOOL: case N_STRING: case N_NUMBER: case N_NIL: case N_DOT: {
			struct strbuf q = STRBUF_INIT, t = STRBUF_INIT;
			char msg[256];

			node_string(n, &t);
			labels_quote(t.buf, t.len, &q);
			snprintf(msg, sizeof(msg), "unexpected . after term %s", strbuf_cstr(&q));
			strbuf_free(&q);
			strbuf_free(&t);
			strbuf_free(&sb);
			p_fail(p, line, "%s", msg);
		}
		default: {
			/* a chain on a parenthesised pipeline or a function */
			size_t i, nf = 0;
			const char *s = sb.buf;

			c = p_node(p, N_CHAIN, pos, line);
			c->pipe = n;
			/* collect the fields after the term's own text */
			{
				struct strbuf t = STRBUF_INIT;

				node_string(n, &t);
				s += t.len;
				strbuf_free(&t);
			}
			for (i = 0; s[i]; i++)
				if (s[i] == '.')
					nf++;
			split_ids(p, c, s, strlen(s), true);
			(void)nf;
		}
		}
		strbuf_free(&sb);
		n = c;
	}
	return n;
}

static struct node *
p_command(struct parser *p)
{
	struct node *cmd = p_node(p, N_CMD, p_peek_nonspace(p)->pos, p_peek_nonspace(p)->line);

	for (;;) {
		struct node *op;
		struct item *it;

		p_peek_nonspace(p);
		op = p_operand(p);
		if (op != NULL)
			node_add(p, cmd, op);
		it = p_next(p);
		switch (it->typ) {
		case I_SPACE:
			continue;
		case I_RIGHT:
		case I_RPAREN:
			p_backup(p);
			break;
		case I_PIPE:
			break;
		default:
			p_unexpected(p, it, "operand");
		}
		break;
	}
	if (cmd->n == 0)
		p_fail(p, p_peek(p)->line, "empty command");
	return cmd;
}

static struct node *
p_pipeline(struct parser *p, const char *context, enum item_type end)
{
	struct item *first = p_peek_nonspace(p);
	struct node *pipe = p_node(p, N_PIPE, first->pos, first->line);
	size_t ndecl = 0, capdecl = 0;

	if (++p->depth > TMPL_MAX_NEST)
		p_fail(p, first->line, "strata: template nesting deeper than %d", TMPL_MAX_NEST);

decls:
	if (p_peek_nonspace(p)->typ == I_VARIABLE) {
		struct item *v = p_next_nonspace(p);
		size_t after = p->cur;
		struct item *next = p_peek_nonspace(p);

		if (next->typ == I_ASSIGN || next->typ == I_DECLARE) {
			struct node *var;

			pipe->is_assign = next->typ == I_ASSIGN;
			p_next_nonspace(p);
			var = p_new_var(p, v->pos, v->line, v->val, v->len);
			p_append(p, &pipe->decl, &ndecl, &capdecl, var);
			pipe->ndecl = ndecl;
			p_push_var(p, var->ids[0]);
		} else if (next->typ == I_CHAR && next->len == 1 && next->val[0] == ',') {
			struct node *var;

			p_next_nonspace(p);
			var = p_new_var(p, v->pos, v->line, v->val, v->len);
			p_append(p, &pipe->decl, &ndecl, &capdecl, var);
			pipe->ndecl = ndecl;
			p_push_var(p, var->ids[0]);
			if (strcmp(context, "range") == 0 && ndecl < 2) {
				enum item_type t = p_peek_nonspace(p)->typ;

				if (t == I_VARIABLE || t == I_RIGHT || t == I_RPAREN)
					goto decls;
				p_fail(p, v->line, "range can only initialize variables");
			}
			p_fail(p, v->line, "too many declarations in %s", context);
		} else {
			p->cur = after - 1;
		}
	}
	for (;;) {
		struct item *it = p_next_nonspace(p);

		if (it->typ == end) {
			size_t i;

			if (pipe->n == 0)
				p_fail(p, it->line, "missing value for %s", context);
			for (i = 1; i < pipe->n; i++) {
				enum node_kind k = pipe->v[i]->v[0]->kind;

				if (k == N_BOOL || k == N_DOT || k == N_NIL || k == N_NUMBER ||
				    k == N_STRING)
					p_fail(p, it->line, "non executable command in pipeline stage %zu",
					    i + 1);
			}
			p->depth--;
			return pipe;
		}
		switch (it->typ) {
		case I_BOOL: case I_CHARCONST: case I_DOT: case I_FIELD: case I_IDENT:
		case I_NUMBER: case I_NIL: case I_RAWSTRING: case I_STRING: case I_VARIABLE:
		case I_LPAREN:
			p_backup(p);
			node_add(p, pipe, p_command(p));
			break;
		default:
			p_unexpected(p, it, context);
		}
	}
}

static struct node *p_list(struct parser *p, struct node **next);

static struct node *
p_control(struct parser *p, enum node_kind kind, const char *context, bool allow_else_if)
{
	size_t nvars = p->nvars;
	struct item *first = p_peek_nonspace(p);
	struct node *n = p_node(p, kind, first->pos, first->line);
	struct node *next;

	if (++p->depth > TMPL_MAX_NEST)
		p_fail(p, first->line, "strata: template nesting deeper than %d", TMPL_MAX_NEST);
	n->pipe = p_pipeline(p, context, I_RIGHT);
	if (kind == N_RANGE)
		p->range_depth++;
	n->list = p_list(p, &next);
	if (kind == N_RANGE)
		p->range_depth--;
	if (next->kind == N_ELSE) {
		if (allow_else_if && p_peek(p)->typ == I_IF) {
			struct node *el = p_node(p, N_LIST, next->pos, next->line);

			p_next(p);
			node_add(p, el, p_control(p, N_IF, "if", true));
			n->elist = el;
		} else {
			n->elist = p_list(p, &next);
			if (next->kind != N_END) {
				struct strbuf sb = STRBUF_INIT;
				char msg[256];

				node_string(next, &sb);
				snprintf(msg, sizeof(msg), "expected end; found %s", strbuf_cstr(&sb));
				strbuf_free(&sb);
				p_fail(p, next->line, "%s", msg);
			}
		}
	}
	p->nvars = nvars;
	p->depth--;
	return n;
}

static struct item *
p_expect(struct parser *p, enum item_type t, const char *context)
{
	struct item *it = p_next_nonspace(p);

	if (it->typ != t)
		p_unexpected(p, it, context);
	return it;
}

/* p_definition_body parses the body of {{define}} or {{block}} up to its
 * {{end}}, with a fresh variable scope, and records it under name. */
static void
p_definition_body(struct parser *p, const char *name, const char *context)
{
	size_t base = p->vars_base, nvars = p->nvars, i;
	struct node *next = NULL, *root;
	struct tdef *defs;

	p->vars_base = p->nvars;
	p_push_var(p, "$");
	root = p_list(p, &next);
	if (next->kind != N_END) {
		struct strbuf sb = STRBUF_INIT;
		char msg[256];

		node_string(next, &sb);
		snprintf(msg, sizeof(msg), "unexpected %s in %s", strbuf_cstr(&sb), context);
		strbuf_free(&sb);
		p_fail(p, next->line, "%s", msg);
	}
	p->vars_base = base;
	p->nvars = nvars;
	for (i = 0; i < p->t->ndefs; i++) {
		if (strcmp(p->t->defs[i].name, name) != 0)
			continue;
		if (p->t->defs[i].root->n == 0 ||
		    (p->t->defs[i].root->n == 1 && p->t->defs[i].root->v[0]->kind == N_TEXT &&
		    strspn(p->t->defs[i].root->v[0]->s, " \t\r\n") == p->t->defs[i].root->v[0]->len)) {
			p->t->defs[i].root = root;
			return;
		}
		if (root->n != 0)
			p_fail(p, next->line, "template: multiple definition of template \"%s\"", name);
		return;
	}
	defs = arena_alloc(&p->t->ar, (p->t->ndefs + 1) * sizeof(*defs));
	if (p->t->ndefs > 0)
		memcpy(defs, p->t->defs, p->t->ndefs * sizeof(*defs));
	defs[p->t->ndefs].name = name;
	defs[p->t->ndefs].root = root;
	p->t->defs = defs;
	p->t->ndefs++;
}

static struct node *
p_action(struct parser *p)
{
	struct item *it = p_next_nonspace(p);

	switch (it->typ) {
	case I_BLOCK: {
		struct item *name = p_next_nonspace(p);
		struct node *n;

		if (name->typ != I_STRING && name->typ != I_RAWSTRING)
			p_unexpected(p, name, "block clause");
		n = p_node(p, N_TEMPLATE, name->pos, name->line);
		if (go_unquote(&p->t->ar, name->val, name->len, &n->s, &n->len) < 0)
			p_fail(p, name->line, "invalid syntax");
		n->pipe = p_pipeline(p, "block clause", I_RIGHT);
		p_definition_body(p, n->s, "block clause");
		return n;
	}
	case I_TEMPLATE: {
		struct item *name = p_next_nonspace(p);
		struct node *n;

		if (name->typ != I_STRING && name->typ != I_RAWSTRING)
			p_unexpected(p, name, "template clause");
		n = p_node(p, N_TEMPLATE, name->pos, name->line);
		if (go_unquote(&p->t->ar, name->val, name->len, &n->s, &n->len) < 0)
			p_fail(p, name->line, "invalid syntax");
		if (p_next_nonspace(p)->typ != I_RIGHT) {
			p_backup(p);
			n->pipe = p_pipeline(p, "template clause", I_RIGHT);
		}
		return n;
	}
	case I_BREAK:
	case I_CONTINUE:
		if (p->range_depth == 0)
			p_fail(p, it->line, "{{%.*s}} outside {{range}}", (int)it->len, it->val);
		p_expect(p, I_RIGHT, it->typ == I_BREAK ? "break" : "continue");
		return p_node(p, it->typ == I_BREAK ? N_BREAK : N_CONTINUE, it->pos, it->line);
	case I_ELSE: {
		struct item *pk = p_peek_nonspace(p);

		if (pk->typ == I_IF)
			return p_node(p, N_ELSE, pk->pos, pk->line);
		pk = p_expect(p, I_RIGHT, "else");
		return p_node(p, N_ELSE, pk->pos, pk->line);
	}
	case I_END:
		it = p_expect(p, I_RIGHT, "end");
		return p_node(p, N_END, it->pos, it->line);
	case I_IF:
		return p_control(p, N_IF, "if", true);
	case I_RANGE:
		return p_control(p, N_RANGE, "range", false);
	case I_WITH:
		return p_control(p, N_WITH, "with", false);
	default:
		break;
	}
	p_backup(p);
	{
		struct item *pk = p_peek(p);
		struct node *a = p_node(p, N_ACTION, pk->pos, pk->line);

		a->pipe = p_pipeline(p, "command", I_RIGHT);
		return a;
	}
}

static struct node *
p_text_or_action(struct parser *p)
{
	struct item *it = p_next_nonspace(p);
	struct node *n;

	switch (it->typ) {
	case I_TEXT:
		n = p_node(p, N_TEXT, it->pos, it->line);
		n->s = it->val;
		n->len = it->len;
		return n;
	case I_LEFT: {
		int save = p->action_line;

		p->action_line = it->line;
		n = p_action(p);
		p->action_line = save;
		return n;
	}
	default:
		p_unexpected(p, it, "input");
	}
}

static struct node *
p_list(struct parser *p, struct node **next)
{
	struct node *list = p_node(p, N_LIST, p_peek_nonspace(p)->pos, p_peek_nonspace(p)->line);

	while (p_peek_nonspace(p)->typ != I_EOF) {
		struct node *n = p_text_or_action(p);

		if (n->kind == N_END || n->kind == N_ELSE) {
			*next = n;
			return list;
		}
		node_add(p, list, n);
	}
	p_fail(p, p_peek(p)->line, "unexpected EOF");
}

/* tmpl_parse: see template.h. */
struct tmpl *
tmpl_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
	struct tmpl *t = mem_calloc(1, sizeof(*t));
	struct lexer l;
	struct parser *p = mem_calloc(1, sizeof(*p));

	t->name = mem_strdup(name);
	t->text = mem_strndup(text, len);
	t->len = len;
	memset(&l, 0, sizeof(l));
	l.in = t->text;
	l.len = len;
	l.line = l.start_line = 1;
	l.ar = &t->ar;
	lx_run(&l);
	p->t = t;
	p->items = l.items;
	p->nitems = l.n;
	p->err = err;
	p->errlen = errlen;
	p_push_var(p, "$");
	if (setjmp(p->jb) != 0) {
		mem_free(l.items);
		mem_free(p->vars);
		mem_free(p);
		tmpl_free(t);
		return NULL;
	}
	t->root = p_node(p, N_LIST, 0, 1);
	while (p_peek(p)->typ != I_EOF) {
		struct node *n;

		if (p_peek(p)->typ == I_LEFT) {
			size_t save = p->cur;

			p_next(p);
			if (p_next_nonspace(p)->typ == I_DEFINE) {
				struct item *dn = p_next_nonspace(p);
				const char *nm;
				size_t nmlen;

				if (dn->typ != I_STRING && dn->typ != I_RAWSTRING)
					p_unexpected(p, dn, "define clause");
				if (go_unquote(&t->ar, dn->val, dn->len, &nm, &nmlen) < 0)
					p_fail(p, dn->line, "invalid syntax");
				p_expect(p, I_RIGHT, "define clause");
				p_definition_body(p, nm, "define clause");
				continue;
			}
			p->cur = save;
		}
		n = p_text_or_action(p);

		if (n->kind == N_END || n->kind == N_ELSE) {
			struct strbuf sb = STRBUF_INIT;
			char msg[256];

			node_string(n, &sb);
			snprintf(msg, sizeof(msg), "unexpected %s", strbuf_cstr(&sb));
			strbuf_free(&sb);
			p_fail(p, n->line, "%s", msg);
		}
		node_add(p, t->root, n);
	}
	mem_free(l.items);
	mem_free(p->vars);
	mem_free(p);
	return t;
}

/* tmpl_free: see template.h. */
void
tmpl_free(struct tmpl *t)
{
	if (t == NULL)
		return;
	arena_free(&t->ar);
	mem_free(t->name);
	mem_free(t->text);
	mem_free(t);
}

/* tmpl_has_actions: see template.h. */
bool
tmpl_has_actions(const char *text, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++)
		if (text[i] == '{' && text[i + 1] == '{')
			return true;
	return false;
}

/* node_string writes n as Go's Node.String() does (for error contexts). */
static void
node_string(const struct node *n, struct strbuf *out)
{
	size_t i;

	switch (n->kind) {
	case N_FIELD:
		for (i = 0; i < n->nids; i++) {
			strbuf_putc(out, '.');
			strbuf_puts(out, n->ids[i]);
		}
		break;
	case N_VAR:
		for (i = 0; i < n->nids; i++) {
			if (i > 0)
				strbuf_putc(out, '.');
			strbuf_puts(out, n->ids[i]);
		}
		break;
	case N_CHAIN:
		if (n->pipe->kind == N_PIPE) {
			strbuf_putc(out, '(');
			node_string(n->pipe, out);
			strbuf_putc(out, ')');
		} else {
			node_string(n->pipe, out);
		}
		for (i = 0; i < n->nids; i++) {
			strbuf_putc(out, '.');
			strbuf_puts(out, n->ids[i]);
		}
		break;
	case N_IDENT:
		strbuf_puts(out, n->s);
		break;
	case N_DOT:
		strbuf_putc(out, '.');
		break;
	case N_NIL:
		strbuf_puts(out, "nil");
		break;
	case N_BOOL:
		strbuf_puts(out, n->b ? "true" : "false");
		break;
	case N_NUMBER:
	case N_STRING:
		strbuf_append(out, n->src, n->srclen);
		break;
	case N_CMD:
		for (i = 0; i < n->n; i++) {
			if (i > 0)
				strbuf_putc(out, ' ');
			if (n->v[i]->kind == N_PIPE) {
				strbuf_putc(out, '(');
				node_string(n->v[i], out);
				strbuf_putc(out, ')');
			} else {
				node_string(n->v[i], out);
			}
		}
		break;
	case N_PIPE:
		if (n->ndecl > 0) {
			for (i = 0; i < n->ndecl; i++) {
				if (i > 0)
					strbuf_puts(out, ", ");
				node_string(n->decl[i], out);
			}
			strbuf_puts(out, n->is_assign ? " = " : " := ");
		}
		for (i = 0; i < n->n; i++) {
			if (i > 0)
				strbuf_puts(out, " | ");
			node_string(n->v[i], out);
		}
		break;
	case N_ACTION:
		strbuf_puts(out, "{{");
		node_string(n->pipe, out);
		strbuf_puts(out, "}}");
		break;
	case N_ELSE:
		strbuf_puts(out, "{{else}}");
		break;
	case N_END:
		strbuf_puts(out, "{{end}}");
		break;
	case N_BREAK:
		strbuf_puts(out, "{{break}}");
		break;
	case N_CONTINUE:
		strbuf_puts(out, "{{continue}}");
		break;
	case N_TEXT:
		strbuf_append(out, n->s, n->len);
		break;
	case N_TEMPLATE:
		strbuf_puts(out, "{{template ");
		labels_quote(n->s, n->len, out);
		if (n->pipe != NULL) {
			strbuf_putc(out, ' ');
			node_string(n->pipe, out);
		}
		strbuf_puts(out, "}}");
		break;
	case N_LIST:
		for (i = 0; i < n->n; i++)
			node_string(n->v[i], out);
		break;
	case N_IF:
	case N_WITH:
	case N_RANGE:
		strbuf_puts(out, n->kind == N_IF ? "{{if " : n->kind == N_WITH ? "{{with " : "{{range ");
		node_string(n->pipe, out);
		strbuf_puts(out, "}}");
		node_string(n->list, out);
		if (n->elist != NULL) {
			strbuf_puts(out, "{{else}}");
			node_string(n->elist, out);
		}
		strbuf_puts(out, "{{end}}");
		break;
	}
}

/* --- execution (text/template/exec.go) ------------------------------------- */

struct tvar {
	const char *name;
	struct tv val;
};

struct texec {
	const struct tmpl *t;
	const struct tmpl_env *env;
	struct strbuf *out;
	struct arena ar;
	struct tvar *vars;
	size_t nvars, capvars;
	const struct node *at;
	jmp_buf jb;
	char *err;
	size_t errlen;
	char ferr[512];		/* a function's error message */
	struct labels **held;	/* query results' labels, released at the end */
	size_t nheld, capheld;
	struct tmap root[2];	/* .Labels, .ExternalLabels */
	int depth;
	int tdepth;		/* {{template}} nesting */
	const char *cur_name;	/* the template executing (for messages) */
	size_t vars_base;	/* variables visible to the running template */
	size_t out0;		/* out->len when the execution started */
	long steps;		/* nodes walked, bounded by TMPL_MAX_STEPS */
	enum { WALK_NORMAL, WALK_BREAK, WALK_CONTINUE } walk;
};

static void x_fail(struct texec *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void
x_fail(struct texec *x, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->at == NULL) {
		snprintf(x->err, x->errlen, "template: %s: %s", x->t->name, msg);
	} else {
		struct strbuf ctx = STRBUF_INIT;
		size_t pos = x->at->pos, i, line = 1, col;
		long lastnl = -1;
		char cbuf[64];

		for (i = 0; i < pos && i < x->t->len; i++)
			if (x->t->text[i] == '\n') {
				line++;
				lastnl = (long)i;
			}
		col = lastnl < 0 ? pos : pos - (size_t)(lastnl + 1);
		node_string(x->at, &ctx);
		snprintf(cbuf, sizeof(cbuf), "%zu:%zu", line, col);
		snprintf(x->err, x->errlen, "template: %s:%s: executing \"%s\" at <%s>: %s",
		    x->t->name, cbuf, x->cur_name, strbuf_cstr(&ctx), msg);
		strbuf_free(&ctx);
	}
	longjmp(x->jb, 1);
}

static struct tv
tv_none(void)
{
	struct tv v;

	memset(&v, 0, sizeof(v));
	return v;
}

static struct tv
tv_str(const char *s, size_t len)
{
	struct tv v = tv_none();

	v.k = TV_STRING;
	v.s = s;
	v.len = len;
	return v;
}

static struct tv
tv_float(double f)
{
	struct tv v = tv_none();

	v.k = TV_FLOAT;
	v.f = f;
	return v;
}

static struct tv
tv_int(int64_t i)
{
	struct tv v = tv_none();

	v.k = TV_INT;
	v.i = i;
	return v;
}

static struct tv
tv_bool(bool b)
{
	struct tv v = tv_none();

	v.k = TV_BOOL;
	v.b = b;
	return v;
}

static struct tv
tv_strbuf(struct texec *x, const struct strbuf *sb)
{
	return tv_str(arena_strndup(&x->ar, sb->buf ? sb->buf : "", sb->len), sb->len);
}

static const char *
tv_type(const struct tv *v)
{
	switch (v->k) {
	case TV_NONE: return "<invalid Value>";
	case TV_NIL: return "<nil>";
	case TV_BOOL: return "bool";
	case TV_INT: return "int";
	case TV_FLOAT: return "float64";
	case TV_STRING: return "string";
	case TV_HTML: return "template.HTML";
	case TV_MAP: return "map[string]string";
	case TV_ARGS: return "map[string]interface {}";
	case TV_RESULT: return "template.queryResult";
	case TV_SAMPLE: return "*template.sample";
	case TV_TIME: return "*time.Time";
	case TV_ROOT:
		return "struct { Labels map[string]string; ExternalLabels map[string]string; "
		    "ExternalURL string; Value float64 }";
	}
	return "?";
}

static const char *
targ_type(enum targ a)
{
	switch (a) {
	case A_STRING: return "string";
	case A_RESULT: return "template.queryResult";
	case A_SAMPLE: return "*template.sample";
	case A_ANY: break;
	}
	return "interface {}";
}

static bool
tv_truth(const struct tv *v)
{
	switch (v->k) {
	case TV_NONE: case TV_NIL: return false;
	case TV_BOOL: return v->b;
	case TV_INT: return v->i != 0;
	case TV_FLOAT: return v->f != 0;
	case TV_STRING: case TV_HTML: return v->len > 0;
	case TV_MAP: return v->map->n > 0;
	case TV_ARGS: return v->args->n > 0;
	case TV_RESULT: return v->res->n > 0;
	case TV_SAMPLE: return v->smp != NULL;
	case TV_TIME: case TV_ROOT: return true;
	}
	return false;
}

/* tmpl_format_g: see template.h. */
void
tmpl_format_g(struct strbuf *out, double v, int prec)
{
	if (isnan(v))
		strbuf_puts(out, "NaN");
	else if (isinf(v))
		strbuf_puts(out, v > 0 ? "+Inf" : "-Inf");
	else
		strbuf_printf(out, "%.*g", prec, v);
}

/* civil_from_days converts days since 1970-01-01 to a date (proleptic
 * Gregorian calendar; Howard Hinnant's algorithm). */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* tmpl_format_time: see template.h. */
void
tmpl_format_time(struct strbuf *out, int64_t ms)
{
	int64_t secs = ms / 1000, frac = ms % 1000, days, rem, y;
	unsigned mo, d;

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	strbuf_printf(out, "%04" PRId64 "-%02u-%02u %02d:%02d:%02d", y, mo, d,
	    (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
	if (frac != 0) {
		char fb[8];
		int n;

		n = snprintf(fb, sizeof(fb), "%03d", (int)frac);
		while (n > 0 && fb[n - 1] == '0')
			fb[--n] = '\0';
		strbuf_printf(out, ".%s", fb);
	}
	strbuf_puts(out, " +0000 UTC");
}

static void tv_print(const struct tv *v, struct strbuf *out, int depth);

static void
tmap_print(const struct tmap *m, struct strbuf *out)
{
	size_t i;

	strbuf_puts(out, "map[");
	for (i = 0; i < m->n; i++) {
		if (i > 0)
			strbuf_putc(out, ' ');
		strbuf_puts(out, m->k[i]);
		strbuf_putc(out, ':');
		strbuf_puts(out, m->v[i]);
	}
	strbuf_putc(out, ']');
}

/* tv_print writes v as fmt's %v (fmt.Fprint of the printable value). */
static void
tv_print(const struct tv *v, struct strbuf *out, int depth)
{
	size_t i;

	switch (v->k) {
	case TV_NONE:
		strbuf_puts(out, depth == 0 ? "<no value>" : "<invalid reflect.Value>");
		break;
	case TV_NIL:
		strbuf_puts(out, "<nil>");
		break;
	case TV_BOOL:
		strbuf_puts(out, v->b ? "true" : "false");
		break;
	case TV_INT:
		strbuf_printf(out, "%" PRId64, v->i);
		break;
	case TV_FLOAT:
		promql_format_float(v->f, 'g', out);
		break;
	case TV_STRING:
	case TV_HTML:
		strbuf_append(out, v->s, v->len);
		break;
	case TV_MAP:
		tmap_print(v->map, out);
		break;
	case TV_ARGS:
		strbuf_puts(out, "map[");
		for (i = 0; i < v->args->n; i++) {
			if (i > 0)
				strbuf_putc(out, ' ');
			strbuf_puts(out, v->args->k[i]);
			strbuf_putc(out, ':');
			tv_print(&v->args->v[i], out, depth + 1);
		}
		strbuf_putc(out, ']');
		break;
	case TV_RESULT:
		strbuf_putc(out, '[');
		for (i = 0; i < v->res->n; i++) {
			struct tv s = tv_none();

			if (i > 0)
				strbuf_putc(out, ' ');
			s.k = TV_SAMPLE;
			s.smp = v->res->v[i];
			tv_print(&s, out, depth + 1);
		}
		strbuf_putc(out, ']');
		break;
	case TV_SAMPLE:
		if (v->smp == NULL) {
			strbuf_puts(out, "<nil>");
			break;
		}
		strbuf_puts(out, depth == 0 ? "{" : "&{");
		tmap_print(&v->smp->labels, out);
		strbuf_putc(out, ' ');
		promql_format_float(v->smp->v, 'g', out);
		strbuf_putc(out, '}');
		break;
	case TV_TIME:
		tmpl_format_time(out, v->ms);
		break;
	case TV_ROOT:
		/* {Labels ExternalLabels ExternalURL Value} */
		strbuf_putc(out, '{');
		tmap_print(&v->map[0], out);
		strbuf_putc(out, ' ');
		tmap_print(&v->map[1], out);
		strbuf_putc(out, ' ');
		strbuf_append(out, v->s, v->len);
		strbuf_putc(out, ' ');
		promql_format_float(v->f, 'g', out);
		strbuf_putc(out, '}');
		break;
	}
}

static void
x_hold(struct texec *x, struct labels *ls)
{
	if (x->nheld == x->capheld) {
		x->capheld = x->capheld ? x->capheld * 2 : 8;
		x->held = mem_realloc(x->held, x->capheld * sizeof(*x->held));
	}
	x->held[x->nheld++] = ls;
}

static void
tmap_from_labels(struct texec *x, struct tmap *m, const struct labels *ls)
{
	size_t i;

	m->n = ls != NULL ? ls->n : 0;
	m->k = arena_alloc(&x->ar, (m->n + 1) * sizeof(*m->k));
	m->v = arena_alloc(&x->ar, (m->n + 1) * sizeof(*m->v));
	for (i = 0; i < m->n; i++) {
		m->k[i] = ls->v[i].name;
		m->v[i] = ls->v[i].value;
	}
}

static bool
tmap_get(const struct tmap *m, const char *k, const char **v)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->k[mid], k);

		if (c == 0) {
			*v = m->v[mid];
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static struct tv
x_root(struct texec *x)
{
	struct tv v = tv_none();
	const char *u = x->env->external_url ? x->env->external_url : "";

	v.k = TV_ROOT;
	v.map = x->root;
	v.s = u;
	v.len = strlen(u);
	v.f = x->env->value;
	return v;
}

/* x_field evaluates receiver.name (a struct field or a map entry). */
static struct tv
x_field(struct texec *x, const struct tv *recv, const char *name, bool has_args)
{
	const char *val;

	switch (recv->k) {
	case TV_ROOT:
		if (strcmp(name, "Labels") == 0 || strcmp(name, "ExternalLabels") == 0) {
			struct tv v = tv_none();

			if (has_args)
				x_fail(x, "%s has arguments but cannot be invoked as function", name);
			v.k = TV_MAP;
			v.map = name[0] == 'L' ? &recv->map[0] : &recv->map[1];
			return v;
		}
		if (strcmp(name, "ExternalURL") == 0) {
			if (has_args)
				x_fail(x, "%s has arguments but cannot be invoked as function", name);
			return tv_str(recv->s, recv->len);
		}
		if (strcmp(name, "Value") == 0) {
			if (has_args)
				x_fail(x, "%s has arguments but cannot be invoked as function", name);
			return tv_float(recv->f);
		}
		break;
	case TV_SAMPLE:
		if (recv->smp == NULL)
			x_fail(x, "nil pointer evaluating *template.sample.%s", name);
		if (strcmp(name, "Labels") == 0) {
			struct tv v = tv_none();

			if (has_args)
				x_fail(x, "%s has arguments but cannot be invoked as function", name);
			v.k = TV_MAP;
			v.map = &recv->smp->labels;
			return v;
		}
		if (strcmp(name, "Value") == 0) {
			if (has_args)
				x_fail(x, "%s has arguments but cannot be invoked as function", name);
			return tv_float(recv->smp->v);
		}
		break;
	case TV_MAP:
		if (has_args)
			x_fail(x, "%s is not a method but has arguments", name);
		if (tmap_get(recv->map, name, &val))
			return tv_str(val, strlen(val));
		return tv_str("", 0);	/* missingkey=zero */
	case TV_ARGS: {
		size_t i;

		if (has_args)
			x_fail(x, "%s is not a method but has arguments", name);
		for (i = 0; i < recv->args->n; i++)
			if (strcmp(recv->args->k[i], name) == 0)
				return recv->args->v[i];
		return tv_none();
	}
	case TV_NONE:
		return tv_none();
	case TV_NIL:
		x_fail(x, "nil pointer evaluating interface {}.%s", name);
	case TV_TIME:
		x_fail(x, "strata: methods of time.Time (%s) are not supported", name);
	default:
		break;
	}
	x_fail(x, "can't evaluate field %s in type %s", name, tv_type(recv));
}

/* --- fmt: Go's Sprint, Sprintln and Sprintf on template values ------------- */

static bool
tv_is_string(const struct tv *v)
{
	return v->k == TV_STRING || v->k == TV_HTML;
}

/* go_sprint writes fmt.Sprint(args...): operands separated by a space when
 * neither side is a string. */
static void
go_sprint(const struct tv *a, size_t n, struct strbuf *out)
{
	size_t i;

	for (i = 0; i < n && out->len <= TMPL_MAX_OUTPUT; i++) {
		if (i > 0 && !tv_is_string(&a[i]) && !tv_is_string(&a[i - 1]))
			strbuf_putc(out, ' ');
		tv_print(&a[i], out, 1);
	}
}

static void
go_sprintln(const struct tv *a, size_t n, struct strbuf *out)
{
	size_t i;

	for (i = 0; i < n && out->len <= TMPL_MAX_OUTPUT; i++) {
		if (i > 0)
			strbuf_putc(out, ' ');
		tv_print(&a[i], out, 1);
	}
	strbuf_putc(out, '\n');
}

struct fmt_spec {
	bool minus, plus, sharp, space, zero;
	int width, prec;	/* -1: absent */
	char verb;
};

static size_t
utf8_runes(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/* fmt_pad writes s padded to the spec's width (spaces, or zeros after a
 * sign when zero is set). */
static void
fmt_pad(const struct fmt_spec *sp, const char *s, size_t len, bool zero, struct strbuf *out)
{
	size_t runes = utf8_runes(s, len), pad;

	if (sp->width < 0 || (size_t)sp->width <= runes) {
		strbuf_append(out, s, len);
		return;
	}
	pad = (size_t)sp->width - runes;
	if (sp->minus) {
		strbuf_append(out, s, len);
		while (pad--)
			strbuf_putc(out, ' ');
		return;
	}
	if (zero) {
		if (len > 0 && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) {
			strbuf_putc(out, s[0]);
			s++;
			len--;
		}
		while (pad--)
			strbuf_putc(out, '0');
		strbuf_append(out, s, len);
		return;
	}
	while (pad--)
		strbuf_putc(out, ' ');
	strbuf_append(out, s, len);
}

static void
fmt_bad_verb(const struct fmt_spec *sp, const struct tv *v, struct strbuf *out)
{
	strbuf_printf(out, "%%!%c(", sp->verb);
	if (v->k == TV_NIL || v->k == TV_NONE) {
		strbuf_puts(out, "<nil>");
	} else {
		strbuf_puts(out, tv_type(v));
		strbuf_putc(out, '=');
		tv_print(v, out, 1);
	}
	strbuf_putc(out, ')');
}

/* fmt_cnum formats a number with C's printf for the verbs both share. */
static void
fmt_cnum(const struct fmt_spec *sp, bool is_float, double f, int64_t i, struct strbuf *out)
{
	char cf[32], *p = cf;
	struct strbuf tmp = STRBUF_INIT;

	*p++ = '%';
	if (sp->minus)
		*p++ = '-';
	if (sp->plus)
		*p++ = '+';
	if (sp->sharp)
		*p++ = '#';
	if (sp->space)
		*p++ = ' ';
	if (sp->zero && !sp->minus)
		*p++ = '0';
	if (is_float) {
		if (isnan(f) || isinf(f)) {
			const char *s = isnan(f) ? "NaN" : f > 0 ? "Inf" : "-Inf";

			if (!isnan(f) && f > 0)
				strbuf_puts(&tmp, sp->plus ? "+" : sp->space ? " " : "+");
			else if (isnan(f) && sp->plus)
				strbuf_putc(&tmp, '+');
			else if (isnan(f) && sp->space)
				strbuf_putc(&tmp, ' ');
			strbuf_puts(&tmp, s);
			fmt_pad(sp, tmp.buf, tmp.len, false, out);
			strbuf_free(&tmp);
			return;
		}
		snprintf(p, sizeof(cf) - (size_t)(p - cf), "*.*%c", sp->verb == 'F' ? 'f' : sp->verb);
		strbuf_printf(out, cf, sp->width < 0 ? 0 : sp->width, sp->prec < 0 ? 6 : sp->prec, f);
	} else {
		if (sp->prec >= 0)
			snprintf(p, sizeof(cf) - (size_t)(p - cf), "*.*ll%c", sp->verb == 'd' ? 'd' : sp->verb);
		else
			snprintf(p, sizeof(cf) - (size_t)(p - cf), "*ll%c", sp->verb == 'd' ? 'd' : sp->verb);
		if (sp->verb == 'd') {
			if (sp->prec >= 0)
				strbuf_printf(out, cf, sp->width < 0 ? 0 : sp->width, sp->prec, (long long)i);
			else
				strbuf_printf(out, cf, sp->width < 0 ? 0 : sp->width, (long long)i);
		} else {
			/* Go prints the sign of negative numbers in hex and octal */
			unsigned long long u = i < 0 ? (unsigned long long)-(i + 1) + 1 : (unsigned long long)i;

			if (i < 0) {
				struct fmt_spec s2 = *sp;
				char body[96];

				s2.width = -1;
				snprintf(cf, sizeof(cf), sp->verb == 'x' ? "%s%llx" : sp->verb == 'X' ?
				    "%s%llX" : "%s%llo", "-", u);
				snprintf(body, sizeof(body), "%s", cf);
				fmt_pad(sp, body, strlen(body), sp->zero, out);
				(void)s2;
			} else if (sp->prec >= 0) {
				strbuf_printf(out, cf, sp->width < 0 ? 0 : sp->width, sp->prec, u);
			} else {
				strbuf_printf(out, cf, sp->width < 0 ? 0 : sp->width, u);
			}
		}
	}
	strbuf_free(&tmp);
}

static void
fmt_one(const struct fmt_spec *sp, const struct tv *v, struct strbuf *out)
{
	struct strbuf tmp = STRBUF_INIT;

	switch (v->k) {
	case TV_BOOL:
		if (sp->verb == 'v' || sp->verb == 't')
			fmt_pad(sp, v->b ? "true" : "false", v->b ? 4 : 5, false, out);
		else
			fmt_bad_verb(sp, v, out);
		break;
	case TV_INT:
		switch (sp->verb) {
		case 'v': case 'd':
		case 'x': case 'X': case 'o':
			if (sp->verb == 'v') {
				struct fmt_spec s2 = *sp;

				s2.verb = 'd';
				fmt_cnum(&s2, false, 0, v->i, out);
			} else {
				fmt_cnum(sp, false, 0, v->i, out);
			}
			break;
		case 'c':
			if (v->i >= 0 && v->i < 0x80) {
				char c = (char)v->i;

				fmt_pad(sp, &c, 1, false, out);
			} else {
				fmt_bad_verb(sp, v, out);
			}
			break;
		case 'q':
			if (v->i >= 0x20 && v->i < 0x7f && v->i != '\'' && v->i != '\\')
				strbuf_printf(&tmp, "'%c'", (char)v->i);
			else
				strbuf_printf(&tmp, "'\\x%02x'", (unsigned)(v->i & 0xff));
			fmt_pad(sp, tmp.buf, tmp.len, false, out);
			break;
		default:
			fmt_bad_verb(sp, v, out);
		}
		break;
	case TV_FLOAT:
		switch (sp->verb) {
		case 'v': case 'g': case 'G':
			if (sp->prec < 0 && !sp->sharp) {
				if (sp->plus && !signbit(v->f) && !isnan(v->f))
					strbuf_putc(&tmp, '+');
				else if (sp->plus && isnan(v->f))
					strbuf_putc(&tmp, '+');
				else if (sp->space && !signbit(v->f))
					strbuf_putc(&tmp, ' ');
				if (isinf(v->f) && v->f > 0 && !sp->plus && !sp->space)
					strbuf_puts(&tmp, "+Inf");
				else if (isinf(v->f) && v->f > 0)
					strbuf_puts(&tmp, "Inf");
				else
					promql_format_float(v->f, 'g', &tmp);
				if (sp->verb == 'G') {
					size_t i;

					for (i = 0; i < tmp.len; i++)
						if (tmp.buf[i] == 'e')
							tmp.buf[i] = 'E';
				}
				fmt_pad(sp, tmp.buf, tmp.len, sp->zero && !isnan(v->f) && !isinf(v->f), out);
			} else {
				struct fmt_spec s2 = *sp;

				if (s2.verb == 'v')
					s2.verb = 'g';
				fmt_cnum(&s2, true, v->f, 0, out);
			}
			break;
		case 'e': case 'E': case 'f': case 'F':
			fmt_cnum(sp, true, v->f, 0, out);
			break;
		default:
			fmt_bad_verb(sp, v, out);
		}
		break;
	case TV_STRING:
	case TV_HTML: {
		size_t len = v->len;

		if (sp->prec >= 0) {
			size_t i, runes = 0;

			for (i = 0; i < v->len; i++) {
				if (((unsigned char)v->s[i] & 0xc0) != 0x80) {
					if (runes == (size_t)sp->prec)
						break;
					runes++;
				}
			}
			len = i;
		}
		switch (sp->verb) {
		case 'v': case 's':
			fmt_pad(sp, v->s, len, sp->zero, out);
			break;
		case 'q':
			labels_quote(v->s, len, &tmp);
			fmt_pad(sp, tmp.buf, tmp.len, false, out);
			break;
		case 'x': case 'X': {
			size_t i;

			for (i = 0; i < len; i++)
				strbuf_printf(&tmp, sp->verb == 'x' ? "%02x" : "%02X",
				    (unsigned char)v->s[i]);
			fmt_pad(sp, tmp.buf, tmp.len, false, out);
			break;
		}
		default:
			fmt_bad_verb(sp, v, out);
		}
		break;
	}
	case TV_NIL:
	case TV_NONE:
		if (sp->verb == 'v' || sp->verb == 's')
			fmt_pad(sp, "<nil>", 5, false, out);
		else
			fmt_bad_verb(sp, v, out);
		break;
	default:
		tv_print(v, &tmp, 0);
		fmt_pad(sp, tmp.buf, tmp.len, false, out);
		break;
	}
	strbuf_free(&tmp);
}

/* go_sprintf writes fmt.Sprintf(format, args...) for the verbs templates
 * use, with Go's markers for bad verbs, missing and extra arguments. */
static void
go_sprintf(const char *f, size_t flen, const struct tv *a, size_t n, struct strbuf *out)
{
	size_t i = 0, argi = 0;

	while (i < flen && out->len <= TMPL_MAX_OUTPUT) {
		struct fmt_spec sp;

		if (f[i] != '%') {
			strbuf_putc(out, f[i++]);
			continue;
		}
		i++;
		memset(&sp, 0, sizeof(sp));
		sp.width = sp.prec = -1;
		for (; i < flen; i++) {
			if (f[i] == '-') { sp.minus = true; sp.zero = false; }
			else if (f[i] == '+') sp.plus = true;
			else if (f[i] == '#') sp.sharp = true;
			else if (f[i] == ' ') sp.space = true;
			else if (f[i] == '0') sp.zero = !sp.minus;
			else break;
		}
		if (i < flen && f[i] == '*') {
			i++;
			if (argi < n && a[argi].k == TV_INT) {
				sp.width = (int)a[argi].i;
				if (sp.width < 0) {
					sp.minus = true;
					sp.width = -sp.width;
				}
			} else {
				strbuf_puts(out, "%!(BADWIDTH)");
			}
			argi++;
		} else {
			while (i < flen && f[i] >= '0' && f[i] <= '9') {
				sp.width = (sp.width < 0 ? 0 : sp.width) * 10 + (f[i] - '0');
				if (sp.width > 1000000)
					sp.width = 1000000;
				i++;
			}
		}
		if (i < flen && f[i] == '.') {
			i++;
			sp.prec = 0;
			if (i < flen && f[i] == '*') {
				i++;
				if (argi < n && a[argi].k == TV_INT && a[argi].i >= 0)
					sp.prec = (int)a[argi].i;
				else
					strbuf_puts(out, "%!(BADPREC)");
				argi++;
			} else {
				while (i < flen && f[i] >= '0' && f[i] <= '9') {
					sp.prec = sp.prec * 10 + (f[i] - '0');
					if (sp.prec > 1000000)
						sp.prec = 1000000;
					i++;
				}
			}
		}
		if (i >= flen) {
			strbuf_puts(out, "%!(NOVERB)");
			break;
		}
		sp.verb = f[i++];
		if (sp.verb == '%') {
			strbuf_putc(out, '%');
			continue;
		}
		if (argi >= n) {
			strbuf_printf(out, "%%!%c(MISSING)", sp.verb);
			continue;
		}
		fmt_one(&sp, &a[argi++], out);
	}
	if (argi < n) {
		strbuf_puts(out, "%!(EXTRA ");
		for (; argi < n; argi++) {
			if (a[argi].k == TV_NIL || a[argi].k == TV_NONE) {
				strbuf_puts(out, "<nil>");
			} else {
				strbuf_puts(out, tv_type(&a[argi]));
				strbuf_putc(out, '=');
				tv_print(&a[argi], out, 1);
			}
			if (argi + 1 < n)
				strbuf_puts(out, ", ");
		}
		strbuf_putc(out, ')');
	}
}

/* --- Prometheus' template functions and Go's builtins ---------------------- */

static int
x_ferr(struct texec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
x_ferr(struct texec *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->ferr, sizeof(x->ferr), fmt, ap);
	va_end(ap);
	return -1;
}

/* go_parse_float is strconv.ParseFloat(s, 64): 0 or -1 with Go's error. */
static int
go_parse_float(struct texec *x, const char *s, size_t len, double *out)
{
	char buf[256];
	size_t i = 0, j;
	bool digits = false, hex = false;
	char *end;
	struct strbuf q = STRBUF_INIT;

	if (len >= sizeof(buf))
		goto bad;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[i] == '+' || buf[i] == '-')
		i++;
	if (strcasecmp(buf + i, "inf") == 0 || strcasecmp(buf + i, "infinity") == 0) {
		*out = buf[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	if (strcasecmp(buf + i, "nan") == 0 && i == 0) {
		*out = NAN;
		return 0;
	}
	/* validate Go's syntax before strtod, which accepts more */
	j = i;
	if (buf[j] == '0' && (buf[j + 1] == 'x' || buf[j + 1] == 'X')) {
		hex = true;
		j += 2;
	}
	for (; buf[j]; j++) {
		char c = buf[j];

		if (c == '_')
			goto bad;
		if ((c >= '0' && c <= '9') || (hex && isxdigit((unsigned char)c))) {
			digits = true;
			continue;
		}
		if (c == '.')
			continue;
		break;
	}
	if (!digits)
		goto bad;
	if (buf[j] != '\0') {
		if ((!hex && (buf[j] == 'e' || buf[j] == 'E')) || (hex && (buf[j] == 'p' || buf[j] == 'P'))) {
			j++;
			if (buf[j] == '+' || buf[j] == '-')
				j++;
			if (!isdigit((unsigned char)buf[j]))
				goto bad;
			while (isdigit((unsigned char)buf[j]))
				j++;
		}
		if (buf[j] != '\0')
			goto bad;
	} else if (hex) {
		goto bad;	/* Go requires the p exponent in hex floats */
	}
	errno = 0;
	*out = strtod(buf, &end);
	if (*end != '\0')
		goto bad;
	if (errno == ERANGE && (*out == HUGE_VAL || *out == -HUGE_VAL)) {
		labels_quote(s, len, &q);
		x_ferr(x, "strconv.ParseFloat: parsing %s: value out of range", strbuf_cstr(&q));
		strbuf_free(&q);
		return -1;
	}
	return 0;
bad:
	labels_quote(s, len, &q);
	x_ferr(x, "strconv.ParseFloat: parsing %s: invalid syntax", strbuf_cstr(&q));
	strbuf_free(&q);
	return -1;
}

/* convert_to_float is Prometheus' convertToFloat. */
static int
convert_to_float(struct texec *x, const struct tv *v, double *out)
{
	switch (v->k) {
	case TV_FLOAT:
		*out = v->f;
		return 0;
	case TV_STRING:
		return go_parse_float(x, v->s, v->len, out);
	case TV_INT:
		*out = (double)v->i;
		return 0;
	default:
		return x_ferr(x, "can't convert %s to float", tv_type(v));
	}
}

static struct tv
tv_from(struct texec *x, struct strbuf *sb)
{
	struct tv v;

	if (sb->len > TMPL_MAX_OUTPUT) {
		strbuf_free(sb);
		x_fail(x, "strata: template output exceeded %u bytes", TMPL_MAX_OUTPUT);
	}
	v = tv_strbuf(x, sb);
	strbuf_free(sb);
	return v;
}

static int
f_humanize(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	static const char *big[] = { "k", "M", "G", "T", "P", "E", "Z", "Y" };
	static const char *small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
	struct strbuf sb = STRBUF_INIT;
	const char *prefix = "";
	double v;
	size_t i;

	(void)n;
	if (convert_to_float(x, &a[0], &v) < 0)
		return -1;
	if (v == 0 || isnan(v) || isinf(v)) {
		tmpl_format_g(&sb, v, 4);
	} else if (fabs(v) >= 1) {
		for (i = 0; i < 8; i++) {
			if (fabs(v) < 1000)
				break;
			prefix = big[i];
			v /= 1000;
		}
		tmpl_format_g(&sb, v, 4);
		strbuf_puts(&sb, prefix);
	} else {
		for (i = 0; i < 8; i++) {
			if (fabs(v) >= 1)
				break;
			prefix = small[i];
			v *= 1000;
		}
		tmpl_format_g(&sb, v, 4);
		strbuf_puts(&sb, prefix);
	}
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_humanize1024(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	static const char *pre[] = { "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi" };
	struct strbuf sb = STRBUF_INIT;
	const char *prefix = "";
	double v;
	size_t i;

	(void)n;
	if (convert_to_float(x, &a[0], &v) < 0)
		return -1;
	if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
		tmpl_format_g(&sb, v, 4);
	} else {
		for (i = 0; i < 8; i++) {
			if (fabs(v) < 1024)
				break;
			prefix = pre[i];
			v /= 1024;
		}
		tmpl_format_g(&sb, v, 4);
		strbuf_puts(&sb, prefix);
	}
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_humanize_duration(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	static const char *small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
	struct strbuf sb = STRBUF_INIT;
	const char *prefix = "";
	double v;
	size_t i;

	(void)n;
	if (convert_to_float(x, &a[0], &v) < 0)
		return -1;
	if (isnan(v) || isinf(v)) {
		tmpl_format_g(&sb, v, 4);
	} else if (v == 0) {
		tmpl_format_g(&sb, v, 4);
		strbuf_putc(&sb, 's');
	} else if (fabs(v) >= 1) {
		const char *sign = "";
		int64_t d, s, m, h, days;

		if (v < 0) {
			sign = "-";
			v = -v;
		}
		d = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
		s = d % 60;
		m = (d / 60) % 60;
		h = (d / 60 / 60) % 24;
		days = d / 60 / 60 / 24;
		if (days != 0)
			strbuf_printf(&sb, "%s%" PRId64 "d %" PRId64 "h %" PRId64 "m %" PRId64 "s",
			    sign, days, h, m, s);
		else if (h != 0)
			strbuf_printf(&sb, "%s%" PRId64 "h %" PRId64 "m %" PRId64 "s", sign, h, m, s);
		else if (m != 0)
			strbuf_printf(&sb, "%s%" PRId64 "m %" PRId64 "s", sign, m, s);
		else {
			strbuf_puts(&sb, sign);
			tmpl_format_g(&sb, v, 4);
			strbuf_putc(&sb, 's');
		}
	} else {
		for (i = 0; i < 8; i++) {
			if (fabs(v) >= 1)
				break;
			prefix = small[i];
			v *= 1000;
		}
		tmpl_format_g(&sb, v, 4);
		strbuf_printf(&sb, "%ss", prefix);
	}
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_humanize_percentage(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf sb = STRBUF_INIT;
	double v;

	(void)n;
	if (convert_to_float(x, &a[0], &v) < 0)
		return -1;
	tmpl_format_g(&sb, v * 100, 4);
	strbuf_putc(&sb, '%');
	*ret = tv_from(x, &sb);
	return 0;
}

/* float_to_ms is Prometheus' floatToTime, to milliseconds. */
static int
float_to_ms(struct texec *x, double v, int64_t *ms)
{
	double ns = v * 1e9;

	if (ns > 9223372036854775807.0 || ns < -9223372036854775808.0) {
		struct strbuf sb = STRBUF_INIT;

		promql_format_float(v, 'g', &sb);
		x_ferr(x, "%s cannot be represented as a nanoseconds timestamp since it overflows int64",
		    strbuf_cstr(&sb));
		strbuf_free(&sb);
		return -1;
	}
	*ms = (int64_t)ns / 1000000;
	return 0;
}

static int
f_humanize_timestamp(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf sb = STRBUF_INIT;
	double v;
	int64_t ms;

	(void)n;
	if (convert_to_float(x, &a[0], &v) < 0)
		return -1;
	if (isnan(v) || isinf(v)) {
		tmpl_format_g(&sb, v, 4);
		*ret = tv_from(x, &sb);
		return 0;
	}
	if (float_to_ms(x, v, &ms) < 0)
		return -1;
	tmpl_format_time(&sb, ms);
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_to_time(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	double v;
	int64_t ms;

	(void)n;
	if (convert_to_float(x, &a[0], &v) < 0)
		return -1;
	if (isnan(v) || isinf(v))
		return x_ferr(x, "value is NaN or Inf");
	if (float_to_ms(x, v, &ms) < 0)
		return -1;
	*ret = tv_none();
	ret->k = TV_TIME;
	ret->ms = ms;
	return 0;
}

static int
f_query(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct tmpl_sample *res = NULL;
	struct tresult *r;
	size_t nres = 0, i;
	char err[1024];
	char *q;

	(void)n;
	if (x->env->query == NULL)
		return x_ferr(x, "queries are not available in this template");
	q = arena_strndup(&x->ar, a[0].s, a[0].len);
	err[0] = '\0';
	if (x->env->query(x->env->query_arg, q, x->env->ts, &res, &nres, err, sizeof(err)) < 0)
		return x_ferr(x, "%s", err);
	r = arena_alloc(&x->ar, sizeof(*r));
	r->n = nres;
	r->v = arena_alloc(&x->ar, (nres + 1) * sizeof(*r->v));
	for (i = 0; i < nres; i++) {
		struct tsample *s = arena_alloc(&x->ar, sizeof(*s));

		x_hold(x, res[i].ls);
		tmap_from_labels(x, &s->labels, res[i].ls);
		s->v = res[i].v;
		r->v[i] = s;
	}
	mem_free(res);
	*ret = tv_none();
	ret->k = TV_RESULT;
	ret->res = r;
	return 0;
}

static int
f_first(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	if (a[0].res == NULL || a[0].res->n == 0)
		return x_ferr(x, "first() called on vector with no elements");
	*ret = tv_none();
	ret->k = TV_SAMPLE;
	ret->smp = a[0].res->v[0];
	return 0;
}

static int
nil_sample(struct texec *x)
{
	return x_ferr(x, "runtime error: invalid memory address or nil pointer dereference");
}

static int
f_label(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	const char *v;
	char *k;

	(void)n;
	if (a[1].smp == NULL)
		return nil_sample(x);
	k = arena_strndup(&x->ar, a[0].s, a[0].len);
	if (!tmap_get(&a[1].smp->labels, k, &v))
		v = "";
	*ret = tv_str(v, strlen(v));
	return 0;
}

static int
f_value(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	if (a[0].smp == NULL)
		return nil_sample(x);
	*ret = tv_float(a[0].smp->v);
	return 0;
}

static int
f_strvalue(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	const char *v;

	(void)n;
	if (a[0].smp == NULL)
		return nil_sample(x);
	if (!tmap_get(&a[0].smp->labels, "__value__", &v))
		v = "";
	*ret = tv_str(v, strlen(v));
	return 0;
}

static int
f_args(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct targs *ar = arena_alloc(&x->ar, sizeof(*ar));
	size_t i, j;

	ar->n = n;
	ar->k = arena_alloc(&x->ar, (n + 1) * sizeof(*ar->k));
	ar->v = arena_alloc(&x->ar, (n + 1) * sizeof(*ar->v));
	for (i = 0; i < n; i++) {
		char key[32];

		snprintf(key, sizeof(key), "arg%zu", i);
		ar->k[i] = arena_strndup(&x->ar, key, strlen(key));
		ar->v[i] = a[i];
	}
	/* keys sorted as strings (arg0, arg1, arg10, arg2, ...) for printing */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(ar->k[j - 1], ar->k[j]) > 0; j--) {
			const char *tk = ar->k[j];
			struct tv tvv = ar->v[j];

			ar->k[j] = ar->k[j - 1];
			ar->v[j] = ar->v[j - 1];
			ar->k[j - 1] = tk;
			ar->v[j - 1] = tvv;
		}
	*ret = tv_none();
	ret->k = TV_ARGS;
	ret->args = ar;
	return 0;
}

/* search_regex compiles pattern for unanchored search: (?s:.*?)(pattern)(?s:.*). */
static struct regex *
search_regex(struct texec *x, const char *pat, size_t len, char *err, size_t errlen)
{
	struct strbuf sb = STRBUF_INIT;
	struct regex *re, *check;

	/* compile the pattern alone first, for Go's message on a bad pattern */
	check = regex_new(pat, len, err, errlen);
	if (check == NULL)
		return NULL;
	regex_free(check);
	strbuf_puts(&sb, "(?s:.*?)(");
	strbuf_append(&sb, pat, len);
	strbuf_puts(&sb, ")(?s:.*)");
	re = regex_new(sb.buf, sb.len, err, errlen);
	strbuf_free(&sb);
	(void)x;
	return re;
}

/* go_expand appends Go's Regexp.ExpandString of tmpl for a match whose
 * user groups are shifted by one in m (group 1 is the whole match). */
static void
go_expand(const struct regex *re, const char *tmpl, size_t tlen, const char *s,
    const struct regex_match *m, struct strbuf *out)
{
	size_t i = 0;

	while (i < tlen) {
		const char *name;
		size_t nlen, j;
		bool brace = false;
		long g = -1;

		if (tmpl[i] != '$') {
			strbuf_putc(out, tmpl[i++]);
			continue;
		}
		if (i + 1 < tlen && tmpl[i + 1] == '$') {
			strbuf_putc(out, '$');
			i += 2;
			continue;
		}
		j = i + 1;
		if (j < tlen && tmpl[j] == '{') {
			brace = true;
			j++;
		}
		name = tmpl + j;
		while (j < tlen && (isalnum((unsigned char)tmpl[j]) || tmpl[j] == '_'))
			j++;
		nlen = (size_t)(tmpl + j - name);
		if (nlen == 0 || (brace && (j >= tlen || tmpl[j] != '}'))) {
			/* malformed: copy the '$' literally */
			strbuf_putc(out, '$');
			i++;
			continue;
		}
		if (brace)
			j++;
		i = j;
		{
			size_t k;
			bool num = true;

			for (k = 0; k < nlen; k++)
				if (!isdigit((unsigned char)name[k]))
					num = false;
			if (num) {
				g = 0;
				for (k = 0; k < nlen && g < 100000; k++)
					g = g * 10 + (name[k] - '0');
			} else {
				int ng = regex_groups(re), gi;

				for (gi = 2; gi <= ng; gi++) {
					const char *gn = regex_group_name(re, gi);

					if (strlen(gn) == nlen && memcmp(gn, name, nlen) == 0) {
						g = gi - 1;
						break;
					}
				}
			}
		}
		if (g >= 0 && g + 1 < m->ngroups && m->start[g + 1] >= 0)
			strbuf_append(out, s + m->start[g + 1],
			    (size_t)(m->end[g + 1] - m->start[g + 1]));
	}
}

static int
f_re_replace_all(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf sb = STRBUF_INIT;
	char err[512];
	struct regex *re;
	const char *s = a[2].s;
	size_t len = a[2].len, pos = 0;
	long last_end = -1;

	(void)n;
	re = search_regex(x, a[0].s, a[0].len, err, sizeof(err));
	if (re == NULL) {
		struct strbuf q = STRBUF_INIT;

		strbuf_putc(&q, '`');
		strbuf_append(&q, a[0].s, a[0].len);
		strbuf_putc(&q, '`');
		x_ferr(x, "regexp: Compile(%s): %s", strbuf_cstr(&q), err);
		strbuf_free(&q);
		return -1;
	}
	while (pos <= len) {
		struct regex_match m;
		size_t ms, me;

		if (sb.len > TMPL_MAX_OUTPUT)
			break;	/* tv_from refuses it */

		if (!regex_match_groups(re, s + pos, len - pos, &m) || m.ngroups < 2 || m.start[1] < 0)
			break;
		ms = pos + (size_t)m.start[1];
		me = pos + (size_t)m.end[1];
		strbuf_append(&sb, s + pos, ms - pos);
		if (me == ms && (long)ms == last_end) {
			/* an empty match right after the previous match is ignored */
		} else {
			go_expand(re, a[1].s, a[1].len, s + pos, &m, &sb);
			last_end = (long)me;
		}
		if (me > ms) {
			pos = me;
		} else {
			if (ms >= len)
				break;
			/* step over one rune */
			{
				size_t rl = 1;

				while (ms + rl < len && ((unsigned char)s[ms + rl] & 0xc0) == 0x80)
					rl++;
				strbuf_append(&sb, s + ms, rl);
				pos = ms + rl;
			}
		}
	}
	if (pos < len)
		strbuf_append(&sb, s + pos, len - pos);
	regex_free(re);
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_match(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	char err[512];
	struct regex *re;

	(void)n;
	re = search_regex(x, a[0].s, a[0].len, err, sizeof(err));
	if (re == NULL)
		return x_ferr(x, "%s", err);
	*ret = tv_bool(regex_match(re, a[1].s, a[1].len));
	regex_free(re);
	return 0;
}

static int
f_safe_html(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)x;
	(void)n;
	*ret = a[0];
	ret->k = TV_HTML;
	return 0;
}

/* Simple Unicode case mapping for the scripts alert labels use (ASCII,
 * Latin-1, Latin Extended-A, Greek, Cyrillic), as Go's unicode.To*. */
static uint32_t
rune_lower(uint32_t r)
{
	if (r < 0x80)
		return (uint32_t)tolower((int)r);
	if (r >= 0xc0 && r <= 0xde && r != 0xd7)
		return r + 0x20;
	if (r == 0x130)
		return 'i';
	if ((r >= 0x100 && r <= 0x137 && !(r & 1)) || (r >= 0x14a && r <= 0x177 && !(r & 1)) ||
	    (r >= 0x139 && r <= 0x148 && (r & 1)) || r == 0x179 || r == 0x17b || r == 0x17d)
		return r + 1;
	if (r == 0x178)
		return 0xff;
	if (r >= 0x391 && r <= 0x3ab && r != 0x3a2)
		return r + 0x20;
	if (r >= 0x410 && r <= 0x42f)
		return r + 0x20;
	if (r >= 0x400 && r <= 0x40f)
		return r + 0x50;
	return r;
}

static uint32_t
rune_upper(uint32_t r)
{
	if (r < 0x80)
		return (uint32_t)toupper((int)r);
	if (r == 0xb5)
		return 0x39c;
	if (r >= 0xe0 && r <= 0xfe && r != 0xf7)
		return r - 0x20;
	if (r == 0xff)
		return 0x178;
	if (r == 0x131)
		return 'I';
	if ((r >= 0x101 && r <= 0x137 && (r & 1)) || (r >= 0x14b && r <= 0x177 && (r & 1)) ||
	    (r >= 0x13a && r <= 0x148 && !(r & 1)) || r == 0x17a || r == 0x17c || r == 0x17e)
		return r - 1;
	if (r == 0x3c2)
		return 0x3a3;
	if (r >= 0x3b1 && r <= 0x3cb)
		return r - 0x20;
	if (r >= 0x430 && r <= 0x44f)
		return r - 0x20;
	if (r >= 0x450 && r <= 0x45f)
		return r - 0x50;
	return r;
}

static void
put_rune(struct strbuf *sb, uint32_t cp)
{
	if (cp < 0x80) {
		strbuf_putc(sb, (char)cp);
	} else if (cp < 0x800) {
		strbuf_putc(sb, (char)(0xc0 | (cp >> 6)));
		strbuf_putc(sb, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		strbuf_putc(sb, (char)(0xe0 | (cp >> 12)));
		strbuf_putc(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
		strbuf_putc(sb, (char)(0x80 | (cp & 0x3f)));
	} else {
		strbuf_putc(sb, (char)(0xf0 | (cp >> 18)));
		strbuf_putc(sb, (char)(0x80 | ((cp >> 12) & 0x3f)));
		strbuf_putc(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
		strbuf_putc(sb, (char)(0x80 | (cp & 0x3f)));
	}
}

/* map_runes writes s with each rune mapped: mode 'u' upper, 'l' lower,
 * 't' title (the first letter of each word upper, as strings.Title). */
static struct tv
map_runes(struct texec *x, const char *s, size_t len, char mode)
{
	struct strbuf sb = STRBUF_INIT;
	bool prev_sep = true;
	size_t i = 0;

	while (i < len) {
		size_t rl;
		uint32_t r = decode_rune(s + i, len - i, &rl);

		if (r >= 0x80 && rl == 1) {
			/* not UTF-8: copied as is */
			strbuf_putc(&sb, s[i]);
			i++;
			prev_sep = false;
			continue;
		}
		if (mode == 'u') {
			put_rune(&sb, rune_upper(r));
		} else if (mode == 'l') {
			put_rune(&sb, rune_lower(r));
		} else {
			bool sep = r < 0x80 ? !(isalnum((int)r) || r == '_') :
			    (r == 0x85 || r == 0xa0 || r == 0x2028 || r == 0x2029 || r == 0x3000);

			put_rune(&sb, prev_sep && !sep ? rune_upper(r) : r);
			prev_sep = sep;
		}
		i += rl;
	}
	return tv_from(x, &sb);
}

static int
f_to_upper(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	*ret = map_runes(x, a[0].s, a[0].len, 'u');
	return 0;
}

static int
f_to_lower(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	*ret = map_runes(x, a[0].s, a[0].len, 'l');
	return 0;
}

static int
f_title(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	*ret = map_runes(x, a[0].s, a[0].len, 't');
	return 0;
}

static int
f_link(struct texec *x, struct tv *a, const char *tab, struct tv *ret)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	strbuf_puts(&sb, "/graph?g0.expr=");
	for (i = 0; i < a[0].len; i++) {
		unsigned char c = (unsigned char)a[0].s[i];

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			strbuf_putc(&sb, (char)c);
		else if (c == ' ')
			strbuf_putc(&sb, '+');
		else
			strbuf_printf(&sb, "%%%02X", c);
	}
	strbuf_printf(&sb, "&g0.tab=%s", tab);
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_graph_link(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	return f_link(x, a, "0", ret);
}

static int
f_table_link(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	return f_link(x, a, "1", ret);
}

static int
cmp_by_label(const struct tsample *a, const struct tsample *b, const char *label)
{
	const char *va = "", *vb = "";

	tmap_get(&a->labels, label, &va);
	tmap_get(&b->labels, label, &vb);
	return strcmp(va, vb);
}

static int
f_sort_by_label(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	char *label = arena_strndup(&x->ar, a[0].s, a[0].len);
	struct tresult *r = arena_alloc(&x->ar, sizeof(*r));
	size_t i, j, cnt = a[1].res ? a[1].res->n : 0;

	(void)n;
	r->n = cnt;
	r->v = arena_alloc(&x->ar, (cnt + 1) * sizeof(*r->v));
	for (i = 0; i < cnt; i++)
		r->v[i] = a[1].res->v[i];
	/* stable insertion sort */
	for (i = 1; i < cnt; i++)
		for (j = i; j > 0 && cmp_by_label(r->v[j - 1], r->v[j], label) > 0; j--) {
			struct tsample *t = r->v[j];

			r->v[j] = r->v[j - 1];
			r->v[j - 1] = t;
		}
	*ret = tv_none();
	ret->k = TV_RESULT;
	ret->res = r;
	return 0;
}

/* split_host_port is Go's net.SplitHostPort; returns false on error. */
static bool
split_host_port(const char *hp, size_t len, size_t *hs, size_t *hl, size_t *ps, size_t *pl)
{
	long i = -1, end = -1;
	size_t k, j0 = 0, k0 = 0;

	for (k = 0; k < len; k++)
		if (hp[k] == ':')
			i = (long)k;
	if (i < 0)
		return false;
	if (len > 0 && hp[0] == '[') {
		for (k = 0; k < len; k++)
			if (hp[k] == ']') {
				end = (long)k;
				break;
			}
		if (end < 0)
			return false;
		if ((size_t)end + 1 == len)
			return false;
		if (end + 1 != i)
			return false;
		*hs = 1;
		*hl = (size_t)end - 1;
		j0 = 1;
		k0 = (size_t)end + 1;
	} else {
		for (k = 0; k < (size_t)i; k++)
			if (hp[k] == ':')
				return false;
		*hs = 0;
		*hl = (size_t)i;
	}
	for (k = j0; k < len; k++)
		if (hp[k] == '[')
			return false;
	for (k = k0; k < len; k++)
		if (hp[k] == ']')
			return false;
	*ps = (size_t)i + 1;
	*pl = len - (size_t)i - 1;
	return true;
}

static int
f_strip_port(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	size_t hs, hl, ps, pl;

	(void)x;
	(void)n;
	if (!split_host_port(a[0].s, a[0].len, &hs, &hl, &ps, &pl))
		*ret = tv_str(a[0].s, a[0].len);
	else
		*ret = tv_str(a[0].s + hs, hl);
	return 0;
}

static bool
is_ip(const char *s, size_t len)
{
	char buf[64];
	unsigned char addr[16];
	size_t i, dots = 0;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (memchr(buf, ':', len) != NULL)
		return inet_pton(AF_INET6, buf, addr) == 1;
	/* Go's ParseIP for IPv4: four decimal fields 0..255, no leading zeros */
	for (i = 0; i < len; i++) {
		if (buf[i] == '.')
			dots++;
		else if (!isdigit((unsigned char)buf[i]))
			return false;
	}
	if (dots != 3)
		return false;
	{
		const char *p = buf;
		int f;

		for (f = 0; f < 4; f++) {
			int v = 0, nd = 0;

			while (*p && *p != '.') {
				if (nd > 0 && v == 0)
					return false;
				v = v * 10 + (*p - '0');
				nd++;
				p++;
				if (v > 255)
					return false;
			}
			if (nd == 0)
				return false;
			if (*p == '.')
				p++;
		}
	}
	return true;
}

static int
f_strip_domain(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	size_t hs = 0, hl = a[0].len, ps = 0, pl = 0, i;
	struct strbuf sb = STRBUF_INIT;

	(void)n;
	if (!split_host_port(a[0].s, a[0].len, &hs, &hl, &ps, &pl)) {
		hs = 0;
		hl = a[0].len;
		pl = 0;
	}
	if (is_ip(a[0].s + hs, hl)) {
		*ret = tv_str(a[0].s, a[0].len);
		return 0;
	}
	for (i = 0; i < hl; i++)
		if (a[0].s[hs + i] == '.')
			break;
	hl = i;
	if (pl > 0) {
		if (memchr(a[0].s + hs, ':', hl) != NULL) {
			strbuf_putc(&sb, '[');
			strbuf_append(&sb, a[0].s + hs, hl);
			strbuf_putc(&sb, ']');
		} else {
			strbuf_append(&sb, a[0].s + hs, hl);
		}
		strbuf_putc(&sb, ':');
		strbuf_append(&sb, a[0].s + ps, pl);
		*ret = tv_from(x, &sb);
		return 0;
	}
	*ret = tv_str(a[0].s + hs, hl);
	return 0;
}

static int
f_path_prefix(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	const char *u = x->env->external_url ? x->env->external_url : "", *p;

	(void)a;
	(void)n;
	p = strstr(u, "://");
	p = p != NULL ? strchr(p + 3, '/') : NULL;
	if (p == NULL) {
		*ret = tv_str("", 0);
	} else {
		size_t len = strcspn(p, "?#");

		*ret = tv_str(p, len);
	}
	return 0;
}

static int
f_external_url(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	const char *u = x->env->external_url ? x->env->external_url : "";

	(void)a;
	(void)n;
	*ret = tv_str(u, strlen(u));
	return 0;
}

static int
f_parse_duration(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	char err[256];
	int64_t ms;

	(void)n;
	if (a[0].len == 1 && a[0].s[0] == '0') {
		*ret = tv_float(0);
		return 0;
	}
	if (a[0].len == 0)
		return x_ferr(x, "empty duration string");
	if (time_parse_duration(a[0].s, a[0].len, &ms, err, sizeof(err)) < 0) {
		struct strbuf q = STRBUF_INIT;

		labels_quote(a[0].s, a[0].len, &q);
		x_ferr(x, "not a valid duration string: %s", strbuf_cstr(&q));
		strbuf_free(&q);
		return -1;
	}
	*ret = tv_float((double)ms / 1000.0);
	return 0;
}

/* builtins */

static int
f_not(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)x;
	(void)n;
	*ret = tv_bool(!tv_truth(&a[0]));
	return 0;
}

static int
f_len(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)n;
	switch (a[0].k) {
	case TV_STRING: case TV_HTML: *ret = tv_int((int64_t)a[0].len); return 0;
	case TV_MAP: *ret = tv_int((int64_t)a[0].map->n); return 0;
	case TV_ARGS: *ret = tv_int((int64_t)a[0].args->n); return 0;
	case TV_RESULT: *ret = tv_int((int64_t)a[0].res->n); return 0;
	case TV_SAMPLE:
		if (a[0].smp == NULL)
			return x_ferr(x, "len of nil pointer");
		return x_ferr(x, "len of type template.sample");
	case TV_NONE: case TV_NIL:
		return x_ferr(x, "len of untyped nil");
	default:
		return x_ferr(x, "len of type %s", tv_type(&a[0]));
	}
}

static int
f_index(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct tv item = a[0];
	size_t i;

	for (i = 1; i < n; i++) {
		switch (item.k) {
		case TV_MAP: {
			const char *v;
			char *k;

			if (a[i].k != TV_STRING)
				return x_ferr(x, "value has type %s; should be string", tv_type(&a[i]));
			k = arena_strndup(&x->ar, a[i].s, a[i].len);
			if (!tmap_get(item.map, k, &v))
				v = "";
			item = tv_str(v, strlen(v));
			break;
		}
		case TV_RESULT:
			if (a[i].k != TV_INT)
				return x_ferr(x, "cannot index slice/array with type %s", tv_type(&a[i]));
			if (a[i].i < 0 || (size_t)a[i].i >= item.res->n)
				return x_ferr(x, "index out of range: %" PRId64, a[i].i);
			{
				const struct tsample *s = item.res->v[a[i].i];

				item = tv_none();
				item.k = TV_SAMPLE;
				item.smp = s;
			}
			break;
		case TV_STRING:
			if (a[i].k != TV_INT)
				return x_ferr(x, "cannot index slice/array with type %s", tv_type(&a[i]));
			if (a[i].i < 0 || (size_t)a[i].i >= item.len)
				return x_ferr(x, "index out of range: %" PRId64, a[i].i);
			item = tv_int((unsigned char)item.s[a[i].i]);
			break;
		case TV_NONE: case TV_NIL:
			return x_ferr(x, "index of untyped nil");
		default:
			return x_ferr(x, "can't index item of type %s", tv_type(&item));
		}
	}
	*ret = item;
	return 0;
}

enum basic_kind { K_INVALID, K_BOOL, K_INT, K_FLOAT, K_STRING };

static enum basic_kind
basic_kind(const struct tv *v)
{
	switch (v->k) {
	case TV_BOOL: return K_BOOL;
	case TV_INT: return K_INT;
	case TV_FLOAT: return K_FLOAT;
	case TV_STRING: case TV_HTML: return K_STRING;
	default: return K_INVALID;
	}
}

static int
tv_equal(struct texec *x, const struct tv *a, const struct tv *b, bool *eq)
{
	enum basic_kind ka = basic_kind(a), kb = basic_kind(b);

	if (ka != kb) {
		if (a->k != TV_NONE && b->k != TV_NONE && a->k != TV_NIL && b->k != TV_NIL)
			return x_ferr(x, "incompatible types for comparison");
		*eq = false;
		return 0;
	}
	switch (ka) {
	case K_BOOL: *eq = a->b == b->b; return 0;
	case K_INT: *eq = a->i == b->i; return 0;
	case K_FLOAT: *eq = a->f == b->f; return 0;
	case K_STRING: *eq = a->len == b->len && memcmp(a->s, b->s, a->len) == 0; return 0;
	case K_INVALID:
		if ((a->k == TV_NONE || a->k == TV_NIL) && (b->k == TV_NONE || b->k == TV_NIL)) {
			*eq = true;
			return 0;
		}
		if (a->k == TV_MAP || a->k == TV_RESULT || a->k == TV_ARGS)
			return x_ferr(x, "non-comparable type %s", tv_type(a));
		if (a->k == TV_SAMPLE && b->k == TV_SAMPLE) {
			*eq = a->smp == b->smp;
			return 0;
		}
		return x_ferr(x, "invalid type for comparison");
	}
	return 0;
}

static int
f_eq(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	size_t i;

	if (n < 2)
		return x_ferr(x, "missing argument for comparison");
	for (i = 1; i < n; i++) {
		bool eq;

		if (tv_equal(x, &a[0], &a[i], &eq) < 0)
			return -1;
		if (eq) {
			*ret = tv_bool(true);
			return 0;
		}
	}
	*ret = tv_bool(false);
	return 0;
}

static int
f_ne(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	bool eq;

	(void)n;
	if (tv_equal(x, &a[0], &a[1], &eq) < 0)
		return -1;
	*ret = tv_bool(!eq);
	return 0;
}

static int
tv_less(struct texec *x, const struct tv *a, const struct tv *b, bool *lt)
{
	enum basic_kind ka = basic_kind(a), kb = basic_kind(b);

	if (ka == K_INVALID || kb == K_INVALID)
		return x_ferr(x, "invalid type for comparison");
	if (ka != kb)
		return x_ferr(x, "incompatible types for comparison");
	switch (ka) {
	case K_BOOL: return x_ferr(x, "invalid type for comparison");
	case K_INT: *lt = a->i < b->i; return 0;
	case K_FLOAT: *lt = a->f < b->f; return 0;
	case K_STRING: {
		size_t m = a->len < b->len ? a->len : b->len;
		int c = memcmp(a->s, b->s, m);

		*lt = c < 0 || (c == 0 && a->len < b->len);
		return 0;
	}
	case K_INVALID: break;
	}
	return 0;
}

static int
f_cmp(struct texec *x, struct tv *a, struct tv *ret, int op)
{
	bool lt, eq = false;

	if (tv_less(x, &a[0], &a[1], &lt) < 0)
		return -1;
	if (op == 1 || op == 2) {	/* le, gt need equality */
		if (tv_equal(x, &a[0], &a[1], &eq) < 0)
			return -1;
	}
	switch (op) {
	case 0: *ret = tv_bool(lt); break;		/* lt */
	case 1: *ret = tv_bool(lt || eq); break;	/* le */
	case 2: *ret = tv_bool(!(lt || eq)); break;	/* gt */
	default: *ret = tv_bool(!lt); break;		/* ge */
	}
	return 0;
}

static int f_lt(struct texec *x, struct tv *a, size_t n, struct tv *r) { (void)n; return f_cmp(x, a, r, 0); }
static int f_le(struct texec *x, struct tv *a, size_t n, struct tv *r) { (void)n; return f_cmp(x, a, r, 1); }
static int f_gt(struct texec *x, struct tv *a, size_t n, struct tv *r) { (void)n; return f_cmp(x, a, r, 2); }
static int f_ge(struct texec *x, struct tv *a, size_t n, struct tv *r) { (void)n; return f_cmp(x, a, r, 3); }

static int
f_print(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf sb = STRBUF_INIT;

	go_sprint(a, n, &sb);
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_println(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf sb = STRBUF_INIT;

	go_sprintln(a, n, &sb);
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_printf(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf sb = STRBUF_INIT;

	go_sprintf(a[0].s, a[0].len, a + 1, n - 1, &sb);
	*ret = tv_from(x, &sb);
	return 0;
}

/* eval_args is text/template's evalArgs: one string as is, else Sprint. */
static void
eval_args(const struct tv *a, size_t n, struct strbuf *out)
{
	if (n == 1 && a[0].k == TV_STRING)
		strbuf_append(out, a[0].s, a[0].len);
	else
		go_sprint(a, n, out);
}

static int
f_html(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf in = STRBUF_INIT, sb = STRBUF_INIT;
	size_t i;

	eval_args(a, n, &in);
	for (i = 0; i < in.len; i++) {
		switch (in.buf[i]) {
		case '"': strbuf_puts(&sb, "&#34;"); break;
		case '\'': strbuf_puts(&sb, "&#39;"); break;
		case '&': strbuf_puts(&sb, "&amp;"); break;
		case '<': strbuf_puts(&sb, "&lt;"); break;
		case '>': strbuf_puts(&sb, "&gt;"); break;
		case '\0': strbuf_puts(&sb, "\xef\xbf\xbd"); break;
		default: strbuf_putc(&sb, in.buf[i]);
		}
	}
	strbuf_free(&in);
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_js(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf in = STRBUF_INIT, sb = STRBUF_INIT;
	size_t i;

	eval_args(a, n, &in);
	for (i = 0; i < in.len; i++) {
		unsigned char c = (unsigned char)in.buf[i];

		switch (c) {
		case '\\': strbuf_puts(&sb, "\\\\"); break;
		case '\'': strbuf_puts(&sb, "\\'"); break;
		case '"': strbuf_puts(&sb, "\\\""); break;
		case '<': strbuf_puts(&sb, "\\u003C"); break;
		case '>': strbuf_puts(&sb, "\\u003E"); break;
		case '&': strbuf_puts(&sb, "\\u0026"); break;
		case '=': strbuf_puts(&sb, "\\u003D"); break;
		default:
			if (c < ' ')
				strbuf_printf(&sb, "\\u%04X", c);
			else
				strbuf_putc(&sb, (char)c);
		}
	}
	strbuf_free(&in);
	*ret = tv_from(x, &sb);
	return 0;
}

static int
f_urlquery(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	struct strbuf in = STRBUF_INIT, sb = STRBUF_INIT;
	size_t i;

	eval_args(a, n, &in);
	for (i = 0; i < in.len; i++) {
		unsigned char c = (unsigned char)in.buf[i];

		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			strbuf_putc(&sb, (char)c);
		else if (c == ' ')
			strbuf_putc(&sb, '+');
		else
			strbuf_printf(&sb, "%%%02X", c);
	}
	strbuf_free(&in);
	*ret = tv_from(x, &sb);
	return 0;
}

/* and and or are evaluated in x_call (they short-circuit); these entries
 * exist for the parser's function check and the argument counts. */
static int
f_and_or(struct texec *x, struct tv *a, size_t n, struct tv *ret)
{
	(void)x;
	*ret = a[n - 1];
	return 0;
}

static const struct tfunc tfuncs[] = {
	/* Prometheus' template functions */
	{ "args", 1, true, { A_ANY }, f_args, false },
	{ "externalURL", 0, false, { A_ANY }, f_external_url, false },
	{ "first", 1, false, { A_RESULT }, f_first, true },
	{ "graphLink", 1, false, { A_STRING }, f_graph_link, false },
	{ "humanize", 1, false, { A_ANY }, f_humanize, true },
	{ "humanize1024", 1, false, { A_ANY }, f_humanize1024, true },
	{ "humanizeDuration", 1, false, { A_ANY }, f_humanize_duration, true },
	{ "humanizePercentage", 1, false, { A_ANY }, f_humanize_percentage, true },
	{ "humanizeTimestamp", 1, false, { A_ANY }, f_humanize_timestamp, true },
	{ "label", 2, false, { A_STRING, A_SAMPLE }, f_label, false },
	{ "match", 2, false, { A_STRING, A_STRING }, f_match, true },
	{ "parseDuration", 1, false, { A_STRING }, f_parse_duration, true },
	{ "pathPrefix", 0, false, { A_ANY }, f_path_prefix, false },
	{ "query", 1, false, { A_STRING }, f_query, true },
	{ "reReplaceAll", 3, false, { A_STRING, A_STRING, A_STRING }, f_re_replace_all, false },
	{ "safeHtml", 1, false, { A_STRING }, f_safe_html, false },
	{ "sortByLabel", 2, false, { A_STRING, A_RESULT }, f_sort_by_label, false },
	{ "stripDomain", 1, false, { A_STRING }, f_strip_domain, false },
	{ "stripPort", 1, false, { A_STRING }, f_strip_port, false },
	{ "strvalue", 1, false, { A_SAMPLE }, f_strvalue, false },
	{ "tableLink", 1, false, { A_STRING }, f_table_link, false },
	{ "title", 1, false, { A_STRING }, f_title, false },
	{ "toLower", 1, false, { A_STRING }, f_to_lower, false },
	{ "toTime", 1, false, { A_ANY }, f_to_time, true },
	{ "toUpper", 1, false, { A_STRING }, f_to_upper, false },
	{ "value", 1, false, { A_SAMPLE }, f_value, false },
	/* Go's builtins */
	{ "and", 2, true, { A_ANY, A_ANY }, f_and_or, false },
	{ "eq", 2, true, { A_ANY, A_ANY }, f_eq, true },
	{ "ge", 2, false, { A_ANY, A_ANY }, f_ge, true },
	{ "gt", 2, false, { A_ANY, A_ANY }, f_gt, true },
	{ "html", 1, true, { A_ANY }, f_html, false },
	{ "index", 2, true, { A_ANY, A_ANY }, f_index, true },
	{ "js", 1, true, { A_ANY }, f_js, false },
	{ "le", 2, false, { A_ANY, A_ANY }, f_le, true },
	{ "len", 1, false, { A_ANY }, f_len, true },
	{ "lt", 2, false, { A_ANY, A_ANY }, f_lt, true },
	{ "ne", 2, false, { A_ANY, A_ANY }, f_ne, true },
	{ "not", 1, false, { A_ANY }, f_not, false },
	{ "or", 2, true, { A_ANY, A_ANY }, f_and_or, false },
	{ "print", 1, true, { A_ANY }, f_print, false },
	{ "printf", 2, true, { A_STRING, A_ANY }, f_printf, false },
	{ "println", 1, true, { A_ANY }, f_println, false },
	{ "urlquery", 1, true, { A_ANY }, f_urlquery, false },
};

static const struct tfunc *
func_lookup(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(tfuncs) / sizeof(tfuncs[0]); i++)
		if (strlen(tfuncs[i].name) == len && memcmp(tfuncs[i].name, name, len) == 0)
			return &tfuncs[i];
	return NULL;
}

/* --- evaluation ------------------------------------------------------------ */

static struct tv x_pipeline(struct texec *x, const struct tv *dot, const struct node *pipe);
static struct tv x_command(struct texec *x, const struct tv *dot, const struct node *cmd,
    const struct tv *final);

static void
x_at(struct texec *x, const struct node *n)
{
	x->at = n;
}

static void
x_push(struct texec *x, const char *name, const struct tv *v)
{
	if (x->nvars == x->capvars) {
		x->capvars = x->capvars ? x->capvars * 2 : 16;
		x->vars = mem_realloc(x->vars, x->capvars * sizeof(*x->vars));
	}
	x->vars[x->nvars].name = name;
	x->vars[x->nvars].val = *v;
	x->nvars++;
}

static struct tv
x_var(struct texec *x, const char *name)
{
	size_t i = x->nvars;

	while (i-- > x->vars_base)
		if (strcmp(x->vars[i].name, name) == 0)
			return x->vars[i].val;
	x_fail(x, "undefined variable: %s", name);
}

static void
x_setvar(struct texec *x, const char *name, const struct tv *v)
{
	size_t i = x->nvars;

	while (i-- > x->vars_base)
		if (strcmp(x->vars[i].name, name) == 0) {
			x->vars[i].val = *v;
			return;
		}
	x_fail(x, "undefined variable: %s", name);
}

static void
x_not_a_function(struct texec *x, const struct node *cmd, const struct tv *final)
{
	if ((cmd != NULL && cmd->n > 1) || final != NULL) {
		struct strbuf sb = STRBUF_INIT;
		char buf[256];

		node_string(cmd->v[0], &sb);
		snprintf(buf, sizeof(buf), "%s", strbuf_cstr(&sb));
		strbuf_free(&sb);
		x_fail(x, "can't give argument to non-function %s", buf);
	}
}

/* x_field_chain evaluates receiver.ids[0].ids[1]...; only the last may get
 * arguments (which no field accepts). */
static struct tv
x_field_chain(struct texec *x, struct tv recv, const char *const *ids, size_t n,
    const struct node *cmd, const struct tv *final)
{
	size_t i;
	bool has_args = (cmd != NULL && cmd->n > 1) || final != NULL;

	for (i = 0; i + 1 < n; i++)
		recv = x_field(x, &recv, ids[i], false);
	return x_field(x, &recv, ids[n - 1], has_args);
}

static struct tv
x_validate(struct texec *x, const struct tv *v, enum targ t)
{
	switch (t) {
	case A_ANY:
		if (v->k == TV_NONE) {
			struct tv nil = tv_none();

			nil.k = TV_NIL;
			return nil;
		}
		return *v;
	case A_STRING:
		if (v->k == TV_STRING)
			return *v;
		if (v->k == TV_NONE)
			x_fail(x, "invalid value; expected string");
		break;
	case A_RESULT:
		if (v->k == TV_RESULT)
			return *v;
		if (v->k == TV_NONE || v->k == TV_NIL) {
			struct tv r = tv_none();
			static const struct tresult empty = { 0, NULL };

			r.k = TV_RESULT;
			r.res = &empty;
			return r;
		}
		break;
	case A_SAMPLE:
		if (v->k == TV_SAMPLE)
			return *v;
		if (v->k == TV_NONE || v->k == TV_NIL) {
			struct tv r = tv_none();

			r.k = TV_SAMPLE;
			return r;
		}
		break;
	}
	x_fail(x, "wrong type for value; expected %s; got %s", targ_type(t), tv_type(v));
}

static struct tv
x_ideal_constant(struct texec *x, const struct node *n)
{
	bool hexint = n->srclen > 2 && n->src[0] == '0' && (n->src[1] == 'x' || n->src[1] == 'X') &&
	    memchr(n->src, 'p', n->srclen) == NULL && memchr(n->src, 'P', n->srclen) == NULL;
	bool runeint = n->srclen > 0 && n->src[0] == '\'';
	size_t i;
	bool floaty = false;

	for (i = 0; i < n->srclen; i++)
		if (strchr(".eEpP", n->src[i]) != NULL)
			floaty = true;
	x_at(x, n);
	if (n->is_float && !hexint && !runeint && floaty)
		return tv_float(n->f);
	if (n->is_int)
		return tv_int(n->i);
	if (n->is_uint)
		x_fail(x, "%.*s overflows int", (int)n->srclen, n->src);
	return tv_none();
}

/* x_arg evaluates argument n for a parameter of type t. */
static struct tv
x_arg(struct texec *x, const struct tv *dot, enum targ t, const struct node *n)
{
	struct tv v;

	x_at(x, n);
	switch (n->kind) {
	case N_DOT:
		return x_validate(x, dot, t);
	case N_NIL:
		if (t == A_STRING)
			x_fail(x, "cannot assign nil to string");
		return x_validate(x, &(struct tv){ .k = TV_NONE }, t);
	case N_FIELD:
		x_at(x, n);
		v = x_field_chain(x, *dot, n->ids, n->nids, NULL, NULL);
		return x_validate(x, &v, t);
	case N_VAR:
		x_at(x, n);
		v = x_var(x, n->ids[0]);
		if (n->nids > 1)
			v = x_field_chain(x, v, n->ids + 1, n->nids - 1, NULL, NULL);
		return x_validate(x, &v, t);
	case N_PIPE:
		v = x_pipeline(x, dot, n);
		return x_validate(x, &v, t);
	case N_IDENT: {
		struct node cmd;
		const struct node *argv[1];

		memset(&cmd, 0, sizeof(cmd));
		cmd.kind = N_CMD;
		cmd.pos = n->pos;
		cmd.line = n->line;
		argv[0] = n;
		cmd.v = (struct node **)argv;
		cmd.n = 1;
		v = x_command(x, dot, &cmd, NULL);
		return x_validate(x, &v, t);
	}
	case N_CHAIN:
		v = x_arg(x, dot, A_ANY, n->pipe);
		if (v.k == TV_NIL)
			v = tv_none();
		v = x_field_chain(x, v, n->ids, n->nids, NULL, NULL);
		return x_validate(x, &v, t);
	default:
		break;
	}
	switch (t) {
	case A_STRING:
		if (n->kind == N_STRING)
			return tv_str(n->s, n->len);
		{
			struct strbuf sb = STRBUF_INIT;
			char buf[256];

			node_string(n, &sb);
			snprintf(buf, sizeof(buf), "%s", strbuf_cstr(&sb));
			strbuf_free(&sb);
			x_fail(x, "expected string; found %s", buf);
		}
	case A_ANY:
		switch (n->kind) {
		case N_BOOL:
			return tv_bool(n->b);
		case N_STRING:
			return tv_str(n->s, n->len);
		case N_NUMBER:
			return x_ideal_constant(x, n);
		default:
			break;
		}
		break;
	default:
		break;
	}
	{
		struct strbuf sb = STRBUF_INIT;
		char buf[256];

		node_string(n, &sb);
		snprintf(buf, sizeof(buf), "%s", strbuf_cstr(&sb));
		strbuf_free(&sb);
		x_fail(x, "can't handle %s for arg of type %s", buf, targ_type(t));
	}
}

/* x_call calls function f (named by ident) with the command's arguments
 * after the first word and the pipeline's final value. */
static struct tv
x_call(struct texec *x, const struct tv *dot, const struct tfunc *f, const struct node *ident,
    const struct node *cmd, const struct tv *final)
{
	size_t nargs = cmd != NULL && cmd->n > 0 ? cmd->n - 1 : 0;
	size_t nin = nargs + (final != NULL ? 1 : 0), nfixed, i;
	struct node *const *args = cmd != NULL ? cmd->v + 1 : NULL;
	struct tv *argv, ret;

	x_at(x, ident);
	if (f->variadic) {
		nfixed = (size_t)f->nin - 1;
		if (nin < nfixed)
			x_fail(x, "wrong number of args for %s: want at least %d got %zu",
			    f->name, f->nin - 1, nargs);
	} else {
		nfixed = nargs;
		if (nin != (size_t)f->nin)
			x_fail(x, "wrong number of args for %s: want %d got %zu", f->name, f->nin, nin);
	}
	if (f->fn == f_and_or) {
		bool is_or = f->name[0] == 'o';
		struct tv v = tv_none();

		for (i = 0; i < nargs; i++) {
			v = x_arg(x, dot, A_ANY, args[i]);
			if (tv_truth(&v) == is_or)
				return v;
		}
		if (final != NULL)
			v = x_validate(x, final, A_ANY);
		return v;
	}
	argv = arena_zalloc(&x->ar, (nin + 1) * sizeof(*argv));
	for (i = 0; i < nfixed && i < nargs; i++)
		argv[i] = x_arg(x, dot, f->in[i], args[i]);
	if (f->variadic) {
		enum targ vt = f->in[f->nin - 1];

		for (; i < nargs; i++)
			argv[i] = x_arg(x, dot, vt, args[i]);
	}
	if (final != NULL) {
		enum targ t = f->in[f->nin > 0 ? f->nin - 1 : 0];

		argv[i] = x_validate(x, final, t);
	}
	x->ferr[0] = '\0';
	ret = tv_none();
	if (f->fn(x, argv, nin, &ret) < 0) {
		x_at(x, cmd != NULL ? cmd : ident);
		x_fail(x, "error calling %s: %s", f->name, x->ferr);
	}
	return ret;
}

static struct tv
x_command(struct texec *x, const struct tv *dot, const struct node *cmd, const struct tv *final)
{
	const struct node *first = cmd->v[0];
	struct tv v;

	switch (first->kind) {
	case N_FIELD:
		x_at(x, first);
		return x_field_chain(x, *dot, first->ids, first->nids, cmd, final);
	case N_CHAIN:
		x_at(x, first);
		v = x_arg(x, dot, A_ANY, first->pipe);
		if (v.k == TV_NIL)
			v = tv_none();
		return x_field_chain(x, v, first->ids, first->nids, cmd, final);
	case N_IDENT:
		return x_call(x, dot, first->fn, first, cmd, final);
	case N_PIPE:
		x_not_a_function(x, cmd, final);
		return x_pipeline(x, dot, first);
	case N_VAR:
		x_at(x, first);
		v = x_var(x, first->ids[0]);
		if (first->nids == 1) {
			x_not_a_function(x, cmd, final);
			return v;
		}
		return x_field_chain(x, v, first->ids + 1, first->nids - 1, cmd, final);
	default:
		break;
	}
	x_at(x, first);
	x_not_a_function(x, cmd, final);
	switch (first->kind) {
	case N_BOOL:
		return tv_bool(first->b);
	case N_DOT:
		return *dot;
	case N_NIL:
		x_fail(x, "nil is not a command");
	case N_NUMBER:
		return x_ideal_constant(x, first);
	case N_STRING:
		return tv_str(first->s, first->len);
	default:
		break;
	}
	x_fail(x, "can't evaluate command");
}

static struct tv
x_pipeline(struct texec *x, const struct tv *dot, const struct node *pipe)
{
	struct tv v = tv_none();
	bool have = false;
	size_t i;

	if (++x->depth > 10000)
		x_fail(x, "exceeded maximum template depth (100000)");
	x_at(x, pipe);
	for (i = 0; i < pipe->n; i++) {
		v = x_command(x, dot, pipe->v[i], have ? &v : NULL);
		have = true;
	}
	for (i = 0; i < pipe->ndecl; i++) {
		if (pipe->is_assign)
			x_setvar(x, pipe->decl[i]->ids[0], &v);
		else
			x_push(x, pipe->decl[i]->ids[0], &v);
	}
	x->depth--;
	return v;
}

static void x_walk(struct texec *x, const struct tv *dot, const struct node *n);

static void
x_walk_range(struct texec *x, const struct tv *dot, const struct node *r)
{
	size_t mark = x->nvars, i, count = 0;
	struct tv val;

	x_at(x, r);
	val = x_pipeline(x, dot, r->pipe);
	mark = x->nvars - r->pipe->ndecl;	/* the declarations are reset per element */
	switch (val.k) {
	case TV_MAP:
	case TV_ARGS:
	case TV_RESULT:
		count = val.k == TV_MAP ? val.map->n : val.k == TV_ARGS ? val.args->n : val.res->n;
		for (i = 0; i < count; i++) {
			struct tv key, elem;

			if (val.k == TV_MAP) {
				key = tv_str(val.map->k[i], strlen(val.map->k[i]));
				elem = tv_str(val.map->v[i], strlen(val.map->v[i]));
			} else if (val.k == TV_ARGS) {
				key = tv_str(val.args->k[i], strlen(val.args->k[i]));
				elem = val.args->v[i];
			} else {
				key = tv_int((int64_t)i);
				elem = tv_none();
				elem.k = TV_SAMPLE;
				elem.smp = val.res->v[i];
			}
			x->nvars = mark;
			if (r->pipe->ndecl > 0) {
				if (r->pipe->ndecl == 1) {
					x_push(x, r->pipe->decl[0]->ids[0], &elem);
				} else {
					x_push(x, r->pipe->decl[0]->ids[0], &key);
					x_push(x, r->pipe->decl[1]->ids[0], &elem);
				}
			}
			{
				size_t m2 = x->nvars;

				x_walk(x, &elem, r->list);
				x->nvars = m2;
			}
			if (x->walk == WALK_BREAK) {
				x->walk = WALK_NORMAL;
				break;
			}
			if (x->walk == WALK_CONTINUE)
				x->walk = WALK_NORMAL;
		}
		break;
	case TV_NONE:
	case TV_NIL:
		break;
	case TV_INT:
	case TV_STRING:
	default: {
		struct strbuf sb = STRBUF_INIT;
		char buf[256];

		tv_print(&val, &sb, 0);
		snprintf(buf, sizeof(buf), "%s", strbuf_cstr(&sb));
		strbuf_free(&sb);
		x_fail(x, "range can't iterate over %s", buf);
	}
	}
	if (count == 0 && r->elist != NULL)
		x_walk(x, dot, r->elist);
	x->nvars = mark;
}

static void
x_walk(struct texec *x, const struct tv *dot, const struct node *n)
{
	size_t i, mark;
	struct tv v;

	x_at(x, n);
	if (++x->steps > TMPL_MAX_STEPS)
		x_fail(x, "strata: template execution exceeded %d steps", TMPL_MAX_STEPS);
	if (x->out->len - x->out0 > TMPL_MAX_OUTPUT)
		x_fail(x, "strata: template output exceeded %u bytes", TMPL_MAX_OUTPUT);
	switch (n->kind) {
	case N_LIST:
		for (i = 0; i < n->n; i++) {
			x_walk(x, dot, n->v[i]);
			if (x->walk != WALK_NORMAL)
				return;
		}
		break;
	case N_TEXT:
		strbuf_append(x->out, n->s, n->len);
		break;
	case N_ACTION:
		v = x_pipeline(x, dot, n->pipe);
		if (n->pipe->ndecl == 0) {
			x_at(x, n);
			tv_print(&v, x->out, 0);
		}
		break;
	case N_IF:
	case N_WITH:
		mark = x->nvars;
		v = x_pipeline(x, dot, n->pipe);
		if (tv_truth(&v)) {
			if (n->kind == N_WITH)
				x_walk(x, &v, n->list);
			else
				x_walk(x, dot, n->list);
		} else if (n->elist != NULL) {
			x_walk(x, dot, n->elist);
		}
		x->nvars = mark;
		break;
	case N_RANGE:
		x_walk_range(x, dot, n);
		break;
	case N_TEMPLATE: {
		const struct tdef *def = NULL;
		size_t base = x->vars_base, nvars = x->nvars;
		const char *name = x->cur_name;

		for (i = 0; i < x->t->ndefs; i++)
			if (strcmp(x->t->defs[i].name, n->s) == 0)
				def = &x->t->defs[i];
		if (def == NULL) {
			struct strbuf q = STRBUF_INIT;
			char buf[256];

			labels_quote(n->s, n->len, &q);
			snprintf(buf, sizeof(buf), "%s", strbuf_cstr(&q));
			strbuf_free(&q);
			x_fail(x, "template %s not defined", buf);
		}
		if (x->tdepth >= TMPL_MAX_NEST)
			x_fail(x, "exceeded maximum template depth (%d)", TMPL_MAX_NEST);
		v = n->pipe != NULL ? x_pipeline(x, dot, n->pipe) : tv_none();
		x->tdepth++;
		x->vars_base = x->nvars;
		x->cur_name = def->name;
		x_push(x, "$", &v);
		x_walk(x, &v, def->root);
		x->cur_name = name;
		x->vars_base = base;
		x->nvars = nvars;
		x->tdepth--;
		break;
	}
	case N_BREAK:
		x->walk = WALK_BREAK;
		break;
	case N_CONTINUE:
		x->walk = WALK_CONTINUE;
		break;
	default:
		x_fail(x, "unknown node");
	}
}

/* tmpl_execute: see template.h. */
int
tmpl_execute(const struct tmpl *t, const struct tmpl_env *env, struct strbuf *out,
    char *err, size_t errlen)
{
	struct texec *x = mem_calloc(1, sizeof(*x));
	struct tv root;
	volatile int rc = 0;
	size_t i;

	x->t = t;
	x->env = env;
	x->out = out;
	x->err = err;
	x->errlen = errlen;
	x->out0 = out->len;
	x->cur_name = t->name;
	tmap_from_labels(x, &x->root[0], env->labels);
	tmap_from_labels(x, &x->root[1], env->external_labels);
	root = x_root(x);
	x_push(x, "$", &root);
	if (setjmp(x->jb) == 0) {
		x_walk(x, &root, t->root);
		if (out->len - x->out0 > TMPL_MAX_OUTPUT) {
			x->at = NULL;
			x_fail(x, "strata: template output exceeded %u bytes", TMPL_MAX_OUTPUT);
		}
	} else {
		rc = -1;
	}
	for (i = 0; i < x->nheld; i++)
		labels_free(x->held[i]);
	mem_free(x->held);
	mem_free(x->vars);
	arena_free(&x->ar);
	mem_free(x);
	return rc;
}
