/* lib/config/yaml.h - a small YAML document tree on libyaml, with limits.
 *
 * ydoc_parse() turns the first YAML document of a buffer into a tree of
 * struct ynode (scalars, sequences, mappings), each carrying the 1-based
 * line and column where it starts, so every later error can name
 * FILE:line:col. Anchors and aliases are resolved by sharing (an alias is a
 * pointer to the anchored node, never a copy), merge keys ("<<") are folded
 * into their mapping, and !!binary scalars are base64-decoded, as Go's
 * yaml.v2 does for Prometheus.
 *
 * Bad input is refused with a message, never a crash or unbounded memory:
 * the input size, nesting depth, scalar length and the number of nodes the
 * document would have once every alias is expanded (a "billion laughs"
 * bomb) are capped (YDOC_MAX_*). The tree is immutable after ydoc_parse()
 * and owned by the struct ydoc; one thread at a time.
 */
#ifndef STRATA_LIB_CONFIG_YAML_H
#define STRATA_LIB_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

#define YDOC_MAX_INPUT		(32u << 20)	/* bytes of YAML text */
#define YDOC_MAX_DEPTH		64		/* nested collections */
#define YDOC_MAX_SCALAR		(128u << 10)	/* bytes in one scalar */
#define YDOC_MAX_NODES		1000000		/* nodes, aliases expanded */

enum ynode_kind {
	YNODE_SCALAR,
	YNODE_SEQ,
	YNODE_MAP,
};

struct ynode {
	enum ynode_kind kind;
	uint32_t line, col;	/* 1-based start of the node */
	bool plain;		/* a plain (unquoted, untagged) scalar */
	bool null;		/* resolves to null (empty, ~, null, !!null) */
	bool binary;		/* was !!binary (s holds the decoded bytes) */
	char *s;		/* scalar bytes, NUL-terminated (may hold NULs) */
	size_t len;		/* scalar length */
	struct ynode **v;	/* SEQ: n items; MAP: key v[2i], value v[2i+1] */
	size_t n;		/* items (SEQ) or pairs (MAP) */
	/* private to the builder */
	size_t cap, weight;
	char *anchor;
	bool done;
};

struct ydoc {
	struct ynode *root;	/* NULL for an empty document */
	/* private: every node, for freeing (aliases share nodes) */
	struct ynode **all;
	size_t nall, capall;
};

/* ydoc_parse parses the first document in buf[0..len). file names the input
 * in messages ("FILE:line:col: msg"). Returns a document (free with
 * ydoc_free()) or NULL with the message in err. */
struct ydoc *ydoc_parse(const char *buf, size_t len, const char *file,
    char *err, size_t errlen);
/* ydoc_free releases doc and every node; NULL is a no-op. */
void ydoc_free(struct ydoc *doc);

/* ydoc_map_key returns the key string of pair i of a mapping ("" when the
 * key is not a scalar). */
const char *ydoc_map_key(const struct ynode *map, size_t i);
/* ydoc_map_value returns the value of pair i of a mapping. */
const struct ynode *ydoc_map_value(const struct ynode *map, size_t i);
/* ydoc_map_get returns the value of key in a mapping, or NULL. */
const struct ynode *ydoc_map_get(const struct ynode *map, const char *key);

/* ydoc_tag returns the yaml.v2 name of the node's resolved type ("!!str",
 * "!!int", "!!bool", "!!float", "!!null", "!!map", "!!seq", "!!binary"),
 * as used in "cannot unmarshal" messages. */
const char *ydoc_tag(const struct ynode *n);
/* ydoc_resolves_to_string tells whether a plain scalar with this text would
 * be read back as a string by yaml.v2 (so it may be written unquoted). */
bool ydoc_resolves_to_string(const char *s, size_t len);
/* ydoc_parse_bool reads yaml.v2's booleans (true/false/yes/no/on/off/y/n in
 * three cases). Returns 0 or -1. */
int ydoc_parse_bool(const char *s, bool *out);
/* ydoc_parse_int reads a YAML 1.1 integer (decimal, 0x, 0o, 0 octal, 0b,
 * underscores, sign). Returns 0, or -1 when s is not an integer or overflows. */
int ydoc_parse_int(const char *s, int64_t *out);

/* Emitting: a thin layer on libyaml's emitter that writes yaml.v2's shape
 * (two-space indent, sequences not indented under a key, strings quoted only
 * when they would read back as something else). */
struct yemit;
/* ydoc_emit_new starts a document written to out (borrowed). */
struct yemit *ydoc_emit_new(struct strbuf *out);
/* ydoc_emit_end finishes the document, flushes into out and frees e.
 * Returns 0, or -1 when libyaml refused an event. */
int ydoc_emit_end(struct yemit *e);
void ydoc_emit_map_start(struct yemit *e);
void ydoc_emit_map_end(struct yemit *e);
/* ydoc_emit_seq_start opens a sequence; flow selects [a, b] style. */
void ydoc_emit_seq_start(struct yemit *e, bool flow);
void ydoc_emit_seq_end(struct yemit *e);
/* ydoc_emit_str writes a string value, quoting it as yaml.v2 would. */
void ydoc_emit_str(struct yemit *e, const char *s);
/* ydoc_emit_raw writes text as a plain scalar (numbers, booleans, null). */
void ydoc_emit_raw(struct yemit *e, const char *s);

#endif
