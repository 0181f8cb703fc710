/* Seeding: flows made without a request (the seed file, tests, fuzzers), through the store's
 * insert-if-absent like CreateFlow, so a durable store keeps what it has and adds the rest.
 *
 * Up to WINDOW inserts are in flight at once, each in a slot of its own that holds a copy of
 * its record: a database store then commits a whole window in one transaction instead of one
 * flow at a time, and a million flows cost WINDOW slots of memory, not a million. A store's
 * queue takes a seed's inserts past its bound, which is for requests (af_store_op.deferred); one
 * a store turns away all the same (BUSY) waits and goes again once an insert ahead of it has
 * finished. The window is wide enough for the reading threads to go on while SQLite's writer
 * waits for the disk at a checkpoint (a million flows: 37 checkpoints of about 6 ms).
 *
 * To a store that answers later, inserts go BATCH at a time: its writer then finds a batch
 * queued and commits it together. Sent one by one, they woke it for a few flows at a time, and
 * a commit of a few flows rewrites as many pages as one of hundreds (a million flows were
 * 18,820 commits and 670 MB written for a 122 MB file). The inserts are deferred, too: a store
 * may answer them before they are durable, and the seeder's last op (flush) makes them so. */
#include "flows/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 4096
#define BATCH 256       /* < WINDOW: a batch goes while the rest of the window fills */
#define RETRY_WAIT_MS 5 /* a BUSY insert goes again at the latest after this */

typedef struct slot {
  af_store_op op; /* first: done gets it back */
  struct af_flows_seeder *sd;
  struct slot *next;     /* in the free list or the retry list */
  struct slot *all_next; /* every slot, to free them */
  bool ended;            /* the insert has ended (under the lock); set when it does */
  af_store_rc rc;        /* ... and how */
  af_flow_record rec;
  char scope[AF_STORE_SCOPE_MAX + 1]; /* the flow's account and region's; "" for the default */
  af_arena arena;                     /* the record's copy; reset for each flow */
} slot;

struct af_flows_seeder {
  af_flows *svc;
  pthread_mutex_t lock;
  pthread_cond_t changed; /* a slot finished, or was turned away */
  slot *free_slots;
  slot *retry;              /* turned away (BUSY): to submit again */
  af_store_op *held[BATCH]; /* filled, not submitted yet (the adding thread's alone), in order */
  size_t nheld;
  size_t in_flight, added, kept;
  size_t waiters;        /* threads waiting on changed */
  size_t eager;          /* of them, those to be woken by any insert that ends */
  uint64_t finished;     /* inserts that finished, BUSY ones aside: room in the store's queue */
  uint64_t retried_at;   /* finished when turned-away inserts last went again */
  int64_t now_ms;        /* every seeded flow's createdAt */
  af_store_rc failed;    /* the first failure, or AF_STORE_OK */
  slot *all;             /* every slot made, through all_next */
  size_t nmade;          /* slots are made as needed, up to WINDOW: seeding one flow costs one */
  struct known_profile { /* profiles flows have named: a store read each, once */
    char *name;
    char scope[AF_STORE_SCOPE_MAX + 1];
    int type;
  } * known;
  size_t nknown, known_cap;
  char **armed; /* Active scheduled flows seeded: the scheduler is to look at each */
  size_t narmed, armed_cap;
  bool armed_oom;
};

af_flows_seeder *af_flows_seed_begin(af_flows *svc) {
  return af_flows_seed_begin_at(svc, af_flows_now_ms(svc));
}

af_flows_seeder *af_flows_seed_begin_at(af_flows *svc, int64_t now_ms) {
  af_flows_seeder *sd = calloc(1, sizeof *sd);
  if (sd == NULL)
    return NULL;
  sd->svc = svc;
  sd->now_ms = now_ms;
  pthread_mutex_init(&sd->lock, NULL);
  pthread_cond_init(&sd->changed, NULL);
  return sd;
}

int64_t af_flows_seed_time(const af_flows_seeder *sd) { return sd->now_ms; }

/* A new slot while fewer than WINDOW exist (lock held); NULL otherwise or out of memory. */
static slot *make_slot(af_flows_seeder *sd) {
  slot *s = sd->nmade < WINDOW ? calloc(1, sizeof *s) : NULL;
  if (s == NULL)
    return NULL;
  s->sd = sd;
  af_arena_init(&s->arena);
  s->all_next = sd->all;
  sd->all = s;
  sd->nmade++;
  return s;
}

/* Whether an insert that ended (lock held) is worth waking the waiting threads for. One waiting
 * for a free slot is woken once BATCH are free, not for each one: each wake is a system call on
 * the store's thread, and a million flows into SQLite woke the adding thread 38,000 times. */
static bool worth_waking(const af_flows_seeder *sd, af_store_rc rc) {
  if (sd->waiters == 0)
    return false;
  bool turned_away_or_failed = rc != AF_STORE_OK && rc != AF_STORE_EXISTS;
  return turned_away_or_failed || sd->eager > 0 || sd->in_flight == 0 ||
         sd->nmade - sd->in_flight >= BATCH;
}

static void seeded(af_store_op *op, af_store_rc rc) {
  slot *s = (slot *)op;
  af_flows_seeder *sd = s->sd;
  pthread_mutex_lock(&sd->lock);
  s->ended = rc != AF_STORE_BUSY;
  s->rc = rc;
  if (rc == AF_STORE_BUSY) { /* still in flight: it goes again */
    s->next = sd->retry;
    sd->retry = s;
  } else {
    if (rc == AF_STORE_OK)
      sd->added++;
    else if (rc == AF_STORE_EXISTS)
      sd->kept++;
    else if (sd->failed == AF_STORE_OK)
      sd->failed = rc;
    s->next = sd->free_slots;
    sd->free_slots = s;
    sd->in_flight--;
    sd->finished++;
  }
  if (worth_waking(sd, rc))
    pthread_cond_broadcast(&sd->changed);
  pthread_mutex_unlock(&sd->lock);
}

static af_err seed_error(af_store_rc rc, af_error *err) {
  switch (rc) {
  case AF_STORE_BUSY:
  case AF_STORE_UNAVAILABLE:
    return af_error_set(err, AF_ERR_UNAVAILABLE, "the flow store is unavailable");
  case AF_STORE_TOO_LONG:
    return af_error_set(err, AF_ERR_VALIDATION,
                        "a seeded flow's name is too long for the flow store, whose keys hold at "
                        "most %d bytes",
                        AF_STORE_KEY_MAX);
  case AF_STORE_OK:
  case AF_STORE_NOT_FOUND:
  case AF_STORE_EXISTS:
  case AF_STORE_REFUSED:
  case AF_STORE_FAILED:
    break;
  }
  return af_error_set(err, AF_ERR_INTERNAL_SERVER,
                      "the flow store failed to store a seeded flow (see the log above)");
}

static void submit(af_flows_seeder *sd, slot *s) { af_store_insert(sd->svc->store, &s->op); }

/* Submits the held inserts, in the order they were added, all at once (the store's queue is
 * locked once for them); not under the lock. */
static void send_held(af_flows_seeder *sd) {
  size_t n = sd->nheld;
  sd->nheld = 0;
  af_store_insert_all(sd->svc->store, sd->held, n);
}

/* Submits s now (a store that answers at once: the caller wants its answer), or holds it
 * until BATCH are held. */
static void send(af_flows_seeder *sd, slot *s) {
  if (sd->svc->store->answers_at_once) {
    submit(sd, s);
    return;
  }
  sd->held[sd->nheld++] = &s->op;
  if (sd->nheld == BATCH)
    send_held(sd);
}

/* A flow failed: the turned-away inserts are given up (lock held). */
static void seeded_abandon(af_flows_seeder *sd) {
  while (sd->retry != NULL) {
    slot *s = sd->retry;
    sd->retry = s->next;
    s->next = sd->free_slots;
    sd->free_slots = s;
    sd->in_flight--;
  }
}

/* Waits (lock held) until an insert ends that is worth waking for (worth_waking). */
static void wait_ended(af_flows_seeder *sd) {
  sd->waiters++;
  pthread_cond_wait(&sd->changed, &sd->lock);
  sd->waiters--;
}

/* Waits (lock held) until any insert ends, or RETRY_WAIT_MS. */
static void wait_change(af_flows_seeder *sd) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_nsec += RETRY_WAIT_MS * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  sd->waiters++;
  sd->eager++;
  pthread_cond_timedwait(&sd->changed, &sd->lock, &t);
  sd->eager--;
  sd->waiters--;
}

/* Submits the turned-away inserts again once one ahead of them finished (or a while passed, in
 * case the queue was full of others' work). Lock held on entry and return. */
static void resubmit(af_flows_seeder *sd) {
  if (sd->retry == NULL)
    return;
  if (sd->finished == sd->retried_at && sd->failed == AF_STORE_OK)
    wait_change(sd); /* for one ahead to finish, or a while */
  sd->retried_at = sd->finished;
  slot *list = sd->retry;
  sd->retry = NULL;
  pthread_mutex_unlock(&sd->lock);
  while (list != NULL) {
    slot *s = list;
    list = s->next;
    submit(sd, s);
  }
  pthread_mutex_lock(&sd->lock);
}

/* A free slot, waiting for one if all are in flight; NULL once a flow has failed. */
static slot *take_slot(af_flows_seeder *sd, af_error *err) {
  pthread_mutex_lock(&sd->lock);
  slot *fresh = sd->free_slots == NULL && sd->failed == AF_STORE_OK ? make_slot(sd) : NULL;
  if (fresh != NULL) { /* a new one rather than wait, while fewer than WINDOW exist */
    fresh->next = NULL;
    sd->free_slots = fresh;
  }
  if (sd->free_slots == NULL && sd->nheld > 0) {
    pthread_mutex_unlock(&sd->lock); /* the held ones are what the wait below would be for */
    send_held(sd);
    pthread_mutex_lock(&sd->lock);
  }
  while (sd->free_slots == NULL && sd->failed == AF_STORE_OK) {
    if (sd->retry != NULL)
      resubmit(sd);
    else
      wait_ended(sd);
  }
  af_store_rc failed = sd->failed;
  slot *s = failed == AF_STORE_OK ? sd->free_slots : NULL;
  if (s != NULL) {
    sd->free_slots = s->next;
    sd->in_flight++;
  }
  pthread_mutex_unlock(&sd->lock);
  if (s == NULL)
    seed_error(failed, err);
  return s;
}

/* ---- the profiles a seeded flow names ---- */

/* The type of the profile called name in t's scope, from what this seeder has read, else the
 * store. */
static af_err profile_type(af_flows_seeder *sd, const af_tenant *t, const char *name, int *type,
                           af_error *err) {
  for (size_t i = 0; i < sd->nknown; i++) {
    if (strcmp(sd->known[i].name, name) == 0 && strcmp(sd->known[i].scope, t->scope) == 0) {
      *type = sd->known[i].type;
      return AF_OK;
    }
  }
  af_err rc = af__profile_type(sd->svc, t, name, type, err);
  if (rc != AF_OK)
    return rc;
  if (sd->nknown == sd->known_cap) {
    size_t cap = sd->known_cap ? 2 * sd->known_cap : 16;
    struct known_profile *k = realloc(sd->known, cap * sizeof *k);
    if (k == NULL)
      return AF_OK; /* read again next time */
    sd->known = k;
    sd->known_cap = cap;
  }
  memcpy(sd->known[sd->nknown].scope, t->scope, t->scope_len + 1);
  if ((sd->known[sd->nknown].name = strdup(name)) != NULL)
    sd->known[sd->nknown++].type = *type;
  return AF_OK;
}

af_err af_flows_seed_check_profiles(af_flows_seeder *sd, const af_flow_spec *spec,
                                    const Appflow__V1__CreateFlowRequest *req, af_error *err) {
  af_tenant t;
  af_err trc = af__tenant(sd->svc, spec->account, spec->region, &t, err);
  if (trc != AF_OK)
    return trc;
  const Appflow__V1__SourceFlowConfig *src = req->source_flow_config;
  const Appflow__V1__DestinationFlowConfig *dst = req->destination_flow_config_list[0];
  int types[2] = {(int)src->connector_type, (int)dst->connector_type};
  const char *names[2] = {af__flow_profile(src->connector_profile_name, types[0]),
                          af__flow_profile(dst->connector_profile_name, types[1])};
  for (int i = 0; i < 2; i++) {
    int type = 0;
    if (names[i] == NULL)
      continue;
    af_err rc = profile_type(sd, &t, names[i], &type, err);
    if (rc == AF_OK && type != types[i])
      rc = af__profile_mismatch(err, names[i], type, types[i], i);
    if (rc != AF_OK)
      return rc;
  }
  return AF_OK;
}

/* What CreateFlow would store of d: its packed definition, trigger, description and connectors
 * (the spec's tags are the definition's, given by the caller). */
static bool fill_definition(const af_flows *svc, af_flow_record *r,
                            const Appflow__V1__CreateFlowRequest *d, af_arena *a) {
  size_t len;
  uint8_t *def = af__pack_definition(svc->sort_plans, d, a, &len);
  bool oom = def == NULL;
  r->definition = (af_bytes){def, len};
  r->trigger = (uint8_t)d->trigger_config->trigger_type;
  r->description = af_flows_strdup(a, d->description, &oom);
  r->source_connector = af_flows_connector_name(d->source_flow_config->connector_type);
  const Appflow__V1__DestinationFlowConfig *dst = d->destination_flow_config_list[0];
  r->destination_connector = af_flows_connector_name(dst->connector_type);
  r->source_profile =
      af_flows_strdup(a,
                      af__flow_profile(d->source_flow_config->connector_profile_name,
                                       (int)d->source_flow_config->connector_type),
                      &oom);
  r->destination_profile = af_flows_strdup(
      a, af__flow_profile(dst->connector_profile_name, (int)dst->connector_type), &oom);
  return !oom;
}

/* An Active scheduled flow's run log: its first run is for the scheduler to compute. */
static bool fill_schedule(af_flow_record *r, int64_t now_ms, af_arena *a) {
  Appflowd__Store__V1__RunLog log = APPFLOWD__STORE__V1__RUN_LOG__INIT;
  af__schedule_from(&log, now_ms, true);
  return af__pack(&log.base, a, &r->runs);
}

static bool armed_flow(const af_flow_record *r) {
  return r->trigger == APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED &&
         r->status == APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE && r->definition.len > 0;
}

/* Remembers an armed flow's timer row for af_flows_seed_end: its name, or "SCOPE/NAME" for a flow
 * of another account and region (as af__arm_timer names it). */
static void remember_armed(af_flows_seeder *sd, const char *scope, const char *name, size_t len) {
  if (sd->narmed == sd->armed_cap) {
    size_t cap = sd->armed_cap ? sd->armed_cap * 2 : 16;
    char **v = realloc(sd->armed, cap * sizeof *v);
    if (v == NULL) {
      sd->armed_oom = true;
      return;
    }
    sd->armed = v;
    sd->armed_cap = cap;
  }
  size_t slen = strlen(scope);
  char *row = malloc(slen + 1 + len + 1);
  if (row != NULL)
    snprintf(row, slen + 1 + len + 1, "%s%s%.*s", scope, slen > 0 ? "/" : "", (int)len, name);
  if ((sd->armed[sd->narmed] = row) != NULL)
    sd->narmed++;
  else
    sd->armed_oom = true;
}

static bool visit_none(const af_flow_record *r, void *ctx) {
  (void)r, (void)ctx;
  return false;
}

/* An op that is not deferred, answered once every deferred insert before it is durable: OK, or
 * how committing them failed. */
static af_store_rc flush(af_flows_seeder *sd) {
  af_store_op op = {.visit = visit_none, .limit = 0};
  return af_store_run(sd->svc->store, af_store_scan, &op);
}

/* Timer rows for the armed flows, so their schedules start. */
static af_store_rc arm_all(af_flows_seeder *sd) {
  af_store_rc failed = sd->armed_oom ? AF_STORE_FAILED : AF_STORE_OK;
  for (size_t i = 0; i < sd->narmed; i++) {
    af_flow_record rec = {.name = sd->armed[i], .name_len = strlen(sd->armed[i])};
    rec.created_ms = rec.updated_ms = sd->now_ms;
    af_store_op op = {
        .table = AF_TABLE_TIMERS, .key = rec.name, .key_len = rec.name_len, .record = &rec};
    af_store_rc rc = af_store_run(sd->svc->store, af_store_insert, &op);
    if (rc != AF_STORE_OK && rc != AF_STORE_EXISTS && failed == AF_STORE_OK)
      failed = rc;
    free(sd->armed[i]);
  }
  free(sd->armed);
  return failed;
}

/* The record spec makes, copied into the slot's arena. */
static bool fill(const af_flows *svc, slot *s, int64_t now_ms, const af_flow_spec *spec) {
  af_arena *a = &s->arena;
  af_arena_reset(a);
  bool oom = false;
  af_flow_record *r = &s->rec;
  *r = (af_flow_record){0};
  r->name = af_arena_strndup(a, spec->name, spec->name_len);
  r->name_len = spec->name_len;
  r->trigger = (uint8_t)spec->trigger;
  r->status = r->create_status =
      (uint8_t)(spec->status != APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_UNSPECIFIED
                    ? spec->status
                    : af__created_status(spec->trigger));
  r->created_ms = r->updated_ms = now_ms;
  r->description = af_flows_strdup(a, spec->description, &oom);
  r->status_message = af_flows_strdup(a, spec->status_message, &oom);
  if (spec->definition != NULL && !fill_definition(svc, r, spec->definition, a))
    return false;
  if (armed_flow(r) && !fill_schedule(r, now_ms, a))
    return false;
  return !oom && r->name != NULL && af_flows_pack_tags(spec->tags, spec->ntags, a, &r->tags);
}

int af_flows_seed_add(af_flows_seeder *sd, const af_flow_spec *spec, af_error *err) {
  af_tenant t;
  if (af__tenant(sd->svc, spec->account, spec->region, &t, err) != AF_OK ||
      af__scope_record_sync(sd->svc, &t, err) != AF_OK)
    return -1;
  slot *s = take_slot(sd, err);
  if (s == NULL)
    return -1;
  s->ended = false;
  memcpy(s->scope, t.scope, t.scope_len + 1);
  if (!fill(sd->svc, s, sd->now_ms, spec)) {
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory seeding flows");
    seeded(&s->op, AF_STORE_FAILED);
    return -1;
  }
  if (armed_flow(&s->rec))
    remember_armed(sd, s->scope, s->rec.name, s->rec.name_len);
  s->op = (af_store_op){.key = s->rec.name,
                        .key_len = s->rec.name_len,
                        .record = &s->rec,
                        .scope = t.scope_len > 0 ? s->scope : NULL,
                        .scope_len = t.scope_len,
                        .deferred = true,
                        .done = seeded};
  send(sd, s);
  if (!sd->svc->store->answers_at_once)
    return 0; /* a failure is told by the next add (take_slot), or seed_end */
  /* A store that answers at once (memory) has answered for this very flow: say how. The slot
   * is not taken again before this thread's next add, so it still holds the answer. */
  pthread_mutex_lock(&sd->lock);
  af_store_rc failed = sd->failed;
  bool existed = s->ended && s->rc == AF_STORE_EXISTS;
  pthread_mutex_unlock(&sd->lock);
  if (failed != AF_STORE_OK) {
    seed_error(failed, err);
    return -1;
  }
  return existed ? 1 : 0;
}

int af_flows_seed_end(af_flows_seeder *sd, size_t *added, size_t *kept, af_error *err) {
  send_held(sd);
  pthread_mutex_lock(&sd->lock);
  while (sd->in_flight > 0) {
    if (sd->retry != NULL && sd->failed == AF_STORE_OK)
      resubmit(sd);
    else if (sd->retry != NULL) /* a flow failed: the rest are not tried again */
      seeded_abandon(sd);
    else
      wait_ended(sd);
  }
  pthread_mutex_unlock(&sd->lock);
  if (added != NULL)
    *added = sd->added;
  if (kept != NULL)
    *kept = sd->kept;
  af_store_rc failed = sd->failed;
  af_store_rc flushed = flush(sd);
  if (failed == AF_STORE_OK)
    failed = flushed;
  af_store_rc armed = arm_all(sd);
  if (failed == AF_STORE_OK)
    failed = armed;
  while (sd->all != NULL) {
    slot *s = sd->all;
    sd->all = s->all_next;
    af_arena_destroy(&s->arena);
    free(s);
  }
  for (size_t i = 0; i < sd->nknown; i++)
    free(sd->known[i].name);
  free(sd->known);
  pthread_mutex_destroy(&sd->lock);
  pthread_cond_destroy(&sd->changed);
  free(sd);
  if (failed != AF_STORE_OK) {
    seed_error(failed, err);
    return -1;
  }
  return 0;
}

af_err af_flows_seed_one(af_flows *svc, const af_flow_spec *spec, bool *added, af_error *err) {
  af_flows_seeder *sd = af_flows_seed_begin(svc);
  if (sd == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory");
  size_t n = 0;
  int rc = af_flows_seed_add(sd, spec, err);
  af_error end_err;
  if (af_flows_seed_end(sd, &n, NULL, rc >= 0 ? err : &end_err) != 0 || rc < 0)
    return err->code;
  if (added != NULL)
    *added = n == 1;
  return AF_OK;
}

/* ---- counting ---- */

static bool count_one(const af_flow_record *r, void *ctx) {
  (void)r;
  (*(size_t *)ctx)++;
  return true;
}

size_t af_flows_count_upto(af_flows *svc, size_t limit) {
  size_t n = 0;
  af_store_op op = {.visit = count_one, .ctx = &n, .limit = limit};
  /* A count is for tests and fuzzers, which compare it with what they expect: a scan that
   * fails counts the records it visited, and that comparison fails in turn. */
  AF_IGNORE(af_store_run(svc->store, af_store_scan, &op));
  return n;
}

size_t af_flows_count(af_flows *svc) { return af_flows_count_upto(svc, SIZE_MAX); }

static bool table_empty(af_flows *svc, af_store_table t) {
  size_t n = 0;
  af_store_op op = {.table = t, .visit = count_one, .ctx = &n, .limit = 1};
  return af_store_run(svc->store, af_store_scan, &op) == AF_STORE_OK && n == 0;
}

bool af_flows_store_empty(af_flows *svc) {
  /* the scheduler's table first: a scope's row is written before anything of the scope */
  return table_empty(svc, AF_TABLE_TIMERS) && table_empty(svc, AF_TABLE_FLOWS) &&
         table_empty(svc, AF_TABLE_PROFILES) && table_empty(svc, AF_TABLE_CONNECTORS);
}
