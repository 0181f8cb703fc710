/* When a scheduled flow fires: EventBridge schedule expressions, compiled once and then asked for
 * the next instant they fire at.
 *
 * Contract:
 *   - rate(N unit): unit minute|hour|day, singular for N = 1 and plural otherwise when a space
 *     separates them (rate(1 hour), rate(5 minutes)); without the space either form
 *     (rate(5minutes), rate(1day)); N from 1 to 9999999999.
 *   - cron(minutes hours day-of-month month day-of-week year), evaluated in UTC: minutes 0-59,
 *     hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 (1 = SUN) or
 *     SUN-SAT, year 1970-2199; names without case. Items, in comma lists: *, a, a-b, and any
 *     of these with a step /s (a/s runs from a to the field's top);
 *     day-of-month also L (last day), LW (last weekday), nW (the weekday nearest day n, within
 *     the month; no match in a month without day n); day-of-week also L (SAT), nL (the last day
 *     n of the month), d#k (the kth day d, k 1-5; no match in a month without one). Exactly one
 *     of day-of-month and day-of-week is ?, and the other alone picks the days.
 *   - A range whose start is after its end wraps around the field, as Quartz (whose syntax
 *     EventBridge's is) does: hours 22-2 are 22,23,0,1,2; FRI-MON is FRI,SAT,SUN,MON; 28-3 in
 *     day-of-month is 28-31 then 1-3; a step counts along the wrapped range (hours 22-2/2 are
 *     22,0,2). Years do not wrap: a year range such as 2030-2025 is refused (said only when
 *     nothing else in the expression is wrong, whose message comes first).
 * Ownership: nothing is allocated; af_schedule is plain data (copy it freely), and the
 * functions borrow their arguments for the call.
 * Errors: af_schedule_parse returns static text saying why an expression is refused;
 * af_schedule_next cannot fail (AF_SCHEDULE_NEVER when nothing is left).
 * Thread-safety: pure functions (no state; dates are computed here, not by the C library's
 * time zone functions). */
#ifndef AF_FLOWS_SCHEDULE_H
#define AF_FLOWS_SCHEDULE_H

#include "common/compiler.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum af_schedule_kind { AF_SCHEDULE_RATE, AF_SCHEDULE_CRON } af_schedule_kind;

/* A schedule expression compiled: rate(N unit) or cron(6 fields). Plain data (no heap): copy
 * freely. In the cron members, bit v is set when the field takes value v. */
typedef struct af_schedule {
  af_schedule_kind kind;
  int64_t interval_ms;       /* rate: N units in milliseconds (at most 9999999999 days) */
  uint64_t minutes;          /* bits 0-59 */
  uint32_t hours;            /* bits 0-23 */
  bool by_weekday;           /* day-of-month is ?: day-of-week picks the days, else the reverse */
  uint32_t days;             /* day-of-month values: bits 1-31 */
  uint32_t nearest_weekdays; /* day-of-month nW: bit n */
  bool last_day;             /* day-of-month L */
  bool last_weekday;         /* day-of-month LW */
  uint16_t months;           /* bits 1-12 */
  uint8_t weekdays;          /* day-of-week values: bits 1-7, 1 = SUN */
  uint8_t last_weekdays;     /* day-of-week nL: bit n */
  uint8_t nth_weekdays[8];   /* day-of-week d#k: bit k of nth_weekdays[d] */
  uint64_t years[4];         /* bit y - 1970 of the 256, for y 1970-2199 */
} af_schedule;

#define AF_SCHEDULE_NEVER INT64_MAX

/* Compiles expr; NULL when valid (out set), else why it is not (static text; out untouched).
 * A NULL expr is refused. */
const char *af_schedule_parse(const char *expr, af_schedule *out) AF_MUST_USE;

/* The first instant, in epoch milliseconds UTC, strictly after after_ms at which s fires;
 * AF_SCHEDULE_NEVER when it never fires again (a cron's years are over).
 * rate: instants anchor_ms + k * interval for k >= 0 (the first is anchor_ms itself); an
 * instant past INT64_MAX saturates to AF_SCHEDULE_NEVER.
 * cron: every minute (second 0) the fields match, in UTC; anchor_ms is not used. */
int64_t af_schedule_next(const af_schedule *s, int64_t anchor_ms, int64_t after_ms);

#endif
