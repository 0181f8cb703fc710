# Writes OUT: a table of every nanopb message descriptor declared in the headers HEADERS (a
# ;-list), with the message's C name and sizeof, so appflowctl finds the nanopb message of a
# model structure by name ("appflow_v1_" + the AWS shape name) instead of from a list kept by hand.
# Run as: cmake -DHEADERS=a.pb.h;b.pb.h -DINCLUDES=appflow/v1/appflow.pb.h;... -DOUT=f.c -P this
set(entries "")
set(count 0)
foreach(header IN LISTS HEADERS)
  file(STRINGS ${header} lines REGEX "^extern const pb_msgdesc_t [A-Za-z0-9_]+_msg;$")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^extern const pb_msgdesc_t ([A-Za-z0-9_]+)_msg;$" "\\1" name "${line}")
    string(APPEND entries "    {\"${name}\", &${name}_msg, sizeof(${name})},\n")
    math(EXPR count "${count} + 1")
  endforeach()
endforeach()
set(includes "")
foreach(inc IN LISTS INCLUDES)
  string(APPEND includes "#include \"${inc}\"\n")
endforeach()
file(WRITE ${OUT}.tmp
  "/* Written by cmake/nanopb_index.cmake from the nanopb headers: do not edit. */\n"
  "#include \"client/ctljson.h\"\n${includes}\n"
  "const af_ctl_message af_ctl_messages[] = {\n${entries}};\n"
  "const size_t af_ctl_message_count = ${count};\n")
# Only a changed table rebuilds what depends on it.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
file(REMOVE ${OUT}.tmp)
