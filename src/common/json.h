/* Small helpers over jansson shared by the AWS door and the C client, and a JSON string writer
 * for lines built without jansson (the access log).
 * Thread-safety: pure. */
#ifndef AF_COMMON_JSON_H
#define AF_COMMON_JSON_H

#include <jansson.h>
#include <stddef.h>

/* What kind of JSON value v is, for messages: "an object", "a string", "null"... */
const char *af_json_kind(const json_t *v);

/* Writes s[0..n) as a JSON string literal, quotes included, into dst[0..cap), for text that may
 * hold anything a caller sent: '"', '\\' and every control character are escaped (so no value
 * can end its string or its line early), as are U+2028 and U+2029; well-formed UTF-8 is kept;
 * every byte that is not part of well-formed UTF-8 becomes the six characters \\xNN (the text
 * \xNN once decoded, as af_escape writes it), so the result is always valid JSON and UTF-8.
 * A value that does not fit is cut before a whole character or escape and still closed.
 * Returns the bytes written (no NUL is added); 0 when cap < 2. */
size_t af_json_quote(char *dst, size_t cap, const char *s, size_t n);

#endif
