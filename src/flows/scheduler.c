/* The scheduler: fires scheduled runs, counts their failures (flowErrorDeactivationThreshold),
 * keeps the emulator's clock, and after a restart ends the runs a crash left in progress.
 *
 * What is due lives in the store's timers table (flows/store.h): one row per flow the scheduler
 * must look at, due when its next scheduled run starts or a scheduled run of it ends. Rows are
 * hints: the flow's run log is the truth (RunLog.next_fire_ms), and firing is one rule on the
 * flow record that starts every run due and moves next_fire_ms on. Whichever replica's pass
 * gets there first fires a run; any other finds it fired (its rule runs on the stored record),
 * so each scheduled run starts exactly once, and a replica's death loses none: the others' passes
 * find its rows due.
 *
 * Each appflowd keeps a row "instance:ID" fresh (a heartbeat). One that starts while no other
 * instance is alive is a restart of the whole service: the runs that were in progress are ended
 * as Error, interrupted. Runs never need a process to end them (their status is a function of the
 * clock), so while any instance lives, runs a dead replica started end as they would have.
 *
 * Thread-safety: one thread of its own; AdvanceClock hands its work to that thread, so no door
 * thread waits on the store. */
#include "appflowd/emulator/v1/emulator.pb-c.h"
#include "common/hash.h"
#include "common/uuid.h"
#include "flows/internal.h"
#include "flows/schedule.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRIGGER(t) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##t
#define STATUS(s) APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_##s
#define ACTIVE APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE
#define SUSPENDED APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED
#define NEVER INT64_MAX
/* Instances on other hosts are alive while their heartbeat is this recent (real time). */
#define LEASE_MS 10000
/* Runs one rule starts or ends at most, so a clock moved on by years cannot hold a record; the
 * pass comes back to the flow at once. */
#define EVENTS_PER_RULE 512
/* Timer rows a pass reads at a time. */
#define PAGE 256
/* The longest AdvanceClock: ten years. */
#define ADVANCE_MAX_S (10.0 * 366 * 24 * 3600)
#define CLOCK_KEY "clock:"
#define INSTANCE_PREFIX "instance:"

/* An AdvanceClock waiting for the scheduler's thread. */
typedef struct clock_req {
  struct clock_req *next;
  int64_t advance_ms;
  Appflowd__Emulator__V1__AdvanceClockResponse *resp;
  af_reply_to to;
} clock_req;

typedef struct af_scheduler af_scheduler;

struct af_scheduler {
  af_flows *svc;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  bool stop;
  int tick_ms;
  clock_req *head, *tail; /* AdvanceClocks to run, oldest first */
  char lease[64];         /* "instance:ID" */
  char whoami[300];       /* "HOST PID" */
  char host[256];
  bool leased;
};

static int64_t real_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t ts_ms(const Google__Protobuf__Timestamp *t) {
  return t == NULL ? 0 : t->seconds * 1000 + t->nanos / 1000000;
}

/* ---- one flow: what its schedule and its scheduled runs need now ---- */

typedef struct advance {
  af_flows *svc;
  int64_t now;
  af_arena *arena;
  /* out */
  int64_t next_due; /* 0: nothing more to do for this flow */
  int started;
  char ids[EVENTS_PER_RULE][37];
} advance;

/* The flow's schedule, from its definition: false when it has none the scheduler can run. */
typedef struct sched_of {
  af_schedule expr;
  int64_t start, end, offset; /* scheduleStartTime, scheduleEndTime (NEVER), scheduleOffset */
  int threshold;              /* flowErrorDeactivationThreshold; 0: none */
  int64_t first_pull;         /* firstExecutionFrom, else when the flow was created */
} sched_of;

static bool schedule_of(const af_flow_record *cur, af_arena *a, sched_of *s) {
  if (cur->definition.len == 0)
    return false;
  Appflow__V1__CreateFlowRequest *def = appflow__v1__create_flow_request__unpack(
      &a->allocator, cur->definition.len, cur->definition.data);
  const Appflow__V1__TriggerConfig *t = def ? def->trigger_config : NULL;
  const Appflow__V1__ScheduledTriggerProperties *p =
      t && t->trigger_properties ? t->trigger_properties->scheduled : NULL;
  if (p == NULL || p->schedule_expression == NULL ||
      af_schedule_parse(p->schedule_expression, &s->expr) != NULL)
    return false;
  s->start = ts_ms(p->schedule_start_time);
  s->end = p->schedule_end_time ? ts_ms(p->schedule_end_time) : NEVER;
  s->offset = p->has_schedule_offset ? p->schedule_offset * 1000 : 0;
  s->threshold =
      p->has_flow_error_deactivation_threshold ? p->flow_error_deactivation_threshold : 0;
  s->first_pull = p->first_execution_from ? ts_ms(p->first_execution_from) : cur->created_ms;
  return true;
}

/* The first run after raw instant `after` (offset added), or 0 when the schedule is over. */
static int64_t fire_after(const sched_of *s, int64_t anchor, int64_t after) {
  int64_t raw = af_schedule_next(&s->expr, anchor, after);
  if (raw == AF_SCHEDULE_NEVER || raw > NEVER - s->offset || raw + s->offset > s->end)
    return 0;
  return raw + s->offset;
}

/* A flow just activated (at log->schedule_anchor_ms): where its rate() counts from, and its
 * first run: scheduleStartTime when that is later, else the first instant after activation. */
static int64_t first_fire(const sched_of *s, Appflowd__Store__V1__RunLog *log) {
  int64_t activated = log->schedule_anchor_ms;
  log->schedule_anchor_ms = s->start > 0 ? s->start : activated;
  int64_t after = s->start > activated ? s->start - 1 : activated;
  return fire_after(s, log->schedule_anchor_ms, after);
}

/* When a run ends (or ended), whatever its status now. */
static int64_t end_of(const Appflowd__Store__V1__Execution *e) {
  int64_t since;
  af__execution_status(e, NEVER - 1, &since); /* at the end of time, every run has ended */
  return since;
}

/* The scheduled run still to be counted that ends first, or NULL. */
static Appflowd__Store__V1__Execution *next_end(const Appflowd__Store__V1__RunLog *log) {
  Appflowd__Store__V1__Execution *best = NULL;
  for (size_t i = 0; i < log->n_executions; i++) {
    Appflowd__Store__V1__Execution *e = log->executions[i];
    if (e->trigger == TRIGGER(SCHEDULED) && !e->counted &&
        (best == NULL || end_of(e) < end_of(best)))
      best = e;
  }
  return best;
}

/* Counts a scheduled run that has ended; true when that deactivates the flow. */
static bool count_end(Appflowd__Store__V1__RunLog *log, Appflowd__Store__V1__Execution *e,
                      const sched_of *s) {
  int64_t since;
  Appflow__V1__ExecutionStatus st = af__execution_status(e, end_of(e), &since);
  e->counted = true;
  if (st == STATUS(ERROR))
    log->consecutive_failures++;
  else if (st == STATUS(SUCCESSFUL))
    log->consecutive_failures = 0;
  return s->threshold > 0 && log->consecutive_failures >= s->threshold;
}

static void deactivate(advance *ad, const af_flow_record *cur, af_flow_record *next,
                       const sched_of *s, int64_t at) {
  next->status = SUSPENDED;
  next->updated_ms = at;
  next->status_message = af_arena_printf(
      ad->arena,
      "The flow was deactivated after %d consecutive failed scheduled runs "
      "(flowErrorDeactivationThreshold is %d). Fix the cause, then start the flow again.",
      s->threshold, s->threshold);
  af_log_printf(ad->svc->log, AF_LOG_INFO,
                "flow %s: deactivated after %d consecutive failed scheduled runs", cur->name,
                s->threshold);
}

/* With nothing scripted, the runs due before the last AF_EXECUTIONS_KEPT ones would end
 * Successful and fall off the run log unseen: they are skipped (the first run kept pulls the
 * data since the last run before them), so a clock moved on by years starts a hundred runs, not
 * millions. Looks at SKIP_SCAN instants at most per call. */
#define SKIP_SCAN 1000000
static void skip_unseen(const sched_of *s, Appflowd__Store__V1__RunLog *log, int64_t now) {
  int64_t ring[AF_EXECUTIONS_KEPT];
  size_t count = 0;
  if (log->n_outcomes > 0)
    return;
  for (int64_t t = log->next_fire_ms; t > 0 && t <= now && count < SKIP_SCAN;
       t = fire_after(s, log->schedule_anchor_ms, t - s->offset))
    ring[count++ % AF_EXECUTIONS_KEPT] = t;
  if (count <= AF_EXECUTIONS_KEPT)
    return;
  log->next_fire_ms = ring[count % AF_EXECUTIONS_KEPT]; /* the oldest of the last ones seen */
  log->consecutive_failures = 0;
}

/* Starts every scheduled run due by now and counts every scheduled run that has ended, in the
 * order they happen. */
static af_store_verdict advance_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  advance *ad = ctx;
  ad->next_due = 0;
  ad->started = 0;
  Appflowd__Store__V1__RunLog *log = af_flows_runs(cur->runs, ad->arena);
  sched_of s;
  if (log == NULL)
    return AF_STORE_KEEP;
  bool active = cur->status == ACTIVE && cur->trigger == TRIGGER(SCHEDULED) &&
                schedule_of(cur, ad->arena, &s);
  bool changed = false;
  if (log->next_fire_ms == AF_FIRE_PENDING) {
    log->next_fire_ms = active ? first_fire(&s, log) : 0;
    changed = true;
  }
  if (!active && log->next_fire_ms != 0) {
    log->next_fire_ms = 0;
    changed = true;
  }
  if (active && log->next_fire_ms > 0 && log->next_fire_ms <= ad->now) {
    int64_t before = log->next_fire_ms;
    skip_unseen(&s, log, ad->now);
    changed |= log->next_fire_ms != before;
  }
  int events = 0;
  for (; active && events < EVENTS_PER_RULE; events++) {
    Appflowd__Store__V1__Execution *e = next_end(log);
    int64_t t_end = e ? end_of(e) : NEVER;
    int64_t t_fire = log->next_fire_ms > 0 ? log->next_fire_ms : NEVER;
    if ((t_end < t_fire ? t_end : t_fire) > ad->now)
      break;
    changed = true;
    if (t_end <= t_fire) {
      if (count_end(log, e, &s)) {
        deactivate(ad, cur, next, &s, t_end);
        log->next_fire_ms = 0;
        active = false;
      }
      continue;
    }
    char *id = ad->ids[ad->started];
    af_uuid_random(id);
    af_run_start rs = {id, t_fire, TRIGGER(SCHEDULED), s.first_pull};
    if (!af__start_run(ad->svc, log, &rs, ad->arena))
      return AF_STORE_KEEP;
    ad->started++;
    log->next_fire_ms = fire_after(&s, log->schedule_anchor_ms, t_fire - s.offset);
  }
  if (active) {
    Appflowd__Store__V1__Execution *e = next_end(log);
    int64_t t_end = e ? end_of(e) : NEVER;
    int64_t t_fire = log->next_fire_ms > 0 ? log->next_fire_ms : NEVER;
    int64_t due = t_end < t_fire ? t_end : t_fire;
    ad->next_due = events == EVENTS_PER_RULE ? ad->now : due == NEVER ? 0 : due;
  }
  if (!changed)
    return AF_STORE_KEEP;
  if (!af__pack(&log->base, ad->arena, &next->runs))
    return AF_STORE_KEEP;
  return AF_STORE_WRITE;
}

/* ---- timer rows ---- */

typedef struct timer_cas {
  int64_t seen, due; /* due 0: delete */
} timer_cas;

/* Sets a timer row to due unless someone changed it since it was read (they set what they
 * need). */
static af_store_verdict cas_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  timer_cas *t = ctx;
  if (cur->created_ms != t->seen)
    return AF_STORE_KEEP;
  if (t->due == 0)
    return AF_STORE_DELETE;
  next->created_ms = t->due;
  return AF_STORE_WRITE;
}

static af_store_rc run_op(af_flows *svc, void (*kind)(af_store *, af_store_op *), af_store_op *op) {
  return af_store_run(svc->store, kind, op);
}

/* Brings one flow up to now, then its timer row (called by the flow's name, or for a flow of
 * another account and region "SCOPE/NAME": a flow name holds no '/'); *due: when it is next
 * due (0: never). */
static af_store_rc advance_flow(af_flows *svc, const char *timer, int64_t seen, int64_t now,
                                int *started, int64_t *due) {
  const char *slash = strrchr(timer, '/');
  const char *name = slash != NULL ? slash + 1 : timer;
  af_arena a;
  af_arena_init(&a);
  advance *ad = af_arena_alloc(&a, sizeof *ad);
  if (ad == NULL) {
    af_arena_destroy(&a);
    return AF_STORE_FAILED;
  }
  *ad = (advance){.svc = svc, .now = now, .arena = &a};
  af_store_op op = {.table = AF_TABLE_FLOWS,
                    .scope = slash != NULL ? timer : NULL,
                    .scope_len = slash != NULL ? (size_t)(slash - timer) : 0,
                    .key = name,
                    .key_len = strlen(name),
                    .rule = advance_rule,
                    .ctx = ad,
                    .with_definition = true};
  af_store_rc rc = run_op(svc, af_store_modify, &op);
  if (rc == AF_STORE_OK && op.verdict == AF_STORE_WRITE && ad->started > 0) {
    *started += ad->started;
    for (int i = 0; i < ad->started; i++)
      af_log_printf(svc->log, AF_LOG_INFO, "flow %s: scheduled run %s", timer, ad->ids[i]);
  }
  *due = rc == AF_STORE_OK ? ad->next_due : 0;
  af_arena_destroy(&a);
  if (rc != AF_STORE_OK && rc != AF_STORE_NOT_FOUND)
    return rc;
  timer_cas t = {seen, *due};
  af_store_op top = {.table = AF_TABLE_TIMERS,
                     .key = timer,
                     .key_len = strlen(timer),
                     .rule = cas_rule,
                     .ctx = &t};
  af_store_rc trc = run_op(svc, af_store_modify, &top);
  return trc == AF_STORE_NOT_FOUND ? AF_STORE_OK : trc;
}

/* ---- scans in pages ---- */

/* Visits every record of a table, PAGE at a time: each page resumes after the last name the
 * one before saw, and after(ctx) does that page's work (the store is free again then). */
typedef struct pager {
  af_store_visit visit;
  void *ctx;
  char last[AF_STORE_SCOPE_MAX + AF_FLOW_NAME_MAX + 64];
  size_t seen;
} pager;

static bool page_visit(const af_flow_record *r, void *ctx) {
  pager *p = ctx;
  p->seen++;
  snprintf(p->last, sizeof p->last, "%.*s", (int)r->name_len, r->name);
  return p->visit(r, p->ctx);
}

static af_store_rc scan_pages(af_flows *svc, af_store_table t, const char *scope, bool ran_only,
                              af_store_visit visit, af_store_rc (*after)(void *ctx), void *ctx) {
  pager p = {.visit = visit, .ctx = ctx};
  af_store_rc rc;
  do {
    char resume[sizeof p.last];
    memcpy(resume, p.last, sizeof resume);
    p.seen = 0;
    af_store_op op = {.table = t,
                      .scope = scope,
                      .scope_len = scope != NULL ? strlen(scope) : 0,
                      .key = resume[0] ? resume : NULL,
                      .key_len = strlen(resume),
                      .visit = page_visit,
                      .ctx = &p,
                      .ran_only = ran_only,
                      .limit = PAGE};
    rc = run_op(svc, af_store_scan, &op);
    if (rc == AF_STORE_OK && after != NULL)
      rc = after(ctx);
  } while (rc == AF_STORE_OK && p.seen == PAGE);
  return rc;
}

af_store_rc af__scan_all(af_flows *svc, af_store_table t, const char *scope, af_store_visit visit,
                         af_store_rc (*after)(void *ctx), void *ctx) {
  return scan_pages(svc, t, scope, false, visit, after, ctx);
}

af_store_rc af__scan_ran(af_flows *svc, const char *scope, af_store_visit visit,
                         af_store_rc (*after)(void *ctx), void *ctx) {
  return scan_pages(svc, AF_TABLE_FLOWS, scope, true, visit, after, ctx);
}

/* ---- a pass: every flow due by now ---- */

typedef struct due_row {
  char name[AF_STORE_SCOPE_MAX + 1 + AF_FLOW_NAME_MAX + 1]; /* the timer row's */
  int64_t due;
} due_row;

typedef struct scan_page {
  af_flows *svc;
  int64_t now;
  due_row *rows; /* the page's flows due (PAGE at most) */
  size_t n;
  int64_t clock_offset; /* the "clock:" row's, or -1 */
  int *started;
  bool again; /* a flow is still due (a rule's limit) */
} scan_page;

static bool is_flow_row(const af_flow_record *r) {
  return memchr(r->name, ':', r->name_len) == NULL;
}

static bool collect(const af_flow_record *r, void *ctx) {
  scan_page *p = ctx;
  if (r->name_len == strlen(CLOCK_KEY) && memcmp(r->name, CLOCK_KEY, r->name_len) == 0)
    p->clock_offset = r->created_ms;
  if (is_flow_row(r) && r->created_ms <= p->now && r->name_len < sizeof p->rows[0].name) {
    memcpy(p->rows[p->n].name, r->name, r->name_len);
    p->rows[p->n].name[r->name_len] = '\0';
    p->rows[p->n++].due = r->created_ms;
  }
  return true;
}

/* Moves the local clock offset up to the stored one (replicas share the clock). */
static void adopt_offset(af_flows *svc, int64_t stored) {
  int64_t cur = atomic_load(&svc->clock_offset_ms);
  while (stored > cur && !atomic_compare_exchange_weak(&svc->clock_offset_ms, &cur, stored)) {
  }
}

/* Brings the page's due flows up to now. */
static af_store_rc advance_page(void *ctx) {
  scan_page *p = ctx;
  af_store_rc rc = AF_STORE_OK;
  for (size_t i = 0; rc == AF_STORE_OK && i < p->n; i++) {
    int64_t due = 0;
    rc = advance_flow(p->svc, p->rows[i].name, p->rows[i].due, p->now, p->started, &due);
    p->again |= due != 0 && due <= p->now;
  }
  p->n = 0;
  return rc;
}

/* One pass over the timers table: every flow due by the service's now is brought up to it.
 * Flows a pass leaves due (a rule's limit) are taken again, up to a bound. */
static af_store_rc pass(af_flows *svc, int *started) {
  due_row *rows = malloc(PAGE * sizeof *rows);
  if (rows == NULL)
    return AF_STORE_FAILED;
  af_store_rc rc = AF_STORE_OK;
  for (int round = 0; round < 64 && rc == AF_STORE_OK; round++) {
    scan_page p = {svc, af_flows_now_ms(svc), rows, 0, -1, started, false};
    rc = af__scan_all(svc, AF_TABLE_TIMERS, NULL, collect, advance_page, &p);
    if (p.clock_offset >= 0)
      adopt_offset(svc, p.clock_offset);
    if (!p.again)
      break;
  }
  free(rows);
  return rc;
}

/* ---- arming: StartFlow and UpdateFlow tell the scheduler to look at a flow ---- */

void af__schedule_from(Appflowd__Store__V1__RunLog *r, int64_t now_ms, bool afresh) {
  r->next_fire_ms = AF_FIRE_PENDING;
  r->schedule_anchor_ms = now_ms;
  if (!afresh)
    return;
  r->consecutive_failures = 0;
  for (size_t i = 0; i < r->n_executions; i++)
    r->executions[i]->counted = true;
}

typedef struct arm {
  af_call *c;
  af_flow_record rec;
  int64_t due;
  int tries;
  void (*next)(af_call *c, af_err rc);
} arm;

static af_store_verdict arm_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  arm *m = ctx;
  if (cur->created_ms <= m->due)
    return AF_STORE_KEEP;
  next->created_ms = m->due;
  return AF_STORE_WRITE;
}

static void arm_done(af_store_op *op, af_store_rc rc);

static void arm_submit(arm *m, bool insert) {
  af_store_op *op = &m->c->op;
  *op = (af_store_op){.table = AF_TABLE_TIMERS,
                      .key = m->rec.name,
                      .key_len = m->rec.name_len,
                      .deadline_ms = m->c->to.deadline_ms,
                      .done = arm_done,
                      .ctx = m};
  if (insert) {
    op->record = &m->rec;
    af_store_insert(m->c->svc->store, op);
  } else {
    op->rule = arm_rule;
    af_store_modify(m->c->svc->store, op);
  }
}

static void arm_done(af_store_op *op, af_store_rc rc) {
  arm *m = op->ctx;
  /* a row made or removed between the two steps: try the other one again */
  if ((rc == AF_STORE_NOT_FOUND || rc == AF_STORE_EXISTS) && ++m->tries < 8) {
    arm_submit(m, rc == AF_STORE_NOT_FOUND);
    return;
  }
  af_call *c = m->c;
  c->op.ctx = c;
  af_err e = AF_OK;
  if (rc != AF_STORE_OK)
    e = af__store_error(c, rc == AF_STORE_NOT_FOUND || rc == AF_STORE_EXISTS ? AF_STORE_FAILED : rc,
                        m->rec.name, m->rec.name_len);
  m->next(c, e);
}

void af__arm_timer(af_call *c, const char *name, size_t len, int64_t due_ms,
                   void (*next)(af_call *c, af_err rc)) {
  arm *m = af_arena_alloc(c->to.arena, sizeof *m);
  if (m == NULL) {
    next(c, af_flows_oom(c->to.err));
    return;
  }
  memset(m, 0, sizeof *m);
  m->c = c;
  m->due = due_ms;
  m->next = next;
  m->rec.name = name;
  m->rec.name_len = len;
  const af_tenant *t = c->tenant;
  if (t->scope_len > 0) { /* "SCOPE/NAME": advance_flow splits it at the last '/' */
    char *row = af_arena_alloc(c->to.arena, t->scope_len + 1 + len + 1);
    if (row == NULL) {
      next(c, af_flows_oom(c->to.err));
      return;
    }
    memcpy(row, t->scope, t->scope_len);
    row[t->scope_len] = '/';
    memcpy(row + t->scope_len + 1, name, len);
    row[t->scope_len + 1 + len] = '\0';
    m->rec.name = row;
    m->rec.name_len = t->scope_len + 1 + len;
  }
  m->rec.created_ms = m->rec.updated_ms = due_ms;
  arm_submit(m, false);
}

/* ---- instances and the clock row ---- */

typedef struct lease_scan {
  const af_scheduler *sc;
  int64_t real_now;
  int alive;         /* other instances alive */
  char dead[16][64]; /* rows of instances gone, to remove (a few per start) */
  size_t ndead;
} lease_scan;

/* Whether the instance a lease row names is alive: on this host, its process exists; elsewhere,
 * its heartbeat is recent. */
static bool lease_alive(const af_scheduler *sc, const af_flow_record *r, int64_t real_now) {
  char host[256];
  long pid = 0;
  if (r->description != NULL && sscanf(r->description, "%255s %ld", host, &pid) == 2 &&
      strcmp(host, sc->host) == 0)
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
  return real_now - r->updated_ms < LEASE_MS;
}

static bool visit_lease(const af_flow_record *r, void *ctx) {
  lease_scan *l = ctx;
  size_t plen = strlen(INSTANCE_PREFIX);
  bool mine =
      r->name_len == strlen(l->sc->lease) && memcmp(r->name, l->sc->lease, r->name_len) == 0;
  if (r->name_len <= plen || memcmp(r->name, INSTANCE_PREFIX, plen) != 0 || mine)
    return true;
  if (lease_alive(l->sc, r, l->real_now))
    l->alive++;
  else if (l->ndead < sizeof l->dead / sizeof l->dead[0] && r->name_len < sizeof l->dead[0])
    snprintf(l->dead[l->ndead++], sizeof l->dead[0], "%.*s", (int)r->name_len, r->name);
  return true;
}

static af_store_verdict delete_rule(const af_flow_record *cur, af_flow_record *next, void *ctx);

/* How many other instances are alive. */
static af_store_rc others_alive(af_scheduler *sc, int *alive) {
  lease_scan l = {.sc = sc, .real_now = real_ms()};
  af_store_rc rc = af__scan_all(sc->svc, AF_TABLE_TIMERS, NULL, visit_lease, NULL, &l);
  *alive = l.alive;
  for (size_t i = 0; rc == AF_STORE_OK && i < l.ndead; i++) {
    af_store_op op = {.table = AF_TABLE_TIMERS,
                      .key = l.dead[i],
                      .key_len = strlen(l.dead[i]),
                      .rule = delete_rule};
    run_op(sc->svc, af_store_modify, &op);
  }
  return rc;
}

static af_store_verdict beat_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur;
  const af_scheduler *sc = ctx;
  next->updated_ms = real_ms();
  next->description = sc->whoami;
  return AF_STORE_WRITE;
}

/* Keeps this instance's lease row fresh (made on the first beat). */
static void heartbeat(af_scheduler *sc) {
  af_flow_record rec = {
      .name = sc->lease, .name_len = strlen(sc->lease), .description = sc->whoami};
  rec.created_ms = rec.updated_ms = real_ms();
  af_store_op op = {.table = AF_TABLE_TIMERS,
                    .key = sc->lease,
                    .key_len = strlen(sc->lease),
                    .rule = beat_rule,
                    .ctx = sc};
  if (run_op(sc->svc, af_store_modify, &op) == AF_STORE_NOT_FOUND) {
    af_store_op ins = {
        .table = AF_TABLE_TIMERS, .key = sc->lease, .key_len = strlen(sc->lease), .record = &rec};
    run_op(sc->svc, af_store_insert, &ins);
  }
  sc->leased = true;
}

static af_store_verdict delete_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  (void)cur, (void)next, (void)ctx;
  return AF_STORE_DELETE;
}

/* A clean stop: this instance is no longer serving. */
static void drop_lease(af_scheduler *sc) {
  if (!sc->leased)
    return;
  af_store_op op = {.table = AF_TABLE_TIMERS,
                    .key = sc->lease,
                    .key_len = strlen(sc->lease),
                    .rule = delete_rule};
  run_op(sc->svc, af_store_modify, &op);
}

typedef struct clock_add {
  int64_t add, result;
} clock_add;

static af_store_verdict clock_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  clock_add *c = ctx;
  c->result = cur->created_ms + c->add;
  if (c->add == 0)
    return AF_STORE_KEEP;
  next->created_ms = c->result;
  return AF_STORE_WRITE;
}

/* Adds add_ms to the stored clock offset (making the row on first use); the offset after, or -1
 * when the store failed. */
static int64_t clock_move(af_flows *svc, int64_t add_ms) {
  for (int tries = 0; tries < 4; tries++) {
    clock_add c = {add_ms, 0};
    af_store_op op = {.table = AF_TABLE_TIMERS,
                      .key = CLOCK_KEY,
                      .key_len = strlen(CLOCK_KEY),
                      .rule = clock_rule,
                      .ctx = &c};
    af_store_rc rc = run_op(svc, af_store_modify, &op);
    if (rc == AF_STORE_OK)
      return c.result;
    if (rc != AF_STORE_NOT_FOUND)
      return -1;
    af_flow_record rec = {.name = CLOCK_KEY, .name_len = strlen(CLOCK_KEY), .created_ms = add_ms};
    af_store_op ins = {
        .table = AF_TABLE_TIMERS, .key = CLOCK_KEY, .key_len = strlen(CLOCK_KEY), .record = &rec};
    rc = run_op(svc, af_store_insert, &ins);
    if (rc == AF_STORE_OK)
      return add_ms;
    if (rc != AF_STORE_EXISTS)
      return -1;
  }
  return -1;
}

/* ---- after a restart: runs a crash left in progress ---- */

typedef struct stuck_scan {
  af_flows *svc;
  const char *scope; /* the scope scanned: NULL for the default one */
  int64_t now;
  af_arena *arena;                     /* the page's */
  char (*names)[AF_FLOW_NAME_MAX + 1]; /* the page's flows with runs in progress */
  size_t n;
  size_t *total;
} stuck_scan;

static bool visit_stuck(const af_flow_record *r, void *ctx) {
  stuck_scan *p = ctx; /* a flow that ran: the scan passes the others by (af__scan_ran) */
  Appflowd__Store__V1__RunLog *log = af_flows_runs(r->runs, p->arena);
  for (size_t i = 0; log != NULL && i < log->n_executions; i++) {
    int64_t since;
    if (af__execution_status(log->executions[i], p->now, &since) == STATUS(IN_PROGRESS)) {
      snprintf(p->names[p->n++], AF_FLOW_NAME_MAX + 1, "%.*s", (int)r->name_len, r->name);
      break;
    }
  }
  return true;
}

typedef struct interrupt {
  int64_t now;
  af_arena *arena;
  size_t n;
} interrupt;

static af_store_verdict interrupt_rule(const af_flow_record *cur, af_flow_record *next, void *ctx) {
  interrupt *in = ctx;
  Appflowd__Store__V1__RunLog *log = af_flows_runs(cur->runs, in->arena);
  in->n = log != NULL ? af__interrupt_runs(log, in->now) : 0;
  if (in->n == 0 || !af__pack(&log->base, in->arena, &next->runs))
    return AF_STORE_KEEP;
  return AF_STORE_WRITE;
}

/* Ends the runs in progress of the page's flows. */
static af_store_rc interrupt_page(void *ctx) {
  stuck_scan *p = ctx;
  af_store_rc rc = AF_STORE_OK;
  for (size_t i = 0; rc == AF_STORE_OK && i < p->n; i++) {
    interrupt in = {p->now, p->arena, 0};
    af_store_op m = {.table = AF_TABLE_FLOWS,
                     .scope = p->scope,
                     .scope_len = p->scope != NULL ? strlen(p->scope) : 0,
                     .key = p->names[i],
                     .key_len = strlen(p->names[i]),
                     .rule = interrupt_rule,
                     .ctx = &in};
    af_store_rc mrc = run_op(p->svc, af_store_modify, &m);
    if (mrc == AF_STORE_OK && in.n > 0) {
      *p->total += in.n;
      af_log_printf(p->svc->log, AF_LOG_INFO, "flow %s%s%s: %zu run(s) interrupted by the restart",
                    p->scope ? p->scope : "", p->scope ? "/" : "", p->names[i], in.n);
    } else if (mrc != AF_STORE_OK && mrc != AF_STORE_NOT_FOUND) {
      rc = mrc;
    }
  }
  p->n = 0;
  af_arena_reset(p->arena);
  return rc;
}

/* Ends every run in progress in one scope (NULL: the default) as interrupted, flow by flow, a
 * page at a time. */
static af_store_rc interrupt_scope(void *ctx, const char *scope) {
  stuck_scan *p = ctx;
  p->scope = scope;
  return af__scan_ran(p->svc, scope, visit_stuck, interrupt_page, p); /* only flows that ran */
}

/* ... in every account and region. */
static af_store_rc interrupt_all(af_flows *svc, size_t *total) {
  af_arena a;
  af_arena_init(&a);
  stuck_scan p = {svc, NULL, af_flows_now_ms(svc), &a, malloc(PAGE * sizeof *p.names), 0, total};
  af_store_rc rc = p.names == NULL ? AF_STORE_FAILED : af__scopes_each(svc, interrupt_scope, &p);
  free(p.names);
  af_arena_destroy(&a);
  return rc;
}

/* ---- the thread ---- */

static void answer_clock(af_scheduler *sc, clock_req *r) {
  af_flows *svc = sc->svc;
  af_err e = AF_OK;
  int started = 0;
  int64_t offset = clock_move(svc, r->advance_ms);
  if (offset < 0)
    e = af_error_set(r->to.err, AF_ERR_UNAVAILABLE,
                     "the store did not take the clock's move: try again");
  if (e == AF_OK) {
    adopt_offset(svc, offset);
    if (pass(svc, &started) != AF_STORE_OK)
      e = af_error_set(r->to.err, AF_ERR_UNAVAILABLE,
                       "the clock moved, but the store failed while starting the runs due: "
                       "move it by 0 to try again");
  }
  if (e == AF_OK) {
    r->resp->now = af_flows_timestamp(r->to.arena, af_flows_now_ms(svc));
    r->resp->runs_started = started;
    r->resp->has_runs_started = true;
    if (r->resp->now == NULL)
      e = af_flows_oom(r->to.err);
    af_log_printf(svc->log, AF_LOG_INFO, "clock moved %.3f s: %d scheduled run(s) started",
                  (double)r->advance_ms / 1000, started);
  }
  r->to.done(r->to.ctx, e);
}

static void tick(af_scheduler *sc) {
  int started = 0;
  heartbeat(sc);
  if (pass(sc->svc, &started) != AF_STORE_OK)
    af_log_printf(sc->svc->log, AF_LOG_WARN, "scheduler: the store failed; trying again");
}

static void *run(void *arg) {
  af_scheduler *sc = arg;
  pthread_mutex_lock(&sc->lock);
  struct timespec due;
  clock_gettime(CLOCK_MONOTONIC, &due);
  while (!sc->stop) {
    if (sc->head != NULL) {
      clock_req *r = sc->head;
      sc->head = r->next;
      if (sc->head == NULL)
        sc->tail = NULL;
      pthread_mutex_unlock(&sc->lock);
      answer_clock(sc, r);
      pthread_mutex_lock(&sc->lock);
      continue;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > due.tv_sec || (now.tv_sec == due.tv_sec && now.tv_nsec >= due.tv_nsec)) {
      pthread_mutex_unlock(&sc->lock);
      tick(sc);
      pthread_mutex_lock(&sc->lock);
      clock_gettime(CLOCK_MONOTONIC, &due);
      due.tv_sec += sc->tick_ms / 1000;
      due.tv_nsec += (long)(sc->tick_ms % 1000) * 1000000;
      if (due.tv_nsec >= 1000000000) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000;
      }
      continue;
    }
    pthread_cond_timedwait(&sc->wake, &sc->lock, &due);
  }
  /* AdvanceClocks still queued are answered: the server is going down */
  while (sc->head != NULL) {
    clock_req *r = sc->head;
    sc->head = r->next;
    r->to.done(r->to.ctx, af_error_set(r->to.err, AF_ERR_UNAVAILABLE, "the server is stopping"));
  }
  pthread_mutex_unlock(&sc->lock);
  return NULL;
}

af_err af_flows_scheduler_start(af_flows *svc, int tick_ms, size_t *interrupted, af_error *err) {
  if (svc->scheduler != NULL)
    return AF_OK;
  af_scheduler *sc = calloc(1, sizeof *sc);
  if (sc == NULL)
    return af_flows_oom(err);
  sc->svc = svc;
  sc->tick_ms = tick_ms > 0 ? tick_ms : 1000;
  if (gethostname(sc->host, sizeof sc->host - 1) != 0 || sc->host[0] == '\0')
    snprintf(sc->host, sizeof sc->host, "localhost");
  for (char *p = sc->host; *p; p++)
    if (*p == ' ')
      *p = '_';
  snprintf(sc->whoami, sizeof sc->whoami, "%s %ld", sc->host, (long)getpid());
  snprintf(sc->lease, sizeof sc->lease, INSTANCE_PREFIX "%016" PRIx64, af_random64());
  /* the clock as the store keeps it, then what a crash left behind */
  int64_t offset = clock_move(svc, 0);
  int alive = 0;
  af_store_rc rc = offset < 0 ? AF_STORE_UNAVAILABLE : others_alive(sc, &alive);
  size_t n = 0;
  if (rc == AF_STORE_OK) {
    adopt_offset(svc, offset);
    /* A file made by this very start holds only what it seeded: a scan of a million seeded
     * flows for runs in progress took a second. */
    bool fresh = atomic_exchange(&svc->store->fresh, false);
    if (alive == 0 && svc->store->durable && !fresh)
      rc = interrupt_all(svc, &n);
  }
  if (interrupted != NULL)
    *interrupted = n;
  if (rc != AF_STORE_OK) {
    free(sc);
    return af_error_set(err, AF_ERR_UNAVAILABLE,
                        "the scheduler cannot read the store's timers (store code %d)", (int)rc);
  }
  heartbeat(sc);
  pthread_mutex_init(&sc->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&sc->wake, &ca);
  pthread_condattr_destroy(&ca);
  int e = pthread_create(&sc->thread, NULL, run, sc);
  if (e != 0) {
    drop_lease(sc);
    pthread_mutex_destroy(&sc->lock);
    pthread_cond_destroy(&sc->wake);
    free(sc);
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "cannot start the scheduler: %s", strerror(e));
  }
  svc->scheduler = sc;
  return AF_OK;
}

void af__scheduler_free(af_flows *svc) {
  af_scheduler *sc = svc->scheduler;
  if (sc == NULL)
    return;
  pthread_mutex_lock(&sc->lock);
  sc->stop = true;
  pthread_cond_signal(&sc->wake);
  pthread_mutex_unlock(&sc->lock);
  pthread_join(sc->thread, NULL);
  drop_lease(sc);
  pthread_mutex_destroy(&sc->lock);
  pthread_cond_destroy(&sc->wake);
  free(sc);
  svc->scheduler = NULL;
}

void af_flows_scheduler_stop(af_flows *svc) { af__scheduler_free(svc); }

/* ---- AdvanceClock ---- */

void af__advance_clock(af_flows *svc, const ProtobufCMessage *msg, ProtobufCMessage *out,
                       const af_reply_to *to) {
  const Appflowd__Emulator__V1__AdvanceClockRequest *req =
      (const Appflowd__Emulator__V1__AdvanceClockRequest *)msg;
  double s = req->has_advance_seconds ? req->advance_seconds : 0;
  af_scheduler *sc = svc->scheduler;
  af_err e = AF_OK;
  if (!(s >= 0 && s <= ADVANCE_MAX_S))
    e = af_error_set(to->err, AF_ERR_VALIDATION,
                     "advanceSeconds: from 0 to %.0f (ten years); the clock only moves forward",
                     ADVANCE_MAX_S);
  else if (sc == NULL)
    e = af_error_set(to->err, AF_ERR_UNAVAILABLE, "the scheduler is not running");
  clock_req *r = e == AF_OK ? af_arena_alloc(to->arena, sizeof *r) : NULL;
  if (e == AF_OK && r == NULL)
    e = af_flows_oom(to->err);
  if (e != AF_OK) {
    to->done(to->ctx, e);
    return;
  }
  *r = (clock_req){NULL, (int64_t)llround(s * 1000),
                   (Appflowd__Emulator__V1__AdvanceClockResponse *)out, *to};
  pthread_mutex_lock(&sc->lock);
  if (sc->stop) {
    pthread_mutex_unlock(&sc->lock);
    to->done(to->ctx, af_error_set(to->err, AF_ERR_UNAVAILABLE, "the server is stopping"));
    return;
  }
  if (sc->tail != NULL)
    sc->tail->next = r;
  else
    sc->head = r;
  sc->tail = r;
  pthread_cond_signal(&sc->wake);
  pthread_mutex_unlock(&sc->lock);
}
