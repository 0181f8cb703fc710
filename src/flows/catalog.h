/* The catalogs: what appflowd knows of AppFlow's connector types (DescribeConnectors,
 * DescribeConnector, ListConnectors, and the source/destination pairs CreateFlow checks) and what
 * each connector "contains" (ListConnectorEntities, DescribeConnectorEntity).
 *
 * Both are data, not code: the repo's data/connectors.json and data/entities.json (read by the
 * AWS door's transcoder, src/bridge/catalog_load.c), and a seed file's per-profile entities,
 * which replace a connector type's default for that profile so a test can script what its
 * connector holds. ResetConnectorMetadataCache runs the reloader, which reads them again.
 *
 * Ownership: the catalog keeps deep copies of everything given to it.
 * Errors: setters return false when out of memory.
 * Thread-safety: connectors are set before serving and only read after; entity sets may be
 * replaced while calls read them (a read lock is held while a reader looks). */
#ifndef AF_FLOWS_CATALOG_H
#define AF_FLOWS_CATALOG_H

#include "appflow/v1/appflow.pb-c.h"
#include "appflowd/store/v1/records.pb-c.h"
#include "common/compiler.h"
#include "common/pbc.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct af_catalog af_catalog;

/* NULL when out of memory. */
af_catalog *af_catalog_new(void) AF_MUST_USE;
/* NULL is fine. */
void af_catalog_free(af_catalog *cat);

/* Sets a connector type's configuration (its connectorType member names the type) and the
 * applicationType ListConnectors shows (may be NULL). */
bool af_catalog_set_connector(af_catalog *cat, const Appflow__V1__ConnectorConfiguration *cfg,
                              const char *application_type) AF_MUST_USE;
/* The configuration of a connector type (Appflow__V1__ConnectorType), or NULL. */
const Appflow__V1__ConnectorConfiguration *af_catalog_connector(const af_catalog *cat, int type);
/* A connector type's configuration as a packed part of a response (af_reply_to.ready): the
 * configuration af_catalog_connector gives, its bytes packed once when it was set, and the slot
 * where a door keeps its JSON (filled by the first response that writes it, freed with the
 * catalog). DescribeConnectors sends every configuration of its page on every call, and writing
 * them was most of its work. false (out untouched) when the catalog has no such type. */
bool af_catalog_connector_packed(af_catalog *cat, int type, af_pbc_packed *out) AF_MUST_USE;
/* The applicationType of a type, or NULL. */
const char *af_catalog_application_type(const af_catalog *cat, int type);

/* Replaces what a connector type contains by default (profile NULL), or what one profile
 * contains. set NULL removes a profile's own set (it then contains its type's default). */
bool af_catalog_set_entities(af_catalog *cat, int type, const char *profile,
                             const Appflowd__Store__V1__EntitySet *set) AF_MUST_USE;
/* Removes every profile's own set (before a reload). */
void af_catalog_clear_profile_entities(af_catalog *cat);
/* Calls fn with what profile (or, when it has none of its own or profile is NULL, its type)
 * contains, under the read lock: fn must copy what it keeps. set is NULL when nothing is known. */
void af_catalog_read_entities(af_catalog *cat, int type, const char *profile,
                              void (*fn)(const Appflowd__Store__V1__EntitySet *set, void *ctx),
                              void *ctx);

/* What ResetConnectorMetadataCache runs: reads the entity data again. 0, or -1 with why in msg. */
typedef int (*af_catalog_reloader)(void *ctx, af_catalog *cat, char *msg, size_t msgsz);
void af_catalog_set_reloader(af_catalog *cat, af_catalog_reloader fn, void *ctx);
int af_catalog_reload(af_catalog *cat, char *msg, size_t msgsz) AF_MUST_USE;

#endif
