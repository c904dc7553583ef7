/* tool/check_config.c - strata-tool check config FILE...: validate configurations like promtool.
 *
 * For each file: load it with cfg_load_file() (the server's own parser and
 * validation), then run the checks promtool adds on top of the syntax: rule
 * file globs are expanded and an explicitly named rule file must exist;
 * authorization credentials files and TLS cert/key files must exist (and a
 * cert needs its key); file_sd target files that exist are loaded and
 * validated, missing ones only warn. Output follows promtool's:
 *
 *   Checking FILE
 *     SUCCESS: N rule files found
 *    SUCCESS: FILE is valid prometheus config file syntax
 *
 * or "  FAILED: <error>" on stderr. Exit status 1 if any file failed.
 */
#include "config.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "tool/tool.h"

static int
check_file_exists(const char *path, char *err, size_t errlen, const char *what)
{
	struct stat st;

	if (path == NULL || path[0] == '\0')
		return 0;
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "error checking %s \"%s\": stat %s: %s",
		    what, path, path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
check_tls(const struct cfg_tls *t, char *err, size_t errlen)
{
	if (t->cert_file[0] && !t->key_file[0]) {
		snprintf(err, errlen, "client cert file \"%s\" specified without client key file",
		    t->cert_file);
		return -1;
	}
	if (t->key_file[0] && !t->cert_file[0]) {
		snprintf(err, errlen, "client key file \"%s\" specified without client cert file",
		    t->key_file);
		return -1;
	}
	if (check_file_exists(t->cert_file, err, errlen, "client cert file") < 0 ||
	    check_file_exists(t->key_file, err, errlen, "client key file") < 0)
		return -1;
	return 0;
}

static int
check_http(const struct cfg_http *h, char *err, size_t errlen)
{
	if (h->has_authorization &&
	    check_file_exists(h->auth_credentials_file, err, errlen,
	    "authorization credentials or bearer token file") < 0)
		return -1;
	return check_tls(&h->tls, err, errlen);
}

static int
check_file_sd(const struct cfg_file_sd *fs, size_t n, const char *job,
    char *err, size_t errlen)
{
	size_t i, j, k, ng;
	struct cfg_target_group *g;

	for (i = 0; i < n; i++) {
		for (j = 0; j < fs[i].n_files; j++) {
			glob_t gl;

			memset(&gl, 0, sizeof(gl));
			if (glob(fs[i].files[j], 0, NULL, &gl) != 0 || gl.gl_pathc == 0) {
				printf("  WARNING: file \"%s\" for file_sd in scrape job \"%s\" does not exist\n",
				    fs[i].files[j], job);
				globfree(&gl);
				continue;
			}
			for (k = 0; k < gl.gl_pathc; k++) {
				if (cfg_sd_file_load(gl.gl_pathv[k], &g, &ng, err, errlen) < 0) {
					globfree(&gl);
					return -1;
				}
				cfg_target_groups_free(g, ng);
			}
			globfree(&gl);
		}
	}
	return 0;
}

/* check_one returns the number of rule files found, or -1 with err. */
static long
check_one(const char *path, char *err, size_t errlen)
{
	struct cfg *c = cfg_load_file(path, err, errlen);
	long nrules = 0;
	size_t i;

	if (c == NULL)
		return -1;
	for (i = 0; i < c->n_rule_files; i++) {
		const char *rf = c->rule_files[i];
		glob_t gl;
		int rc;

		memset(&gl, 0, sizeof(gl));
		rc = glob(rf, 0, NULL, &gl);
		if (strchr(rf, '*') == NULL && (rc != 0 || gl.gl_pathc == 0)) {
			snprintf(err, errlen, "\"%s\" does not point to an existing file", rf);
			globfree(&gl);
			goto fail;
		}
		if (rc == 0)
			nrules += (long)gl.gl_pathc;
		globfree(&gl);
	}
	for (i = 0; i < c->n_scrape; i++) {
		const struct cfg_scrape *s = &c->scrape[i];

		if (check_http(&s->http, err, errlen) < 0 ||
		    check_file_sd(s->file_sd, s->n_file_sd, s->job_name, err, errlen) < 0)
			goto fail;
	}
	for (i = 0; i < c->n_alertmanagers; i++) {
		const struct cfg_alertmanager *a = &c->alertmanagers[i];

		if (check_http(&a->http, err, errlen) < 0 ||
		    check_file_sd(a->file_sd, a->n_file_sd, "alertmanager", err, errlen) < 0)
			goto fail;
	}
	cfg_free(c);
	return nrules;
fail:
	cfg_free(c);
	return -1;
}

int
tool_check_config(int argc, char **argv)
{
	char err[4096];
	int i, status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: strata-tool check config FILE...\n");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		long n;

		printf("Checking %s\n", argv[i]);
		fflush(stdout);
		n = check_one(argv[i], err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "  FAILED: %s\n", err);
			fflush(stderr);
			status = 1;
		} else {
			if (n > 0)
				printf("  SUCCESS: %ld rule files found\n", n);
			printf(" SUCCESS: %s is valid prometheus config file syntax\n", argv[i]);
		}
		printf("\n");
	}
	return status;
}
