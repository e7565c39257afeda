# The install_consumer test: install a spattn build into a scratch prefix, then configure, build
# and run the outside project in this folder against it with find_package(spattn); then build
# the out-of-tree plugin example (PLUGIN_SOURCE_DIR) the same way and use it through the
# installed CLI's --plugin and an experiment file's plugins = [...].
#
#   cmake -DSPATTN_BUILD_DIR=<build> -DSPATTN_SOURCE_DIR=<spattn checkout>
#         -DCONSUMER_SOURCE_DIR=<this folder> -DPLUGIN_SOURCE_DIR=<plugin example>
#         -DWORK_DIR=<scratch dir, wiped>
#         -DGENERATOR=<generator> -DCXX_COMPILER=<c++ compiler>
#         [-DMAKE_PROGRAM=<ninja>] [-DBUILD_TYPE=<config>] [-DCXX_FLAGS=<flags>]
#         -P run_consumer_test.cmake
#
# Any failing step stops the test with its command and full output. WORK_DIR is left in place
# on failure (to inspect) and removed on success.
cmake_minimum_required(VERSION 3.25)

foreach(var SPATTN_BUILD_DIR SPATTN_SOURCE_DIR CONSUMER_SOURCE_DIR PLUGIN_SOURCE_DIR WORK_DIR
            GENERATOR
            CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_consumer: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# run(<step name> <command...>): runs the command, fails loudly with its output if it fails.
function(run step)
  list(JOIN ARGN " " command_line)
  message(STATUS "install_consumer: ${step}: ${command_line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "install_consumer: step '${step}' FAILED (exit status ${rc})\n"
                        "command: ${command_line}\n"
                        "---- output ----\n${out}---- end of output ----\n"
                        "(scratch files kept in ${WORK_DIR})")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# 1. Install the build into the scratch prefix.
set(config_args)
if(BUILD_TYPE)
  set(config_args --config ${BUILD_TYPE})
endif()
run("install" ${CMAKE_COMMAND} --install ${SPATTN_BUILD_DIR} --prefix ${prefix} ${config_args})

# 2. The install tree: the expected files, and no path into the build or source tree.
file(GLOB_RECURSE config_dirs LIST_DIRECTORIES true ${prefix}/*/cmake/spattn)
list(FILTER config_dirs INCLUDE REGEX "/cmake/spattn$")
if(NOT config_dirs)
  message(FATAL_ERROR "install_consumer: no <libdir>/cmake/spattn under ${prefix}")
endif()
list(GET config_dirs 0 config_dir)
foreach(file ${config_dir}/spattnConfig.cmake ${config_dir}/spattnConfigVersion.cmake
             ${config_dir}/spattnTargets.cmake ${prefix}/include/spattn/patterns/layout.hpp
             ${prefix}/include/spattn/patterns/plugin.hpp ${prefix}/include/spattn/patterns/band.hpp
             ${prefix}/include/spattn/experiments/experiment.hpp ${prefix}/bin/spattn)
  if(NOT EXISTS ${file})
    message(FATAL_ERROR "install_consumer: ${file} was not installed")
  endif()
endforeach()
file(GLOB_RECURSE installed_cmake_files ${config_dir}/*.cmake)
foreach(file IN LISTS installed_cmake_files)
  file(READ ${file} text)
  foreach(tree ${SPATTN_BUILD_DIR} ${SPATTN_SOURCE_DIR})
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "install_consumer: installed ${file} mentions ${tree}:\n${text}")
    endif()
  endforeach()
  if(text MATCHES "spattn_flags|-march=native|-Wall")
    message(FATAL_ERROR "install_consumer: project-internal flags leak into ${file}:\n${text}")
  endif()
endforeach()

# 3. The installed CLI runs.
run("installed CLI" ${prefix}/bin/spattn --version)

# 4. Configure, build and run the consumer against the prefix, with the same generator and
#    compiler as the spattn build.
set(configure_args -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(BUILD_TYPE)
  list(APPEND configure_args -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
endif()
if(CXX_FLAGS)
  list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
run("consumer configure" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build}
    ${configure_args})
# It must have found the installed package, not some other spattn.
file(STRINGS ${consumer_build}/CMakeCache.txt spattn_dir_line REGEX "^spattn_DIR:")
string(REGEX REPLACE "^spattn_DIR:[A-Z]+=" "" found_dir "${spattn_dir_line}")
file(REAL_PATH "${found_dir}" found_dir)
file(REAL_PATH "${config_dir}" config_dir_real)
if(NOT found_dir STREQUAL config_dir_real)
  message(FATAL_ERROR "install_consumer: the consumer found spattn in '${found_dir}', "
                      "not in the scratch prefix (${config_dir_real})")
endif()
run("consumer build" ${CMAKE_COMMAND} --build ${consumer_build} ${config_args})
if(EXISTS ${consumer_build}/consumer)
  set(consumer_exe ${consumer_build}/consumer)
else()
  set(consumer_exe ${consumer_build}/${BUILD_TYPE}/consumer)  # multi-config generators
endif()
run("consumer run" ${consumer_exe})
message("${step_output}")

# 5. The plugin example, built out of tree against the prefix and loaded by the installed CLI.
set(plugin_build ${WORK_DIR}/plugin_build)
run("plugin configure" ${CMAKE_COMMAND} -S ${PLUGIN_SOURCE_DIR} -B ${plugin_build}
    ${configure_args})
run("plugin build" ${CMAKE_COMMAND} --build ${plugin_build} ${config_args})
file(GLOB_RECURSE plugin_library ${plugin_build}/libkth_patterns.so)
if(NOT plugin_library)
  message(FATAL_ERROR "install_consumer: the plugin build made no libkth_patterns.so")
endif()
list(GET plugin_library 0 plugin_library)
# kth(16) | sliding(4) at n = 256: 16 columns x 256 queries, plus 1 + 2 + 3 + 4·253 window pairs,
# less the 16 x 4 pairs in both = 5050.
run("plugin stats" ${prefix}/bin/spattn --plugin ${plugin_library} stats "kth(16) | sliding(4)"
    --n 256 --json)
if(NOT step_output MATCHES "\"allowed_pairs\":5050[,}]")
  message(FATAL_ERROR "install_consumer: kth(16) | sliding(4) should allow 5050 pairs:\n"
                      "${step_output}")
endif()
# growing_window(8) at n = 64: query p sees floor(p/8) + 1 keys, 8·(1 + 2 + ... + 8) = 288.
file(WRITE ${WORK_DIR}/plugin.toml
  "name = \"plugin\"\nplugins = [\"${plugin_library}\"]\n"
  "patterns = [\"growing_window(8)\"]\nseq_len = [64]\nhead_dim = 8\nheads = 1\n"
  "kv_heads = 1\nrepeats = 1\nwarmup = 0\n")
run("plugin sweep" ${prefix}/bin/spattn sweep ${WORK_DIR}/plugin.toml --out ${WORK_DIR}/results
    --no-report)
file(GLOB_RECURSE results_files ${WORK_DIR}/results/*/results.jsonl)
file(READ "${results_files}" results_text)
if(NOT results_text MATCHES "\"status\":\"ok\"" OR NOT results_text MATCHES "\"allowed_pairs\":288[,}]")
  message(FATAL_ERROR "install_consumer: the plugin sweep should record one ok point with 288 "
                      "allowed pairs:\n${results_text}")
endif()

file(REMOVE_RECURSE ${WORK_DIR})
message(STATUS "install_consumer: passed")
