/* lib/config/sd_file.c - file_sd target files: [{targets: [...], labels: {...}}].
 *
 * Reads the YAML or JSON target files that file_sd_configs point at, the way
 * Prometheus' file discovery does: a list of target groups, label names
 * validated, unknown fields refused, every group labelled with
 * __meta_filepath. Errors name FILE:line:col. Both formats go through the
 * same libyaml tree (JSON is read as YAML flow syntax, with JSON's extra
 * demand that the document is a list). Stateless; any thread.
 */
#include "config.h"

#include "config/config.h"
#include "config/internal.h"

#include <stdio.h>
#include <string.h>

#include "util/mem.h"

/*
 * cfg_sd_file_parse: see config.h.
 */
int
cfg_sd_file_parse(const char *buf, size_t len, const char *name, bool json,
    struct cfg_target_group **groups, size_t *n, char *err, size_t errlen)
{
	struct cdec d;
	struct ydoc *doc;
	const struct ynode *root;
	struct cfg_target_group *g = NULL;
	struct labels_builder *lb = NULL;
	size_t i, ng = 0;

	*groups = NULL;
	*n = 0;
	memset(&d, 0, sizeof(d));
	d.file = name;
	d.err = err;
	d.errlen = errlen;
	if ((doc = ydoc_parse(buf, len, name, err, errlen)) == NULL)
		return -1;
	root = doc->root;
	if (root == NULL || (root->kind == YNODE_SCALAR && root->null)) {
		if (json) {
			cdec_fail(&d, NULL, "unexpected end of JSON input");
			goto fail;
		}
		ydoc_free(doc);
		return 0;
	}
	if (root->kind != YNODE_SEQ) {
		cdec_fail(&d, root, "cannot unmarshal %s into []*targetgroup.Group",
		    ydoc_tag(root));
		goto fail;
	}
	g = mem_calloc(root->n ? root->n : 1, sizeof(*g));
	lb = labels_builder_new();
	for (i = 0; i < root->n; i++) {
		const struct ynode *item = root->v[i];
		struct strbuf sb = STRBUF_INIT;
		struct labels *ls;

		ng = i + 1;
		strbuf_printf(&sb, "%s:%zu", name, i);
		g[i].source = strbuf_detach(&sb, NULL);
		if (item->kind == YNODE_SCALAR && item->null) {
			cdec_fail(&d, item, "nil target group item found (index %zu)", i);
			goto fail;
		}
		if (item->kind != YNODE_MAP) {
			cdec_fail(&d, item, "cannot unmarshal %s into targetgroup.Group",
			    ydoc_tag(item));
			goto fail;
		}
		if (cdec_target_group(&d, item, &g[i]) < 0)
			goto fail;
		labels_builder_reset(lb, g[i].labels);
		labels_builder_set(lb, "__meta_filepath", name);
		ls = labels_builder_labels(lb);
		labels_free(g[i].labels);
		g[i].labels = ls;
	}
	labels_builder_free(lb);
	ydoc_free(doc);
	*groups = g;
	*n = ng;
	return 0;
fail:
	labels_builder_free(lb);
	cfg_target_groups_free(g, ng);
	ydoc_free(doc);
	return -1;
}

/*
 * cfg_sd_file_load: see config.h.
 */
int
cfg_sd_file_load(const char *path, struct cfg_target_group **groups, size_t *n,
    char *err, size_t errlen)
{
	size_t len, pl = strlen(path);
	bool json = pl >= 5 && (strcmp(path + pl - 5, ".json") == 0 ||
	    strcmp(path + pl - 5, ".JSON") == 0);
	char *buf;
	int rc;

	*groups = NULL;
	*n = 0;
	if ((buf = cfg_read_file(path, &len, err, errlen)) == NULL)
		return -1;
	rc = cfg_sd_file_parse(buf, len, path, json, groups, n, err, errlen);
	mem_free(buf);
	return rc;
}
