/* SPDX-License-Identifier: MIT */
/*
 * api.h - the REST front of the registry: Confluent Schema Registry's HTTP
 * API over libmicrohttpd. Owns routing, request parsing (raw path segments
 * decoded one by one, query values, content types, body caps), Confluent's
 * JSON shapes and error bodies.
 *
 * Threading: the server runs its own threads (MHD's epoll thread pool);
 * cairn_api_start and cairn_api_stop are called from one thread.
 */
#ifndef CAIRN_API_API_H
#define CAIRN_API_API_H

#include "common.h"
#include "registry/registry.h"

typedef struct cairn_api cairn_api_t;

typedef struct cairn_api_options {
    const char *listen_host;       /* "127.0.0.1" */
    unsigned short port;           /* 8081; 0 = pick a free port (see cairn_api_port) */
    unsigned threads;              /* MHD thread pool; 0 = number of cores */
    size_t max_body_bytes;         /* larger bodies get 413; 0 = 2 MiB */
    unsigned connection_timeout_s; /* idle or slow connections are closed; 0 = 30 */
    unsigned max_connections;      /* 0 = 1024 */
} cairn_api_options_t;

/**
 * @brief Starts serving @p reg (borrowed: it must outlive the server).
 * @returns CAIRN_OK; CAIRN_E_IO when the address cannot be bound.
 */
cairn_rc_t cairn_api_start(cairn_registry_t *reg,
                           const cairn_api_options_t *opts,
                           cairn_api_t **out,
                           cairn_error_t *err);
/** @brief The port actually bound. */
unsigned short cairn_api_port(const cairn_api_t *api);
/** @brief Stops serving, finishing requests in flight. Accepts NULL. */
void cairn_api_stop(cairn_api_t *api);

#endif
