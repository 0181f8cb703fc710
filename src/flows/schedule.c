/* EventBridge schedule expressions: parsed once into an af_schedule, then asked when they fire
 * (flows/schedule.h has the contract).
 *
 * Sources followed:
 *  - EventBridge's rate and cron syntax
 *    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html):
 *    rate(value unit), value a positive integer, unit minute|hour|day, singular for 1 and plural
 *    otherwise (or AppFlow's own rate(5minutes), rate(1day): no space, either form); cron(minutes
 *    hours day-of-month month day-of-week year) with , - * / in every field, ? L W in
 *    day-of-month, ? L # in day-of-week, one of day-of-month and day-of-week '?', months JAN-DEC
 *    and days SUN-SAT by name, evaluated in UTC;
 *  - what the EventBridge page leaves out (a range whose start is after its end, L alone in
 *    day-of-week, W near a month's edges) is taken from Quartz's CronExpression, the syntax
 *    EventBridge's follows: such a range wraps around the field (but not in the year field,
 *    which Quartz refuses), day-of-week L alone is 7 (SAT), 1W on a Saturday is Monday the 3rd
 *    and a Sunday that ends the month moves back to the Friday.
 * Dates are computed here on the proleptic Gregorian calendar (days from and to civil dates as
 * in Howard Hinnant's algorithms), so nothing depends on TZ or the C library's time functions. */
#include "flows/schedule.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* ---- parsing ---- */

enum { F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_YEAR, F_COUNT };
enum { YEAR_MIN = 1970, YEAR_MAX = 2199 };
static const int lo_of[F_COUNT] = {0, 0, 1, 1, 1, YEAR_MIN};
static const int hi_of[F_COUNT] = {59, 23, 31, 12, 7, YEAR_MAX};
static const char *const months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const days[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
static const char *const bad_field[F_COUNT] = {
    "its minutes field is not valid (0-59 , - * /)",
    "its hours field is not valid (0-23 , - * /)",
    "its day-of-month field is not valid (1-31 , - * ? / L W)",
    "its month field is not valid (1-12 or JAN-DEC , - * /)",
    "its day-of-week field is not valid (1-7 or SUN-SAT , - * ? L #)",
    "its year field is not valid (1970-2199 , - * /)"};
/* Told last, once the expression is otherwise valid, so that anything else wrong with it is
 * reported first, in the words the rules gave before years were checked for this. */
static const char reversed_years[] =
    "its year field has a range that ends before it starts (years do not wrap around)";
static const char fields_count[] =
    "cron() takes 6 fields: minutes hours day-of-month month day-of-week year";

/* A number or (months, days) a name at *p within the field's range; advances *p. */
static bool cron_value(const char **p, int field, int *out) {
  const char *s = *p;
  if (isdigit((unsigned char)*s)) {
    long v = 0;
    while (isdigit((unsigned char)*s) && v < 100000)
      v = v * 10 + (*s++ - '0');
    if (isdigit((unsigned char)*s) || v < lo_of[field] || v > hi_of[field])
      return false;
    *out = (int)v;
    *p = s;
    return true;
  }
  const char *const *names = field == F_MONTH ? months : field == F_DOW ? days : NULL;
  size_t n = field == F_MONTH ? 12 : 7;
  for (size_t i = 0; names != NULL && i < n; i++) {
    if (strncasecmp(s, names[i], 3) == 0) {
      *out = (int)i + 1;
      *p = s + 3;
      return true;
    }
  }
  return false;
}

/* A positive step after '/'; advances *p. Capped like a value, so adding it cannot overflow. */
static bool cron_step(const char **p, int *out) {
  const char *s = *p;
  long v = 0;
  if (!isdigit((unsigned char)*s))
    return false;
  while (isdigit((unsigned char)*s) && v < 100000)
    v = v * 10 + (*s++ - '0');
  *p = s;
  *out = (int)v;
  return v >= 1;
}

/* Sets value v of a field (v already within the field's range). */
static void cron_set(af_schedule *s, int field, int v) {
  switch (field) {
  case F_MIN:
    s->minutes |= UINT64_C(1) << v;
    break;
  case F_HOUR:
    s->hours |= UINT32_C(1) << v;
    break;
  case F_DOM:
    s->days |= UINT32_C(1) << v;
    break;
  case F_MONTH:
    s->months |= (uint16_t)(1u << v);
    break;
  case F_DOW:
    s->weekdays |= (uint8_t)(1u << v);
    break;
  default:
    s->years[(v - YEAR_MIN) / 64] |= UINT64_C(1) << ((v - YEAR_MIN) % 64);
    break;
  }
}

/* a, a + step, ... up to b. When b < a the range runs past the field's top and on from its
 * bottom, as Quartz reads it (hours 22-2 are 22,23,0,1,2); the caller keeps years out. */
static void cron_range(af_schedule *s, int field, int a, int b, int step) {
  int span = hi_of[field] - lo_of[field] + 1;
  int end = b < a ? b + span : b;
  for (int i = a; i <= end; i += step)
    cron_set(s, field, i > hi_of[field] ? i - span : i);
}

/* Day-of-month L, LW or nW (item is a writable copy of len > 0 characters). */
static bool dom_special(char *item, size_t len, af_schedule *s) {
  if (strcmp(item, "L") == 0) {
    s->last_day = true;
    return true;
  }
  if (strcmp(item, "LW") == 0) {
    s->last_weekday = true;
    return true;
  }
  item[len - 1] = '\0'; /* nW: the weekday nearest day n */
  const char *p = item;
  int n;
  if (!cron_value(&p, F_DOM, &n) || *p != '\0')
    return false;
  s->nearest_weekdays |= UINT32_C(1) << n;
  return true;
}

/* Day-of-week L (SAT), nL or d#k (item is a writable copy of len > 0 characters). */
static bool dow_special(char *item, size_t len, af_schedule *s) {
  const char *p = item;
  int d;
  if (strcmp(item, "L") == 0) {
    s->weekdays |= 1u << 7;
    return true;
  }
  if (item[len - 1] == 'L') { /* nL: the last day n of the month */
    item[len - 1] = '\0';
    if (!cron_value(&p, F_DOW, &d) || *p != '\0')
      return false;
    s->last_weekdays |= (uint8_t)(1u << d);
    return true;
  }
  const char *hash = strchr(item, '#'); /* d#k: the kth day d of the month */
  if (!cron_value(&p, F_DOW, &d) || p != hash || hash[1] < '1' || hash[1] > '5' || hash[2] != '\0')
    return false;
  s->nth_weekdays[d] |= (uint8_t)(1u << (hash[1] - '0'));
  return true;
}

/* *, a, a-b, each optionally with /step; a/step runs from a to the field's top. */
static const char *cron_plain(const char *item, int field, af_schedule *s) {
  const char *p = item;
  int a = lo_of[field], b = hi_of[field], step = 1;
  if (*p == '*') {
    p++;
  } else {
    if (!cron_value(&p, field, &a))
      return bad_field[field];
    if (*p == '-') {
      p++;
      if (!cron_value(&p, field, &b))
        return bad_field[field];
    } else if (*p != '/') {
      b = a;
    }
  }
  if (*p == '/') {
    p++;
    if (!cron_step(&p, &step))
      return bad_field[field];
  }
  if (*p != '\0')
    return bad_field[field];
  if (field == F_YEAR && b < a) /* years are not a cycle: there is nothing to wrap to */
    return reversed_years;
  cron_range(s, field, a, b, step);
  return NULL;
}

/* One comma-separated item of a field, in[0..len), added to s; NULL or why not. */
static const char *cron_item(const char *in, size_t len, int field, af_schedule *s) {
  char item[64];
  if (len == 0 || len >= sizeof item)
    return bad_field[field];
  memcpy(item, in, len);
  item[len] = '\0';
  if (field == F_DOM && (strcmp(item, "L") == 0 || item[len - 1] == 'W'))
    return dom_special(item, len, s) ? NULL : bad_field[field];
  if (field == F_DOW && (item[len - 1] == 'L' || strchr(item, '#') != NULL))
    return dow_special(item, len, s) ? NULL : bad_field[field];
  return cron_plain(item, field, s);
}

/* A field: ? (the day fields only) or comma-separated items. */
static const char *cron_field(const char *in, size_t len, int field, af_schedule *s) {
  if (len == 1 && in[0] == '?')
    return field == F_DOM || field == F_DOW ? NULL : bad_field[field];
  const char *deferred = NULL;
  for (const char *end = in + len; in <= end;) {
    const char *comma = memchr(in, ',', (size_t)(end - in));
    size_t n = comma ? (size_t)(comma - in) : (size_t)(end - in);
    const char *why = cron_item(in, n, field, s);
    if (why == reversed_years)
      deferred = why;
    else if (why != NULL)
      return why;
    if (comma == NULL)
      break;
    in = comma + 1;
  }
  return deferred;
}

/* The inside of cron(...), in[0..len): six fields separated by spaces. */
static const char *cron_parse(const char *in, size_t len, af_schedule *s) {
  const char *f[F_COUNT];
  size_t flen[F_COUNT], n = 0;
  for (size_t i = 0; i < len;) {
    if (in[i] == ' ') {
      i++;
      continue;
    }
    size_t j = i;
    while (j < len && in[j] != ' ')
      j++;
    if (n == F_COUNT)
      return fields_count;
    f[n] = in + i;
    flen[n++] = j - i;
    i = j;
  }
  if (n != F_COUNT)
    return fields_count;
  const char *deferred = NULL;
  for (int i = 0; i < F_COUNT; i++) {
    const char *why = cron_field(f[i], flen[i], i, s);
    if (why == reversed_years)
      deferred = why;
    else if (why != NULL)
      return why;
  }
  bool dom_q = flen[F_DOM] == 1 && f[F_DOM][0] == '?';
  bool dow_q = flen[F_DOW] == 1 && f[F_DOW][0] == '?';
  if (dom_q == dow_q)
    return "one of its day-of-month and day-of-week fields must be '?', and only one";
  if (deferred != NULL)
    return deferred;
  s->kind = AF_SCHEDULE_CRON;
  s->by_weekday = dom_q;
  return NULL;
}

/* The inside of rate(...), in[0..len). */
static const char *rate_parse(const char *in, size_t len, af_schedule *s) {
  static const char why[] = "rate() takes a positive whole value and a unit: minute(s), hour(s) "
                            "or day(s), as in rate(5minutes) or rate(1 hour)";
  size_t i = 0;
  unsigned long long v = 0;
  if (len == 0 || !isdigit((unsigned char)in[0]))
    return why;
  /* At most 10 digits get through (a longer value leaves a digit where the unit should be), so
   * 9999999999 days in milliseconds, 8.6e17, is the largest interval: well within int64_t. */
  while (i < len && isdigit((unsigned char)in[i]) && v < 1000000000ULL)
    v = v * 10 + (unsigned)(in[i++] - '0');
  /* EventBridge writes rate(5 minutes), with the unit singular for 1 and plural otherwise;
   * AppFlow documents rate(5minutes) and rate(1day), with no space, and takes either form of
   * the unit there. */
  bool spaced = i < len && in[i] == ' ';
  if (v == 0 || i + spaced >= len)
    return why;
  const char *unit = in + i + spaced;
  size_t ulen = len - i - spaced;
  static const char *const units[] = {"minute", "hour", "day"};
  static const int64_t unit_ms[] = {60000, 3600000, 86400000};
  for (size_t u = 0; u < 3; u++) {
    size_t n = strlen(units[u]);
    bool plural = ulen == n + 1 && unit[n] == 's';
    if ((ulen == n || plural) && strncmp(unit, units[u], n) == 0) {
      if (spaced && plural != (v != 1))
        return why;
      s->kind = AF_SCHEDULE_RATE;
      s->interval_ms = (int64_t)v * unit_ms[u];
      return NULL;
    }
  }
  return why;
}

const char *af_schedule_parse(const char *expr, af_schedule *out) {
  af_schedule s;
  memset(&s, 0, sizeof s);
  const char *why = "use rate(value unit), such as rate(1 hour), or cron(fields), such as "
                    "cron(0 12 * * ? *)";
  size_t len = expr ? strlen(expr) : 0;
  if (len > 6 && expr[len - 1] == ')') {
    if (strncmp(expr, "rate(", 5) == 0)
      why = rate_parse(expr + 5, len - 6, &s);
    else if (strncmp(expr, "cron(", 5) == 0)
      why = cron_parse(expr + 5, len - 6, &s);
  }
  if (why == NULL)
    *out = s;
  return why;
}

/* ---- civil dates, in UTC ---- */

#define MINUTE_MS INT64_C(60000)
#define DAY_MS INT64_C(86400000)

/* Days since 1970-01-01 of y-m-d: years are counted from March so that the leap day ends a
 * year, and in 400-year eras, which repeat exactly (146097 days). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;                                   /* [0, 399] */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365], from March 1 */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
  return era * 146097 + doe - 719468; /* 719468: days from 0000-03-01 to 1970-01-01 */
}

typedef struct civil {
  int y, m, d, h, mi;
} civil;

/* The civil date of day z since 1970-01-01: days_from_civil undone. */
static civil civil_from_days(int64_t z) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;                                      /* [0, 146096] */
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
  int64_t mp = (5 * doy + 2) / 153;                                    /* March = 0 */
  civil c = {0};
  c.d = (int)(doy - (153 * mp + 2) / 5 + 1);
  c.m = (int)(mp < 10 ? mp + 3 : mp - 9);
  c.y = (int)(yoe + era * 400 + (c.m <= 2));
  return c;
}

/* The civil minute of a non-negative instant. */
static civil civil_at(int64_t ms) {
  civil c = civil_from_days(ms / DAY_MS);
  int64_t minute = ms % DAY_MS / MINUTE_MS;
  c.h = (int)(minute / 60);
  c.mi = (int)(minute % 60);
  return c;
}

static int64_t instant_of(civil c) {
  return ((days_from_civil(c.y, c.m, c.d) * 24 + c.h) * 60 + c.mi) * MINUTE_MS;
}

static int days_in_month(int y, int m) {
  static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
  return m == 2 && leap ? 29 : len[m - 1];
}

/* 0 = Sunday ... 6 = Saturday; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t z) { return (int)(((z % 7) + 7 + 4) % 7); }

/* ---- when a cron fires ---- */

/* The weekday (Mon-Fri) nearest day n of a month of len days whose day 1 falls on weekday
 * wd1, without leaving the month: a Saturday 1st moves on to Monday the 3rd, a Sunday that
 * ends the month back to the Friday. */
static int nearest_weekday(int n, int len, int wd1) {
  int wd = (wd1 + n - 1) % 7;
  if (wd == 6)
    return n > 1 ? n - 1 : n + 2;
  if (wd == 0)
    return n < len ? n + 1 : n - 2;
  return n;
}

/* The days (bit d) of a month of len days, first day on weekday wd1, that day-of-month takes. */
static uint64_t monthday_days(const af_schedule *s, int len, int wd1) {
  uint64_t mask = s->days & ((UINT64_C(1) << (len + 1)) - 2); /* day 31 of April is not there */
  if (s->last_day)
    mask |= UINT64_C(1) << len;
  if (s->last_weekday) /* the last day, or the Friday before a weekend that ends the month */
    mask |= UINT64_C(1) << nearest_weekday(len, len, wd1);
  for (int n = 1; n <= len; n++) {
    if (s->nearest_weekdays >> n & 1)
      mask |= UINT64_C(1) << nearest_weekday(n, len, wd1);
  }
  return mask;
}

/* The days (bit d) of a month of len days, first day on weekday wd1, that day-of-week takes. */
static uint64_t weekday_days(const af_schedule *s, int len, int wd1) {
  uint64_t mask = 0;
  for (int d = 1; d <= len; d++) {
    int dow = (wd1 + d - 1) % 7 + 1; /* 1 = SUN, as the field counts */
    bool last = d + 7 > len;         /* no later day dow in the month */
    int nth = (d - 1) / 7 + 1;
    if ((s->weekdays >> dow & 1) || (last && (s->last_weekdays >> dow & 1)) ||
        (s->nth_weekdays[dow] >> nth & 1))
      mask |= UINT64_C(1) << d;
  }
  return mask;
}

static uint64_t month_days(const af_schedule *s, int y, int m) {
  int len = days_in_month(y, m);
  int wd1 = weekday_of(days_from_civil(y, m, 1));
  return s->by_weekday ? weekday_days(s, len, wd1) : monthday_days(s, len, wd1);
}

/* The lowest set bit of mask at or above from, or -1. */
static int next_bit(uint64_t mask, int from) {
  if (from < 0 || from > 63)
    return -1;
  mask &= ~UINT64_C(0) << from;
  return mask == 0 ? -1 : __builtin_ctzll(mask);
}

/* The first year at or after y that the year field takes, or -1. */
static int next_year(const af_schedule *s, int y) {
  for (; y <= YEAR_MAX; y++) {
    if (s->years[(y - YEAR_MIN) / 64] >> ((y - YEAR_MIN) % 64) & 1)
      return y;
  }
  return -1;
}

/* Walks forward from the first minute after after_ms, one field at a time from the year down:
 * a field with no value left moves the next larger one on and clears the smaller ones, so a
 * cron that fires once a year costs a few steps and one that never fires again none. */
static int64_t cron_next(const af_schedule *s, int64_t after_ms) {
  /* The year field's last minute: nothing fires after it (and no arithmetic below overflows). */
  const int64_t last = days_from_civil(YEAR_MAX + 1, 1, 1) * DAY_MS - MINUTE_MS;
  if (after_ms >= last)
    return AF_SCHEDULE_NEVER;
  civil c = civil_at(after_ms < 0 ? 0 : (after_ms / MINUTE_MS + 1) * MINUTE_MS);
  while (c.y <= YEAR_MAX) {
    int y = next_year(s, c.y);
    if (y < 0)
      return AF_SCHEDULE_NEVER;
    if (y != c.y)
      c = (civil){y, 1, 1, 0, 0};
    int m = next_bit(s->months, c.m);
    if (m < 0) {
      c = (civil){c.y + 1, 1, 1, 0, 0};
      continue;
    }
    if (m != c.m)
      c = (civil){c.y, m, 1, 0, 0};
    int d = next_bit(month_days(s, c.y, c.m), c.d);
    if (d < 0) { /* month 13 has no value in the months field: on to the next year */
      c = (civil){c.y, c.m + 1, 1, 0, 0};
      continue;
    }
    if (d != c.d)
      c = (civil){c.y, c.m, d, 0, 0};
    int h = next_bit(s->hours, c.h);
    if (h < 0) { /* a day past the month's end has no bit in month_days: on to the next month */
      c = (civil){c.y, c.m, c.d + 1, 0, 0};
      continue;
    }
    if (h != c.h)
      c = (civil){c.y, c.m, c.d, h, 0};
    int mi = next_bit(s->minutes, c.mi);
    if (mi < 0) { /* hour 24 has no bit in hours: on to the next day */
      c = (civil){c.y, c.m, c.d, c.h + 1, 0};
      continue;
    }
    c.mi = mi;
    return instant_of(c);
  }
  return AF_SCHEDULE_NEVER;
}

/* ---- when a rate fires ---- */

/* base + off, known not to pass INT64_MAX, without a signed overflow on the way: off may
 * exceed INT64_MAX when base is negative. */
static int64_t add_offset(int64_t base, uint64_t off) {
  if (off > (uint64_t)INT64_MAX) {
    base += INT64_MAX;
    off -= (uint64_t)INT64_MAX;
  }
  return base + (int64_t)off;
}

static int64_t rate_next(int64_t interval, int64_t anchor, int64_t after) {
  if (interval <= 0) /* not from af_schedule_parse: refuse to divide by it */
    return AF_SCHEDULE_NEVER;
  if (after < anchor)
    return anchor;
  /* In unsigned arithmetic after - anchor is exact even past INT64_MAX (anchor below zero). */
  uint64_t k = ((uint64_t)after - (uint64_t)anchor) / (uint64_t)interval + 1;
  uint64_t room = (uint64_t)INT64_MAX - (uint64_t)anchor; /* the largest offset that fits */
  if (k > room / (uint64_t)interval)
    return AF_SCHEDULE_NEVER;
  return add_offset(anchor, k * (uint64_t)interval);
}

int64_t af_schedule_next(const af_schedule *s, int64_t anchor_ms, int64_t after_ms) {
  switch (s->kind) {
  case AF_SCHEDULE_RATE:
    return rate_next(s->interval_ms, anchor_ms, after_ms);
  case AF_SCHEDULE_CRON:
    return cron_next(s, after_ms);
  }
  return AF_SCHEDULE_NEVER;
}
