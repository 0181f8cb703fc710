# test_transcode: the AWS JSON transcoder (src/bridge/transcode.c) against the real contract
# (gen/pbc and the AWS model's tables in gen/model). It links only what the transcoder needs -
# the JSON reader, the arena, the errors, af_common, the generated code and jansson - not
# appflowd_core, so it builds and runs whatever state the service is in.
add_executable(test_transcode unit/test_transcode.c ${CMAKE_SOURCE_DIR}/src/bridge/transcode.c
                              ${CMAKE_SOURCE_DIR}/src/bridge/jsonread.c
                              ${CMAKE_SOURCE_DIR}/src/flows/arena.c
                              ${CMAKE_SOURCE_DIR}/src/flows/error.c)
target_include_directories(test_transcode PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_options(test_transcode PRIVATE ${AF_WARNINGS})
target_link_libraries(test_transcode PRIVATE af_common af_gen_model af_gen_pbc PkgConfig::JANSSON
                                             ${CRITERION_LIB})
# --jobs 1: as for every unit test, Criterion's workers would fight the sanitizers for cores.
add_test(NAME unit.test_transcode COMMAND test_transcode --jobs 1)
af_unit_properties(unit.test_transcode)
