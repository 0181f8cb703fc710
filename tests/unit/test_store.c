/* src/flows/store.h: the seam's contract, checked on the store AF_TEST_STORE names (ctest runs
 * this file once per store): insert if absent, modify through a rule (keep, write, delete,
 * refuse), resumable scans, values in and out unchanged, tables that never see each other's
 * records, and each change applied exactly once when many threads race. */
#include "flows/store.h"

#include "common/latch.h"
#include "common/metrics.h"

#include "store_burst.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static af_store *st;

static void setup(void) { st = test_store_open(); }
static void teardown(void) { test_store_close(st); }

TestSuite(store, .init = setup, .fini = teardown);

/* A record with every member set; its strings and blobs are static. */
static af_flow_record full_record(const char *name) {
  static const uint8_t def[] = {1, 2, 3, 0, 4, 5};
  static const uint8_t tags[] = {10, 11, 12};
  static const uint8_t runs[] = {20, 0, 21};
  return (af_flow_record){.name = name,
                          .name_len = strlen(name),
                          .trigger = 1,
                          .status = 2,
                          .create_status = 3,
                          .created_ms = 1700000000123,
                          .updated_ms = 1700000000456,
                          .description = "a description",
                          .source_connector = "S3",
                          .destination_connector = "Salesforce",
                          .create_token = "token-1",
                          .created_by = "arn:aws:iam::123456789012:user/creator",
                          .updated_by = "arn:aws:sts::123456789012:assumed-role/ops/changer",
                          .status_message = "the source bucket is gone",
                          .source_profile = "s3-profile",
                          .destination_profile = "salesforce-profile",
                          .definition = {def, sizeof def},
                          .tags = {tags, sizeof tags},
                          .runs = {runs, sizeof runs}};
}

static af_flow_record bare_record(const char *name) {
  return (af_flow_record){.name = name, .name_len = strlen(name), .trigger = 1, .status = 4};
}

static af_store_rc insert_in(af_store_table t, const af_flow_record *r, af_store_rule rule,
                             void *ctx) {
  af_store_op op = {.table = t,
                    .key = r->name,
                    .key_len = r->name_len,
                    .record = r,
                    .rule = rule,
                    .ctx = ctx,
                    .with_definition = true};
  return af_store_run(st, af_store_insert, &op);
}

static af_store_rc insert(const af_flow_record *r, af_store_rule rule, void *ctx) {
  return insert_in(AF_TABLE_FLOWS, r, rule, ctx);
}

/* ---- a record copied out of a rule, to look at after ---- */

typedef struct copy {
  int calls;
  char name[300];
  uint64_t version;
  int trigger, status, create_status;
  int64_t created_ms, updated_ms;
  char description[64], source[32], destination[32], token[32]; /* "(null)" for NULL */
  char created_by[96], updated_by[96], status_message[96];
  char source_profile[64], destination_profile[64];
  uint8_t definition[64], tags[64], runs[64];
  size_t definition_len, tags_len, runs_len;
} copy;

static void copy_str(char *dst, size_t cap, const char *s) {
  snprintf(dst, cap, "%s", s ? s : "(null)");
}

static size_t copy_bytes(uint8_t *dst, size_t cap, af_bytes b) {
  cr_assert_leq(b.len, cap);
  cr_assert(b.len == 0 || b.data != NULL);
  if (b.len > 0)
    memcpy(dst, b.data, b.len);
  return b.len;
}

static void take_copy(copy *c, const af_flow_record *r) {
  c->calls++;
  snprintf(c->name, sizeof c->name, "%.*s", (int)r->name_len, r->name);
  c->version = r->version;
  c->trigger = r->trigger;
  c->status = r->status;
  c->create_status = r->create_status;
  c->created_ms = r->created_ms;
  c->updated_ms = r->updated_ms;
  copy_str(c->description, sizeof c->description, r->description);
  copy_str(c->source, sizeof c->source, r->source_connector);
  copy_str(c->destination, sizeof c->destination, r->destination_connector);
  copy_str(c->token, sizeof c->token, r->create_token);
  copy_str(c->created_by, sizeof c->created_by, r->created_by);
  copy_str(c->updated_by, sizeof c->updated_by, r->updated_by);
  copy_str(c->status_message, sizeof c->status_message, r->status_message);
  copy_str(c->source_profile, sizeof c->source_profile, r->source_profile);
  copy_str(c->destination_profile, sizeof c->destination_profile, r->destination_profile);
  c->definition_len = copy_bytes(c->definition, sizeof c->definition, r->definition);
  c->tags_len = copy_bytes(c->tags, sizeof c->tags, r->tags);
  c->runs_len = copy_bytes(c->runs, sizeof c->runs, r->runs);
}

static af_store_verdict keep_copy(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  take_copy(ctx, cur);
  return AF_STORE_KEEP;
}

/* The record called name in table t, copied; the op's result. */
static af_store_rc get_in(af_store_table t, const char *name, copy *c) {
  memset(c, 0, sizeof *c);
  af_store_op op = {.table = t,
                    .key = name,
                    .key_len = strlen(name),
                    .rule = keep_copy,
                    .ctx = c,
                    .with_definition = true};
  af_store_rc rc = af_store_run(st, af_store_modify, &op);
  if (rc == AF_STORE_OK)
    cr_expect_eq(op.verdict, AF_STORE_KEEP);
  return rc;
}

static af_store_rc get(const char *name, copy *c) { return get_in(AF_TABLE_FLOWS, name, c); }

static af_store_rc modify_in(af_store_table t, const char *name, af_store_rule rule, void *ctx) {
  af_store_op op = {.table = t,
                    .key = name,
                    .key_len = strlen(name),
                    .rule = rule,
                    .ctx = ctx,
                    .with_definition = true};
  return af_store_run(st, af_store_modify, &op);
}

static af_store_rc modify(const char *name, af_store_rule rule, void *ctx) {
  return modify_in(AF_TABLE_FLOWS, name, rule, ctx);
}

static void expect_full(const copy *c, const char *name) {
  af_flow_record r = full_record(name);
  cr_expect_str_eq(c->name, name);
  cr_expect_eq(c->trigger, r.trigger);
  cr_expect_eq(c->status, r.status);
  cr_expect_eq(c->create_status, r.create_status);
  cr_expect_eq(c->created_ms, r.created_ms);
  cr_expect_eq(c->updated_ms, r.updated_ms);
  cr_expect_str_eq(c->description, r.description);
  cr_expect_str_eq(c->source, r.source_connector);
  cr_expect_str_eq(c->destination, r.destination_connector);
  cr_expect_str_eq(c->token, r.create_token);
  cr_expect_str_eq(c->created_by, r.created_by);
  cr_expect_str_eq(c->updated_by, r.updated_by);
  cr_expect_str_eq(c->status_message, r.status_message);
  cr_expect_str_eq(c->source_profile, r.source_profile);
  cr_expect_str_eq(c->destination_profile, r.destination_profile);
  cr_expect_eq(c->definition_len, r.definition.len);
  cr_expect_arr_eq(c->definition, r.definition.data, r.definition.len);
  cr_expect_eq(c->tags_len, r.tags.len);
  cr_expect_arr_eq(c->tags, r.tags.data, r.tags.len);
  cr_expect_eq(c->runs_len, r.runs.len);
  cr_expect_arr_eq(c->runs, r.runs.data, r.runs.len);
}

/* ---- insert ---- */

Test(store, a_record_comes_back_as_it_went_in) {
  af_flow_record r = full_record("everything");
  cr_assert(r.source_profile != NULL && r.destination_profile != NULL,
            "full_record sets every member");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  copy c;
  cr_assert_eq(get("everything", &c), AF_STORE_OK);
  cr_expect_eq(c.calls, 1);
  expect_full(&c, "everything");
  af_flow_record b = bare_record("bare");
  cr_assert_eq(insert(&b, NULL, NULL), AF_STORE_OK);
  cr_assert_eq(get("bare", &c), AF_STORE_OK);
  cr_expect_str_eq(c.description, "(null)", "absent strings stay absent");
  cr_expect_str_eq(c.token, "(null)");
  cr_expect_str_eq(c.created_by, "(null)");
  cr_expect_str_eq(c.updated_by, "(null)");
  cr_expect_str_eq(c.status_message, "(null)");
  cr_expect_str_eq(c.source_profile, "(null)");
  cr_expect_str_eq(c.destination_profile, "(null)");
  cr_expect_eq(c.definition_len + c.tags_len + c.runs_len, 0);
  cr_expect_eq(c.created_ms, 0);
}

Test(store, names_are_bytes) {
  const char *names[] = {"a", "A", "a.b-c_d@e#f!g", "0123456789", "x1"};
  for (size_t i = 0; i < 5; i++) {
    af_flow_record r = bare_record(names[i]);
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK, "%s", names[i]);
  }
  copy c;
  for (size_t i = 0; i < 5; i++) {
    cr_assert_eq(get(names[i], &c), AF_STORE_OK);
    cr_expect_str_eq(c.name, names[i]);
  }
  cr_expect_eq(get("B", &c), AF_STORE_NOT_FOUND);
  char longest[257];
  memset(longest, 'n', 256);
  longest[256] = '\0';
  af_flow_record r = bare_record(longest);
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  cr_expect_eq(get(longest, &c), AF_STORE_OK);
}

/* What the limit tests saw of records: how many the rules and visitors were shown, and the
 * last one's name. */
typedef struct key_seen {
  int calls;
  char name[AF_STORE_KEY_MAX + 2];
  size_t len;
} key_seen;

static void see_key(key_seen *k, const af_flow_record *r) {
  k->calls++;
  k->len = r->name_len;
  cr_assert_leq(r->name_len, AF_STORE_KEY_MAX, "a store handed out a key over the limit");
  memcpy(k->name, r->name, r->name_len);
  k->name[r->name_len] = '\0';
}

static af_store_verdict keep_key(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  see_key(ctx, cur);
  return AF_STORE_KEEP;
}

static bool visit_key(const af_flow_record *r, void *ctx) {
  see_key(ctx, r);
  return true;
}

/* Runs kind on table t with key[0..len) (an insert inserts a record of that name), rule or
 * visitor counting into seen. */
static af_store_rc key_op(void (*kind)(af_store *, af_store_op *), af_store_table t,
                          const char *key, size_t len, key_seen *seen) {
  af_flow_record r = {.name = key, .name_len = len, .trigger = 1, .status = 4};
  af_store_op op = {.table = t,
                    .key = key,
                    .key_len = len,
                    .record = &r,
                    .rule = keep_key,
                    .visit = visit_key,
                    .ctx = seen,
                    .limit = SIZE_MAX};
  return af_store_run(st, kind, &op);
}

/* Every store takes a key of AF_STORE_KEY_MAX bytes whole and answers AF_STORE_TOO_LONG for one
 * byte more, in every op and table, before it reads or writes anything: no store cuts a key
 * short (the two keys below would then be one record) or overruns a buffer with it. */
Test(store, keys_of_the_longest_length_and_never_one_byte_more) {
  static char longest[AF_STORE_KEY_MAX + 1], over[AF_STORE_KEY_MAX + 2];
  memset(longest, 'k', AF_STORE_KEY_MAX);
  memcpy(over, longest, AF_STORE_KEY_MAX);
  over[AF_STORE_KEY_MAX] = 'x'; /* longest, and one byte more */
  const size_t max = AF_STORE_KEY_MAX, more = AF_STORE_KEY_MAX + 1;
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    key_seen seen = {0};
    cr_expect_eq(key_op(af_store_insert, t, over, more, &seen), AF_STORE_TOO_LONG, "table %d", t);
    cr_expect_eq(key_op(af_store_insert, t, longest, max, &seen), AF_STORE_OK, "table %d", t);
    cr_expect_eq(key_op(af_store_insert, t, over, more, &seen), AF_STORE_TOO_LONG,
                 "table %d: an insert that would meet the longest key if cut short", t);
    cr_expect_eq(key_op(af_store_modify, t, over, more, &seen), AF_STORE_TOO_LONG, "table %d", t);
    cr_expect_eq(key_op(af_store_scan, t, over, more, &seen), AF_STORE_TOO_LONG, "table %d", t);
    cr_expect_eq(seen.calls, 0, "table %d: no rule or visitor ran for a key over the limit", t);
    cr_expect_eq(key_op(af_store_modify, t, longest, max, &seen), AF_STORE_OK, "table %d", t);
    cr_expect_eq(seen.calls, 1);
    cr_expect_eq(seen.len, max, "table %d: the key whole", t);
    cr_expect_str_eq(seen.name, longest);
    seen.calls = 0;
    cr_expect_eq(key_op(af_store_scan, t, NULL, 0, &seen), AF_STORE_OK);
    cr_expect_eq(seen.calls, 1, "table %d: one record", t);
    cr_expect_str_eq(seen.name, longest);
    seen.calls = 0;
    cr_expect_eq(key_op(af_store_scan, t, longest, max, &seen), AF_STORE_OK, "resumes after it");
    cr_expect_eq(seen.calls, 0);
  }
}

static af_store_verdict refuse(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  take_copy(ctx, cur);
  return AF_STORE_REFUSE;
}

Test(store, insert_keeps_what_is_there) {
  af_flow_record r = full_record("taken");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  af_flow_record other = bare_record("taken");
  cr_expect_eq(insert(&other, NULL, NULL), AF_STORE_EXISTS);
  copy seen = {0};
  cr_expect_eq(insert(&other, keep_copy, &seen), AF_STORE_EXISTS);
  cr_expect_eq(seen.calls, 1, "the rule sees the record in the way");
  expect_full(&seen, "taken");
  memset(&seen, 0, sizeof seen);
  cr_expect_eq(insert(&other, refuse, &seen), AF_STORE_REFUSED);
  copy c;
  cr_assert_eq(get("taken", &c), AF_STORE_OK);
  expect_full(&c, "taken");
}

/* ---- modify ---- */

typedef struct change {
  int status;
  int64_t updated_ms;
  af_bytes tags;
  af_bytes definition; /* {NULL, 0}: leave it */
  bool new_definition;
  const char *description;
  bool new_description;
} change;

static af_store_verdict apply_change(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  const change *c = ctx;
  next->status = (uint8_t)c->status;
  next->updated_ms = c->updated_ms;
  next->tags = c->tags;
  if (c->new_definition)
    next->definition = c->definition;
  if (c->new_description)
    next->description = c->description;
  return AF_STORE_WRITE;
}

Test(store, a_write_changes_what_the_rule_changed_and_nothing_else) {
  af_flow_record r = full_record("w");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  copy before;
  cr_assert_eq(get("w", &before), AF_STORE_OK);
  uint8_t tags[] = {9, 8, 7, 6};
  change ch = {.status = 5, .updated_ms = 1800000000000, .tags = {tags, sizeof tags}};
  cr_assert_eq(modify("w", apply_change, &ch), AF_STORE_OK);
  copy c;
  cr_assert_eq(get("w", &c), AF_STORE_OK);
  cr_expect_eq(c.status, 5);
  cr_expect_eq(c.updated_ms, 1800000000000);
  cr_expect_eq(c.tags_len, 4);
  cr_expect_arr_eq(c.tags, tags, 4);
  cr_expect_neq(c.version, before.version, "a write changes the version");
  /* What the rule left alone is as it was, the definition included. */
  cr_expect_eq(c.created_ms, before.created_ms);
  cr_expect_str_eq(c.description, before.description);
  cr_expect_str_eq(c.created_by, before.created_by);
  cr_expect_str_eq(c.updated_by, before.updated_by);
  cr_expect_str_eq(c.status_message, before.status_message);
  cr_expect_str_eq(c.source_profile, before.source_profile);
  cr_expect_str_eq(c.destination_profile, before.destination_profile);
  cr_expect_eq(c.definition_len, before.definition_len);
  cr_expect_arr_eq(c.definition, before.definition, before.definition_len);
  cr_expect_eq(c.runs_len, before.runs_len);
}

Test(store, a_write_can_replace_or_clear_the_definition_and_strings) {
  af_flow_record r = full_record("d");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  uint8_t def[] = {42, 43};
  change ch = {.status = 2,
               .definition = {def, sizeof def},
               .new_definition = true,
               .description = "another",
               .new_description = true};
  cr_assert_eq(modify("d", apply_change, &ch), AF_STORE_OK);
  copy c;
  cr_assert_eq(get("d", &c), AF_STORE_OK);
  cr_expect_eq(c.definition_len, 2);
  cr_expect_arr_eq(c.definition, def, 2);
  cr_expect_str_eq(c.description, "another");
  cr_expect_eq(c.tags_len, 0, "the rule cleared the tags");
  ch = (change){.status = 2, .new_definition = true, .new_description = true};
  cr_assert_eq(modify("d", apply_change, &ch), AF_STORE_OK);
  cr_assert_eq(get("d", &c), AF_STORE_OK);
  cr_expect_eq(c.definition_len, 0);
  cr_expect_str_eq(c.description, "(null)");
}

/* Who created and last changed a flow, and why it is in its status: set, replaced and cleared
 * by writes like any string, whether or not the rule read the definition. */
typedef struct principals {
  const char *created_by, *updated_by, *status_message;
  int status;
} principals;

static af_store_verdict set_principals(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  const principals *p = ctx;
  next->created_by = p->created_by;
  next->updated_by = p->updated_by;
  next->status_message = p->status_message;
  next->status = (uint8_t)p->status;
  return AF_STORE_WRITE;
}

static void expect_principals(const char *name, const principals *want) {
  copy c;
  cr_assert_eq(get(name, &c), AF_STORE_OK);
  char exp[96];
  copy_str(exp, sizeof exp, want->created_by);
  cr_expect_str_eq(c.created_by, exp, "%s: created_by", name);
  copy_str(exp, sizeof exp, want->updated_by);
  cr_expect_str_eq(c.updated_by, exp, "%s: updated_by", name);
  copy_str(exp, sizeof exp, want->status_message);
  cr_expect_str_eq(c.status_message, exp, "%s: status_message", name);
  cr_expect_eq(c.status, want->status, "%s: status", name);
}

Test(store, a_write_sets_replaces_and_clears_the_principals_and_status_message) {
  for (int blind = 0; blind < 2; blind++) {
    const char *name = blind ? "who_blind" : "who";
    af_flow_record r = bare_record(name);
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
    principals p = {.status = 4};
    expect_principals(name, &p);
    /* NULL -> a value, each of the three. Strings from the stack: the store copies them. */
    char creator[64], changer[64], why[64];
    snprintf(creator, sizeof creator, "arn:aws:iam::111122223333:user/%s", name);
    snprintf(changer, sizeof changer, "arn:aws:iam::111122223333:role/%s", name);
    snprintf(why, sizeof why, "Errored: %s lost its connector profile", name);
    p = (principals){creator, changer, why, 5};
    af_store_op op = {.key = name,
                      .key_len = strlen(name),
                      .rule = set_principals,
                      .ctx = &p,
                      .with_definition = !blind};
    cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
    char sent[64];
    snprintf(sent, sizeof sent, "%s", creator);
    memset(creator, 'x', sizeof creator - 1); /* what the store keeps is its own copy */
    p.created_by = sent;
    expect_principals(name, &p);
    /* One replaced, one cleared (value -> NULL), one left as it was. */
    principals q = {p.created_by, "arn:aws:iam::444455556666:user/other", NULL, 1};
    op = (af_store_op){.key = name,
                       .key_len = strlen(name),
                       .rule = set_principals,
                       .ctx = &q,
                       .with_definition = !blind};
    cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
    expect_principals(name, &q);
    /* A write that changes none of them (only the status) keeps them. */
    q.status = 2;
    cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
    expect_principals(name, &q);
    /* All cleared. */
    q = (principals){.status = 3};
    cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
    expect_principals(name, &q);
  }
}

static af_store_verdict delete_it(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_DELETE;
}

Test(store, delete_frees_the_name) {
  af_flow_record r = full_record("gone");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  af_store_op op = {.key = "gone", .key_len = 4, .rule = delete_it};
  cr_expect_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
  cr_expect_eq(op.verdict, AF_STORE_DELETE);
  copy c;
  cr_expect_eq(get("gone", &c), AF_STORE_NOT_FOUND);
  cr_expect_eq(c.calls, 0, "no rule runs on a missing record");
  cr_expect_eq(modify("gone", delete_it, NULL), AF_STORE_NOT_FOUND);
  af_flow_record again = bare_record("gone");
  cr_expect_eq(insert(&again, NULL, NULL), AF_STORE_OK);
  cr_assert_eq(get("gone", &c), AF_STORE_OK);
  cr_expect_eq(c.status, 4);
}

Test(store, a_refusal_changes_nothing) {
  af_flow_record r = full_record("r");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  copy seen = {0}, c;
  cr_expect_eq(modify("r", refuse, &seen), AF_STORE_REFUSED);
  cr_expect_eq(seen.calls, 1);
  cr_assert_eq(get("r", &c), AF_STORE_OK);
  expect_full(&c, "r");
  cr_expect_eq(c.version, seen.version);
}

/* ---- scans ---- */

#define SCAN_FLOWS 300

typedef struct page {
  char names[SCAN_FLOWS + 1][32];
  /* "description|source_profile|destination_profile", "(null)" for each NULL */
  char strings[SCAN_FLOWS + 1][128];
  size_t n;
  bool saw_definition;
  /* records visited with a definition, and of those how many held another than "def:NAME" */
  size_t definitions, wrong_definitions;
} page;

/* The definition the table tests give a record called name: "def:" and the name. */
static void definition_of(const char *name, size_t len, char out[64]) {
  snprintf(out, 64, "def:%.*s", (int)len, name);
}

static void strings_of(const af_flow_record *r, char out[128]) {
  snprintf(out, 128, "%s|%s|%s", r->description ? r->description : "(null)",
           r->source_profile ? r->source_profile : "(null)",
           r->destination_profile ? r->destination_profile : "(null)");
}

static bool collect(const af_flow_record *r, void *ctx) {
  page *p = ctx;
  cr_assert_lt(p->n, SCAN_FLOWS + 1);
  strings_of(r, p->strings[p->n]);
  snprintf(p->names[p->n++], sizeof p->names[0], "%.*s", (int)r->name_len, r->name);
  p->saw_definition |= r->definition.len > 0;
  if (r->definition.len > 0) {
    char want[64];
    definition_of(r->name, r->name_len, want);
    p->definitions++;
    p->wrong_definitions += r->definition.len != strlen(want) ||
                            memcmp(r->definition.data, want, r->definition.len) != 0;
  }
  return true;
}

/* A scan of table t after after (NULL: from the first), into p. */
static void scan_in(af_store_table t, const char *after, size_t limit, bool with_definition,
                    page *p) {
  p->n = p->definitions = p->wrong_definitions = 0;
  p->saw_definition = false;
  af_store_op op = {.table = t,
                    .key = after,
                    .key_len = after ? strlen(after) : 0,
                    .visit = collect,
                    .ctx = p,
                    .limit = limit,
                    .with_definition = with_definition};
  cr_assert_eq(af_store_run(st, af_store_scan, &op), AF_STORE_OK);
}

static void scan(const char *after, size_t limit, page *p) {
  scan_in(AF_TABLE_FLOWS, after, limit, false, p);
}

static void fill(int n) {
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "flow_%03d", i);
    af_flow_record r = full_record(name);
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  }
}

Test(store, a_scan_sees_each_record_once_in_pages) {
  fill(SCAN_FLOWS);
  static page all, p;
  scan(NULL, SIZE_MAX, &all);
  cr_assert_eq(all.n, SCAN_FLOWS);
  cr_expect_not(all.saw_definition, "a scan leaves definitions out");
  static char seen[SCAN_FLOWS];
  memset(seen, 0, sizeof seen);
  size_t total = 0;
  char after[32] = "";
  for (;;) {
    scan(total ? after : NULL, 7, &p);
    cr_assert_leq(p.n, 7);
    for (size_t i = 0; i < p.n; i++) {
      cr_expect_str_eq(p.names[i], all.names[total + i], "pages follow the store's order");
      seen[atoi(p.names[i] + 5)]++;
    }
    total += p.n;
    if (p.n < 7)
      break;
    snprintf(after, sizeof after, "%s", p.names[p.n - 1]);
  }
  cr_expect_eq(total, SCAN_FLOWS);
  for (int i = 0; i < SCAN_FLOWS; i++)
    cr_expect_eq(seen[i], 1, "flow_%03d seen %d times", i, seen[i]);
}

/* A scan of the flows that ran (ran_only) visits those with a run log and no other, in the
 * store's order, in pages that resume as any scan's do; with or without definitions. */
Test(store, a_scan_of_flows_that_ran_visits_them_alone) {
  int ran = 0;
  for (int i = 0; i < 40; i++) {
    char name[32];
    snprintf(name, sizeof name, "flow_%03d", i);
    af_flow_record r = i % 3 == 0 ? full_record(name) : bare_record(name); /* full: has runs */
    ran += i % 3 == 0;
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  }
  static page all, p;
  scan(NULL, SIZE_MAX, &all);
  for (int with_definition = 0; with_definition < 2; with_definition++) {
    size_t total = 0, k = 0;
    char after[32] = "";
    for (;;) {
      p.n = 0;
      af_store_op op = {.key = total ? after : NULL,
                        .key_len = total ? strlen(after) : 0,
                        .visit = collect,
                        .ctx = &p,
                        .limit = 4,
                        .with_definition = with_definition,
                        .ran_only = true};
      cr_assert_eq(af_store_run(st, af_store_scan, &op), AF_STORE_OK);
      for (size_t i = 0; i < p.n; i++) {
        cr_expect_eq(atoi(p.names[i] + 5) % 3, 0, "%s never ran", p.names[i]);
        while (k < all.n && strcmp(all.names[k], p.names[i]) != 0)
          k++; /* the store's order: each one later in a whole scan than the one before */
        cr_expect_lt(k, all.n, "%s out of the store's order", p.names[i]);
      }
      total += p.n;
      if (p.n < 4)
        break;
      snprintf(after, sizeof after, "%s", p.names[p.n - 1]);
    }
    cr_expect_eq(total, (size_t)ran, "%zu of the %d that ran (with definitions: %d)", total, ran,
                 with_definition);
  }
}

Test(store, a_scan_resumes_after_a_deleted_or_unknown_key) {
  fill(50);
  static page all, p;
  scan(NULL, SIZE_MAX, &all);
  /* Resuming after record k gives exactly the records after it, even once k is gone. */
  for (size_t k = 0; k < all.n; k += 7) {
    cr_assert_eq(modify(all.names[k], delete_it, NULL), AF_STORE_OK);
    scan(all.names[k], SIZE_MAX, &p);
    cr_assert_eq(p.n, all.n - k - 1, "after %s", all.names[k]);
    for (size_t i = 0; i < p.n; i++)
      cr_expect_str_eq(p.names[i], all.names[k + 1 + i]);
    af_flow_record r = full_record(all.names[k]);
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  }
  scan("never_stored", SIZE_MAX, &p); /* wherever it would sort, nothing after it is lost */
  cr_expect_leq(p.n, all.n);
}

/* Keys from AF_STORE_PRIVATE_KEY on are the service's own records (a clientToken's): stored and
 * changed like any other, but never visited by a scan nor counted towards its limit. */
Test(store, a_scan_never_visits_the_services_own_records) {
  fill(20);
  for (int i = 0; i < 20; i++) {
    char name[32];
    snprintf(name, sizeof name, AF_STORE_PRIVATE_KEY "own_%03d", i);
    af_flow_record r = full_record(name);
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  }
  static page all, p;
  scan(NULL, SIZE_MAX, &all);
  cr_assert_eq(all.n, 20);
  for (size_t i = 0; i < all.n; i++)
    cr_expect_str_neq(all.names[i], "", "%zu", i);
  size_t total = 0;
  char after[32] = "";
  for (;;) { /* full pages until the end: private records take no place in a page */
    scan(total ? after : NULL, 7, &p);
    for (size_t i = 0; i < p.n; i++)
      cr_expect_neq(p.names[i][0], AF_STORE_PRIVATE_KEY[0]);
    total += p.n;
    if (p.n < 7)
      break;
    snprintf(after, sizeof after, "%s", p.names[p.n - 1]);
  }
  cr_expect_eq(total, 20);
  static copy c;
  cr_expect_eq(get(AF_STORE_PRIVATE_KEY "own_005", &c), AF_STORE_OK);
}

static bool stop_at_three(const af_flow_record *r, void *ctx) {
  (void)r;
  return ++*(int *)ctx < 3;
}

Test(store, a_visitor_can_stop_a_scan_and_an_empty_store_scans_empty) {
  static page p;
  scan(NULL, SIZE_MAX, &p);
  cr_expect_eq(p.n, 0);
  fill(10);
  int n = 0;
  af_store_op op = {.visit = stop_at_three, .ctx = &n, .limit = SIZE_MAX};
  cr_expect_eq(af_store_run(st, af_store_scan, &op), AF_STORE_OK);
  cr_expect_eq(n, 3);
  scan(NULL, 0, &p);
  cr_expect_eq(p.n, 0, "limit 0 visits nothing");
}

#define WHO_FLOWS 30

/* Flow i's principals and status message: none, some or all of them, by i % 3. */
static void who_strings(int i, char bufs[3][64], const char *out[3]) {
  snprintf(bufs[0], 64, "arn:aws:iam::123456789012:user/creator-%d", i);
  snprintf(bufs[1], 64, "arn:aws:iam::123456789012:role/changer-%d", i);
  snprintf(bufs[2], 64, "flow %d is Errored", i);
  out[0] = i % 3 != 0 ? bufs[0] : NULL;
  out[1] = i % 3 == 2 ? bufs[1] : NULL;
  out[2] = i % 3 != 0 ? bufs[2] : NULL;
}

typedef struct who_scan {
  int seen, wrong; /* counted on the store's thread, asserted on the test's */
  char first_wrong[64];
} who_scan;

static bool same_or_null(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool check_who(const af_flow_record *r, void *ctx) {
  who_scan *w = ctx;
  w->seen++;
  char name[32], bufs[3][64];
  snprintf(name, sizeof name, "%.*s", (int)r->name_len, r->name);
  const char *want[3];
  who_strings(atoi(name + 4), bufs, want);
  bool ok = same_or_null(r->created_by, want[0]) && same_or_null(r->updated_by, want[1]) &&
            same_or_null(r->status_message, want[2]);
  if (!ok && w->wrong++ == 0)
    snprintf(w->first_wrong, sizeof w->first_wrong, "%s", name);
  return true;
}

Test(store, a_scan_returns_the_principals_and_status_message) {
  for (int i = 0; i < WHO_FLOWS; i++) {
    char name[32], bufs[3][64];
    const char *who[3];
    snprintf(name, sizeof name, "who_%02d", i);
    who_strings(i, bufs, who);
    af_flow_record r = bare_record(name);
    r.created_by = who[0];
    r.updated_by = who[1];
    r.status_message = who[2];
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  }
  who_scan w = {0};
  af_store_op op = {.visit = check_who, .ctx = &w, .limit = SIZE_MAX};
  cr_assert_eq(af_store_run(st, af_store_scan, &op), AF_STORE_OK);
  cr_expect_eq(w.seen, WHO_FLOWS);
  cr_expect_eq(w.wrong, 0, "%d flows scanned with the wrong strings, the first %s", w.wrong,
               w.first_wrong);
}

/* ---- tables ---- */

/* Each table's record for a name: what tells them apart when read back. */
static const char *const table_marks[AF_STORE_TABLES] = {"kept in flows", "kept in profiles",
                                                         "kept in connectors", "kept in timers"};

/* A record of table t with every member set, the table's mark as its description and
 * "def:NAME" as its definition; strings are static or name's (which must outlive the op). */
static af_flow_record table_record(af_store_table t, const char *name, char def[64]) {
  af_flow_record r = full_record(name);
  r.description = table_marks[t];
  r.status = (uint8_t)(10 + t);
  definition_of(name, strlen(name), def);
  r.definition = (af_bytes){(const uint8_t *)def, strlen(def)};
  return r;
}

static af_store_verdict set_status(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  const int *status = ctx;
  next->status = (uint8_t)*status;
  return AF_STORE_WRITE;
}

/* name in each table as its own record: its mark and status as table_record made them, or
 * NOT_FOUND where gone (a NULL mark). */
static void expect_in_tables(const char *name, const char *const marks[AF_STORE_TABLES],
                             const int status[AF_STORE_TABLES]) {
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    copy c;
    af_store_rc rc = get_in((af_store_table)t, name, &c);
    if (marks[t] == NULL) {
      cr_expect_eq(rc, AF_STORE_NOT_FOUND, "%s in table %d", name, t);
      continue;
    }
    cr_assert_eq(rc, AF_STORE_OK, "%s in table %d", name, t);
    cr_expect_str_eq(c.description, marks[t], "%s in table %d", name, t);
    cr_expect_eq(c.status, status[t], "%s in table %d", name, t);
  }
}

Test(store, the_same_name_in_each_table_is_a_record_of_its_own) {
  char defs[AF_STORE_TABLES][64];
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    af_flow_record r = table_record((af_store_table)t, "shared", defs[t]);
    cr_assert_eq(insert_in((af_store_table)t, &r, NULL, NULL), AF_STORE_OK, "table %d", t);
  }
  for (int t = 0; t < AF_STORE_TABLES; t++) { /* taken in its own table, as any name */
    af_flow_record b = bare_record("shared");
    cr_expect_eq(insert_in((af_store_table)t, &b, NULL, NULL), AF_STORE_EXISTS, "table %d", t);
  }
  const char *marks[AF_STORE_TABLES] = {table_marks[0], table_marks[1], table_marks[2],
                                        table_marks[3]};
  int status[AF_STORE_TABLES] = {10, 11, 12, 13};
  expect_in_tables("shared", marks, status);
  /* A write in one table leaves the others. */
  status[AF_TABLE_PROFILES] = 42;
  cr_assert_eq(modify_in(AF_TABLE_PROFILES, "shared", set_status, &status[AF_TABLE_PROFILES]),
               AF_STORE_OK);
  expect_in_tables("shared", marks, status);
  /* So does a delete. */
  cr_assert_eq(modify_in(AF_TABLE_FLOWS, "shared", delete_it, NULL), AF_STORE_OK);
  marks[AF_TABLE_FLOWS] = NULL;
  expect_in_tables("shared", marks, status);
  cr_assert_eq(modify_in(AF_TABLE_CONNECTORS, "shared", delete_it, NULL), AF_STORE_OK);
  marks[AF_TABLE_CONNECTORS] = NULL;
  expect_in_tables("shared", marks, status);
  /* The name is free again in the tables it left, and only there. */
  af_flow_record again = table_record(AF_TABLE_FLOWS, "shared", defs[0]);
  cr_expect_eq(insert_in(AF_TABLE_FLOWS, &again, NULL, NULL), AF_STORE_OK);
  cr_expect_eq(insert_in(AF_TABLE_PROFILES, &again, NULL, NULL), AF_STORE_EXISTS);
  marks[AF_TABLE_FLOWS] = table_marks[AF_TABLE_FLOWS];
  status[AF_TABLE_FLOWS] = 10;
  expect_in_tables("shared", marks, status);
  /* A name only one table holds is missing from the others. */
  af_flow_record lone = table_record(AF_TABLE_CONNECTORS, "lone", defs[2]);
  cr_assert_eq(insert_in(AF_TABLE_CONNECTORS, &lone, NULL, NULL), AF_STORE_OK);
  const char *lone_marks[AF_STORE_TABLES] = {NULL, NULL, table_marks[AF_TABLE_CONNECTORS], NULL};
  expect_in_tables("lone", lone_marks, (int[AF_STORE_TABLES]){0, 0, 12, 0});
  cr_expect_eq(modify_in(AF_TABLE_PROFILES, "lone", delete_it, NULL), AF_STORE_NOT_FOUND);
}

/* How many records each table gets in the scan tests (besides the names all share). */
static const int table_counts[AF_STORE_TABLES] = {41, 27, 13, 9};
static const char *const table_prefixes[AF_STORE_TABLES] = {"flow", "prof", "conn", "timr"};
#define COMMON 5 /* names every table holds: common_0 ... */

/* Fills every table: its own names, the common ones, and private records (never scanned). */
static void fill_tables(void) {
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    for (int i = 0; i < table_counts[t] + COMMON + 4; i++) {
      char name[32], def[64];
      if (i < table_counts[t])
        snprintf(name, sizeof name, "%s_%03d", table_prefixes[t], i);
      else if (i < table_counts[t] + COMMON)
        snprintf(name, sizeof name, "common_%d", i - table_counts[t]);
      else
        snprintf(name, sizeof name, AF_STORE_PRIVATE_KEY "own_%d", i);
      af_flow_record r = table_record((af_store_table)t, name, def);
      cr_assert_eq(insert_in((af_store_table)t, &r, NULL, NULL), AF_STORE_OK, "%s", name);
    }
  }
}

/* Pages through table t (limit a page), with or without definitions, into all: each page
 * resumes after the previous one's last name. */
static void page_through(af_store_table t, size_t limit, bool with_definition, page *all) {
  static page p;
  all->n = all->definitions = all->wrong_definitions = 0;
  all->saw_definition = false;
  char after[32] = "";
  for (;;) {
    scan_in(t, all->n ? after : NULL, limit, with_definition, &p);
    cr_assert_leq(p.n, limit);
    cr_assert_leq(all->n + p.n, SCAN_FLOWS);
    memcpy(all->names[all->n], p.names, p.n * sizeof p.names[0]);
    memcpy(all->strings[all->n], p.strings, p.n * sizeof p.strings[0]);
    all->n += p.n;
    all->definitions += p.definitions;
    all->wrong_definitions += p.wrong_definitions;
    all->saw_definition |= p.saw_definition;
    if (p.n < limit)
      break;
    snprintf(after, sizeof after, "%s", p.names[p.n - 1]);
  }
}

Test(store, a_scan_of_a_table_sees_its_records_only_in_pages) {
  fill_tables();
  static page all, whole;
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    page_through((af_store_table)t, 7, false, &all);
    cr_expect_eq(all.n, (size_t)(table_counts[t] + COMMON), "table %d", t);
    scan_in((af_store_table)t, NULL, SIZE_MAX, false, &whole);
    cr_expect_eq(whole.n, all.n, "table %d: one scan sees what the pages do", t);
    size_t own = 0, common = 0;
    for (size_t i = 0; i < all.n; i++) {
      cr_expect_str_eq(all.names[i], whole.names[i], "table %d: pages follow the order", t);
      cr_expect_neq(all.names[i][0], AF_STORE_PRIVATE_KEY[0], "table %d", t);
      own += strncmp(all.names[i], table_prefixes[t], 4) == 0;
      common += strncmp(all.names[i], "common_", 7) == 0;
      char want[128];
      snprintf(want, sizeof want, "%s|s3-profile|salesforce-profile", table_marks[t]);
      cr_expect_str_eq(all.strings[i], want, "table %d: %s is another table's", t, all.names[i]);
    }
    cr_expect_eq(own, (size_t)table_counts[t], "table %d", t);
    cr_expect_eq(common, COMMON, "table %d", t);
    /* Resuming after a key sees the rest of this table's order, nothing of the others. */
    size_t k = all.n / 2;
    scan_in((af_store_table)t, all.names[k], SIZE_MAX, false, &whole);
    cr_expect_eq(whole.n, all.n - k - 1, "table %d: after %s", t, all.names[k]);
    for (size_t i = 0; i < whole.n; i++)
      cr_expect_str_eq(whole.names[i], all.names[k + 1 + i], "table %d", t);
  }
}

/* Private keys are stored, read and changed in every table, and no table's scan visits them. */
Test(store, no_tables_scan_visits_the_services_own_records) {
  fill_tables();
  static page all;
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    for (size_t limit = 1; limit <= 3; limit += 2) {
      page_through((af_store_table)t, limit, true, &all);
      cr_expect_eq(all.n, (size_t)(table_counts[t] + COMMON), "table %d", t);
      for (size_t i = 0; i < all.n; i++)
        cr_expect_neq(all.names[i][0], AF_STORE_PRIVATE_KEY[0], "table %d", t);
    }
    char name[32];
    snprintf(name, sizeof name, AF_STORE_PRIVATE_KEY "own_%d", table_counts[t] + COMMON);
    copy c;
    cr_assert_eq(get_in((af_store_table)t, name, &c), AF_STORE_OK, "table %d", t);
    cr_expect_str_eq(c.description, table_marks[t]);
  }
}

Test(store, a_scan_carries_definitions_only_when_asked) {
  fill_tables();
  /* Some records without a definition, in every table. */
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    char name[32];
    snprintf(name, sizeof name, "%s_nodef", table_prefixes[t]);
    af_flow_record r = bare_record(name);
    cr_assert_eq(insert_in((af_store_table)t, &r, NULL, NULL), AF_STORE_OK);
  }
  static page all;
  for (int t = 0; t < AF_STORE_TABLES; t++) {
    size_t want = (size_t)(table_counts[t] + COMMON);
    scan_in((af_store_table)t, NULL, SIZE_MAX, true, &all);
    cr_expect_eq(all.n, want + 1, "table %d", t);
    cr_expect_eq(all.definitions, want, "table %d: every definition there is", t);
    cr_expect_eq(all.wrong_definitions, 0, "table %d: each record's own", t);
    page_through((af_store_table)t, 4, true, &all); /* resuming after a key too */
    cr_expect_eq(all.definitions, want, "table %d, in pages", t);
    cr_expect_eq(all.wrong_definitions, 0, "table %d, in pages", t);
    char strings[128]; /* the other columns come with the definitions */
    snprintf(strings, sizeof strings, "%s|s3-profile|salesforce-profile", table_marks[t]);
    for (size_t i = 0; i < all.n; i++)
      if (strstr(all.names[i], "_nodef") == NULL)
        cr_expect_str_eq(all.strings[i], strings, "table %d: %s", t, all.names[i]);
    page_through((af_store_table)t, 4, false, &all);
    cr_expect_eq(all.n, want + 1, "table %d", t);
    cr_expect_not(all.saw_definition, "table %d: a scan without them leaves them out", t);
    scan_in((af_store_table)t, NULL, SIZE_MAX, false, &all);
    cr_expect_not(all.saw_definition, "table %d", t);
  }
}

/* The connector profiles of a flow's two ends: set, replaced and cleared by writes like any
 * string, read back by a read and by a scan, in every table. */
typedef struct profiles {
  const char *source, *destination;
  int status;
} profiles;

static af_store_verdict set_profiles(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  const profiles *p = ctx;
  next->source_profile = p->source;
  next->destination_profile = p->destination;
  next->status = (uint8_t)p->status;
  return AF_STORE_WRITE;
}

static void expect_profiles(af_store_table t, const char *name, const profiles *want) {
  copy c;
  cr_assert_eq(get_in(t, name, &c), AF_STORE_OK, "%s in table %d", name, t);
  char exp[64];
  copy_str(exp, sizeof exp, want->source);
  cr_expect_str_eq(c.source_profile, exp, "%s in table %d: source_profile", name, t);
  copy_str(exp, sizeof exp, want->destination);
  cr_expect_str_eq(c.destination_profile, exp, "%s in table %d: destination_profile", name, t);
  cr_expect_eq(c.status, want->status, "%s in table %d", name, t);
  static page p; /* the only record of its table: a scan returns the same */
  scan_in(t, NULL, SIZE_MAX, false, &p);
  cr_assert_eq(p.n, 1, "table %d", t);
  char strings[128];
  snprintf(strings, sizeof strings, "(null)|%s|%s", want->source ? want->source : "(null)",
           want->destination ? want->destination : "(null)");
  cr_expect_str_eq(p.strings[0], strings, "%s in table %d: scanned", name, t);
}

/* Runs set_profiles on name in table t, with a rule that reads the definition or not. */
static void write_profiles(af_store_table t, const char *name, const profiles *p, bool blind) {
  af_store_op op = {.table = t,
                    .key = name,
                    .key_len = strlen(name),
                    .rule = set_profiles,
                    .ctx = (void *)p,
                    .with_definition = !blind};
  cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK, "%s in table %d", name, t);
}

Test(store, a_write_sets_replaces_and_clears_the_profile_names) {
  for (int blind = 0; blind < 2; blind++) {
    for (int t = 0; t < AF_STORE_TABLES; t++) {
      char name[32];
      snprintf(name, sizeof name, "ends_%d", t);
      af_flow_record r = bare_record(name);
      r.source_profile = "from-the-start";
      af_store_table tt = (af_store_table)t;
      cr_assert_eq(insert_in(tt, &r, NULL, NULL), AF_STORE_OK);
      profiles p = {"from-the-start", NULL, 4};
      expect_profiles(tt, name, &p);
      /* Strings from the stack: the store copies them. */
      char src[64], dst[64];
      snprintf(src, sizeof src, "source-profile-%d-%d", blind, t);
      snprintf(dst, sizeof dst, "destination-profile-%d-%d", blind, t);
      p = (profiles){src, dst, 5};
      write_profiles(tt, name, &p, blind);
      char sent[64];
      snprintf(sent, sizeof sent, "%s", src);
      memset(src, 'x', sizeof src - 1);
      p.source = sent;
      expect_profiles(tt, name, &p);
      /* One replaced, one cleared. */
      p = (profiles){"another-profile", NULL, 6};
      write_profiles(tt, name, &p, blind);
      expect_profiles(tt, name, &p);
      /* A write of the status only keeps them. */
      p.status = 2;
      write_profiles(tt, name, &p, blind);
      expect_profiles(tt, name, &p);
      /* Both cleared. */
      p = (profiles){NULL, NULL, 3};
      write_profiles(tt, name, &p, blind);
      expect_profiles(tt, name, &p);
      cr_assert_eq(modify_in(tt, name, delete_it, NULL), AF_STORE_OK);
    }
  }
}

/* ---- many threads ---- */

#define THREADS 8
#define ROUNDS 100
#define SHARED 4

static af_store_verdict increment(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)ctx;
  next->created_ms = cur->created_ms + 1;
  return AF_STORE_WRITE;
}

/* Threads count what went wrong; the test's own thread asserts (Criterion's asserts belong to
 * it). */
typedef struct racer {
  int id, wins, failures;
} racer;

static void *incrementer(void *arg) {
  racer *r = arg;
  for (int i = 0; i < ROUNDS; i++) {
    char name[16];
    snprintf(name, sizeof name, "shared_%d", (i + r->id) % SHARED);
    r->failures += modify(name, increment, NULL) != AF_STORE_OK;
  }
  return NULL;
}

Test(store, racing_writes_each_apply_exactly_once) {
  for (int i = 0; i < SHARED; i++) {
    char name[16];
    snprintf(name, sizeof name, "shared_%d", i);
    af_flow_record r = bare_record(name);
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  }
  pthread_t th[THREADS];
  racer r[THREADS];
  for (int t = 0; t < THREADS; t++) {
    r[t] = (racer){t, 0, 0};
    pthread_create(&th[t], NULL, incrementer, &r[t]);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(th[t], NULL);
    cr_expect_eq(r[t].failures, 0);
  }
  int64_t total = 0;
  for (int i = 0; i < SHARED; i++) {
    char name[16];
    snprintf(name, sizeof name, "shared_%d", i);
    copy c;
    cr_assert_eq(get(name, &c), AF_STORE_OK);
    total += c.created_ms;
  }
  cr_expect_eq(total, THREADS * ROUNDS);
}

#define RACE_NAMES 100

static void *inserter(void *arg) {
  racer *w = arg;
  for (int i = 0; i < RACE_NAMES; i++) {
    char name[16];
    snprintf(name, sizeof name, "racer_%d", i);
    af_flow_record r = bare_record(name);
    af_store_rc rc = insert(&r, NULL, NULL);
    w->wins += rc == AF_STORE_OK;
    w->failures += rc != AF_STORE_OK && rc != AF_STORE_EXISTS;
  }
  return NULL;
}

Test(store, racing_inserts_take_each_name_once) {
  pthread_t th[THREADS];
  racer w[THREADS];
  for (int t = 0; t < THREADS; t++) {
    w[t] = (racer){t, 0, 0};
    pthread_create(&th[t], NULL, inserter, &w[t]);
  }
  int total = 0;
  for (int t = 0; t < THREADS; t++) {
    pthread_join(th[t], NULL);
    cr_expect_eq(w[t].failures, 0);
    total += w[t].wins;
  }
  cr_expect_eq(total, RACE_NAMES);
  static page p;
  scan(NULL, SIZE_MAX, &p);
  cr_expect_eq(p.n, RACE_NAMES);
}

/* ---- ops in flight together ---- */

#define IN_FLIGHT 200

Test(store, many_ops_in_flight_at_once_all_complete) {
  static burst_op ops[IN_FLIGHT];
  burst b;
  burst_insert(st, "burst_", ops, IN_FLIGHT, &b);
  cr_expect_eq(b.ok, IN_FLIGHT);
  static page p;
  scan(NULL, SIZE_MAX, &p);
  cr_expect_eq(p.n, IN_FLIGHT);
}

Test(store, every_store_has_a_token_key_and_a_name) {
  static const uint8_t zero[AF_STORE_TOKEN_KEY_LEN];
  cr_expect_neq(memcmp(st->token_key, zero, sizeof zero), 0);
  cr_expect_neq(st->display[0], '\0');
  cr_expect(af_store_healthy(st));
}

/* A rule that does not read the definition may not see it, and its write keeps it. */
static af_store_verdict suspend_blind(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)ctx;
  next->status = 6;
  return AF_STORE_WRITE;
}

Test(store, a_write_by_a_rule_that_never_read_the_definition_keeps_it) {
  af_flow_record r = full_record("blind");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  af_store_op op = {.key = "blind", .key_len = 5, .rule = suspend_blind};
  cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
  copy c;
  cr_assert_eq(get("blind", &c), AF_STORE_OK);
  cr_expect_eq(c.status, 6);
  cr_expect_str_eq(c.description, r.description, "the strings it left are kept");
  cr_expect_str_eq(c.created_by, r.created_by);
  cr_expect_str_eq(c.updated_by, r.updated_by);
  cr_expect_str_eq(c.status_message, r.status_message);
  cr_expect_str_eq(c.source_profile, r.source_profile);
  cr_expect_str_eq(c.destination_profile, r.destination_profile);
  cr_expect_eq(c.definition_len, r.definition.len);
  cr_expect_arr_eq(c.definition, r.definition.data, r.definition.len);
}

/* ---- scopes: an account and region's namespace ---- */

static af_store_op scoped(const char *scope, af_store_table t, const char *key) {
  return (af_store_op){.table = t,
                       .scope = scope,
                       .scope_len = scope ? strlen(scope) : 0,
                       .key = key,
                       .key_len = key ? strlen(key) : 0,
                       .with_definition = true};
}

static af_store_rc insert_scoped(const char *scope, const char *name, const char *description) {
  af_flow_record r = full_record(name);
  r.description = description;
  af_store_op op = scoped(scope, AF_TABLE_FLOWS, name);
  op.record = &r;
  return af_store_run(st, af_store_insert, &op);
}

static af_store_rc get_scoped(const char *scope, const char *name, copy *c) {
  memset(c, 0, sizeof *c);
  af_store_op op = scoped(scope, AF_TABLE_FLOWS, name);
  op.rule = keep_copy;
  op.ctx = c;
  return af_store_run(st, af_store_modify, &op);
}

static void scan_scoped(const char *scope, af_store_table t, const char *after, size_t limit,
                        page *p) {
  p->n = p->definitions = p->wrong_definitions = 0;
  af_store_op op = scoped(scope, t, after);
  op.visit = collect;
  op.ctx = p;
  op.limit = limit;
  op.with_definition = false;
  cr_assert_eq(af_store_run(st, af_store_scan, &op), AF_STORE_OK);
}

static af_store_verdict set_description(const af_flow_record *cur, af_flow_record *next,
                                        void *ctx) {
  (void)cur;
  next->description = ctx;
  return AF_STORE_WRITE;
}

#define SCOPE_A "111111111111/us-east-1"
#define SCOPE_B "222222222222/eu-west-1"

/* The same name in the default scope and two others is three records; a change in one leaves
 * the others; rules and visitors see names without the scope. */
Test(store, each_scope_is_a_namespace_of_its_own) {
  cr_assert_eq(insert_scoped(NULL, "flow", "default"), AF_STORE_OK);
  cr_assert_eq(insert_scoped(SCOPE_A, "flow", "a"), AF_STORE_OK);
  cr_assert_eq(insert_scoped(SCOPE_B, "flow", "b"), AF_STORE_OK);
  cr_expect_eq(insert_scoped(SCOPE_A, "flow", "again"), AF_STORE_EXISTS);
  static copy c;
  cr_assert_eq(get_scoped(SCOPE_A, "flow", &c), AF_STORE_OK);
  cr_expect_str_eq(c.name, "flow");
  cr_expect_str_eq(c.description, "a");
  af_store_op op = scoped(SCOPE_B, AF_TABLE_FLOWS, "flow");
  op.rule = set_description;
  op.ctx = "b changed";
  cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
  cr_assert_eq(get_scoped(SCOPE_B, "flow", &c), AF_STORE_OK);
  cr_expect_str_eq(c.description, "b changed");
  cr_assert_eq(get_scoped(SCOPE_A, "flow", &c), AF_STORE_OK);
  cr_expect_str_eq(c.description, "a");
  cr_assert_eq(get_scoped(NULL, "flow", &c), AF_STORE_OK);
  cr_expect_str_eq(c.description, "default");
  cr_expect_eq(get_scoped("333333333333/us-east-1", "flow", &c), AF_STORE_NOT_FOUND);
  op = scoped(SCOPE_A, AF_TABLE_FLOWS, "flow");
  op.rule = delete_it;
  cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
  cr_expect_eq(get_scoped(SCOPE_A, "flow", &c), AF_STORE_NOT_FOUND);
  cr_expect_eq(get_scoped(SCOPE_B, "flow", &c), AF_STORE_OK);
  cr_expect_eq(get_scoped(NULL, "flow", &c), AF_STORE_OK);
}

/* A scan visits its scope's records only, in pages, never another scope's nor the scope's
 * private records, and each table's scopes are apart. */
Test(store, a_scan_visits_one_scope) {
  for (int i = 0; i < 30; i++) {
    char name[32];
    snprintf(name, sizeof name, "flow_%03d", i);
    cr_assert_eq(insert_scoped(i % 3 == 0   ? NULL
                               : i % 3 == 1 ? SCOPE_A
                                            : SCOPE_B,
                               name, "d"),
                 AF_STORE_OK);
  }
  cr_assert_eq(insert_scoped(SCOPE_A, AF_STORE_PRIVATE_KEY "own", "d"), AF_STORE_OK);
  const char *scopes[] = {NULL, SCOPE_A, SCOPE_B};
  static page p;
  for (int s = 0; s < 3; s++) {
    size_t total = 0;
    char after[32] = "";
    for (;;) {
      scan_scoped(scopes[s], AF_TABLE_FLOWS, total ? after : NULL, 4, &p);
      for (size_t i = 0; i < p.n; i++)
        cr_expect_eq(atoi(p.names[i] + 5) % 3, s, "%s in scope %d", p.names[i], s);
      total += p.n;
      if (p.n < 4)
        break;
      snprintf(after, sizeof after, "%s", p.names[p.n - 1]);
    }
    cr_expect_eq(total, 10, "scope %d", s);
  }
  scan_scoped(SCOPE_A, AF_TABLE_PROFILES, NULL, SIZE_MAX, &p);
  cr_expect_eq(p.n, 0);
  scan_scoped("444444444444/us-east-1", AF_TABLE_FLOWS, NULL, SIZE_MAX, &p);
  cr_expect_eq(p.n, 0);
}

static void refused_scope(af_store_op op) {
  static copy c;
  op.rule = keep_copy;
  op.ctx = &c;
  cr_expect_eq(af_store_run(st, af_store_modify, &op), AF_STORE_FAILED);
}

/* A scope longer than AF_STORE_SCOPE_MAX is refused, never truncated into another's. */
Test(store, a_scope_too_long_is_refused) {
  char scope[AF_STORE_SCOPE_MAX + 2];
  memset(scope, 'x', sizeof scope - 1);
  scope[sizeof scope - 1] = '\0';
  refused_scope(scoped(scope, AF_TABLE_FLOWS, "flow"));
  af_flow_record r = full_record("flow");
  af_store_op op = scoped(scope, AF_TABLE_FLOWS, "flow");
  op.record = &r;
  cr_expect_eq(af_store_run(st, af_store_insert, &op), AF_STORE_FAILED);
  scope[AF_STORE_SCOPE_MAX] = '\0';
  cr_expect_eq(insert_scoped(scope, "flow", "d"), AF_STORE_OK);
}

/* ---- deadlines ---- */

/* Counts the records a rule or a visitor saw, and writes what it is given. */
static af_store_verdict counted_write(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  ++*(int *)ctx;
  next->status = 7;
  return AF_STORE_WRITE;
}

static bool counted_visit(const af_flow_record *r, void *ctx) {
  (void)r;
  ++*(int *)ctx;
  return true;
}

/* An op submitted after its deadline (the caller no longer waits) is answered UNAVAILABLE at
 * once on every store, and nothing of it runs: no rule, no write, no visit. */
Test(store, an_op_past_its_deadline_is_answered_unavailable_and_never_runs) {
  af_flow_record r = full_record("late");
  cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  copy before, after;
  cr_assert_eq(get("late", &before), AF_STORE_OK);
  int64_t past = af_store_now_ms() - 1;
  int runs = 0;
  af_store_op op = {
      .key = "late", .key_len = 4, .rule = counted_write, .ctx = &runs, .deadline_ms = past};
  cr_expect_eq(af_store_run(st, af_store_modify, &op), AF_STORE_UNAVAILABLE);
  af_flow_record fresh = bare_record("late_new");
  op = (af_store_op){.key = "late_new", .key_len = 8, .record = &fresh, .deadline_ms = past};
  cr_expect_eq(af_store_run(st, af_store_insert, &op), AF_STORE_UNAVAILABLE);
  op = (af_store_op){.visit = counted_visit, .ctx = &runs, .limit = 10, .deadline_ms = past};
  cr_expect_eq(af_store_run(st, af_store_scan, &op), AF_STORE_UNAVAILABLE);
  cr_expect_eq(runs, 0, "neither the rule nor the visitor ran");
  cr_assert_eq(get("late", &after), AF_STORE_OK);
  expect_full(&after, "late");
  cr_expect_eq(after.version, before.version, "the record was not written");
  cr_expect_eq(get("late_new", &after), AF_STORE_NOT_FOUND, "nothing was inserted");
  /* The same op with a deadline ahead runs. */
  op = (af_store_op){.key = "late",
                     .key_len = 4,
                     .rule = counted_write,
                     .ctx = &runs,
                     .deadline_ms = af_store_now_ms() + 60000};
  cr_expect_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
  cr_expect_eq(runs, 1);
}

/* ---- inserts submitted together (af_store_insert_all) ---- */

#define TOGETHER 5

/* Each of many inserts submitted at once is answered as it would be alone: added, kept, late
 * (unrun) or refused for its key, once each, on every store. */
Test(store, inserts_submitted_together_are_answered_as_each_alone) {
  af_flow_record taken = full_record("together_1");
  cr_assert_eq(insert(&taken, NULL, NULL), AF_STORE_OK);
  static burst_op ops[TOGETHER];
  burst b;
  burst_prepare("together_", ops, TOGETHER, &b);
  ops[2].op.deadline_ms = af_store_now_ms() - 1;
  static char long_name[AF_STORE_KEY_MAX + 2];
  memset(long_name, 'n', AF_STORE_KEY_MAX + 1);
  ops[3].rec.name = ops[3].op.key = long_name;
  ops[3].rec.name_len = ops[3].op.key_len = AF_STORE_KEY_MAX + 1;
  ops[4].op.deferred = true;
  af_store_op *all[TOGETHER];
  for (int i = 0; i < TOGETHER; i++)
    all[i] = &ops[i].op;
  af_store_insert_all(st, all, TOGETHER);
  burst_wait(&b);
  const af_store_rc want[TOGETHER] = {AF_STORE_OK, AF_STORE_EXISTS, AF_STORE_UNAVAILABLE,
                                      AF_STORE_TOO_LONG, AF_STORE_OK};
  for (int i = 0; i < TOGETHER; i++) {
    cr_expect_eq(ops[i].answers, 1, "insert %d answered %d times", i, ops[i].answers);
    cr_expect_eq(ops[i].rc, want[i], "insert %d: %d, not %d", i, ops[i].rc, want[i]);
  }
  copy c;
  cr_expect_eq(get("together_0", &c), AF_STORE_OK); /* an op after the deferred one */
  cr_expect_eq(get("together_4", &c), AF_STORE_OK);
  cr_expect_eq(get("together_2", &c), AF_STORE_NOT_FOUND, "the late insert never ran");
  cr_assert_eq(get("together_1", &c), AF_STORE_OK);
  expect_full(&c, "together_1");
}

/* ---- timing at the seam (af_store_time_ops) ---- */

typedef struct resubmit {
  af_store_op op;
  int done_calls;
  af_store_done mine;
  bool saw_mine; /* every done saw op->done back as the caller set it */
  af_latch latch;
} resubmit;

static bool count_visit(const af_flow_record *r, void *ctx) {
  (void)r, (void)ctx;
  return true;
}

/* The caller's done gets its own op back, restored, and may submit it again. */
static void scan_twice(af_store_op *op, af_store_rc rc) {
  resubmit *s = (resubmit *)op;
  cr_expect_eq(rc, AF_STORE_OK);
  s->saw_mine &= op->done == s->mine;
  if (++s->done_calls == 1)
    af_store_scan(st, op);
  else
    af_latch_open(&s->latch);
}

Test(store, timed_ops_are_counted_by_kind_and_answer_their_caller) {
  af_metrics *m = af_metrics_new(true);
  cr_assert_not_null(m);
  cr_assert(af_store_time_ops(st, m));
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "timed_%d", i);
    af_flow_record r = bare_record(name);
    cr_assert_eq(insert(&r, NULL, NULL), AF_STORE_OK);
  }
  af_store_op op = {.key = "timed_0", .key_len = 7, .rule = suspend_blind};
  cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_OK);
  op = (af_store_op){.key = "nobody", .key_len = 6, .rule = suspend_blind};
  cr_assert_eq(af_store_run(st, af_store_modify, &op), AF_STORE_NOT_FOUND, "failures count too");
  static resubmit s;
  s = (resubmit){.op = {.visit = count_visit, .limit = 10, .done = scan_twice},
                 .mine = scan_twice,
                 .saw_mine = true};
  af_latch_init(&s.latch);
  af_store_scan(st, &s.op);
  af_latch_wait(&s.latch);
  cr_expect(s.saw_mine, "the seam's done never shows through");
  cr_expect_eq(s.done_calls, 2);
  cr_expect_eq(af_metric_count(st->timing, AF_STORE_TIMED_INSERT), 3);
  cr_expect_eq(af_metric_count(st->timing, AF_STORE_TIMED_MODIFY), 2);
  cr_expect_eq(af_metric_count(st->timing, AF_STORE_TIMED_SCAN), 2);
  af_text t;
  af_text_init(&t);
  af_metrics_render(m, &t);
  char want[128];
  snprintf(want, sizeof want,
           "appflowd_store_operation_seconds_count{store=\"%s\",op=\"scan\"} 2\n",
           test_store_kind());
  cr_expect(strstr(t.data, want) != NULL, "%s in:\n%s", want, t.data);
  af_text_free(&t);
  test_store_close(st); /* before the registry the store records into */
  st = test_store_open();
  af_metrics_free(m);
}
