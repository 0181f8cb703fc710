/* src/flows/store.h: the seam's contract, checked on the store AF_TEST_STORE names (ctest runs
 * this file once per store): insert if absent, modify through a rule (keep, write, delete,
 * refuse), resumable scans, values in and out unchanged, and each change applied exactly once
 * when many threads race. */
#include "flows/store.h"

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
                          .definition = {def, sizeof def},
                          .tags = {tags, sizeof tags},
                          .runs = {runs, sizeof runs}};
}

static af_flow_record bare_record(const char *name) {
  return (af_flow_record){.name = name, .name_len = strlen(name), .trigger = 1, .status = 4};
}

static af_store_rc insert(const af_flow_record *r, af_store_rule rule, void *ctx) {
  af_store_op op = {.key = r->name,
                    .key_len = r->name_len,
                    .record = r,
                    .rule = rule,
                    .ctx = ctx,
                    .with_definition = true};
  return af_store_run(st, af_store_insert, &op);
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
  c->definition_len = copy_bytes(c->definition, sizeof c->definition, r->definition);
  c->tags_len = copy_bytes(c->tags, sizeof c->tags, r->tags);
  c->runs_len = copy_bytes(c->runs, sizeof c->runs, r->runs);
}

static af_store_verdict keep_copy(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)next;
  take_copy(ctx, cur);
  return AF_STORE_KEEP;
}

/* The record called name, copied; the op's result. */
static af_store_rc get(const char *name, copy *c) {
  memset(c, 0, sizeof *c);
  af_store_op op = {
      .key = name, .key_len = strlen(name), .rule = keep_copy, .ctx = c, .with_definition = true};
  af_store_rc rc = af_store_run(st, af_store_modify, &op);
  if (rc == AF_STORE_OK)
    cr_expect_eq(op.verdict, AF_STORE_KEEP);
  return rc;
}

static af_store_rc modify(const char *name, af_store_rule rule, void *ctx) {
  af_store_op op = {
      .key = name, .key_len = strlen(name), .rule = rule, .ctx = ctx, .with_definition = true};
  return af_store_run(st, af_store_modify, &op);
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
  size_t n;
  bool saw_definition;
} page;

static bool collect(const af_flow_record *r, void *ctx) {
  page *p = ctx;
  cr_assert_lt(p->n, SCAN_FLOWS + 1);
  snprintf(p->names[p->n++], sizeof p->names[0], "%.*s", (int)r->name_len, r->name);
  p->saw_definition |= r->definition.len > 0;
  return true;
}

static void scan(const char *after, size_t limit, page *p) {
  p->n = 0;
  af_store_op op = {.key = after,
                    .key_len = after ? strlen(after) : 0,
                    .visit = collect,
                    .ctx = p,
                    .limit = limit};
  cr_assert_eq(af_store_run(st, af_store_scan, &op), AF_STORE_OK);
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
  cr_expect_eq(c.definition_len, r.definition.len);
  cr_expect_arr_eq(c.definition, r.definition.data, r.definition.len);
}
