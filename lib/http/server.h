/* lib/http/server.h - placeholder until its module lands. */
#ifndef STRATA_LIB_HTTP_SERVER_H
#define STRATA_LIB_HTTP_SERVER_H
#endif
