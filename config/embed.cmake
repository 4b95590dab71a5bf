# SPDX-License-Identifier: Apache-2.0
# Writes a C++ source embedding a file's bytes: cmake -DINPUT=f -DOUTPUT=f.cpp -P embed.cmake
# Bytes, not a raw string literal, so that no content of the file can end the literal.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hexLength)
math(EXPR size "${hexLength} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# One line per 32 bytes keeps the generated file readable in a debugger.
string(REGEX REPLACE "((0x..,){32})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp" "// Generated from config/waitwatch.json by config/embed.cmake: do not edit.
#include \"config/default_config.hpp\"

namespace waitwatch {
namespace {
const unsigned char kBytes[${size} + 1] = {
    ${bytes}0x00};
}  // namespace

std::string_view embeddedDefaultConfig() {
  return {reinterpret_cast<const char*>(kBytes), ${size}};
}

}  // namespace waitwatch
")
# Only touch the output when it changes, so that nothing rebuilds needlessly.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
