// SPDX-License-Identifier: Apache-2.0
#include "cli/curl_library.hpp"

#include <dlfcn.h>

#include <cerrno>
#include <mutex>
#include <string>

namespace waitwatch::cli {
namespace {

// The soname of the libcurl the headers belong to (ABI 4 since 2006). Debian's package of it is
// libcurl4 (libcurl4t64 from Debian 13); its GnuTLS flavour has another soname
// (libcurl-gnutls.so.4).
constexpr const char* kSoname = "libcurl.so.4";
constexpr const char* kInstall = "install the package libcurl4 (libcurl4t64 on Debian 13)";

struct Loaded {
  CurlLibrary library;
  std::string error;  // empty when loaded
};

template <typename Fn>
bool bind(void* handle, const char* name, Fn& out, std::string& error) {
  void* symbol = ::dlsym(handle, name);
  if (!symbol) {
    error = std::string(kSoname) + " has no " + name + " (too old a libcurl?): " + kInstall;
    return false;
  }
  out = reinterpret_cast<Fn>(symbol);
  return true;
}

Loaded openLibrary() {
  Loaded l;
  // Never closed: the library stays for the rest of the process, as a linked one would.
  void* handle = ::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    l.error = std::string("the HTTP client library could not be loaded (") + (why ? why : kSoname) +
              "): " + kInstall;
    return l;
  }
  CurlLibrary& c = l.library;
  if (!bind(handle, "curl_global_init", c.globalInit, l.error) ||
      !bind(handle, "curl_easy_init", c.easyInit, l.error) ||
      !bind(handle, "curl_easy_setopt", c.easySetopt, l.error) ||
      !bind(handle, "curl_easy_perform", c.easyPerform, l.error) ||
      !bind(handle, "curl_easy_getinfo", c.easyGetinfo, l.error) ||
      !bind(handle, "curl_easy_strerror", c.easyStrerror, l.error) ||
      !bind(handle, "curl_easy_cleanup", c.easyCleanup, l.error)) {
    return l;
  }
  if (const CURLcode rc = c.globalInit(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    l.error = std::string(kSoname) + ": could not start (" + c.easyStrerror(rc) + "): " + kInstall;
  }
  return l;
}

}  // namespace

Result<const CurlLibrary*> curlLibrary() {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [] { loaded = openLibrary(); });
  if (!loaded.error.empty()) return Error{ELIBACC, loaded.error};
  return &loaded.library;
}

}  // namespace waitwatch::cli
