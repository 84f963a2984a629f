# Finds the OpenMP flavour of Debian's OpenBLAS and defines the imported target convkit::openblas.
#
# Why that flavour, linked by path: the dense convolution kernels call cblas_?gemm from
# inside convkit's OpenMP parallel regions (one task per image x group block). The OpenMP
# build runs single-threaded when called inside a parallel region and uses the OpenMP
# threads (omp_set_num_threads, OMP_NUM_THREADS) outside one, so the two never
# oversubscribe the cores. The default Debian alternative (pthread flavour) would start its
# own pool on top of ours. Set CONVKIT_OPENBLAS_LIBRARY / CONVKIT_OPENBLAS_INCLUDE_DIR to use
# another CBLAS.
if(NOT TARGET convkit::openblas)
  set(_convkit_multiarch ${CMAKE_LIBRARY_ARCHITECTURE})
  find_library(CONVKIT_OPENBLAS_LIBRARY NAMES openblas
    PATHS /usr/lib/${_convkit_multiarch}/openblas-openmp NO_DEFAULT_PATH)
  find_path(CONVKIT_OPENBLAS_INCLUDE_DIR cblas.h
    PATHS /usr/include/${_convkit_multiarch}/openblas-openmp NO_DEFAULT_PATH)
  if(NOT CONVKIT_OPENBLAS_LIBRARY OR NOT CONVKIT_OPENBLAS_INCLUDE_DIR)
    message(FATAL_ERROR "convkit needs the OpenMP flavour of OpenBLAS (Debian package "
                        "libopenblas-openmp-dev, see scripts/install-deps.sh); found library "
                        "'${CONVKIT_OPENBLAS_LIBRARY}', headers '${CONVKIT_OPENBLAS_INCLUDE_DIR}'")
  endif()
  add_library(convkit::openblas INTERFACE IMPORTED)
  set_target_properties(convkit::openblas PROPERTIES
    INTERFACE_LINK_LIBRARIES "${CONVKIT_OPENBLAS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CONVKIT_OPENBLAS_INCLUDE_DIR}")
  unset(_convkit_multiarch)
endif()
