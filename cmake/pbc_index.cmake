# Writes OUT: a table of every protobuf-c message descriptor declared in the headers HEADERS (a
# ;-list, included by the paths INCLUDES), so a test can go through every message type the
# generated code has instead of a list kept by hand (tests/unit/test_encode.c).
# Run as: cmake -DHEADERS=a.pb-c.h;b.pb-c.h -DINCLUDES=x/a.pb-c.h;... -DOUT=f.c -P this
set(entries "")
set(count 0)
foreach(header IN LISTS HEADERS)
  file(STRINGS ${header} lines REGEX "^extern const ProtobufCMessageDescriptor [A-Za-z0-9_]+;$")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^extern const ProtobufCMessageDescriptor ([A-Za-z0-9_]+);$" "\\1" name
                         "${line}")
    string(APPEND entries "    &${name},\n")
    math(EXPR count "${count} + 1")
  endforeach()
endforeach()
set(includes "")
foreach(inc IN LISTS INCLUDES)
  string(APPEND includes "#include \"${inc}\"\n")
endforeach()
file(WRITE ${OUT}.tmp
  "/* Written by cmake/pbc_index.cmake from the protobuf-c headers: do not edit. */\n"
  "#include <protobuf-c/protobuf-c.h>\n#include <stddef.h>\n${includes}\n"
  "const ProtobufCMessageDescriptor *const af_pbc_messages[] = {\n${entries}};\n"
  "const size_t af_pbc_message_count = ${count};\n")
# Only a changed table rebuilds what depends on it.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
file(REMOVE ${OUT}.tmp)
