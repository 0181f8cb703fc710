/* AWS JSON <-> nanopb messages, driven by the AWS model's tables (gen/model/) and nanopb's field
 * iterator: a JSON member is the proto field whose number is the model member's, enums travel
 * as their AWS strings, timestamps as epoch seconds. What appflowctl sends and prints.
 *
 * Fixed fields (bounded strings, arrays) are filled in place; a value over its bound is an
 * error naming the member and the limit. Callback fields (unbounded strings and lists, maps,
 * large submessages) are bound to the codec: their encode callbacks write the JSON value kept
 * in the codec, their decode callbacks collect what they read into JSON trees it owns.
 *
 * Ownership: a codec owns every binding and collected tree; messages filled or prepared with a
 * codec must be encoded, decoded and converted before af_ctl_codec_free. JSON passed in is
 * borrowed (the codec takes references where it keeps it); JSON returned is the caller's.
 * Errors: functions return 0 or NULL on failure with af_ctl_codec_error() saying why, and
 * af_ctl_codec_status() telling bad input (AF_CTL_INPUT: the caller's fault, e.g. a bound or a
 * type) from the rest. A failing nanopb encode or decode of a codec-bound message leaves the
 * codec's error set when one of its callbacks caused it.
 * Thread-safety: a codec is used by one thread at a time; the tables are read-only. */
#ifndef AF_CLIENT_CTLJSON_H
#define AF_CLIENT_CTLJSON_H

#include "common/awsmodel.h"
#include "common/compiler.h"

#include <jansson.h>
#include <pb.h>
#include <stddef.h>

/* One nanopb message: its C name ("appflow_v1_CreateFlowRequest"), descriptor and sizeof. */
typedef struct af_ctl_message {
  const char *name;
  const pb_msgdesc_t *desc;
  size_t size;
} af_ctl_message;

/* Every nanopb message the client has (written at build time by cmake/nanopb_index.cmake). */
extern const af_ctl_message af_ctl_messages[];
extern const size_t af_ctl_message_count;

/* The nanopb message of a model structure ("appflow_v1_" + its name), or NULL. */
const af_ctl_message *af_ctl_message_for(const af_model_struct *ms);
/* The message whose descriptor is desc, or NULL. */
const af_ctl_message *af_ctl_message_of(const pb_msgdesc_t *desc);

typedef enum af_ctl_status {
  AF_CTL_OK,
  AF_CTL_INPUT,   /* the JSON does not fit the model or a bound */
  AF_CTL_FAILURE, /* out of memory, a reply that does not fit, an inconsistent table */
} af_ctl_status;

typedef struct af_ctl_codec af_ctl_codec;

/* NULL when out of memory. */
af_ctl_codec *af_ctl_codec_new(void) AF_MUST_USE;
/* NULL is fine. */
void af_ctl_codec_free(af_ctl_codec *k);
/* Why the last call failed ("" if none), and which kind of failure it was. */
const char *af_ctl_codec_error(const af_ctl_codec *k);
af_ctl_status af_ctl_codec_status(const af_ctl_codec *k);

/* Fills msg, a zeroed struct of the nanopb message m, from obj, an AWS JSON object of the model
 * structure ms. JSON null members are left out. Returns 0 or -1. */
int af_ctl_fill(af_ctl_codec *k, const af_model_struct *ms, const af_ctl_message *m,
                const json_t *obj, void *msg) AF_MUST_USE;

/* Binds the callback fields of msg (a struct of m, at any depth) to decode callbacks that
 * collect into the codec; then pb_decode msg. Returns 0 or -1. */
int af_ctl_prepare(af_ctl_codec *k, const af_model_struct *ms, const af_ctl_message *m,
                   void *msg) AF_MUST_USE;

/* msg, decoded after af_ctl_prepare, as an AWS JSON object: members not present are left out.
 * NULL on failure. */
json_t *af_ctl_to_json(af_ctl_codec *k, const af_model_struct *ms, const af_ctl_message *m,
                       const void *msg) AF_MUST_USE;

/* The AWS CLI's spelling of an AWS name (botocore's xform_name with '-'): "ListFlows" ->
 * "list-flows", "flowName" -> "flow-name", "kmsArn" -> "kms-arn". Writes at most dstsz bytes
 * with the NUL; returns 0, or -1 when it does not fit. */
int af_ctl_cli_name(const char *name, char *dst, size_t dstsz) AF_MUST_USE;

#endif
