# Writes the gdb extension OUT: the constants GEN prints, then SOURCE.
# Usage: cmake -DGEN=... -DSOURCE=... -DOUT=... -P assemble.cmake
execute_process(COMMAND ${GEN} OUTPUT_VARIABLE constants RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${GEN} failed: ${result}")
endif()
file(READ ${SOURCE} code)
file(WRITE ${OUT} "${constants}\n${code}")
