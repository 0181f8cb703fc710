/* Generic validation of a request against AppFlow's AWS model tables (gen/model/, described by
 * common/awsmodel.h), with AWS's (Coral's) wording and order, so every member of every
 * operation is checked from the model itself.
 *
 * Contract
 *   af_check_message walks msg at every depth, in the tables' member order (= field number
 *   order), depth first, and collects every violation:
 *     required member absent   Value null at 'p' failed to satisfy constraint: Member must not
 *                              be null
 *     string                   Value 'v' at 'p' ...: Member must satisfy regular expression
 *                              pattern: <Java pattern>, then Member must have length greater
 *                              than or equal to N / less than or equal to N (in characters,
 *                              i.e. UTF-8 code points); the pattern error comes first, as AWS
 *                              lists it
 *     integer / long           Value '0' at 'p' ...: Member must have value greater than or
 *                              equal to N / less than or equal to N
 *     enum (proto number)      Value '99' at 'p' ...: Member must satisfy enum value set: [a, b]
 *     list / map entry count   Value '[a, b]' or '{k=v}' at 'p' ...: Member must have length
 *                              less than or equal to N / greater than or equal to N
 *     list of scalars          Value '[a, b]' at 'p' ...: Member must satisfy constraint:
 *                              [<every constraint of the element shape>] (once per list)
 *     map keys                 Value '{k=v}' at 'p' ...: Map keys must satisfy constraint:
 *                              [<every constraint of the key shape>] (once per map)
 *     map values (scalars)     Value '{k=v}' at 'p' ...: Map value must satisfy constraint:
 *                              [...] (once per map)
 *   A bracketed list names every constraint of the shape in the order max length, min length,
 *   pattern (numbers: max value, min value; enums: the value set), as AWS prints them.
 *   Paths: AWS member names joined by '.'; a structure in a list is "<list>.<i>.member" (i from
 *   1); a map value that is a structure or list is "<map>.<key>.member" (keys escaped).
 *   Values are quoted in single quotes, escaped with af_escape and cut at 256 bytes; a
 *   collection of structures, and anything under a sensitive shape, is printed without its
 *   value ("Value at 'p' ..."), as AWS does for sensitive members.
 *   One violation: "1 validation error detected: X"; several: "N validation errors detected: X;
 *   Y; Z". If they do not all fit in AF_ERROR_MESSAGE_MAX, the message is cut after the last
 *   whole error that fits and N still counts them all.
 *
 *   Presence rules (proto2 cannot tell every absence from AWS's): a string or submessage is
 *   absent when NULL; a scalar when its has_ flag is clear; an enum also when it is 0 (the
 *   UNSPECIFIED value). An empty list or map is absent, and a required list or map that is
 *   empty is NOT reported as null: proto cannot tell an empty list from an absent one, and AWS
 *   accepts an empty list for a required member. Absent members are checked for nothing else.
 *
 * Ownership: af_checker_new returns a checker the caller frees with af_checker_free; msg and
 *   the tables are borrowed for the call only.
 * Errors: af_checker_new returns NULL and sets err (AF_ERR_INTERNAL_SERVER) when a pattern does
 *   not compile or memory runs out. af_check_message returns AF_OK, AF_ERR_VALIDATION with the
 *   message above, or AF_ERR_INTERNAL_SERVER (shape/message mismatch, out of memory).
 * Thread-safety: a checker is immutable after af_checker_new; af_check_message may be called
 *   on one checker from any number of threads at once (each call allocates its own PCRE2 match
 *   data, one small allocation per call that matches a pattern). */
#ifndef AF_FLOWS_CHECK_H
#define AF_FLOWS_CHECK_H

#include "common/awsmodel.h"
#include "common/compiler.h"
#include "flows/error.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct af_checker af_checker;

/* Compiles (and JIT-compiles where it can) every af_model_pattern_pcre2. */
af_checker *af_checker_new(af_error *err) AF_MUST_USE;
void af_checker_free(af_checker *c);

/* Checks msg (whose descriptor must be shape->descriptor) against shape. */
af_err af_check_message(const af_checker *c, const af_model_struct *shape,
                        const ProtobufCMessage *msg, af_error *err) AF_MUST_USE;

/* True when s[0..len) matches model pattern `pattern` whole (Java's matches()). */
bool af_checker_match(const af_checker *c, int pattern, const char *s, size_t len);

/* True when the checker decides ASCII values of model pattern `pattern` from tables learnt at
 * af_checker_new, without running pcre2 (a few character classes in a row, the last one maybe
 * repeated); what a test asks to know the short cut is taken. */
bool af_checker_knows_ascii(const af_checker *c, int pattern);

#endif
