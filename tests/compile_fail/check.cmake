# cmake -DCC=<compiler> -DINCLUDE=<dir> -DSRC=<file.c>
#       (-DGOOD=1 | -DEXPECT=<message>) -P check.cmake
#
# GOOD: SRC compiled with -DRELAY_GOOD must compile cleanly (warnings are
# errors). Otherwise SRC must fail to compile and the compiler's output
# must contain EXPECT, so that a failure for another reason does not pass.
set(flags -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only "-I${INCLUDE}")
if(GOOD)
	list(APPEND flags -DRELAY_GOOD)
endif()
execute_process(COMMAND "${CC}" ${flags} "${SRC}"
	RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)

if(GOOD)
	if(NOT rc EQUAL 0)
		message(FATAL_ERROR "${SRC} with -DRELAY_GOOD must compile:\n${out}")
	endif()
	message(STATUS "compiles, as it should")
elseif(rc EQUAL 0)
	message(FATAL_ERROR "${SRC} compiled, but relay must refuse it")
else()
	string(FIND "${out}" "${EXPECT}" at)
	if(at EQUAL -1)
		message(FATAL_ERROR "${SRC} failed for another reason than "
			"\"${EXPECT}\":\n${out}")
	endif()
	message(STATUS "refused, as it should be:\n${out}")
endif()
