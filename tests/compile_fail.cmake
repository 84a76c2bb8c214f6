# Compile-time configuration rules, tested both ways (dyno / fmt style): each
# tests/compile/NAME.fail.cpp is compiled twice, with CASDM_EXPECT_FAIL (must fail, and the
# compiler output must match the file's "// expect:" line) and without (its twin: must compile),
# so a harness that cannot compile anything fails too.
add_library(casdm_config_pch OBJECT compile/pch.cpp)
target_link_libraries(casdm_config_pch PRIVATE casdm::casdm)
target_precompile_headers(casdm_config_pch PRIVATE <ATen/ATen.h> <torch/nn/module.h> <torch/nn/modules/conv.h>
                          <torch/nn/modules/linear.h> <torch/nn/modules/normalization.h>)

file(GLOB _casdm_fail_sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/compile/*.fail.cpp")
foreach(src IN LISTS _casdm_fail_sources)
  get_filename_component(name "${src}" NAME_WE)
  file(STRINGS "${src}" expect REGEX "^// expect: ")
  string(REPLACE "// expect: " "" expect "${expect}")
  if(expect STREQUAL "")
    message(FATAL_ERROR "${src} has no '// expect: <message>' line")
  endif()
  foreach(kind fail twin)
    set(target casdm_config_${name}_${kind})
    add_library(${target} OBJECT EXCLUDE_FROM_ALL "${src}")
    target_link_libraries(${target} PRIVATE casdm::casdm)
    target_precompile_headers(${target} REUSE_FROM casdm_config_pch)
    if(kind STREQUAL "fail")
      target_compile_definitions(${target} PRIVATE CASDM_EXPECT_FAIL)
    endif()
    add_test(NAME config.${name}.${kind}
             COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target ${target})
    # Builds in one tree must not run concurrently.
    set_tests_properties(config.${name}.${kind} PROPERTIES RESOURCE_LOCK casdm_build_tree TIMEOUT 600)
    if(kind STREQUAL "fail")
      set_tests_properties(config.${name}.${kind} PROPERTIES PASS_REGULAR_EXPRESSION "${expect}")
    endif()
  endforeach()
endforeach()
