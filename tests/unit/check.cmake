# test_check and test_rules: generic validation from the AWS model tables (src/flows/check.c) and
# AppFlow's own flow rules (src/flows/rules.c, with the schedule parser it asks:
# src/flows/schedule.c), built standalone: they link only what they test, the error table, the
# common code, the generated tables and protobuf-c code, and PCRE2.
add_library(af_check STATIC ${CMAKE_SOURCE_DIR}/src/flows/check.c
                            ${CMAKE_SOURCE_DIR}/src/flows/rules.c
                            ${CMAKE_SOURCE_DIR}/src/flows/schedule.c
                            ${CMAKE_SOURCE_DIR}/src/flows/error.c)
target_include_directories(af_check PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_compile_options(af_check PRIVATE ${AF_WARNINGS})
target_link_libraries(af_check PUBLIC af_common af_gen_model af_gen_pbc PkgConfig::PCRE2)

foreach(t test_check test_rules)
  add_executable(${t} unit/${t}.c)
  target_compile_options(${t} PRIVATE ${AF_WARNINGS})
  target_link_libraries(${t} PRIVATE af_check ${CRITERION_LIB})
  # --jobs 1: as for every unit test, Criterion's workers would fight the sanitizers for cores.
  add_test(NAME unit.${t} COMMAND ${t} --jobs 1)
  af_unit_properties(unit.${t})
endforeach()
# test_rules reads the model file to know which connector types take a profile.
target_compile_definitions(test_rules PRIVATE AF_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
