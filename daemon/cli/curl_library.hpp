// SPDX-License-Identifier: Apache-2.0
#pragma once
// libcurl, opened when `--from` first needs it rather than linked: linked, its ~30 libraries
// (TLS, Kerberos, LDAP, SSH...) are mapped and relocated at every start of the command, ~6 ms
// of wall and CPU added to a local look that never uses them (measured: `waitwatch --version`
// 7.9 ms linked, 2.1 ms opened; a program linking libbpf alone starts in 1.4 ms). systemd opens
// its optional libraries the same way.
#include <curl/curl.h>

#include "core/result.hpp"

namespace waitwatch::cli {

// The libcurl entry points the client calls.
struct CurlLibrary {
  decltype(&curl_global_init) globalInit = nullptr;
  decltype(&curl_easy_init) easyInit = nullptr;
  decltype(&curl_easy_setopt) easySetopt = nullptr;
  decltype(&curl_easy_perform) easyPerform = nullptr;
  decltype(&curl_easy_getinfo) easyGetinfo = nullptr;
  decltype(&curl_easy_strerror) easyStrerror = nullptr;
  decltype(&curl_easy_cleanup) easyCleanup = nullptr;
};

// The library, opened and initialised once per process; the error names the file and the
// package that has it.
Result<const CurlLibrary*> curlLibrary();

}  // namespace waitwatch::cli
