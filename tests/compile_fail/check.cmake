# cmake -DCC=<compiler> -DFAMILY=<gcc|clang> -DINCLUDE=<dir> -DSRC=<file.c> -P check.cmake
#
# SRC names, in lines "expect <family>: <message>", the message the
# compiler of that family must give for its mistake. For each of
# -std=c11 and -std=c2x (both with -Wall -Wextra -Wpedantic -Werror):
#   - SRC with -DRELAY_GOOD (the mistake fixed) must compile cleanly;
#   - SRC as it is must fail with exactly one error, whose text contains
#     the message, so that neither an unrelated mistake nor a cascade of
#     errors passes.
# A message of "(compiles)" means SRC has no failing variant.
file(STRINGS "${SRC}" expect_lines REGEX "expect ${FAMILY}: ")
if(NOT expect_lines)
	message(FATAL_ERROR "${SRC} names no message for ${FAMILY} (expect ${FAMILY}: ...)")
endif()
list(GET expect_lines 0 expect)
string(REGEX REPLACE ".*expect ${FAMILY}: " "" expect "${expect}")

# Plain quotes in GCC's messages, whatever the locale.
set(ENV{LC_ALL} C)

foreach(std c11 c2x)
	set(flags -std=${std} -Wall -Wextra -Wpedantic -Werror -fsyntax-only "-I${INCLUDE}")
	execute_process(COMMAND "${CC}" ${flags} -DRELAY_GOOD "${SRC}"
		RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
	if(NOT rc EQUAL 0)
		message(FATAL_ERROR "-std=${std}: ${SRC} with -DRELAY_GOOD must compile:\n${out}")
	endif()
	if(expect STREQUAL "(compiles)")
		message(STATUS "-std=${std}: compiles, as it should")
		continue()
	endif()
	execute_process(COMMAND "${CC}" ${flags} "${SRC}"
		RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
	if(rc EQUAL 0)
		message(FATAL_ERROR "-std=${std}: ${SRC} compiled, but relay must refuse it")
	endif()
	string(FIND "${out}" "${expect}" at)
	if(at EQUAL -1)
		message(FATAL_ERROR "-std=${std}: ${SRC} failed, but not with \"${expect}\":\n${out}")
	endif()
	string(REGEX MATCHALL ": error: " errors "${out}")
	list(LENGTH errors nerrors)
	if(NOT nerrors EQUAL 1)
		message(FATAL_ERROR "-std=${std}: ${SRC} gave ${nerrors} errors for one mistake:\n${out}")
	endif()
	message(STATUS "-std=${std}: refused, as it should be:\n${out}")
endforeach()
