/* lib/api/api.c - Prometheus API envelope and error answers. */
#include "config.h"

#include "api/api.h"

#include <stdarg.h>

static const struct {
	const char *name;
	int status;
} api_error_types[] = {
	[API_ERR_TIMEOUT] = { "timeout", 503 },
	[API_ERR_CANCELED] = { "canceled", 503 },
	[API_ERR_EXEC] = { "execution", 422 },
	[API_ERR_BAD_DATA] = { "bad_data", 400 },
	[API_ERR_INTERNAL] = { "internal", 500 },
	[API_ERR_UNAVAILABLE] = { "unavailable", 503 },
	[API_ERR_NOT_FOUND] = { "not_found", 404 },
};

const char *
api_error_type_name(enum api_error_type type)
{
	return api_error_types[type].name;
}

void
api_success_begin(struct api_response *r)
{
	strbuf_init(&r->body);
	json_init(&r->w, &r->body);
	json_object_begin(&r->w);
	json_key(&r->w, "status");
	json_string(&r->w, "success");
	json_key(&r->w, "data");
}

int
api_success_end(struct api_response *r, struct http_request *req)
{
	int rc;

	json_object_end(&r->w);
	rc = http_respond(req, 200, "application/json", &r->body);
	strbuf_free(&r->body);
	return rc;
}

int
api_error(struct http_request *req, enum api_error_type type, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT, body = STRBUF_INIT;
	struct json_writer w;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	strbuf_vprintf(&msg, fmt, ap);
	va_end(ap);
	json_init(&w, &body);
	json_object_begin(&w);
	json_key(&w, "status");
	json_string(&w, "error");
	json_key(&w, "errorType");
	json_string(&w, api_error_types[type].name);
	json_key(&w, "error");
	json_string(&w, strbuf_cstr(&msg));
	json_object_end(&w);
	rc = http_respond(req, api_error_types[type].status, "application/json", &body);
	strbuf_free(&body);
	strbuf_free(&msg);
	return rc;
}
