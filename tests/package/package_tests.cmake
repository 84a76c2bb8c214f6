# Downstream use of the package, three ways: add_subdirectory, FetchContent, and find_package
# after `cmake --install`.
foreach(mode add_subdirectory FetchContent find_package)
  add_test(NAME package.${mode}
           COMMAND ${CMAKE_COMMAND} -DMODE=${mode} -DSOURCE=${PROJECT_SOURCE_DIR} -DBUILD=${PROJECT_BINARY_DIR}
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/package/${mode} -DTORCH_DIR=${Torch_DIR}
                   -DHANA=${CASDM_HANA_INCLUDE_DIR} -DLAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
                   -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
  set_tests_properties(package.${mode} PROPERTIES TIMEOUT 900 PASS_REGULAR_EXPRESSION "consumer ok.*session ok")
  if(mode STREQUAL "find_package")  # installs from the build tree the compile checks build in
    set_tests_properties(package.${mode} PROPERTIES RESOURCE_LOCK casdm_build_tree)
  endif()
endforeach()
