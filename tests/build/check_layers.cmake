# The layer rule, checked against the build's own include directories
# (CMakeLists.txt, cl_layer): each layer compiles a file that includes a
# header it may see (must compile) and one above or beside it (must not).
# Run by ctest as "layering":
#   cmake -DCC=<compiler> -DLAYERS=<build>/layers -DGEN=<build>/gen -DWORK=<dir> -P check_layers.cmake
foreach(v CC LAYERS GEN WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_layers: -D${v}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY ${WORK})

set(failures 0)
# compiles(layer header expect): expect is ON (must compile) or OFF
function(check layer header expect)
  string(MAKE_C_IDENTIFIER "${header}" id)
  set(src ${WORK}/${layer}_${id}.c)
  file(WRITE ${src} "#include \"${header}\"\nint layering_probe(void);\nint layering_probe(void) { return 0; }\n")
  execute_process(COMMAND ${CC} -std=c17 -D_GNU_SOURCE -fsyntax-only -I${LAYERS}/${layer} -I${GEN}
                          ${src}
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE out)
  if(rc EQUAL 0)
    set(ok ON)
  else()
    set(ok OFF)
  endif()
  if(NOT ok STREQUAL expect)
    if(expect)
      message(SEND_ERROR "${layer} may include ${header} but it does not compile:\n${out}")
    else()
      message(SEND_ERROR "${layer} must not see ${header}, yet it compiles")
    endif()
  else()
    message(STATUS "${layer}: ${header} ${expect}")
  endif()
endfunction()

# store/ sees only itself
check(store store/log.h ON)
check(store replication/node.h OFF)
check(store query/runner.h OFF)
check(store adapters/grpc/server.h OFF)
# replication/ and query/ see store/, never each other, never adapters/
check(replication store/log.h ON)
check(replication replication/node.h ON)
check(replication query/runner.h OFF)
check(replication adapters/grpc/server.h OFF)
check(query store/proj.h ON)
check(query query/runner.h ON)
check(query replication/node.h OFF)
check(query adapters/grpc/server.h OFF)
# adapters/ see everything below them
check(adapters store/log.h ON)
check(adapters replication/node.h ON)
check(adapters query/runner.h ON)
