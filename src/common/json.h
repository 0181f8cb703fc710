/* Small helpers over jansson shared by the AWS door and the C client.
 * Thread-safety: pure. */
#ifndef AF_COMMON_JSON_H
#define AF_COMMON_JSON_H

#include <jansson.h>

/* What kind of JSON value v is, for messages: "an object", "a string", "null"... */
const char *af_json_kind(const json_t *v);

#endif
