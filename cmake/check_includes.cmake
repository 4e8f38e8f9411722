# Fails when a quoted #include of a file in LIST (a ;-list of sources) starts with "/"
# or contains "..": either would reach a folder that its layer's include root hides, and
# so get around the layer order (docs/architecture.md). Touches STAMP when all is well.
file(READ ${LIST} sources)
set(offenders "")
foreach(source ${sources})
  file(STRINGS ${source} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"(/|[^\"]*\\.\\.)")
  foreach(line ${lines})
    string(STRIP "${line}" line)
    string(APPEND offenders "\n  ${source}: ${line}")
  endforeach()
endforeach()
if(offenders)
  message(FATAL_ERROR "A quoted include must name <layer>/<file> below the includer, "
                      "never a relative or absolute path:${offenders}")
endif()
file(TOUCH ${STAMP})
