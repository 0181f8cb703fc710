# test_transcode: the AWS JSON transcoder (src/bridge/transcode.c) against a test-only proto with
# one field of every kind. Its protobuf-c code is generated at build time into the build tree,
# never into gen/ or the source tree, and is compiled without AF_WARNINGS (it is not ours).
find_program(AF_PROTOC protoc REQUIRED)

set(AF_TC_GEN ${CMAKE_CURRENT_BINARY_DIR}/testgen)
set(AF_TC_GEN_SOURCES
    ${AF_TC_GEN}/transcode_test.pb-c.c
    ${AF_TC_GEN}/google/protobuf/timestamp.pb-c.c
    ${AF_TC_GEN}/google/protobuf/struct.pb-c.c)
set(AF_TC_GEN_HEADERS
    ${AF_TC_GEN}/transcode_test.pb-c.h
    ${AF_TC_GEN}/google/protobuf/timestamp.pb-c.h
    ${AF_TC_GEN}/google/protobuf/struct.pb-c.h)

add_custom_command(
  OUTPUT ${AF_TC_GEN_SOURCES} ${AF_TC_GEN_HEADERS}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${AF_TC_GEN}
  COMMAND ${AF_PROTOC} --c_out=${AF_TC_GEN} -I ${CMAKE_SOURCE_DIR}/tests/proto -I /usr/include
          transcode_test.proto google/protobuf/timestamp.proto google/protobuf/struct.proto
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/proto/transcode_test.proto
  COMMENT "Generating protobuf-c code for tests/proto/transcode_test.proto"
  VERBATIM)

add_library(af_transcode_test_pbc STATIC ${AF_TC_GEN_SOURCES})
target_include_directories(af_transcode_test_pbc PUBLIC ${AF_TC_GEN})
target_link_libraries(af_transcode_test_pbc PUBLIC PkgConfig::PROTOBUFC)

add_executable(test_transcode unit/test_transcode.c)
target_compile_options(test_transcode PRIVATE ${AF_WARNINGS})
target_link_libraries(test_transcode PRIVATE appflowd_core af_transcode_test_pbc ${CRITERION_LIB})
# --jobs 1: as for every unit test, Criterion's workers would fight the sanitizers for cores.
add_test(NAME unit.test_transcode COMMAND test_transcode --jobs 1)
