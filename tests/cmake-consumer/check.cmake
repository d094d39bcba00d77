# SPDX-License-Identifier: MIT
# ctest driver for tests/cmake-consumer (cmake -P):
#   MODE=build   configure the consumer (no build type, its own -Werror), build it, run it;
#   MODE=private build each reach_* target, which must fail because the private header is not
#                found, and each reach_*_control target (src/ added), which must succeed.
# Inputs: LLMDS_SOURCE_DIR, CONSUMER_BINARY_DIR, CONSUMER_GENERATOR, CONSUMER_CXX_COMPILER, MODE.
cmake_minimum_required(VERSION 3.20)
set(src "${LLMDS_SOURCE_DIR}/tests/cmake-consumer")
set(bin "${CONSUMER_BINARY_DIR}")

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

if(MODE STREQUAL "build")
  file(REMOVE_RECURSE "${bin}")
  run("configure" ${CMAKE_COMMAND} -S "${src}" -B "${bin}" -G "${CONSUMER_GENERATOR}"
      "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}" "-DLLMDS_SOURCE_DIR=${LLMDS_SOURCE_DIR}")
  run("build" ${CMAKE_COMMAND} --build "${bin}" -j 2)
  run("run" "${bin}/consumer")
elseif(MODE STREQUAL "private")
  foreach(probe text simd)
    set(header_text "text/unicode.hpp")
    set(header_simd "simd/kernels.hpp")
    execute_process(COMMAND ${CMAKE_COMMAND} --build "${bin}" --target reach_${probe}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(rc EQUAL 0)
      message(FATAL_ERROR "reach_${probe} compiled: ${header_${probe}} is reachable from llmds::llmds")
    endif()
    # g++: "fatal error: simd/kernels.hpp: No such file or directory"; clang: "'simd/kernels.hpp' file not found".
    if(NOT out MATCHES "${header_${probe}}.*(No such file|not found)")
      message(FATAL_ERROR "reach_${probe} failed, but not because ${header_${probe}} is missing:\n${out}")
    endif()
    message(STATUS "reach_${probe}: ${header_${probe}} is hidden")
    run("reach_${probe}_control" ${CMAKE_COMMAND} --build "${bin}" --target reach_${probe}_control)
  endforeach()
else()
  message(FATAL_ERROR "MODE must be build or private")
endif()
