/* ListFlows and the tag operations.
 *
 * A ListFlows token is the last listed name sealed with HMAC-SHA256 under the store's token key,
 * base64url-encoded. A store's order is a function of names alone, so a token resumes at the
 * right place however the flows changed since; the key lives in the store, so a token works on
 * every replica and after a restart, and the seal tells a garbled or forged token from one a
 * server on this store issued. */
#include "common/base64.h"
#include "flows/internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 100
#define TOKEN_SEAL 16 /* bytes of the HMAC kept: 128 bits */
#define TOKEN_RAW_MAX (AF_FLOW_NAME_MAX + TOKEN_SEAL)

/* HMAC-SHA256 is H((K ^ opad) || H((K ^ ipad) || m)). OpenSSL's one-shot HMAC() looks the
 * algorithm up by name and hashes the key's two padded blocks on every call, 20,000
 * instructions a page token; these two digests have absorbed the padded blocks once (the key
 * never changes while the store is open), and each seal continues copies of them. */
struct af_token_mac {
  EVP_MD_CTX *inner, *outer; /* read-only once made: copied by any number of threads */
};

af_token_mac *af__token_mac_new(const uint8_t *key, size_t len) {
  uint8_t ipad[AF_SHA256_BLOCK], opad[AF_SHA256_BLOCK];
  af_token_mac *m = len <= AF_SHA256_BLOCK ? calloc(1, sizeof *m) : NULL;
  if (m == NULL)
    return NULL;
  memset(ipad, 0x36, sizeof ipad);
  memset(opad, 0x5c, sizeof opad);
  for (size_t i = 0; i < len; i++) {
    ipad[i] ^= key[i];
    opad[i] ^= key[i];
  }
  m->inner = EVP_MD_CTX_new();
  m->outer = EVP_MD_CTX_new();
  bool ok = m->inner != NULL && m->outer != NULL &&
            EVP_DigestInit_ex(m->inner, EVP_sha256(), NULL) == 1 &&
            EVP_DigestUpdate(m->inner, ipad, sizeof ipad) == 1 &&
            EVP_DigestInit_ex(m->outer, EVP_sha256(), NULL) == 1 &&
            EVP_DigestUpdate(m->outer, opad, sizeof opad) == 1;
  OPENSSL_cleanse(ipad, sizeof ipad); /* what the key was xored into */
  OPENSSL_cleanse(opad, sizeof opad);
  if (!ok) {
    af__token_mac_free(m);
    return NULL;
  }
  return m;
}

void af__token_mac_free(af_token_mac *m) {
  if (m == NULL)
    return;
  EVP_MD_CTX_free(m->inner);
  EVP_MD_CTX_free(m->outer);
  free(m);
}

bool af__token_mac(const af_token_mac *m, const uint8_t *msg, size_t len,
                   uint8_t out[AF_SHA256_LEN]) {
  uint8_t ih[AF_SHA256_LEN];
  unsigned n = 0, on = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  bool ok = c != NULL && EVP_MD_CTX_copy_ex(c, m->inner) == 1 &&
            EVP_DigestUpdate(c, msg, len) == 1 && EVP_DigestFinal_ex(c, ih, &n) == 1 &&
            n == AF_SHA256_LEN && EVP_MD_CTX_copy_ex(c, m->outer) == 1 &&
            EVP_DigestUpdate(c, ih, sizeof ih) == 1 && EVP_DigestFinal_ex(c, out, &on) == 1 &&
            on == AF_SHA256_LEN;
  EVP_MD_CTX_free(c);
  return ok;
}

/* The seal of name[0..len) under the store's key, for the operation domain names and the
 * call's account and region (so a token of one operation, or of one account, is refused by
 * another). */
static void seal(const af_call *c, const char *domain, const char *name, size_t len,
                 uint8_t out[TOKEN_SEAL]) {
  uint8_t msg[64 + AF_STORE_SCOPE_MAX + 1 + AF_FLOW_NAME_MAX], mac[AF_SHA256_LEN];
  size_t dlen = strlen(domain) + 1, slen = c->tenant->scope_len + 1;
  if (dlen > 64 || len > AF_FLOW_NAME_MAX) {
    memset(out, 0, TOKEN_SEAL);
    return;
  }
  memcpy(msg, domain, dlen);
  memcpy(msg + dlen, c->tenant->scope, slen);
  memcpy(msg + dlen + slen, name, len);
  if (!af__token_mac(c->svc->token_mac, msg, dlen + slen + len, mac))
    memset(mac, 0, TOKEN_SEAL); /* then no token verifies: a refusal, never a forgery */
  memcpy(out, mac, TOKEN_SEAL);
}

char *af__page_token(const af_call *c, const char *domain, const char *name, size_t len,
                     af_arena *arena) {
  uint8_t raw[TOKEN_RAW_MAX];
  if (len > AF_FLOW_NAME_MAX)
    return NULL;
  memcpy(raw, name, len);
  seal(c, domain, name, len, raw + len);
  size_t n = af_base64_encoded_len(len + TOKEN_SEAL, AF_BASE64_URL);
  char *out = af_arena_alloc(arena, n + 1);
  if (out != NULL) {
    af_base64_encode(raw, len + TOKEN_SEAL, out, AF_BASE64_URL);
    out[n] = '\0';
  }
  return out;
}

af_err af__page_token_read(const af_call *c, const char *domain, const char *op, const char *token,
                           char *name, size_t *len, af_error *err) {
  uint8_t raw[TOKEN_RAW_MAX], check[TOKEN_SEAL];
  long n = af_base64_decode(token, strlen(token), raw, sizeof raw, AF_BASE64_URL);
  bool ok = n > TOKEN_SEAL;
  if (ok) {
    *len = (size_t)n - TOKEN_SEAL;
    seal(c, domain, (const char *)raw, *len, check);
    ok = CRYPTO_memcmp(check, raw + *len, TOKEN_SEAL) == 0;
  }
  if (!ok)
    return af_error_set(err, AF_ERR_VALIDATION,
                        "Invalid nextToken: pass the nextToken of a previous %s response "
                        "unchanged",
                        op);
  memcpy(name, raw, *len);
  name[*len] = '\0';
  return AF_OK;
}

#define LIST_DOMAIN "appflowd ListFlows v1"

typedef struct list_call {
  af_call c;
  Appflow__V1__ListFlowsResponse *resp;
  char after[AF_FLOW_NAME_MAX + 1];
  size_t max, n;
  Appflow__V1__FlowDefinition **items;
  af_memo **held;       /* items[i]'s memo (a reference the call holds), or NULL */
  af_memo_part **parts; /* items[i]'s kept entry, or NULL */
  af_pbc_packed *ready; /* the memos' packed entries, for to.ready */
  size_t nready;
  bool more, oom;
} list_call;

static Appflow__V1__FlowDefinition *definition_of(list_call *c, const af_flow_record *f) {
  af_arena *a = c->c.to.arena;
  Appflow__V1__FlowDefinition *d = af_arena_alloc(a, sizeof *d);
  if (d == NULL)
    return NULL;
  appflow__v1__flow_definition__init(d);
  bool oom = false;
  d->flow_arn = af_flows_arn_dup(c->c.tenant, a, f->name, f->name_len);
  d->flow_name = af_arena_strndup(a, f->name, f->name_len);
  d->description = af_flows_strdup(a, f->description, &oom);
  d->created_by = af_flows_strdup(a, af_flows_by(c->c.tenant, f->created_by), &oom);
  d->last_updated_by = af_flows_strdup(a, af_flows_by(c->c.tenant, f->updated_by), &oom);
  d->source_connector_type = af__connector_value(c->c.svc, f->source_connector);
  d->has_source_connector_type = d->source_connector_type != 0;
  d->destination_connector_type = af__connector_value(c->c.svc, f->destination_connector);
  d->has_destination_connector_type = d->destination_connector_type != 0;
  d->flow_status = (Appflow__V1__FlowStatus)f->status;
  d->has_flow_status = true;
  d->trigger_type = (Appflow__V1__TriggerType)f->trigger;
  d->has_trigger_type = true;
  d->created_at = af_flows_timestamp(a, f->created_ms);
  d->last_updated_at = af_flows_timestamp(a, f->updated_ms);
  oom |= !af_flows_tag_entries(f->tags, &appflow__v1__flow_definition__tags_entry__descriptor, a,
                               &d->n_tags, (af_map_entry ***)&d->tags);
  d->last_run_execution_details = af_flows_last_run(f->runs, c->c.now_ms, a, &oom);
  oom |= d->flow_arn == NULL || d->flow_name == NULL || d->created_at == NULL ||
         d->last_updated_at == NULL;
  return oom ? NULL : d;
}

/* Releases the memos a page held (at the arena's reset: once its encoders are done with them). */
static void release_memos(void *ctx) {
  list_call *c = ctx;
  for (size_t i = 0; i < c->n; i++)
    af_memo_release(c->held[i]);
}

/* Adds the page's next entry: items[n] (NULL when out of memory), with the memo held for it
 * and its kept part (NULL for none). False when out of memory. */
static bool add_entry(list_call *c, af_memo *held, af_memo_part *p) {
  size_t i = c->n;
  c->held[i] = held;
  c->parts[i] = p;
  if (c->items[i] == NULL) {
    af_memo_release(held);
    return false;
  }
  c->n++; /* from here on release_memos drops held */
  if (p != NULL && c->ready != NULL)
    c->ready[c->nready++] = (af_pbc_packed){&c->items[i]->base, p->packed, p->len, &p->json};
  return true;
}

/* Lists f as its entry made now, and kept when it can be (an entry kept already is listed by
 * list_peek: a store that keeps memos peeks; af__memo_keep gives back a part another call kept
 * first). */
static bool list_one(list_call *c, const af_flow_record *f) {
  size_t i = c->n;
  af_memo *held = NULL;
  af_memo_part *p = NULL;
  if ((c->items[i] = definition_of(c, f)) != NULL &&
      af__run_details_timeless(c->items[i]->last_run_execution_details))
    p = af__memo_keep(c->c.svc->store, f, AF_MEMO_LIST, &c->items[i]->base, &held);
  return add_entry(c, held, p);
}

/* True when the page has its entries: the flow the scan is at is one past it, so there is a
 * next page. */
static bool page_full(list_call *c) {
  if (c->n < c->max)
    return false;
  c->more = true;
  return true;
}

/* A flow's entry from its memo alone, when the memo holds one: the store need not read the
 * flow's record (af_store_peek). */
static af_store_peek_rc list_peek(af_memo *memo, void *ctx) {
  list_call *c = ctx;
  if (page_full(c))
    return AF_PEEK_STOP;
  af_memo *held = NULL;
  af_memo_part *p = af__memo_part(memo, AF_MEMO_LIST, &held);
  const ProtobufCMessage *kept = p != NULL ? af__memo_msg(c->c.svc->store, held, p) : NULL;
  if (kept == NULL) { /* list_one makes the entry of the record (and keeps it when it can) */
    af_memo_release(held);
    return AF_PEEK_RECORD;
  }
  c->items[c->n] = (Appflow__V1__FlowDefinition *)kept;
  return add_entry(c, held, p) ? AF_PEEK_GO_ON : AF_PEEK_STOP; /* it cannot fail: kept is set */
}

static bool list_visit(const af_flow_record *f, void *ctx) {
  list_call *c = ctx;
  if (page_full(c))
    return false;
  if (!list_one(c, f)) {
    c->oom = true;
    return false;
  }
  return true;
}

/* The token of a page that ends at the page's last flow: kept with its entry, made once. */
static char *next_token(list_call *c) {
  const char *last = c->items[c->n - 1]->flow_name;
  af_memo_part *p = c->parts[c->n - 1];
  char *have = p != NULL ? atomic_load_explicit(&p->token, memory_order_acquire) : NULL;
  if (have != NULL)
    return have;
  char *t = af__page_token(&c->c, LIST_DOMAIN, last, strlen(last), c->c.to.arena);
  if (p != NULL && t != NULL)
    (void)af__memo_text_keep(&p->token, t); /* not kept: made again next time */
  return t;
}

static void list_done(af_store_op *op, af_store_rc rc) {
  list_call *c = (list_call *)af__call_of(op);
  af_err e = af__store_error(&c->c, rc, "", 0);
  if (e == AF_OK && c->oom)
    e = af_flows_oom(c->c.to.err);
  if (e == AF_OK) {
    c->resp->n_flows = c->n;
    c->resp->flows = c->items;
    if (c->c.to.ready != NULL)
      *c->c.to.ready = (af_pbc_ready){c->nready, c->ready};
  }
  if (e == AF_OK && c->more && (c->resp->next_token = next_token(c)) == NULL)
    e = af_flows_oom(c->c.to.err);
  af__call_end(&c->c, e);
}

/* AF_OK with the page's size and where it starts, or the request's first problem. */
static af_err list_request(list_call *c, const Appflow__V1__ListFlowsRequest *req, bool *resume,
                           size_t *after_len) {
  af_error *err = c->c.to.err;
  af_err rc = AF_OK; /* the model's bounds were checked before the call */
  *resume = req->next_token != NULL;
  *after_len = 0;
  if (rc == AF_OK && *resume)
    rc = af__page_token_read(&c->c, LIST_DOMAIN, "ListFlows", req->next_token, c->after, after_len,
                             err);
  c->max = req->has_max_results ? (size_t)req->max_results : LIST_DEFAULT;
  af_arena *a = c->c.to.arena;
  if (rc == AF_OK && ((c->items = af_arena_alloc(a, c->max * sizeof *c->items)) == NULL ||
                      (c->held = af_arena_alloc(a, c->max * sizeof *c->held)) == NULL ||
                      (c->parts = af_arena_alloc(a, c->max * sizeof *c->parts)) == NULL ||
                      (c->c.to.ready != NULL &&
                       (c->ready = af_arena_alloc(a, c->max * sizeof *c->ready)) == NULL) ||
                      !af_arena_defer(a, release_memos, c)))
    rc = af_flows_oom(err);
  return rc;
}

void af__list_flows(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                    const af_reply_to *to) {
  list_call *c = af__call_new(svc, to, sizeof *c);
  if (c == NULL)
    return;
  c->resp = (Appflow__V1__ListFlowsResponse *)out;
  bool resume;
  size_t after_len;
  af_err rc = list_request(c, (const Appflow__V1__ListFlowsRequest *)msg, &resume, &after_len);
  if (rc != AF_OK) {
    af__call_end(&c->c, rc);
    return;
  }
  c->c.op.key = resume ? c->after : NULL;
  c->c.op.key_len = after_len;
  c->c.op.limit = c->max + 1; /* one more tells whether there is a next page */
  c->c.op.visit = list_visit;
  c->c.op.peek = list_peek;
  c->c.op.done = list_done;
  af_store_scan(svc->store, &c->c.op);
}

/* ---- tags ----------------------------------------------------------------------------- */

typedef struct tag_call {
  af_call c;
  const char *arn;
  af_map_entry *const *add; /* TagResource */
  size_t nadd;
  char *const *remove; /* UntagResource */
  size_t nremove;
  Appflow__V1__ListTagsForResourceResponse *list; /* ListTagsForResource */
  bool oom;
} tag_call;

/* Ends a tag call: any ARN that is not one of this server's flow ARNs names no flow here, so it
 * and an unknown flow are both reported by the ARN. */
static void tag_done(af_store_op *op, af_store_rc rc) {
  tag_call *t = (tag_call *)af__call_of(op);
  af_err e;
  if (rc == AF_STORE_NOT_FOUND) {
    char esc[600];
    e = af_error_set(t->c.to.err, AF_ERR_RESOURCE_NOT_FOUND, "Resource %s does not exist",
                     af_escape(esc, sizeof esc, t->arn, strlen(t->arn)));
  } else {
    e = af__store_error(&t->c, rc, "", 0);
  }
  if (e == AF_OK && t->oom)
    e = af_flows_oom(t->c.to.err);
  af__call_end(&t->c, e);
}

/* Runs t's rule on the flow a (validated) ARN names. */
static void with_flow_of_arn(tag_call *t, af_store_rule rule) {
  /* An ARN of another account or region names no flow of this caller's. */
  const af_tenant *tn = t->c.tenant;
  size_t p = tn->arn_prefix_len;
  if (strncmp(t->arn, tn->arn_prefix, p) != 0) {
    tag_done(&t->c.op, AF_STORE_NOT_FOUND);
    return;
  }
  af__call_modify(&t->c, t->arn + p, strlen(t->arn + p), rule, tag_done);
}

static size_t find_key(const af_tag *tags, size_t n, const char *key) {
  size_t i = 0;
  while (i < n && strcmp(tags[i].key, key) != 0)
    i++;
  return i;
}

static bool removed(const tag_call *t, const char *key) {
  for (size_t j = 0; j < t->nremove; j++) {
    if (strcmp(t->remove[j], key) == 0)
      return true;
  }
  return false;
}

/* TagResource and UntagResource: the flow's tags, minus `remove`, plus `add`. */
static af_store_verdict tag_rule(const af_flow_record *f, af_flow_record *next, void *ctx) {
  tag_call *t = ctx;
  af_arena *a = t->c.to.arena;
  Appflowd__Store__V1__TagSet *old =
      f->tags.len ? appflowd__store__v1__tag_set__unpack(&a->allocator, f->tags.len, f->tags.data)
                  : NULL;
  size_t have = old ? old->n_tags : 0, n = 0;
  af_tag *tags = af_arena_alloc(a, (have + t->nadd + 1) * sizeof *tags);
  if ((f->tags.len && old == NULL) || tags == NULL) {
    af_flows_oom(t->c.to.err);
    return AF_STORE_REFUSE;
  }
  for (size_t i = 0; i < have; i++) {
    if (!removed(t, old->tags[i]->key))
      tags[n++] = (af_tag){old->tags[i]->key, old->tags[i]->value};
  }
  for (size_t i = 0; i < t->nadd; i++) {
    size_t j = find_key(tags, n, t->add[i]->key);
    tags[j] = (af_tag){t->add[i]->key, t->add[i]->value ? t->add[i]->value : ""};
    n += j == n;
  }
  if (n > AF_TAGS_MAX) {
    af_error_set(t->c.to.err, AF_ERR_VALIDATION,
                 "Flow %s would have %zu tags; a flow can have at most %d", f->name, n,
                 AF_TAGS_MAX);
    return AF_STORE_REFUSE;
  }
  if (!af_flows_pack_tags(tags, n, a, &next->tags)) {
    af_flows_oom(t->c.to.err);
    return AF_STORE_REFUSE;
  }
  return af__bytes_equal(next->tags, f->tags) ? AF_STORE_KEEP : AF_STORE_WRITE;
}

static tag_call *tag_call_new(af_flows *svc, const af_reply_to *to, const char *arn) {
  tag_call *t = af__call_new(svc, to, sizeof *t);
  if (t != NULL)
    t->arn = arn;
  return t;
}

void af__tag_resource(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                      const af_reply_to *to) {
  (void)out;
  const Appflow__V1__TagResourceRequest *req = (const Appflow__V1__TagResourceRequest *)msg;
  tag_call *t = tag_call_new(svc, to, req->resource_arn);
  if (t == NULL)
    return;
  t->add = (af_map_entry *const *)req->tags;
  t->nadd = req->n_tags;
  with_flow_of_arn(t, tag_rule);
}

void af__untag_resource(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                        const af_reply_to *to) {
  (void)out;
  const Appflow__V1__UntagResourceRequest *req = (const Appflow__V1__UntagResourceRequest *)msg;
  tag_call *t = tag_call_new(svc, to, req->resource_arn);
  if (t == NULL)
    return;
  if (req->n_tag_keys == 0) { /* on the wire no tagKeys parameter: absent, not empty */
    af__call_end(&t->c, af_error_set(to->err, AF_ERR_VALIDATION,
                                     "1 validation error detected: Value null at 'tagKeys' failed "
                                     "to satisfy constraint: Member must not be null"));
    return;
  }
  t->remove = req->tag_keys;
  t->nremove = req->n_tag_keys;
  with_flow_of_arn(t, tag_rule);
}

static af_store_verdict list_tags_rule(const af_flow_record *f, af_flow_record *next, void *ctx) {
  (void)next;
  tag_call *t = ctx;
  t->oom = !af_flows_tag_entries(
      f->tags, &appflow__v1__list_tags_for_resource_response__tags_entry__descriptor, t->c.to.arena,
      &t->list->n_tags, (af_map_entry ***)&t->list->tags);
  return AF_STORE_KEEP;
}

void af__list_tags_for_resource(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                                const af_reply_to *to) {
  const Appflow__V1__ListTagsForResourceRequest *req =
      (const Appflow__V1__ListTagsForResourceRequest *)msg;
  tag_call *t = tag_call_new(svc, to, req->resource_arn);
  if (t == NULL)
    return;
  t->list = (Appflow__V1__ListTagsForResourceResponse *)out;
  with_flow_of_arn(t, list_tags_rule);
}
