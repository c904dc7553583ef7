/* lib/api/api.h - the Prometheus HTTP API envelope shared by every endpoint.
 *
 * Prometheus answers every /api/v1 endpoint with {"status":"success","data":...} or
 * {"status":"error","errorType":"bad_data","error":"..."} and a status code
 * chosen by the error type. Endpoints build "data" with a json_writer
 * between api_success_begin() and api_success_end(), or answer with
 * api_error(). Stateless; any server thread may call these.
 */
#ifndef STRATA_API_API_H
#define STRATA_API_API_H

#include "http/json.h"
#include "http/server.h"
#include "util/strbuf.h"

/* Prometheus' error types (web/api/v1 errorType). */
enum api_error_type {
	API_ERR_TIMEOUT,	/* 503 */
	API_ERR_CANCELED,	/* 503 */
	API_ERR_EXEC,		/* 422 "execution" */
	API_ERR_BAD_DATA,	/* 400 */
	API_ERR_INTERNAL,	/* 500 */
	API_ERR_UNAVAILABLE,	/* 503 */
	API_ERR_NOT_FOUND,	/* 404 */
};

/* An API response under construction; a plain value on the handler's stack. */
struct api_response {
	struct strbuf body;
	struct json_writer w;
};

/* api_success_begin starts {"status":"success","data": and leaves w ready
 * for the data value. */
void api_success_begin(struct api_response *r);
/* api_success_end closes the envelope and sends it with status 200, taking
 * the body. Returns 0 or -1. */
int api_success_end(struct api_response *r, struct http_request *req);
/* api_error answers with Prometheus' error JSON and the status code of
 * type. Returns 0 or -1. */
int api_error(struct http_request *req, enum api_error_type type,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* api_error_type_name returns "bad_data", "execution", ... */
const char *api_error_type_name(enum api_error_type type);

#endif
