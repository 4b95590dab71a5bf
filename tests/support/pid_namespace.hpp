// SPDX-License-Identifier: Apache-2.0
#pragma once
// Runs a piece of a test as pid 1 of a new pid namespace: the test forks a child that unshares
// CLONE_NEWPID and forks again (its first child is the namespace's pid 1), which runs `body` and
// sends its result back through a pipe, while the test runs `meanwhile`. `Reply` is trivially
// copyable; `body` runs in a forked copy of the test process, so it may only report through what
// it returns.
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <type_traits>

#include "core/result.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::testing {

template <typename Reply, typename Body, typename Meanwhile>
Result<Reply> runAsPidOneOfANewPidNamespace(Body body, Meanwhile meanwhile) {
  static_assert(std::is_trivially_copyable_v<Reply>);
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return Error{errno, "pipe2"};
  UniqueFd replyRead(pipeFds[0]);
  UniqueFd replyWrite(pipeFds[1]);
  const pid_t child = ::fork();
  if (child < 0) return Error{errno, "fork"};
  if (child == 0) {
    if (::unshare(CLONE_NEWPID) != 0) ::_exit(2);
    const pid_t init = ::fork();
    if (init < 0) ::_exit(3);
    if (init == 0) {
      // A forked copy of the test process: it must never return into the test runner.
      try {
        const Reply r = body();
        (void)!::write(replyWrite.get(), &r, sizeof(r));
      } catch (...) {
        ::_exit(5);
      }
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(init, &status, 0);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 4);
  }
  replyWrite.reset();
  meanwhile();
  Reply r{};
  const ssize_t n = ::read(replyRead.get(), &r, sizeof(r));
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return Error{errno, "waitpid"};
  if (WIFSIGNALED(status)) {
    return Error{0, "the pid namespace's child died of signal " + std::to_string(WTERMSIG(status))};
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // 2: unshare failed, 3: fork failed, 5: the body threw, 4: pid 1 died of a signal.
    return Error{0, "the pid namespace's child exited with " +
                        std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1)};
  }
  if (n != static_cast<ssize_t>(sizeof(r))) return Error{0, "no reply from pid 1"};
  return r;
}

template <typename Reply, typename Body>
Result<Reply> runAsPidOneOfANewPidNamespace(Body body) {
  return runAsPidOneOfANewPidNamespace<Reply>(body, [] {});
}

}  // namespace waitwatch::testing
