/* lib/config/internal.h - what the files of lib/config share (not public).
 *
 * The decoding context and the helpers config.c exports to sd_file.c and
 * marshal.c. Every cdec_* function returns 0 (or 1 where noted) on success
 * and -1 after writing "FILE:line:col: msg" into the context's buffer.
 */
#ifndef STRATA_LIB_CONFIG_INTERNAL_H
#define STRATA_LIB_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/yaml.h"

struct cdec {
	const char *file;	/* name used in messages */
	const char *dir;	/* relative paths are joined to it (NULL: kept) */
	char *err;
	size_t errlen;
};

int cdec_fail(struct cdec *d, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int cdec_str(struct cdec *d, const struct ynode *n, char **out);
int cdec_bool(struct cdec *d, const struct ynode *n, bool *out);
int cdec_u64(struct cdec *d, const struct ynode *n, uint64_t *out);
int cdec_duration(struct cdec *d, const struct ynode *n, int64_t *out);
int cdec_url(struct cdec *d, const struct ynode *n, char **out);
int cdec_strlist(struct cdec *d, const struct ynode *n, char ***out, size_t *nout);
int cdec_strmap(struct cdec *d, const struct ynode *n, struct cfg_kv **out, size_t *nout);
int cdec_labelset(struct cdec *d, const struct ynode *n, struct labels **out,
    bool check_values);
int cdec_struct(struct cdec *d, const struct ynode *n, const char *tname);
int cdec_field_dup(struct cdec *d, const struct ynode *n, size_t i, const char *tname);
int cdec_unknown(struct cdec *d, const struct ynode *n, size_t i, const char *tname);
int cdec_tls(struct cdec *d, const struct ynode *n, struct cfg_tls *t);
int cdec_http_field(struct cdec *d, const struct ynode *n, size_t i, struct cfg_http *h);
int cdec_http_validate(struct cdec *d, const struct ynode *n, struct cfg_http *h);
int cdec_relabels(struct cdec *d, const struct ynode *n, struct cfg_relabels *rl,
    const char *nullmsg);
int cdec_target_group(struct cdec *d, const struct ynode *n, struct cfg_target_group *g);

void cfg_http_init(struct cfg_http *h);
void cfg_http_free(struct cfg_http *h);
void cfg_tls_free(struct cfg_tls *t);
void cfg_relabels_free(struct cfg_relabels *rl);
void cfg_kv_free(struct cfg_kv *v, size_t n);
void cfg_strlist_free(char **v, size_t n);
void cfg_file_sd_free(struct cfg_file_sd *f, size_t n);
void cfg_join_dir(const char *dir, char **path);
bool cfg_utf8_valid(const char *s, size_t len);
/* cfg_goquote appends s[0..len) quoted as Go's %q does. */
void cfg_goquote(struct strbuf *sb, const char *s, size_t len);
/* cfg_read_file returns the whole file (caller frees) or NULL with err. */
char *cfg_read_file(const char *path, size_t *len, char *err, size_t errlen);

#endif
