/* src/flows/schedule.c: schedule expressions compiled, and the instants they fire at. Instants
 * are written "YYYY-MM-DD HH:MM" UTC and converted with the C library's timegm and gmtime_r, so
 * the module's own date arithmetic is checked against another. */
#include "flows/schedule.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MINUTE INT64_C(60000)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* Epoch milliseconds of "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS.mmm", UTC. */
static int64_t ms_of(const char *iso) {
  struct tm tm = {0};
  int sec = 0, ms = 0;
  int n = sscanf(iso, "%d-%d-%d %d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                 &tm.tm_min, &sec, &ms);
  cr_assert(n == 5 || n == 7, "bad instant in the test: %s", iso);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_sec = sec;
  return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Appends ", " (unless first) and the instant as "YYYY-MM-DD HH:MM", or "never". */
static void append_instant(char *buf, size_t size, int64_t ms) {
  char one[32] = "never";
  if (ms != AF_SCHEDULE_NEVER) {
    cr_expect_eq(ms % MINUTE, 0, "a cron fired off the minute: %lld", (long long)ms);
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(one, sizeof one, "%Y-%m-%d %H:%M", &tm);
  }
  size_t len = strlen(buf);
  snprintf(buf + len, size - len, "%s%s", len ? ", " : "", one);
}

static af_schedule parsed(const char *expr) {
  af_schedule s;
  const char *why = af_schedule_parse(expr, &s);
  cr_assert_null(why, "%s refused: %s", expr, why);
  return s;
}

/* One expression's next instants after a start: as many as `want` lists (stopping at never). */
typedef struct series {
  const char *expr, *after, *want;
} series;

static void expect_series(const series *c) {
  af_schedule s = parsed(c->expr);
  size_t n = 1;
  for (const char *p = c->want; (p = strchr(p, ',')) != NULL; p++)
    n++;
  char got[512] = "";
  int64_t t = ms_of(c->after);
  for (size_t i = 0; i < n && t != AF_SCHEDULE_NEVER; i++) {
    t = af_schedule_next(&s, 0, t);
    append_instant(got, sizeof got, t);
  }
  cr_expect_str_eq(got, c->want, "%s after %s", c->expr, c->after);
}

static void expect_all(const series *cases, size_t n) {
  for (size_t i = 0; i < n; i++)
    expect_series(&cases[i]);
}

#define EXPECT_ALL(cases) expect_all(cases, sizeof cases / sizeof cases[0])

/* ---- rate ---- */

Test(schedule, rate_fires_at_the_anchor_then_every_interval) {
  af_schedule s = parsed("rate(5 minutes)");
  cr_expect_eq(s.kind, AF_SCHEDULE_RATE);
  cr_expect_eq(s.interval_ms, 5 * MINUTE);
  int64_t a = ms_of("2024-01-01 00:00");
  cr_expect_eq(af_schedule_next(&s, a, a - 1), a, "the first instant is the anchor itself");
  cr_expect_eq(af_schedule_next(&s, a, a - 365 * DAY), a, "after long before the anchor");
  cr_expect_eq(af_schedule_next(&s, a, a), a + 5 * MINUTE, "strictly after");
  cr_expect_eq(af_schedule_next(&s, a, a + 5 * MINUTE - 1), a + 5 * MINUTE);
  cr_expect_eq(af_schedule_next(&s, a, a + 5 * MINUTE), a + 10 * MINUTE);
  s = parsed("rate(1 hour)");
  cr_expect_eq(af_schedule_next(&s, a, a + 10 * HOUR + 1), a + 11 * HOUR);
  /* anchors off the minute stay where they are */
  s = parsed("rate(1day)");
  cr_expect_eq(af_schedule_next(&s, a + 1234, a + 1234), a + 1234 + DAY);
  cr_expect_eq(af_schedule_next(&s, a + 1234, a + 1233), a + 1234);
  /* an anchor before 1970: -10 days - 5 ms, then every 7 days */
  s = parsed("rate(7 days)");
  cr_expect_eq(af_schedule_next(&s, -10 * DAY - 5, 0), -10 * DAY - 5 + 14 * DAY);
}

Test(schedule, rate_units_and_spellings) {
  static const struct {
    const char *expr;
    int64_t ms;
  } units[] = {{"rate(1 minute)", MINUTE}, {"rate(2 minutes)", 2 * MINUTE},
               {"rate(1minutes)", MINUTE}, {"rate(12 hours)", 12 * HOUR},
               {"rate(1hours)", HOUR},     {"rate(1 day)", DAY},
               {"rate(30days)", 30 * DAY}, {"rate(9999999999 days)", 9999999999 * DAY}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    cr_expect_eq(parsed(units[i].expr).interval_ms, units[i].ms, "%s", units[i].expr);
}

Test(schedule, rate_saturates_instead_of_overflowing) {
  af_schedule s = parsed("rate(9999999999 days)");
  int64_t i = 9999999999 * DAY; /* 863999999913600000 */
  cr_expect_eq(af_schedule_next(&s, 0, 0), i);
  cr_expect_eq(af_schedule_next(&s, 0, i), 2 * i);
  cr_expect_eq(af_schedule_next(&s, 0, 10 * i), AF_SCHEDULE_NEVER, "11 intervals pass INT64_MAX");
  cr_expect_eq(af_schedule_next(&s, 0, INT64_MAX), AF_SCHEDULE_NEVER);
  s = parsed("rate(1 minute)");
  cr_expect_eq(af_schedule_next(&s, 0, INT64_MAX), AF_SCHEDULE_NEVER);
  cr_expect_eq(af_schedule_next(&s, INT64_MAX, 0), INT64_MAX, "an anchor at the top is never");
  int64_t top = INT64_MAX - 100000;
  cr_expect_eq(af_schedule_next(&s, top, top), top + MINUTE);
  cr_expect_eq(af_schedule_next(&s, top, top + MINUTE), AF_SCHEDULE_NEVER);
  /* from the bottom of int64 to past zero: an offset larger than INT64_MAX */
  cr_expect_eq(af_schedule_next(&s, INT64_MIN, 0), 4192);
  cr_expect_eq(af_schedule_next(&s, INT64_MIN, INT64_MAX - 1), AF_SCHEDULE_NEVER);
}

/* ---- cron ---- */

Test(schedule, cron_plain_fields) {
  static const series cases[] = {
      {"cron(0 12 * * ? *)", "2024-03-10 11:59", "2024-03-10 12:00, 2024-03-11 12:00"},
      {"cron(0 12 * * ? *)", "2024-03-10 12:00", "2024-03-11 12:00"},
      {"cron(0 12 * * ? *)", "2024-03-10 12:00:00.001", "2024-03-11 12:00"},
      {"cron(0 12 * * ? *)", "2024-03-10 11:59:59.999", "2024-03-10 12:00"},
      {"cron(1,2,3 */2 1-15/3 JAN,MAR ? 2030)", "2029-06-01 00:00",
       "2030-01-01 00:01, 2030-01-01 00:02, 2030-01-01 00:03, 2030-01-01 02:01, 2030-01-01 02:02"},
      /* day 13 is the last of 1-15/3; the next is March 1 */
      {"cron(1,2,3 */2 1-15/3 JAN,MAR ? 2030)", "2030-01-13 22:03",
       "2030-03-01 00:01, 2030-03-01 00:02"},
      {"cron(5/20 * * * ? *)", "2024-01-01 00:00",
       "2024-01-01 00:05, 2024-01-01 00:25, 2024-01-01 00:45, 2024-01-01 01:05"},
      {"cron(*/20 10-11 * * ? *)", "2024-01-01 11:40", "2024-01-02 10:00, 2024-01-02 10:20"},
      /* 2024-03-08 is a Friday */
      {"cron(0/5 8-17 ? * MON-FRI *)", "2024-03-08 17:50",
       "2024-03-08 17:55, 2024-03-11 08:00, 2024-03-11 08:05"},
      {"cron(0 0 ? * sun *)", "2024-03-08 00:00", "2024-03-10 00:00, 2024-03-17 00:00"},
      {"cron(0 0 1 jan ? *)", "2024-06-01 00:00", "2025-01-01 00:00"},
  };
  EXPECT_ALL(cases);
}

Test(schedule, cron_month_lengths_and_leap_years) {
  static const series cases[] = {
      {"cron(0 0 L * ? *)", "2024-01-31 00:00",
       "2024-02-29 00:00, 2024-03-31 00:00, 2024-04-30 00:00"},
      {"cron(0 0 L 2 ? *)", "2023-01-01 00:00", "2023-02-28 00:00"},
      /* 2100 is not a leap year, 2000 is */
      {"cron(0 0 L 2 ? *)", "2099-03-01 00:00", "2100-02-28 00:00, 2101-02-28 00:00"},
      {"cron(0 0 L 2 ? *)", "1999-03-01 00:00", "2000-02-29 00:00"},
      {"cron(0 0 29 2 ? *)", "2024-03-01 00:00", "2028-02-29 00:00"},
      {"cron(0 0 29 2 ? *)", "2096-03-01 00:00", "2104-02-29 00:00"},
      {"cron(0 0 31 * ? *)", "2024-01-31 00:00",
       "2024-03-31 00:00, 2024-05-31 00:00, 2024-07-31 00:00"},
  };
  EXPECT_ALL(cases);
}

Test(schedule, cron_nearest_weekday) {
  static const series cases[] = {
      /* 2024-06-01 is a Saturday: 1W moves on to Monday the 3rd, not back into May */
      {"cron(0 0 1W * ? *)", "2024-05-31 00:00", "2024-06-03 00:00, 2024-07-01 00:00"},
      /* 2024-09-01 is a Sunday */
      {"cron(0 0 1W * ? *)", "2024-08-31 00:00", "2024-09-02 00:00"},
      /* 2024-06-15 is a Saturday, 2024-09-15 a Sunday */
      {"cron(0 0 15W * ? *)", "2024-06-01 00:00", "2024-06-14 00:00"},
      {"cron(0 0 15W * ? *)", "2024-09-01 00:00", "2024-09-16 00:00"},
      /* 2024-03-31 is a Sunday that ends the month: back to Friday; April and June have no
       * 31st */
      {"cron(0 0 31W * ? *)", "2024-03-01 00:00",
       "2024-03-29 00:00, 2024-05-31 00:00, 2024-07-31 00:00"},
      {"cron(0 0 30W 2 ? *)", "2024-01-01 00:00", "never"},
      /* LW: Feb 29 2024 a Thursday, Mar 31 a Sunday, Apr 30 a Tuesday, Aug 31 a Saturday */
      {"cron(0 0 LW * ? *)", "2024-02-01 00:00",
       "2024-02-29 00:00, 2024-03-29 00:00, 2024-04-30 00:00, 2024-05-31 00:00"},
      {"cron(0 0 LW * ? *)", "2024-08-01 00:00", "2024-08-30 00:00"},
      {"cron(0 0 1W,15 * ? *)", "2024-06-01 00:00",
       "2024-06-03 00:00, 2024-06-15 00:00, 2024-07-01 00:00"},
  };
  EXPECT_ALL(cases);
}

Test(schedule, cron_day_of_week_specials) {
  static const series cases[] = {
      /* L alone is Saturday, every week */
      {"cron(0 0 ? * L *)", "2024-03-01 00:00", "2024-03-02 00:00, 2024-03-09 00:00"},
      {"cron(15 10 ? * 6L 2022-2030)", "2024-01-01 00:00",
       "2024-01-26 10:15, 2024-02-23 10:15, 2024-03-29 10:15"},
      {"cron(0 0 ? * 1L *)", "2024-03-01 00:00", "2024-03-31 00:00, 2024-04-28 00:00"},
      {"cron(0 0 ? * 3#2 *)", "2024-01-01 00:00",
       "2024-01-09 00:00, 2024-02-13 00:00, 2024-03-12 00:00"},
      /* no fifth Friday in January or February 2024, nor in April, June or July */
      {"cron(0 0 ? * 6#5 *)", "2024-01-01 00:00",
       "2024-03-29 00:00, 2024-05-31 00:00, 2024-08-30 00:00"},
      /* a fifth Thursday in February needs a leap year starting on a Thursday */
      {"cron(0 0 ? 2 5#5 *)", "2024-01-01 00:00", "2024-02-29 00:00, 2052-02-29 00:00"},
      {"cron(0 0 ? * 2#1,6L *)", "2024-01-01 00:00",
       "2024-01-26 00:00, 2024-02-05 00:00, 2024-02-23 00:00, 2024-03-04 00:00"},
  };
  EXPECT_ALL(cases);
}

Test(schedule, cron_reversed_ranges_wrap_around) {
  static const series cases[] = {
      {"cron(0 22-2 * * ? *)", "2024-01-01 12:00",
       "2024-01-01 22:00, 2024-01-01 23:00, 2024-01-02 00:00, 2024-01-02 01:00, "
       "2024-01-02 02:00, 2024-01-02 22:00"},
      /* the step counts along the wrapped range: 22, 0, 2 */
      {"cron(0 22-2/2 * * ? *)", "2024-01-01 00:00",
       "2024-01-01 02:00, 2024-01-01 22:00, 2024-01-02 00:00, 2024-01-02 02:00"},
      {"cron(0 0 ? * FRI-MON *)", "2024-03-06 00:00",
       "2024-03-08 00:00, 2024-03-09 00:00, 2024-03-10 00:00, 2024-03-11 00:00, "
       "2024-03-15 00:00"},
      /* FRI, SUN, TUE */
      {"cron(0 0 ? * FRI-TUE/2 *)", "2024-03-06 00:00",
       "2024-03-08 00:00, 2024-03-10 00:00, 2024-03-12 00:00, 2024-03-15 00:00"},
      {"cron(0 0 ? * 7-1 *)", "2024-03-06 00:00",
       "2024-03-09 00:00, 2024-03-10 00:00, 2024-03-16 00:00"},
      {"cron(0 0 1 NOV-FEB ? *)", "2024-03-01 00:00",
       "2024-11-01 00:00, 2024-12-01 00:00, 2025-01-01 00:00, 2025-02-01 00:00"},
      /* days that a month lacks (Feb 30, 31) are skipped */
      {"cron(0 0 28-3 * ? *)", "2024-02-01 00:00",
       "2024-02-02 00:00, 2024-02-03 00:00, 2024-02-28 00:00, 2024-02-29 00:00, "
       "2024-03-01 00:00, 2024-03-02 00:00, 2024-03-03 00:00, 2024-03-28 00:00"},
      {"cron(50-10/10 * * * ? *)", "2024-01-01 00:00",
       "2024-01-01 00:10, 2024-01-01 00:50, 2024-01-01 01:00, 2024-01-01 01:10, "
       "2024-01-01 01:50"},
  };
  EXPECT_ALL(cases);
  /* Years do not wrap; that is told only when nothing else is wrong, so an expression the
   * rules refused before keeps its message. */
  af_schedule s;
  cr_expect_str_eq(af_schedule_parse("cron(0 0 1 1 ? 2030-2025)", &s),
                   "its year field has a range that ends before it starts (years do not wrap "
                   "around)");
  cr_expect_str_eq(af_schedule_parse("cron(0 0 1 1 ? 2030-2025,3000)", &s),
                   "its year field is not valid (1970-2199 , - * /)");
  cr_expect_str_eq(af_schedule_parse("cron(0 0 1 1 * 2030-2025)", &s),
                   "one of its day-of-month and day-of-week fields must be '?', and only one");
}

Test(schedule, cron_years_bound_it) {
  static const series cases[] = {
      {"cron(0 0 1 1 ? 2025)", "2024-06-01 00:00", "2025-01-01 00:00, never"},
      {"cron(* * * * ? *)", "2199-12-31 23:58", "2199-12-31 23:59, never"},
      {"cron(0 0 1 1 ? 2030/50)", "2024-01-01 00:00",
       "2030-01-01 00:00, 2080-01-01 00:00, 2130-01-01 00:00, 2180-01-01 00:00, never"},
      /* Feb 30 is never: the whole year range is walked */
      {"cron(0 0 30 2 ? *)", "1970-01-01 00:00", "never"},
  };
  EXPECT_ALL(cases);
  af_schedule s = parsed("cron(* * * * ? *)");
  cr_expect_eq(af_schedule_next(&s, 0, INT64_MAX), AF_SCHEDULE_NEVER);
  cr_expect_eq(af_schedule_next(&s, 0, ms_of("2199-12-31 23:59")), AF_SCHEDULE_NEVER);
  cr_expect_eq(af_schedule_next(&s, 0, INT64_MIN), 0, "before 1970: its first minute");
  cr_expect_eq(af_schedule_next(&s, 0, -1), 0);
  cr_expect_eq(af_schedule_next(&s, 0, 0), MINUTE);
  cr_expect_eq(af_schedule_next(&s, 12345, 0), MINUTE, "a cron has no anchor");
}

Test(schedule, cron_once_a_year_walks_every_year) {
  af_schedule s = parsed("cron(0 0 1 1 ? *)");
  int64_t t = INT64_MIN, last = 0;
  int fires = 0;
  while ((t = af_schedule_next(&s, 0, t)) != AF_SCHEDULE_NEVER) {
    last = t;
    fires++;
  }
  cr_expect_eq(fires, 2199 - 1970 + 1);
  cr_expect_eq(last, ms_of("2199-01-01 00:00"));
}

Test(schedule, copies_are_independent_plain_data) {
  af_schedule a = parsed("cron(0 12 * * ? *)");
  af_schedule b = a;
  memset(&a, 0xff, sizeof a);
  cr_expect_eq(af_schedule_next(&b, 0, ms_of("2024-01-01 00:00")), ms_of("2024-01-01 12:00"));
}

/* ---- refused ---- */

Test(schedule, refused_with_the_rules_messages) {
  static const char use[] = "use rate(value unit), such as rate(1 hour), or cron(fields), such "
                            "as cron(0 12 * * ? *)";
  static const char rate[] = "rate() takes a positive whole value and a unit: minute(s), hour(s) "
                             "or day(s), as in rate(5minutes) or rate(1 hour)";
  static const char six[] =
      "cron() takes 6 fields: minutes hours day-of-month month day-of-week year";
  static const char one_q[] =
      "one of its day-of-month and day-of-week fields must be '?', and only one";
  static const struct {
    const char *expr, *why;
  } bad[] = {
      {"every day", use},
      {"", use},
      {"rate(1 hour", use},
      {"cron()", use},
      {"rate(0 minutes)", rate},
      {"rate(1 minutes)", rate},
      {"rate(2 minute)", rate},
      {"rate(5 weeks)", rate},
      {"rate(5  minutes)", rate},
      {"rate(-1 days)", rate},
      {"rate(12345678901 minutes)", rate},
      {"cron(0 12 * * *)", six},
      {"cron(0 12 * * ? * *)", six},
      {"cron( )", six},
      {"cron(60 12 * * ? *)", "its minutes field is not valid (0-59 , - * /)"},
      {"cron(0/0 0 * * ? *)", "its minutes field is not valid (0-59 , - * /)"},
      {"cron(0 24 * * ? *)", "its hours field is not valid (0-23 , - * /)"},
      {"cron(0 ? * * ? *)", "its hours field is not valid (0-23 , - * /)"},
      {"cron(0 0 32 * ? *)", "its day-of-month field is not valid (1-31 , - * ? / L W)"},
      {"cron(0 0 32W * ? *)", "its day-of-month field is not valid (1-31 , - * ? / L W)"},
      {"cron(0 0 ? 13 * *)", "its month field is not valid (1-12 or JAN-DEC , - * /)"},
      {"cron(0 0 * FOO ? *)", "its month field is not valid (1-12 or JAN-DEC , - * /)"},
      {"cron(0 0 ? * 8 *)", "its day-of-week field is not valid (1-7 or SUN-SAT , - * ? L #)"},
      {"cron(0 0 ? * 3#6 *)", "its day-of-week field is not valid (1-7 or SUN-SAT , - * ? L #)"},
      {"cron(0 0 * * ? 1969)", "its year field is not valid (1970-2199 , - * /)"},
      {"cron(0 12 ? * ? *)", one_q},
      {"cron(0 12 * * * *)", one_q},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    af_schedule s;
    unsigned char untouched[sizeof s];
    memset(&s, 0x5a, sizeof s);
    memset(untouched, 0x5a, sizeof untouched);
    const char *why = af_schedule_parse(bad[i].expr, &s);
    cr_expect_str_eq(why ? why : "(accepted)", bad[i].why, "%s", bad[i].expr);
    cr_expect(memcmp(&s, untouched, sizeof s) == 0, "%s: out changed on refusal", bad[i].expr);
  }
  af_schedule s;
  cr_expect_str_eq(af_schedule_parse(NULL, &s), use);
}
