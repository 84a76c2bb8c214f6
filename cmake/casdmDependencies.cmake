# casdm's public dependencies, shared by the project and by the installed package config.
#   LibTorch: Torch_DIR, or CMAKE_PREFIX_PATH (PyTorch: python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
#   Boost.Hana: Boost's CMake package, or a folder holding boost/hana.hpp in CASDM_HANA_INCLUDE_DIR
#   fmt (header-only): fmt's CMake package, or a folder holding fmt/format.h in CASDM_FMT_INCLUDE_DIR
include(CMakeFindDependencyMacro)
macro(_casdm_find name)
  if(CMAKE_FIND_PACKAGE_NAME)  # inside casdmConfig.cmake: report failure to the consumer's find_package
    find_dependency(${name} ${ARGN})
  else()
    find_package(${name} ${ARGN} REQUIRED)
  endif()
endmacro()

set(CASDM_TORCH_ROOT "" CACHE PATH
    "A PyTorch package folder (holding include/ and lib/) to use without TorchConfig.cmake, whose CUDA \
build needs the CUDA toolkit at configure time; casdm itself needs only LibTorch's headers and libraries")
if(NOT TARGET torch AND CASDM_TORCH_ROOT)
  add_library(torch INTERFACE IMPORTED GLOBAL)
  set(_casdm_libs "${CASDM_TORCH_ROOT}/lib/libtorch.so" "${CASDM_TORCH_ROOT}/lib/libtorch_cpu.so"
      "${CASDM_TORCH_ROOT}/lib/libc10.so")
  if(EXISTS "${CASDM_TORCH_ROOT}/lib/libtorch_cuda.so")
    # Linked even though nothing references it, so that CUDA registers itself at load time.
    list(APPEND _casdm_libs "-Wl,--no-as-needed,${CASDM_TORCH_ROOT}/lib/libtorch_cuda.so,--as-needed"
         "${CASDM_TORCH_ROOT}/lib/libc10_cuda.so")
  endif()
  set(CASDM_TORCH_CXX11_ABI 1 CACHE STRING "torch._C._GLIBCXX_USE_CXX11_ABI of that PyTorch")
  set_target_properties(torch PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CASDM_TORCH_ROOT}/include;${CASDM_TORCH_ROOT}/include/torch/csrc/api/include"
    INTERFACE_LINK_LIBRARIES "${_casdm_libs}"
    INTERFACE_LINK_OPTIONS "-Wl,-rpath,${CASDM_TORCH_ROOT}/lib"
    INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=${CASDM_TORCH_CXX11_ABI}")
endif()
if(NOT TARGET torch)
  _casdm_find(Torch)
  if(NOT CMAKE_FIND_PACKAGE_NAME)
    # Inside add_subdirectory/FetchContent, Torch's imported targets would be visible only here;
    # the consumer that links casdm::casdm needs them too.
    get_directory_property(_casdm_imported IMPORTED_TARGETS)
    foreach(_t IN LISTS _casdm_imported)
      get_target_property(_global ${_t} IMPORTED_GLOBAL)
      if(NOT _global)
        set_target_properties(${_t} PROPERTIES IMPORTED_GLOBAL TRUE)
      endif()
    endforeach()
  endif()
endif()
if(NOT TARGET casdm::hana)
  set(CASDM_HANA_INCLUDE_DIR "" CACHE PATH "Folder that holds boost/hana.hpp when Boost's CMake package is absent")
  add_library(casdm::hana INTERFACE IMPORTED)
  if(CASDM_HANA_INCLUDE_DIR)
    set_target_properties(casdm::hana PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CASDM_HANA_INCLUDE_DIR}")
  else()
    _casdm_find(Boost 1.71 CONFIG)
    set_target_properties(casdm::hana PROPERTIES INTERFACE_LINK_LIBRARIES Boost::headers)
  endif()
endif()

# fmt (the library's messages and numbers): the compiled libfmt (its header-only mode costs ~5 s of
# compile time per translation unit). GPU machines without a package registry
# carry its headers: CASDM_FMT_INCLUDE_DIR names the folder holding fmt/format.h.
if(NOT TARGET casdm::fmt)
  set(CASDM_FMT_INCLUDE_DIR "" CACHE PATH "Folder that holds fmt/format.h when fmt's CMake package is absent")
  add_library(casdm::fmt INTERFACE IMPORTED)
  if(CASDM_FMT_INCLUDE_DIR)
    set_target_properties(casdm::fmt PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CASDM_FMT_INCLUDE_DIR}"
                          INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY=1)
  else()
    _casdm_find(fmt 9 CONFIG)
    set_target_properties(casdm::fmt PROPERTIES INTERFACE_LINK_LIBRARIES fmt::fmt)
  endif()
endif()

# nlohmann/json (header-only): checkpoints' settings document (train/checkpoint.hpp) and the reports.
# GPU machines without its package carry its headers: CASDM_JSON_INCLUDE_DIR names the folder holding
# nlohmann/json.hpp.
if(NOT TARGET casdm::json)
  set(CASDM_JSON_INCLUDE_DIR "" CACHE PATH "Folder that holds nlohmann/json.hpp when its CMake package is absent")
  add_library(casdm::json INTERFACE IMPORTED)
  if(CASDM_JSON_INCLUDE_DIR)
    set_target_properties(casdm::json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CASDM_JSON_INCLUDE_DIR}")
  else()
    _casdm_find(nlohmann_json 3 CONFIG)
    set_target_properties(casdm::json PROPERTIES INTERFACE_LINK_LIBRARIES nlohmann_json::nlohmann_json)
  endif()
endif()

# zlib: the CRC-32 of every tensor in a tensor file (io/tensor_file.hpp). GPU machines without its
# headers carry zlib.h (CASDM_ZLIB_INCLUDE_DIR) and link the system's libz.so.1.
if(NOT TARGET casdm::zlib)
  set(CASDM_ZLIB_INCLUDE_DIR "" CACHE PATH "Folder that holds zlib.h when zlib's development files are absent")
  add_library(casdm::zlib INTERFACE IMPORTED)
  if(CASDM_ZLIB_INCLUDE_DIR)
    find_library(CASDM_ZLIB_LIBRARY NAMES z libz.so.1 REQUIRED)
    set_target_properties(casdm::zlib PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CASDM_ZLIB_INCLUDE_DIR}"
                          INTERFACE_LINK_LIBRARIES "${CASDM_ZLIB_LIBRARY}")
  else()
    _casdm_find(ZLIB)
    set_target_properties(casdm::zlib PROPERTIES INTERFACE_LINK_LIBRARIES ZLIB::ZLIB)
  endif()
endif()

# Optional, for casdm/data/ (target casdm::data): zlib for gzip-compressed IDX files and stb_image
# (Debian: libstb-dev) for image folders; libzip (Debian: libzip-dev) for NumPy's .npz files, where
# found (without it data::read_npz says so).
if(NOT TARGET casdm::data_deps)
  find_package(ZLIB QUIET)
  find_path(CASDM_STB_INCLUDE_DIR stb/stb_image.h)
  find_library(CASDM_STB_LIBRARY stb)
  # libzip by its header and library (Debian's CMake config of libzip also wants its tools, zipcmp …).
  find_path(CASDM_LIBZIP_INCLUDE_DIR zip.h)
  find_library(CASDM_LIBZIP_LIBRARY zip)
  if(ZLIB_FOUND AND CASDM_STB_INCLUDE_DIR AND CASDM_STB_LIBRARY)
    add_library(casdm::data_deps INTERFACE IMPORTED)
    set_target_properties(casdm::data_deps PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CASDM_STB_INCLUDE_DIR}"
                          INTERFACE_LINK_LIBRARIES "ZLIB::ZLIB;${CASDM_STB_LIBRARY}")
    if(CASDM_LIBZIP_INCLUDE_DIR AND CASDM_LIBZIP_LIBRARY)  # npz.hpp checks __has_include(<zip.h>)
      set_property(TARGET casdm::data_deps APPEND PROPERTY INTERFACE_LINK_LIBRARIES "${CASDM_LIBZIP_LIBRARY}")
    endif()
  endif()
endif()

# Optional, for casdm/report/ (target casdm::report): PLplot's C++ library with its cairo driver
# (Debian: libplplot-dev plplot-driver-cairo) for charts, stb_image_write (libstb-dev) for PNG.
if(NOT TARGET casdm::report_deps)
  find_path(CASDM_PLPLOT_INCLUDE_DIR plplot/plstream.h)
  find_library(CASDM_PLPLOTCXX_LIBRARY plplotcxx)
  find_library(CASDM_PLPLOT_LIBRARY plplot)
  find_path(CASDM_STB_INCLUDE_DIR stb/stb_image.h)
  find_library(CASDM_STB_LIBRARY stb)
  if(CASDM_PLPLOT_INCLUDE_DIR AND CASDM_PLPLOTCXX_LIBRARY AND CASDM_PLPLOT_LIBRARY AND CASDM_STB_INCLUDE_DIR
     AND CASDM_STB_LIBRARY)
    add_library(casdm::report_deps INTERFACE IMPORTED)
    set_target_properties(casdm::report_deps PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${CASDM_PLPLOT_INCLUDE_DIR};${CASDM_STB_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${CASDM_PLPLOTCXX_LIBRARY};${CASDM_PLPLOT_LIBRARY};${CASDM_STB_LIBRARY}")
  endif()
endif()

# Optional, for casdm/train/distributed.hpp (target casdm::distributed): gloo's headers and library
# (Debian: libgloo-dev), against which Debian's LibTorch builds ProcessGroupGloo.
if(NOT TARGET casdm::distributed_deps)
  find_path(CASDM_GLOO_INCLUDE_DIR gloo/algorithm.h)
  find_library(CASDM_GLOO_LIBRARY gloo)
  if(CASDM_GLOO_INCLUDE_DIR AND CASDM_GLOO_LIBRARY)
    add_library(casdm::distributed_deps INTERFACE IMPORTED)
    set_target_properties(casdm::distributed_deps PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CASDM_GLOO_INCLUDE_DIR}"
                          INTERFACE_LINK_LIBRARIES "${CASDM_GLOO_LIBRARY}")
  endif()
endif()
