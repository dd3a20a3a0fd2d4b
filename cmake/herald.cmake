# herald_module(NAME SRCS ... DEPS ... [PRIVATE_DEPS ...])
# One static library per module, named herald_<NAME>. DEPS are the modules and
# libraries its public headers need; the dependency direction of DESIGN.md can be
# read from these calls.
function(herald_module name)
  cmake_parse_arguments(M "" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(herald_${name} STATIC ${M_SRCS})
  target_include_directories(herald_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(herald_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
endfunction()

# herald_test(NAME SRCS ... DEPS ...): a GoogleTest binary registered with ctest.
function(herald_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SRCS})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main)
  include(GoogleTest)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "unit;${T_LABELS}")
endfunction()
