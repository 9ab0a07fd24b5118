# cmake -DNM=<nm> -DLIB=<librelay.so> -DLIST=<librelay.symbols> -DHEADER=<relay.h>
#       [-DMACRO=RELAY_API] -P check.cmake
#
# The exported symbols of LIB, the MACRO (RELAY_API unless given: relay-glib
# passes RELAY_GLIB_API) declarations of HEADER and the list in LIST must
# be the same set: a symbol exported by accident, a declaration without the
# macro (hidden, so programs fail to link) and an ABI change nobody wrote
# down all fail, each saying which names differ.
if(NOT MACRO)
	set(MACRO RELAY_API)
endif()
get_filename_component(list_name "${LIST}" NAME)
get_filename_component(header_name "${HEADER}" NAME)
execute_process(COMMAND "${NM}" -D --defined-only "${LIB}"
	RESULT_VARIABLE rc OUTPUT_VARIABLE nm_out ERROR_VARIABLE nm_err)
if(NOT rc EQUAL 0)
	message(FATAL_ERROR "${NM} -D ${LIB} failed: ${nm_err}")
endif()

# "0000000000012340 T relay_connect" -> relay_connect (functions and data)
string(REGEX MATCHALL "[0-9a-f]+ [TDBR] [A-Za-z_][A-Za-z0-9_]*" lines "${nm_out}")
set(exported "")
foreach(l IN LISTS lines)
	string(REGEX REPLACE "^[0-9a-f]+ [TDBR] " "" name "${l}")
	list(APPEND exported "${name}")
endforeach()

file(STRINGS "${LIST}" listed REGEX "^[A-Za-z_]")

# "RELAY_API int (relay_object_destroy)(..." or "RELAY_API int relay_x(..."
file(STRINGS "${HEADER}" decls REGEX "^${MACRO} ")
set(declared "")
foreach(d IN LISTS decls)
	string(REGEX MATCH "[ *(](relay[a-z0-9_]*)\\)?\\(" m "${d}")
	if(NOT CMAKE_MATCH_1)
		message(FATAL_ERROR "cannot read the name in: ${d}")
	endif()
	list(APPEND declared "${CMAKE_MATCH_1}")
endforeach()

function(relay_abi_diff a_name a b_name b)
	set(missing ${a})
	list(REMOVE_ITEM missing ${b})
	if(missing)
		list(JOIN missing " " m)
		message(SEND_ERROR "in ${a_name} but not in ${b_name}: ${m}")
	endif()
endfunction()

relay_abi_diff("the library's exports" "${exported}" "${list_name}" "${listed}")
relay_abi_diff("${list_name}" "${listed}" "the library's exports" "${exported}")
relay_abi_diff("${header_name}'s ${MACRO} declarations" "${declared}" "${list_name}" "${listed}")
relay_abi_diff("${list_name}" "${listed}" "${header_name}'s ${MACRO} declarations" "${declared}")
list(LENGTH listed n)
message(STATUS "relay: ${n} exported symbols, as ${list_name} lists")
