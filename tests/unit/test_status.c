/* grpc-status-details-bin, byte for byte: google.rpc.Status{code, message, details: [Any{
 * type_url, value: ErrorInfo{reason, domain}}]}, the golden bytes spelled out field by field
 * from the protobuf wire format. */
#include "grpc/status.h"

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#include <criterion/criterion.h>
#include <string.h>

#define REASON "ResourceNotFoundException"                  /* 25 bytes */
#define DOMAIN "appflow.amazonaws.com"                      /* 21 bytes */
#define TYPE_URL "type.googleapis.com/google.rpc.ErrorInfo" /* 40 bytes */
#define MESSAGE "Flow x does not exist"                     /* 21 bytes */

Test(status, golden_bytes) {
  static const char golden[] = "\x08\x05"          /* code = 5 (NOT_FOUND) */
                               "\x12\x15" MESSAGE  /* message */
                               "\x1a\x5e"          /* details[0], 94 bytes */
                               "\x0a\x28" TYPE_URL /*   Any.type_url */
                               "\x12\x32"          /*   Any.value, 50 bytes */
                               "\x0a\x19" REASON   /*     ErrorInfo.reason */
                               "\x12\x15" DOMAIN;  /*     ErrorInfo.domain */
  af_error err;
  af_error_set(&err, AF_ERR_RESOURCE_NOT_FOUND, "%s", MESSAGE);
  af_arena arena;
  af_arena_init(&arena);
  uint8_t *out;
  size_t len;
  cr_assert_eq(af_grpc_status_details(&err, &arena, &out, &len), 0);
  cr_assert_eq(len, sizeof golden - 1);
  cr_expect_arr_eq(out, golden, len);
  af_arena_destroy(&arena);
}

Test(status, round_trips_every_error) {
  for (int code = AF_ERR_VALIDATION; code <= AF_ERR_INTERNAL_SERVER; code++) {
    af_error err;
    af_error_set(&err, (af_err)code, "message %d", code);
    af_arena arena;
    af_arena_init(&arena);
    uint8_t *out;
    size_t len;
    cr_assert_eq(af_grpc_status_details(&err, &arena, &out, &len), 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, out);
    cr_assert_not_null(st);
    cr_expect_eq(st->code, (int32_t)af_err_rpc_code((af_err)code));
    cr_expect_str_eq(st->message, err.message);
    cr_assert_eq(st->n_details, 1);
    cr_expect_str_eq(st->details[0]->type_url, TYPE_URL);
    Google__Rpc__ErrorInfo *info = google__rpc__error_info__unpack(NULL, st->details[0]->value.len,
                                                                   st->details[0]->value.data);
    cr_assert_not_null(info);
    cr_expect_str_eq(info->reason, af_err_type((af_err)code));
    cr_expect_str_eq(info->domain, DOMAIN);
    google__rpc__error_info__free_unpacked(info, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    af_arena_destroy(&arena);
  }
}
