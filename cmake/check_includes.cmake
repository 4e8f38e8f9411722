# Fails when an #include of a file in LIST (a ;-list of sources), quoted or in angle
# brackets, names an absolute path or contains "..": either would reach a folder that its
# layer's include root hides, and so get around the layer order (docs/architecture.md).
# The angle form matters too: `<state/../io/x.hpp>` resolves through the state/ symlink of
# the include root into the source tree, next to io/. Touches STAMP when all is well.
file(READ ${LIST} sources)
set(offenders "")
foreach(source ${sources})
  file(STRINGS ${source} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<](/|[^\">]*\\.\\.)")
  foreach(line ${lines})
    string(STRIP "${line}" line)
    string(APPEND offenders "\n  ${source}: ${line}")
  endforeach()
endforeach()
# CAF sits in /usr/include, where no include root can hide it: below messages/ (the first
# layer that exchanges actor messages) the pure logic must not see it.
foreach(source ${sources})
  if(source MATCHES "/(common|state|config|io|model)/[^/]*$")
    file(STRINGS ${source} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]caf/")
    foreach(line ${lines})
      string(STRIP "${line}" line)
      string(APPEND offenders "\n  ${source}: ${line} (CAF below messages/)")
    endforeach()
  endif()
endforeach()
if(offenders)
  message(FATAL_ERROR "An include must name <layer>/<file> below the includer, "
                      "never a relative or absolute path, and CAF only from messages/ up:${offenders}")
endif()
file(TOUCH ${STAMP})
