/* Reads the catalogs (flows/catalog.h) from their JSON, in AWS's member names, through the AWS
 * door's transcoder and the model's checks, so the data is checked against AppFlow's model as a
 * request would be, and more strictly: a member the model does not have is an error, not skipped:
 *
 *   connectors: {"Salesforce": {ConnectorConfiguration..., "applicationType": "Salesforce"}, ...}
 *   entities:   {"Salesforce": {"Objects": [Entity, ...]}, ...}     (a type's groups)
 *   Entity:     {"name": "Account", "label": "Account", "fields": [ConnectorEntityField, ...],
 *                "entities": {"<group>": [Entity, ...]}}
 *
 * data/README.md describes the files; the ones in the repo are compiled in (af_catalog_builtin).
 * Errors: -1 with a message naming the JSON path in msg; the catalog may then hold the entries
 * before the bad one. Thread-safety: as the catalog's setters. */
#ifndef AF_BRIDGE_CATALOG_LOAD_H
#define AF_BRIDGE_CATALOG_LOAD_H

#include "common/compiler.h"
#include "flows/catalog.h"

#include <jansson.h>
#include <stddef.h>

/* The connector types of a connectors document. */
int af_catalog_load_connectors(af_catalog *cat, const char *json, size_t len, char *msg,
                               size_t msgsz) AF_MUST_USE;
/* The default entities of each type of an entities document. */
int af_catalog_load_entities(af_catalog *cat, const char *json, size_t len, char *msg,
                             size_t msgsz) AF_MUST_USE;
/* One type's (profile NULL) or one profile's entities from a groups object
 * ({"<group>": [Entity, ...]}); where names the object in messages. */
int af_catalog_set_entities_json(af_catalog *cat, int type, const char *profile, json_t *groups,
                                 const char *where, char *msg, size_t msgsz) AF_MUST_USE;
/* Both documents compiled in from data/. */
int af_catalog_load_builtin(af_catalog *cat, char *msg, size_t msgsz) AF_MUST_USE;

#endif
