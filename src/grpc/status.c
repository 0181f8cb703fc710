#include "grpc/status.h"

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

static uint8_t *pack(const ProtobufCMessage *m, af_arena *arena, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = af_arena_alloc(arena, *len);
  if (buf != NULL)
    protobuf_c_message_pack(m, buf);
  return buf;
}

int af_grpc_status_details(const af_error *err, af_arena *arena, uint8_t **out, size_t *len) {
  Google__Rpc__ErrorInfo info = GOOGLE__RPC__ERROR_INFO__INIT;
  info.reason = (char *)af_err_type(err->code);
  info.domain = (char *)AF_ERROR_DOMAIN;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = (char *)"type.googleapis.com/google.rpc.ErrorInfo";
  any.value.data = pack(&info.base, arena, &any.value.len);
  if (any.value.data == NULL)
    return -1;
  Google__Protobuf__Any *details[] = {&any};
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  st.code = (int32_t)af_err_rpc_code(err->code);
  st.message = (char *)err->message;
  st.n_details = 1;
  st.details = details;
  *out = pack(&st.base, arena, len);
  return *out == NULL ? -1 : 0;
}
