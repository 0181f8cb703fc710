/* ListFlows and the tag operations.
 *
 * A ListFlows token is the last listed name and a keyed check, base64url-encoded: the table's
 * order is a function of names alone, so a token resumes at the right place however the table
 * changed since, and the check tells a garbled or foreign token from one we issued. */
#include "common/base64.h"
#include "common/hash.h"
#include "flows/internal.h"
#include "flows/validate.h"

#include <stdio.h>
#include <string.h>

#define LIST_DEFAULT 100
#define TOKEN_CHECK 8
#define TOKEN_RAW_MAX (AF_FLOW_NAME_MAX + TOKEN_CHECK)

/* base64url of src[0..n) into the arena, NUL-terminated; NULL when out of memory. */
static char *encode_token(const uint8_t *src, size_t n, af_arena *arena) {
  size_t len = af_base64_encoded_len(n, AF_BASE64_URL);
  char *out = af_arena_alloc(arena, len + 1);
  if (out != NULL) {
    af_base64_encode(src, n, out, AF_BASE64_URL);
    out[len] = '\0';
  }
  return out;
}

static void put_check(uint8_t *dst, uint64_t check) {
  for (int i = 0; i < TOKEN_CHECK; i++)
    dst[i] = (uint8_t)(check >> (8 * i));
}

static char *make_token(const af_flows *svc, const char *name, size_t len, af_arena *arena) {
  uint8_t raw[TOKEN_RAW_MAX];
  memcpy(raw, name, len);
  put_check(raw + len, af_hash64(svc->token_key, name, len));
  return encode_token(raw, len + TOKEN_CHECK, arena);
}

/* The name a token resumes after, into name (AF_FLOW_NAME_MAX + 1 bytes). */
static af_err read_token(const af_flows *svc, const char *token, char *name, size_t *len,
                         af_error *err) {
  uint8_t raw[TOKEN_RAW_MAX], check[TOKEN_CHECK];
  long n = af_base64_decode(token, strlen(token), raw, sizeof raw, AF_BASE64_URL);
  bool ok = n > TOKEN_CHECK;
  if (ok) {
    *len = (size_t)n - TOKEN_CHECK;
    put_check(check, af_hash64(svc->token_key, raw, *len));
    ok = memcmp(check, raw + *len, TOKEN_CHECK) == 0;
  }
  if (!ok)
    return af_error_set(err, AF_ERR_VALIDATION,
                        "Invalid nextToken: pass the nextToken of a previous ListFlows response "
                        "unchanged");
  memcpy(name, raw, *len);
  name[*len] = '\0';
  return AF_OK;
}

struct list_ctx {
  const af_flows *svc;
  af_arena *arena;
  size_t max, n;
  Appflow__V1__FlowDefinition **items;
  bool more, oom;
};

static Appflow__V1__FlowDefinition *definition_of(const struct list_ctx *c, const af_flow *f) {
  af_arena *a = c->arena;
  Appflow__V1__FlowDefinition *d = af_arena_alloc(a, sizeof *d);
  if (d == NULL)
    return NULL;
  appflow__v1__flow_definition__init(d);
  bool oom = false;
  d->flow_arn = af_flows_arn_dup(c->svc, a, f->name, f->name_len);
  d->flow_name = af_arena_strndup(a, f->name, f->name_len);
  if (f->description != NULL)
    oom |= (d->description = af_arena_strndup(a, f->description, strlen(f->description))) == NULL;
  if (f->source_connector != NULL)
    oom |= (d->source_connector_type =
                af_arena_strndup(a, f->source_connector, strlen(f->source_connector))) == NULL;
  if (f->destination_connector != NULL)
    oom |= (d->destination_connector_type = af_arena_strndup(
                a, f->destination_connector, strlen(f->destination_connector))) == NULL;
  d->flow_status = (Appflow__V1__FlowStatus)f->status;
  d->trigger_type = (Appflow__V1__TriggerType)f->trigger;
  d->created_at = af_flows_timestamp(a, f->created_ms);
  d->last_updated_at = af_flows_timestamp(a, f->updated_ms);
  oom |= !af_flows_tag_entries(f->tags, &appflow__v1__flow_definition__tags_entry__descriptor, a,
                               &d->n_tags, (af_map_entry ***)&d->tags);
  d->last_run_execution_details = af_flows_last_run(f->runs, a, &oom);
  oom |= d->flow_arn == NULL || d->flow_name == NULL || d->created_at == NULL ||
         d->last_updated_at == NULL;
  return oom ? NULL : d;
}

static bool list_visit(const af_flow *f, void *ctx) {
  struct list_ctx *c = ctx;
  if (c->n == c->max) { /* one flow past the page: there is a next page */
    c->more = true;
    return false;
  }
  Appflow__V1__FlowDefinition *d = definition_of(c, f);
  if (d == NULL) {
    c->oom = true;
    return false;
  }
  c->items[c->n++] = d;
  return true;
}

af_err af_flows_list_flows(af_flows *svc, const Appflow__V1__ListFlowsRequest *req,
                           Appflow__V1__ListFlowsResponse *resp, af_arena *arena, af_error *err) {
  int32_t max = req->max_results != 0 ? req->max_results : LIST_DEFAULT;
  af_err rc =
      af_check_range("maxResults", req->max_results != 0 ? req->max_results : 1, 1, 100, err);
  if (rc == AF_OK)
    rc = af_check_next_token("nextToken", req->next_token, err);
  char after[AF_FLOW_NAME_MAX + 1];
  size_t after_len = 0;
  bool resume = req->next_token != NULL && req->next_token[0] != '\0';
  if (rc == AF_OK && resume)
    rc = read_token(svc, req->next_token, after, &after_len, err);
  if (rc != AF_OK)
    return rc;
  struct list_ctx c = {svc, arena, (size_t)max, 0, NULL, false, false};
  if ((c.items = af_arena_alloc(arena, c.max * sizeof *c.items)) == NULL)
    return af_flows_oom(err);
  af_table_scan(svc->table, resume ? after : NULL, after_len, list_visit, &c);
  if (c.oom)
    return af_flows_oom(err);
  resp->n_flows = c.n;
  resp->flows = c.items;
  if (c.more) {
    const char *last = c.items[c.n - 1]->flow_name;
    if ((resp->next_token = make_token(svc, last, strlen(last), arena)) == NULL)
      return af_flows_oom(err);
  }
  return AF_OK;
}

/* ---- tags ----------------------------------------------------------------------------- */

/* Runs fn on the flow a (validated) ARN names. Any ARN that is not one of this server's flow
 * ARNs names no flow here, so it and an unknown flow are both reported by the ARN. */
static af_err with_flow_of_arn(af_flows *svc, const char *arn, af_table_update_fn fn, void *ctx,
                               af_error *err) {
  size_t p = svc->arn_prefix_len;
  af_err rc = AF_ERR_RESOURCE_NOT_FOUND;
  if (strncmp(arn, svc->arn_prefix, p) == 0)
    rc = af_table_update(svc->table, arn + p, strlen(arn + p), fn, ctx, err);
  if (rc == AF_ERR_RESOURCE_NOT_FOUND) {
    char esc[600];
    af_error_set(err, rc, "Resource %s does not exist",
                 af_escape(esc, sizeof esc, arn, strlen(arn)));
  }
  return rc;
}

struct tag_ctx {
  af_table *table;
  af_arena *arena;
  af_map_entry *const *add; /* TagResource */
  size_t nadd;
  char *const *remove; /* UntagResource */
  size_t nremove;
};

static size_t find_key(const af_tag *tags, size_t n, const char *key) {
  size_t i = 0;
  while (i < n && strcmp(tags[i].key, key) != 0)
    i++;
  return i;
}

static bool removed(const struct tag_ctx *c, const char *key) {
  for (size_t j = 0; j < c->nremove; j++) {
    if (strcmp(c->remove[j], key) == 0)
      return true;
  }
  return false;
}

/* TagResource and UntagResource: the flow's tags, minus `remove`, plus `add`. */
static af_err tag_locked(af_flow *f, void *ctx, af_error *err) {
  struct tag_ctx *c = ctx;
  size_t have = f->tags ? f->tags->n : 0, n = 0;
  af_tag *tags = af_arena_alloc(c->arena, (have + c->nadd + 1) * sizeof *tags);
  if (tags == NULL)
    return af_flows_oom(err);
  for (size_t i = 0; i < have; i++) {
    if (!removed(c, f->tags->tags[i].key))
      tags[n++] = f->tags->tags[i];
  }
  for (size_t i = 0; i < c->nadd; i++) {
    size_t j = find_key(tags, n, c->add[i]->key);
    tags[j] = (af_tag){c->add[i]->key, c->add[i]->value ? c->add[i]->value : ""};
    n += j == n;
  }
  if (n > AF_TAGS_MAX)
    return af_error_set(err, AF_ERR_VALIDATION,
                        "Flow %s would have %zu tags; a flow can have at most %d", f->name, n,
                        AF_TAGS_MAX);
  return af_table_set_tags(c->table, f, tags, n, err);
}

af_err af_flows_tag_resource(af_flows *svc, const Appflow__V1__TagResourceRequest *req,
                             Appflow__V1__TagResourceResponse *resp, af_arena *arena,
                             af_error *err) {
  (void)resp;
  af_err rc = af_check_resource_arn("resourceArn", req->resource_arn, err);
  if (rc == AF_OK && req->n_tags == 0)
    rc = af_error_set(err, AF_ERR_VALIDATION,
                      "1 validation error detected: Value null at 'tags' failed to satisfy "
                      "constraint: Member must not be null");
  if (rc == AF_OK)
    rc = af_check_count("tags", req->n_tags, AF_TAGS_MAX, err);
  for (size_t i = 0; rc == AF_OK && i < req->n_tags; i++)
    rc = af_check_tag("tags", req->tags[i]->key, req->tags[i]->value, err);
  if (rc != AF_OK)
    return rc;
  struct tag_ctx c = {svc->table, arena, (af_map_entry *const *)req->tags, req->n_tags, NULL, 0};
  return with_flow_of_arn(svc, req->resource_arn, tag_locked, &c, err);
}

af_err af_flows_untag_resource(af_flows *svc, const Appflow__V1__UntagResourceRequest *req,
                               Appflow__V1__UntagResourceResponse *resp, af_arena *arena,
                               af_error *err) {
  (void)resp;
  af_err rc = af_check_resource_arn("resourceArn", req->resource_arn, err);
  if (rc == AF_OK && req->n_tag_keys == 0)
    rc = af_error_set(err, AF_ERR_VALIDATION,
                      "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                      "constraint: Member must not be null");
  if (rc == AF_OK)
    rc = af_check_count("tagKeys", req->n_tag_keys, AF_TAGS_MAX, err);
  for (size_t i = 0; rc == AF_OK && i < req->n_tag_keys; i++)
    rc = af_check_tag_key("tagKeys", req->tag_keys[i], err);
  if (rc != AF_OK)
    return rc;
  struct tag_ctx c = {svc->table, arena, NULL, 0, req->tag_keys, req->n_tag_keys};
  return with_flow_of_arn(svc, req->resource_arn, tag_locked, &c, err);
}

struct list_tags_ctx {
  af_arena *arena;
  Appflow__V1__ListTagsForResourceResponse *resp;
};

static af_err list_tags_locked(af_flow *f, void *ctx, af_error *err) {
  struct list_tags_ctx *c = ctx;
  bool ok = af_flows_tag_entries(
      f->tags, &appflow__v1__list_tags_for_resource_response__tags_entry__descriptor, c->arena,
      &c->resp->n_tags, (af_map_entry ***)&c->resp->tags);
  return ok ? AF_OK : af_flows_oom(err);
}

af_err af_flows_list_tags(af_flows *svc, const Appflow__V1__ListTagsForResourceRequest *req,
                          Appflow__V1__ListTagsForResourceResponse *resp, af_arena *arena,
                          af_error *err) {
  af_err rc = af_check_resource_arn("resourceArn", req->resource_arn, err);
  if (rc != AF_OK)
    return rc;
  struct list_tags_ctx c = {arena, resp};
  return with_flow_of_arn(svc, req->resource_arn, list_tags_locked, &c, err);
}
