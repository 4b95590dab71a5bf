#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The waitwatch benchmark. Run it through `bash bench/run`; see
docs/performance.md for what it measures and why it is ordered the way it is.

Per population size, inside a private network namespace:
  - sockfarm A builds the long-lived sockets: CLOSE_WAIT (50%) over many holders and
    ESTABLISHED (20%);
  - waitwatchd starts on that namespace (poll_interval 5s) and keeps running;
  - TIME_WAIT (30%) lives exactly 60 s, so it is built in "generations" by sockfarm B: each
    generation opens a measurement window that closes before its oldest socket expires; between
    windows the runner waits for the generation to expire (the daemon polls freely meanwhile).
  - In a window, tools run one at a time, interleaved round by round (ref dump, ss -tan,
    waitwatch --json, ss -tanp, one daemon poll), so every ratio compares figures taken
    seconds apart on the same population. The daemon is frozen (SIGSTOP) while the other tools
    run and thawed right after one of its timer ticks, so each measured poll runs alone and
    the daemon reports its duration itself (waitwatch_poll_duration_seconds sum/count).
  - At --cpu-size, one more generation for the CPU test: the daemon runs freely for 60 s at its
    5 s interval while a reference dumper dumps at the same rate, 1 s after each daemon poll.
Standard library only (Python 3.9+).
"""
import argparse
import ctypes
import datetime
import http.client
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CLONE_NEWNET = 0x40000000
TIME_WAIT_LIFETIME = 60.0  # TCP_TIMEWAIT_LEN, not tunable on Linux
POLL_INTERVAL = 5.0  # the daemon's poll_interval in every run (the CPU target is at 5 s)
DAEMON_PORT = 19929
TW_LISTEN_PORT = 8081  # sockfarm B's listener (sockfarm A keeps the default 8080)
BPF_FS = "/sys/fs/bpf"
# The bench's daemon pins its programs in a directory of its own (an installed waitwatchd keeps
# /sys/fs/bpf/waitwatch), where waitwatch --json finds them; with no daemon's programs to reuse,
# a pin directory that does not exist.
PINS_ENV = {"WAITWATCH_BPF_PIN_DIR": f"{BPF_FS}/waitwatch-bench-{os.getpid()}"}
NO_PINS_ENV = {"WAITWATCH_BPF_PIN_DIR": "/nonexistent/waitwatch-bench"}
BPF_FS_MAGIC = 0xCAFE4A11
FDS_PER_HOLDER = 15000  # below the 20000 RLIMIT_NOFILE hard limit of an unprivileged holder
STATE_BIT_TIME_WAIT = 1 << 6
# TIME_WAIT and request sockets (TCP_NEW_SYN_RECV, 12): no tracepoint sees them leave.
STATE_BITS_UNFOLLOWED = STATE_BIT_TIME_WAIT | 1 << 12
FLOOR_TIMEOUT_S = 300

TARGETS = {
    "poll_vs_ref": {100_000: 0.4, 1_000_000: 0.3},  # daemon poll cycle / reference dump
    "tanp_vs_json": 30.0,  # ss -tanp / waitwatch --json >= 30 at 100k
    "rss_mib": 32.0,  # daemon RSS at 1M <= 32 MiB
    "scrape_ms": 10.0,  # /metrics at 1M < 10 ms
    "cpu_vs_ref": 0.4,  # daemon CPU at 100k, 5 s interval <= 0.4 x ref dump at that rate
}

# The populations, as shares of CLOSE_WAIT and TIME_WAIT (the rest ESTABLISHED): "leaky", half
# CLOSE_WAIT (the worst case for per-socket work), and "realistic", a busy healthy host.
POPULATIONS = {"leaky": (0.5, 0.3), "realistic": (0.01, 0.04)}

_libc = ctypes.CDLL(None, use_errno=True)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Skip(Exception):
    """A size the machine cannot hold (the message says why)."""


# ---------------------------------------------------------------------------------------------
# Machine, sysctls, namespaces


def read(path):
    with open(path) as f:
        return f.read()


def meminfo_kib(key):
    for line in read("/proc/meminfo").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def machine_info(repo):
    cpu = ""
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    def git(*args):
        try:
            return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except OSError:
            return ""

    return {
        "nproc": os.cpu_count(),
        "mem_total_mib": meminfo_kib("MemTotal") // 1024,
        "mem_available_mib": meminfo_kib("MemAvailable") // 1024,
        "kernel": platform.release(),
        "cpu_model": cpu,
        "os": (re.search(r'PRETTY_NAME="([^"]*)"', read("/etc/os-release")) or [None, ""])[1],
        "loadavg_at_start": read("/proc/loadavg").split()[:3],
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty_files": len([l for l in git("status", "--porcelain").splitlines() if l]),
        "clk_tck": os.sysconf("SC_CLK_TCK"),
    }


def host_load():
    """What else the host carries: the established hash is shared by every namespace, so foreign
    sockets slow our dumps down, and every process is a /proc entry the daemon lists."""
    alloc = 0
    for line in read("/proc/net/sockstat").splitlines():
        if line.startswith("TCP:"):
            f = line.split()
            alloc = int(f[f.index("alloc") + 1])
    procs = sum(1 for e in os.listdir("/proc") if e.isdigit())
    return {"tcp_sockets_host_wide": alloc, "processes": procs,
            "loadavg": read("/proc/loadavg").split()[:3]}


def sysctl_path(name):
    return "/proc/sys/" + name.replace(".", "/")


def sysctl_get(name):
    return read(sysctl_path(name)).split()


def sysctl_set(name, values):
    with open(sysctl_path(name), "w") as f:
        f.write(" ".join(str(v) for v in values))


class TcpMemGuard:
    """Raises net.ipv4.tcp_mem (host-wide, in pages) for a size when its CLOSE_WAIT sockets
    would put the host under TCP memory pressure, and always restores the original."""

    def __init__(self):
        self.original = [int(v) for v in sysctl_get("net.ipv4.tcp_mem")]
        self.raised = False

    def ensure(self, close_wait, total):
        # Measured here: each CLOSE_WAIT socket pins about one page (the unread FIN); other
        # sockets pin next to nothing. Keep the pressure threshold at twice what is needed.
        need = close_wait + total // 20
        low, pressure, high = self.original
        if need * 2 <= pressure:
            self.restore()
            return None
        page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        avail_pages = meminfo_kib("MemAvailable") // page_kib
        new = [max(low, need * 2), max(pressure, need * 3), max(high, need * 4)]
        if need * 2 > avail_pages:
            raise Skip(f"{close_wait} CLOSE_WAIT sockets pin ~{need * page_kib // 1024} MiB of TCP "
                       f"memory, more than half of the {avail_pages * page_kib // 1024} MiB "
                       f"available")
        new[2] = min(new[2], avail_pages)
        sysctl_set("net.ipv4.tcp_mem", new)
        self.raised = True
        return {"from": self.original, "to": new, "reason":
                f"{close_wait} CLOSE_WAIT sockets pin ~{need} pages; the pressure threshold "
                f"{pressure} would throttle every TCP socket on the host"}

    def restore(self):
        if self.raised:
            sysctl_set("net.ipv4.tcp_mem", self.original)
            self.raised = False


class BpfFsGuard:
    """Mounts the BPF filesystem at /sys/fs/bpf where nothing did (systemd mounts it at boot on
    every host the daemon is installed on; the daemon pins its programs there for the command
    line), and unmounts it again."""

    def __init__(self):
        self.mounted = False

    def ensure(self):
        out = subprocess.run(["stat", "-f", "-c", "%t", BPF_FS], capture_output=True, text=True)
        if out.returncode == 0 and int(out.stdout.strip() or "0", 16) == BPF_FS_MAGIC:
            return "mounted already"
        r = subprocess.run(["mount", "-t", "bpf", "-o", "mode=0700", "bpf", BPF_FS],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"not mounted ({r.stderr.strip()}): waitwatch loads its own programs"
        self.mounted = True
        return "mounted by the benchmark, as systemd does at boot"

    def restore(self):
        try:
            os.rmdir(PINS_ENV["WAITWATCH_BPF_PIN_DIR"])  # the daemon removed its pins
        except OSError:
            pass
        if self.mounted:
            subprocess.run(["umount", BPF_FS], capture_output=True)
            self.mounted = False


class Netns:
    """A private network namespace the runner itself enters (setns), so every child and every
    HTTP request to the daemon run inside it."""

    def __init__(self, name):
        self.name = name
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "netns", "add", name], check=True)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._setns(fd)
        finally:
            os.close(fd)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    @staticmethod
    def _setns(fd):
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns: " + os.strerror(err))

    def close(self):
        if self.home is None:
            return
        self._setns(self.home)
        os.close(self.home)
        self.home = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


# ---------------------------------------------------------------------------------------------
# Processes


class Farm:
    """A sockfarm run: holds its sockets until stop()."""

    def __init__(self, binary, args, timeout_s):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([binary, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.report = None
        deadline = time.monotonic() + timeout_s
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{") and self.report is None:
                self.report = json.loads(line)
            elif line == "READY":
                self.ready_at = time.monotonic()
                return
            if time.monotonic() > deadline:
                break
        self.stop()
        self.err.seek(0)
        err = self.err.read()
        raise Skip(f"sockfarm {' '.join(args)} failed: {err.strip()[-500:]}")

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_timed(argv, env=None):
    """Runs argv to completion, stdout discarded (as a terminal reader would not slow it down).
    Returns (wall s from fork to exit, user + system CPU s of the child)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                             env=None if env is None else {**os.environ, **env})
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {text}")
    return wall, ru.ru_utime + ru.ru_stime


def run_json(argv, timeout=900):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def proc_cpu_ticks(pid):
    fields = read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def proc_runtime_ns(pid):
    """Sum of the threads' on-CPU time (schedstat, ns): a finer cross-check of utime+stime."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(read(f"/proc/{pid}/task/{tid}/schedstat").split()[0])
        except (OSError, ValueError):
            pass
    return total


def proc_status_kib(pid, key):
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


class Daemon:
    """waitwatchd in the namespace, driven by its own timer: thawed just after a tick so that the
    poll it then runs is measured alone, frozen again before the next tick."""

    def __init__(self, binary, config, workdir):
        self.log_path = os.path.join(workdir, "waitwatchd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "--config", config, "--listen",
                                      f"127.0.0.1:{DAEMON_PORT}"], stdout=self.log,
                                     stderr=subprocess.STDOUT, env={**os.environ, **PINS_ENV})
        self.pid = self.proc.pid
        self.conn = None
        self.stopped = False
        self.est_poll_s = None  # median of the last measured polls
        self.recent = []
        self.polled_tick = 0  # index of the tick whose poll ran last
        deadline = time.monotonic() + 600
        m = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("waitwatchd exited: " + read(self.log_path)[-500:])
            try:
                m = self.metrics()
                if m.get("waitwatch_polls_total", 0) >= 1:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("waitwatchd: no first poll within 600 s")
        snap = json.loads(self.get("/api/v1/snapshot")[1])
        # The first poll starts when the timer is armed; the timer then ticks every interval.
        self.tick0 = snap["time_unix_seconds"] - (time.time() - time.monotonic())
        self.first_poll_s = m["waitwatch_poll_duration_seconds_sum"]
        self.last = m

    # -- HTTP ------------------------------------------------------------------------------
    def get(self, path):
        for attempt in range(2):
            try:
                if self.conn is None:
                    # sockfarm binds every port of the ephemeral range, so connect() would find
                    # none to pick: bind a source port below the range, a new one each time
                    # (the last connection's TIME_WAIT may hold the previous one).
                    self.src_port = 21000 + (getattr(self, "src_port", 20999) - 20999) % 2000
                    self.conn = http.client.HTTPConnection(
                        "127.0.0.1", DAEMON_PORT, timeout=30,
                        source_address=("127.0.0.1", self.src_port))
                t0 = time.perf_counter()
                self.conn.request("GET", path)
                resp = self.conn.getresponse()
                body = resp.read()
                return time.perf_counter() - t0, body
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise OSError("unreachable")

    def metrics(self):
        _, body = self.get("/metrics")
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line:
                continue
            name, _, value = line.rpartition(" ")
            if name in ("waitwatch_polls_total", "waitwatch_poll_duration_seconds_sum",
                        "waitwatch_poll_duration_seconds_count", "process_resident_memory_bytes",
                        "waitwatch_poll_overruns_total"):
                out[name] = float(value)
        return out

    def scrape_times(self, n):
        return [self.get("/metrics")[0] for _ in range(n)]

    # -- timer and freezing -----------------------------------------------------------------
    def since_tick(self):
        return (time.monotonic() - self.tick0) % POLL_INTERVAL

    def tick_index(self):
        return int((time.monotonic() - self.tick0) // POLL_INTERVAL)

    def idle(self):
        """The poll loop waits in poll(2): no poll is running."""
        try:
            wchan = read(f"/proc/{self.pid}/task/{self.pid}/wchan")
        except OSError:
            return False
        return wchan.startswith(("poll_schedule_timeout", "do_sys_poll", "do_poll"))

    def freeze(self):
        if not self.stopped:
            os.kill(self.pid, signal.SIGSTOP)
            self.stopped = True

    def thaw(self):
        if self.stopped:
            os.kill(self.pid, signal.SIGCONT)
            self.stopped = False

    def wait_polls(self, count, timeout=600):
        """Running freely: waits until polls_total >= count and the loop is idle again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if self.idle():
                m = self.metrics()
                if m["waitwatch_polls_total"] >= count:
                    self.last = m
                    self.polled_tick = self.tick_index()
                    return m
        raise RuntimeError("waitwatchd: polls stalled")

    def freeze_between_polls(self):
        """Running freely: freezes it right after a poll, far from the next tick."""
        while True:
            m = self.wait_polls(self.last["waitwatch_polls_total"] + 1)
            if self.since_tick() < POLL_INTERVAL - 0.5:
                self.freeze()
                self.last = m
                return

    def safe_to_thaw(self, relaxed=False):
        """A tick has passed since the last poll (so thawing starts one at once), and that poll
        will be over well before the next tick. `relaxed`: just after a tick whatever the
        estimate (a poll that then overruns into the next tick is discarded)."""
        est = self.est_poll_s if self.est_poll_s is not None else 2.0
        t = self.since_tick()
        limit = POLL_INTERVAL - (1.5 * est + 0.6)
        if relaxed:
            limit = max(limit, 0.5)
        return self.tick_index() > self.polled_tick and 0.05 <= t <= limit

    def measured_poll(self, scrapes):
        """Frozen, at a safe moment after a tick: thaws it, waits for the one poll the pending
        tick starts, reads its duration, times `scrapes` /metrics requests, freezes it again.
        Returns a dict, or None when the poll could not be isolated (then it keeps running)."""
        before = self.last
        cpu0 = proc_runtime_ns(self.pid)
        self.thaw()
        t0 = time.monotonic()
        while True:
            time.sleep(0.005)
            if self.idle():
                m = self.metrics()
                if m["waitwatch_polls_total"] > before["waitwatch_polls_total"]:
                    break
            if time.monotonic() - t0 > 600:
                raise RuntimeError("waitwatchd: measured poll stalled")
        cpu1 = proc_runtime_ns(self.pid)
        n = m["waitwatch_polls_total"] - before["waitwatch_polls_total"]
        dur = (m["waitwatch_poll_duration_seconds_sum"] -
               before["waitwatch_poll_duration_seconds_sum"])
        result = None
        self.polled_tick = self.tick_index()
        if n == 1:
            # CPU of all its threads while thawed: the poll plus one /metrics scrape (~0.2 ms).
            result = {"poll_s": dur, "poll_cpu_s": (cpu1 - cpu0) / 1e9}
            self.recent.append(dur)
            self.est_poll_s = statistics.median(self.recent[-3:])
            result["scrape_s"] = self.scrape_times(scrapes)
            result["polls_total"] = int(m["waitwatch_polls_total"])
            result["rss_kib"] = proc_status_kib(self.pid, "VmRSS")
            result["hwm_kib"] = proc_status_kib(self.pid, "VmHWM")
        self.last = m
        if self.since_tick() < POLL_INTERVAL - 0.3:
            self.freeze()
        else:
            self.freeze_between_polls()
        return result

    def close(self):
        self.thaw()
        if self.conn:
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# Statistics and the table


def summary(values):
    if not values:
        return None
    v = sorted(values)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v),
            "runs": values}


def linear_fit(points):
    """Least squares y = a + b x over (x, y); returns a, b, r2."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    syy = sum((p[1] - my) ** 2 for p in points)
    if sxx == 0:
        return None
    b = sxy / sxx
    a = my - b * mx
    r2 = 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy)
    return {"intercept_ms": a, "us_per_socket": b * 1000.0, "r2": r2}


def fmt_ms(s):
    if s is None:
        return "-"
    return f"{s['median']:.2f} ms [{s['min']:.2f}-{s['max']:.2f}]"


# ---------------------------------------------------------------------------------------------
# One size


class SizeRun:
    def __init__(self, args, tools, size, tcpmem, workdir):
        self.args = args
        self.tools = tools
        self.size = size
        cw_share, tw_share = POPULATIONS[args.population]
        self.cw = int(size * cw_share)
        self.tw = int(size * tw_share)
        self.est = size - self.cw - self.tw
        self.tcpmem = tcpmem
        self.workdir = workdir
        self.generation = 0
        self.res = {"size": size, "population": {"name": args.population,
                                                 "close_wait": self.cw, "time_wait": self.tw,
                                                 "established": self.est}, "windows": []}
        self.samples = {k: [] for k in ("ref_ms", "ref_cpu_ms", "ss_tan_ms", "ss_tan_cpu_ms",
                                        "ss_tanp_ms", "ss_tanp_cpu_ms",
                                        "json_ms", "json_cpu_ms", "poll_ms", "poll_cpu_ms",
                                        "scrape_ms", "poll_ref_ratio", "poll_ref_cpu_ratio",
                                        "tanp_json_ratio", "json_load_ms", "json_load_cpu_ms",
                                        "tanp_json_load_ratio")}
        self.poll_bench = []

    # -- population ------------------------------------------------------------------------
    def build_base(self):
        holders = max(8, math.ceil((self.cw + self.est) / FDS_PER_HOLDER))
        self.res["population"]["holders"] = holders
        log(f"{self.size}: building {self.cw} CLOSE_WAIT + {self.est} ESTABLISHED over "
            f"{holders} holders")
        t0 = time.monotonic()
        self.farm = Farm(self.tools["sockfarm"],
                         ["--close-wait", str(self.cw), "--established", str(self.est),
                          "--holders", str(holders), "--timeout-ms", "120000"],
                         timeout_s=3600)
        self.res["population"]["base_build_s"] = round(time.monotonic() - t0, 2)
        states = self.farm.report["states"]
        if states["CLOSE_WAIT"] != self.cw or states["ESTABLISHED"] != self.est:
            raise Skip(f"sockfarm built {states} instead of the asked counts")
        self.res["population"]["sockstat_after_base"] = read("/proc/net/sockstat").strip()

    def build_time_wait(self):
        """A new generation of TIME_WAIT sockets (the previous one has expired). Returns the
        monotonic time its oldest socket expires."""
        self.generation += 1
        src = f"127.{10 + self.generation}.0.1"  # never the 4-tuples of an older generation
        t0 = time.monotonic()
        farm = Farm(self.tools["sockfarm"],
                    ["--time-wait", str(self.tw), "--listen-port", str(TW_LISTEN_PORT),
                     "--tw-source", src, "--timeout-ms", "120000"], timeout_s=1200)
        oldest_ms = farm.report["time_wait"]["oldest_age_ms"]
        built = farm.report["states"]["TIME_WAIT"]
        farm.stop()  # its listener and holder go; the TIME_WAIT sockets stay for their 60 s
        if built != self.tw:
            raise Skip(f"sockfarm built {built} TIME_WAIT sockets instead of {self.tw}")
        self.tw_build_s = time.monotonic() - t0
        # The generation's youngest socket goes last, a build's length after the oldest.
        self.tw_gone = farm.ready_at + TIME_WAIT_LIFETIME
        expires = farm.ready_at - oldest_ms / 1000.0 + TIME_WAIT_LIFETIME
        return expires

    def wait_time_wait_gone(self):
        # The kernel's timer wheel fires a 60 s timer up to ~4 s late (4096-jiffy buckets).
        wait = self.tw_gone + 4.5 - time.monotonic()
        if wait > 0:
            log(f"{self.size}: waiting {wait:.0f} s for TIME_WAIT generation "
                f"{self.generation} to expire (the daemon polls meanwhile)")
            time.sleep(wait)
        deadline = time.monotonic() + 15
        while True:
            left = run_json([self.tools["ref_dump"], "--repeat", "1", "--states",
                             format(STATE_BIT_TIME_WAIT, "x")])["sockets"]
            # A few TIME_WAIT sockets of the runner's own HTTP connections may linger.
            if left <= 50 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if left > 50:
            log(f"{self.size}: {left} TIME_WAIT sockets still there")
        return left

    def check_population(self):
        if self.farm.proc.poll() is not None:
            raise RuntimeError(f"sockfarm holding the CLOSE_WAIT/ESTABLISHED sockets exited "
                               f"(status {self.farm.proc.returncode})")
        if not os.path.exists(f"/run/netns/{self.ns.name}"):
            raise RuntimeError(f"network namespace {self.ns.name} was deleted under the run")

    def count_sockets(self):
        return run_json([self.tools["ref_dump"], "--repeat", "1"])["sockets"]

    # -- measurements ----------------------------------------------------------------------
    def m_ref(self):
        r = run_json([self.tools["ref_dump"], "--repeat", "1"])
        self.samples["ref_ms"].append(r["runs_ms"][0])
        self.samples["ref_cpu_ms"].append(r["cpu_ms"][0])
        return r["runs_ms"][0]

    def m_tool(self, key, argv, cpu_key=None, env=None):
        wall, cpu = run_timed(argv, env)
        self.samples[key].append(wall * 1000)
        if cpu_key:
            self.samples[cpu_key].append(cpu * 1000)
        return wall * 1000

    def check_reuse(self):
        """Whether waitwatch --json finds the daemon's programs: the figures labelled so must not
        measure loads."""
        out = subprocess.run([self.tools["waitwatch"], "--json"], capture_output=True, text=True,
                             env={**os.environ, **PINS_ENV})
        try:
            reused = json.loads(out.stdout).get("bpf_programs_reused", [])
        except ValueError:
            reused = []
        self.res["json_reused_programs"] = reused
        if len(reused) < 2:
            log(f"{self.size}: waitwatch --json reuses {reused or 'none'} of the daemon's programs "
                f"(BPF filesystem: {BPF_FS}); its figures include loading the rest")

    def m_poll(self, daemon, ref_ms):
        r = daemon.measured_poll(scrapes=5)
        if r is None:
            self.res.setdefault("polls_not_isolated", 0)
            self.res["polls_not_isolated"] += 1
            return None
        self.samples["poll_ms"].append(r["poll_s"] * 1000)
        self.samples["poll_cpu_ms"].append(r["poll_cpu_s"] * 1000)
        self.samples["scrape_ms"].extend(s * 1000 for s in r["scrape_s"])
        if ref_ms:
            self.samples["poll_ref_ratio"].append(r["poll_s"] * 1000 / ref_ms)
            # The same on CPU time: what other load on the machine cannot inflate.
            self.samples["poll_ref_cpu_ratio"].append(
                r["poll_cpu_s"] * 1000 / self.samples["ref_cpu_ms"][-1])
        self.last_poll = r
        return r

    def run_window(self, daemon, rounds_left, want_poll_bench):
        """One TIME_WAIT generation's worth of measurements. Returns rounds still to do."""
        expires = self.build_time_wait()
        deadline = expires - 3.0
        sockets = self.count_sockets()
        win = {"generation": self.generation, "sockets_at_start": sockets,
               "time_wait_build_s": round(self.tw_build_s, 2),
               "seconds_available": round(deadline - time.monotonic(), 1), "rounds": 0}
        log(f"{self.size}: window {self.generation}: {sockets} sockets, "
            f"{win['seconds_available']} s before the first TIME_WAIT expires")
        est = {}  # last duration of each step, to know whether it still fits

        def fits(step, default_s):
            return time.monotonic() + est.get(step, default_s) * 1.3 + 0.2 < deadline

        # Pessimistic first guesses: the field notes' per-socket costs, doubled.
        n = self.size
        tanp = self.size <= self.args.tanp_max and not self.args.no_tanp
        guess = {"ref": 2e-6 * n, "json": 4e-6 * n}
        if not self.args.cli_only:
            guess.update({"ss_tan": 4e-6 * n, "poll": 3e-6 * n + 0.05})
            if tanp:
                guess["json_load"] = 4e-6 * n
        if tanp:
            guess["ss_tanp"] = 40e-6 * n
        while rounds_left > 0:
            if not fits("round", sum(guess.values())):
                break
            self.check_population()
            t_round = time.monotonic()
            ref_ms = self.m_ref()
            est["ref"] = ref_ms / 1000
            if self.args.cli_only:
                steps = [("json", ["json_ms", [self.tools["waitwatch"], "--json"], "json_cpu_ms"])]
            else:
                steps = [("ss_tan", ["ss_tan_ms", ["ss", "-tan"], "ss_tan_cpu_ms"]),
                         ("json", ["json_ms", [self.tools["waitwatch"], "--json"], "json_cpu_ms",
                                   PINS_ENV])]
            if tanp and daemon is not None:
                # The daemon pins its BPF programs and --json reuses them; the same run where no
                # daemon runs loads its own (a pin directory that does not exist).
                steps.append(("json_load", ["json_load_ms", [self.tools["waitwatch"], "--json"],
                                            "json_load_cpu_ms", NO_PINS_ENV]))
            if tanp:
                steps.append(("ss_tanp", ["ss_tanp_ms", ["ss", "-tanp"], "ss_tanp_cpu_ms"]))
            polled = daemon is None
            for name, (key, argv, cpu_key, *env) in steps:
                if not polled and daemon.safe_to_thaw():
                    self.m_poll(daemon, ref_ms)
                    polled = True
                est[name] = self.m_tool(key, argv, cpu_key, env[0] if env else None) / 1000
            if tanp:
                j = self.samples["json_ms"][-1]
                self.samples["tanp_json_ratio"].append(self.samples["ss_tanp_ms"][-1] / j)
                if daemon is not None:
                    self.samples["tanp_json_load_ratio"].append(
                        self.samples["ss_tanp_ms"][-1] / self.samples["json_load_ms"][-1])
            waited = time.monotonic()
            while not polled:
                relaxed = time.monotonic() - waited > 2 * POLL_INTERVAL
                if daemon.safe_to_thaw(relaxed):
                    self.m_poll(daemon, ref_ms)
                    polled = True
                else:
                    time.sleep(0.02)
            rounds_left -= 1
            win["rounds"] += 1
            est["round"] = time.monotonic() - t_round
        if (want_poll_bench and not self.poll_bench and rounds_left == 0 and
                fits("poll_bench", 12e-6 * n + 1.0)):
            t0 = time.monotonic()
            pb = run_json([self.tools["poll_bench"], "--polls", "3"])
            self.poll_bench.append(pb)
            est["poll_bench"] = time.monotonic() - t0
            win["poll_bench"] = True
        if self.want_floors() and rounds_left == 0:
            if fits("floors", 12e-6 * n + 1.0):
                t0 = time.monotonic()
                self.measure_floors()
                est["floors"] = time.monotonic() - t0
            else:
                log(f"{self.size}: no time left in window {self.generation} for the floors; "
                    f"they wait for the next one")
        win["sockets_at_end"] = self.count_sockets()
        self.res["windows"].append(win)
        self.last_expires = expires
        return rounds_left

    def run_cpu_window(self, daemon):
        """The daemon runs freely at its 5 s interval for 60 s on the full population while a
        reference dumper dumps at the same rate, 0.5 s after each of the daemon's ticks."""
        seconds = self.args.cpu_seconds
        polls = int(round(seconds / POLL_INTERVAL))
        ref_s = (statistics.median(self.samples["ref_ms"]) / 1000 if self.samples["ref_ms"]
                 else 2e-6 * self.size)
        for attempt in range(3):
            # The window's last poll comes 55 s after its first, and TIME_WAIT lives 60 s: the
            # generation is built (daemon frozen) so that it completes just before a tick.
            daemon.freeze_between_polls()
            build_est = getattr(self, "tw_build_s", 3e-5 * self.tw + 0.5)
            tick = time.monotonic() + (POLL_INTERVAL - daemon.since_tick())
            while tick - build_est - 0.5 < time.monotonic():
                tick += POLL_INTERVAL
            time.sleep(max(0.0, tick - build_est - 0.5 - time.monotonic()))
            expires = self.build_time_wait()
            pending = daemon.tick_index() > daemon.polled_tick
            daemon.thaw()
            if pending:  # the build overran a tick: that poll runs now, the window opens later
                daemon.wait_polls(daemon.last["waitwatch_polls_total"] + 1)
            tick = time.monotonic() + (POLL_INTERVAL - daemon.since_tick())
            if tick - time.monotonic() < 0.2:
                tick += POLL_INTERVAL
            if tick + (polls - 1) * POLL_INTERVAL + 0.5 + 1.5 * ref_s + 0.3 < expires:
                break
            log(f"{self.size}: CPU window: generation {self.generation} would expire before the "
                f"window ends (built in {self.tw_build_s:.1f} s), retrying after it expires")
            self.wait_time_wait_gone()
        else:
            raise RuntimeError("could not fit the CPU window into a TIME_WAIT generation")
        sockets = self.count_sockets()
        time.sleep(max(0.0, tick - 0.05 - time.monotonic()))
        m0 = daemon.metrics()
        c0, r0 = proc_cpu_ticks(daemon.pid), proc_runtime_ns(daemon.pid)
        t0 = time.monotonic()
        time.sleep(max(0.0, tick + 0.5 - time.monotonic()))
        ref = subprocess.Popen([self.tools["ref_dump"], "--repeat", str(polls), "--interval-ms",
                                str(int(POLL_INTERVAL * 1000))], stdout=subprocess.PIPE,
                               text=True)
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))
        c1, r1 = proc_cpu_ticks(daemon.pid), proc_runtime_ns(daemon.pid)
        t1 = time.monotonic()
        out, _ = ref.communicate(timeout=120)
        m1 = daemon.metrics()
        ref_res = json.loads(out.strip().splitlines()[-1])
        hz = os.sysconf("SC_CLK_TCK")
        daemon_cpu_ms = (c1 - c0) * 1000.0 / hz
        ref_cpu_ms = sum(ref_res["cpu_ms"])
        n_polls = int(m1["waitwatch_polls_total"] - m0["waitwatch_polls_total"])
        self.res["cpu"] = {
            "seconds": round(t1 - t0, 3), "interval_s": POLL_INTERVAL,
            "sockets_at_start": sockets, "sockets_at_end": self.count_sockets(),
            "daemon_polls": n_polls,
            "daemon_poll_s_sum": m1["waitwatch_poll_duration_seconds_sum"] -
            m0["waitwatch_poll_duration_seconds_sum"],
            "daemon_cpu_ms": daemon_cpu_ms,
            "daemon_cpu_ms_schedstat": (r1 - r0) / 1e6,
            "ref_dumps": len(ref_res["cpu_ms"]), "ref_cpu_ms": ref_cpu_ms,
            "ref_cpu_ms_each": ref_res["cpu_ms"],
            "ratio": daemon_cpu_ms / ref_cpu_ms if ref_cpu_ms else None,
            "ratio_schedstat": (r1 - r0) / 1e6 / ref_cpu_ms if ref_cpu_ms else None,
        }
        log(f"{self.size}: CPU over {t1 - t0:.1f} s: daemon {daemon_cpu_ms:.0f} ms "
            f"({n_polls} polls), reference dumps {ref_cpu_ms:.0f} ms "
            f"({len(ref_res['cpu_ms'])} dumps): ratio {self.res['cpu']['ratio']:.2f}")
        self.last_expires = expires

    # -- the whole size ----------------------------------------------------------------------
    def run(self):
        args = self.args
        need_mib = self.size * 7 // 1024 + 1024  # kernel memory: ~2.5 KiB per socket + pages
        avail = meminfo_kib("MemAvailable") // 1024
        if need_mib > avail:
            raise Skip(f"{self.size} sockets need ~{need_mib} MiB of kernel memory, "
                       f"{avail} MiB available")
        self.res["host_before"] = host_load()
        h = self.res["host_before"]
        if h["tcp_sockets_host_wide"] > 1000 or h["processes"] > 1500:
            log(f"{self.size}: note: the host already holds {h['tcp_sockets_host_wide']} TCP "
                f"sockets and {h['processes']} processes (load {' '.join(h['loadavg'])}): "
                f"dumps and /proc walks are slower than on a quiet host")
        raised = self.tcpmem.ensure(self.cw, self.size)
        if raised:
            log(f"{self.size}: raised net.ipv4.tcp_mem {raised['from']} -> {raised['to']} "
                f"({raised['reason']}); restored at the end")
            self.res["tcp_mem_raised"] = raised
        ns = self.ns = Netns(f"wwbench-{os.getpid()}-{self.size}")
        daemon = None
        try:
            self.build_base()
            if not args.cli_only:
                daemon = Daemon(self.tools["waitwatchd"], self.tools["config"], self.workdir)
                self.res["daemon_first_poll_ms"] = daemon.first_poll_s * 1000
                log(f"{self.size}: waitwatchd up, first (cold) poll "
                    f"{daemon.first_poll_s * 1000:.0f} ms")
                self.check_reuse()
            rounds = args.repeat
            windows = 0
            while True:
                want_pb = not args.cli_only and not args.no_poll_bench
                if daemon:
                    daemon.freeze_between_polls()
                rounds = self.run_window(daemon, rounds, want_pb)
                windows += 1
                done_pb = (bool(self.poll_bench) or not want_pb) and not self.want_floors()
                need_rss = daemon is not None and (
                    not hasattr(self, "last_poll") or
                    self.last_poll["polls_total"] < args.rss_polls)
                if (rounds <= 0 and done_pb and not need_rss) or windows >= args.max_windows:
                    break
                if daemon:
                    daemon.thaw()
                self.wait_time_wait_gone()
                if daemon and need_rss and rounds <= 0:
                    # RSS is read after >= rss_polls polls: let the daemon catch up first.
                    daemon.wait_polls(args.rss_polls - 1)
                    rounds = max(rounds, 1)  # one more round to read it after a measured poll
            if rounds > 0:
                self.res["rounds_missing"] = rounds
            if daemon and hasattr(self, "last_poll"):
                self.res["daemon_rss_kib"] = self.last_poll["rss_kib"]
                self.res["daemon_hwm_kib"] = self.last_poll["hwm_kib"]
                self.res["daemon_polls_at_rss"] = self.last_poll["polls_total"]
            if daemon and self.size == args.cpu_size and not args.no_cpu:
                daemon.thaw()
                self.wait_time_wait_gone()
                self.run_cpu_window(daemon)
            if daemon and not daemon.stopped:
                daemon.freeze_between_polls()
            self.measure_neighbours()
        finally:
            if daemon:
                self.res["daemon_log_tail"] = read(daemon.log_path)[-2000:]
                daemon.close()
            if hasattr(self, "farm"):
                self.farm.stop()
            ns.close()
        return self.partial()

    def want_floors(self):
        return ("walk_floor" in self.tools and "floors" not in self.res and
                not self.args.cli_only)

    def measure_floors(self):
        """What any design that walks every socket pays at least, next to the dump, on the
        population with its TIME_WAIT generation: an iter/tcp walk whose program does nothing, one
        that keeps all it can in the kernel (walk_floor.bpf.c), a dump of only the sockets no
        kernel event follows to their end (TIME_WAIT and request sockets), and the dump's IPv6
        pass, which walks the whole table and finds nothing in this IPv4 population. The
        reference dumps are taken before and after, and their median is the one compared."""
        r = {}
        try:
            def dump(*extra):
                return run_json([self.tools["ref_dump"], "--repeat", "3", *extra],
                                timeout=FLOOR_TIMEOUT_S)
            refs = dump()["runs_ms"]
            w = run_json([self.tools["walk_floor"], "--repeat", "5"], timeout=FLOOR_TIMEOUT_S)
            unfollowed = dump("--states", format(STATE_BITS_UNFOLLOWED, "x"))
            ipv6 = dump("--family", "6")
            refs += dump()["runs_ms"]
            r["ref_ms"] = summary(refs)["median"]
            r["ref_runs_ms"] = refs
            r["walk"] = w
            r["nothing_ms"] = w["nothing_ms"]["median"]
            r["counted_ms"] = w["counted_ms"]["median"]
            r["unfollowed_ms"] = unfollowed["median_ms"]
            r["unfollowed_sockets"] = unfollowed["sockets"]
            r["ipv6_pass_ms"] = ipv6["median_ms"]
            r["ipv6_pass_sockets"] = ipv6["sockets"]
            for k in ("nothing", "counted", "unfollowed", "ipv6_pass"):
                r[f"{k}_ratio"] = round(r[f"{k}_ms"] / r["ref_ms"], 3)
            log(f"{self.size}: floors: {describe_floors(r)}")
        except (OSError, ValueError, KeyError, RuntimeError,
                subprocess.SubprocessError) as e:  # this figure only: the size goes on
            r["error"] = str(e)[-300:]
            log(f"{self.size}: floors not measured: {r['error']}")
        self.res["floors"] = r

    def measure_neighbours(self):
        """Two empty namespaces beside the population: one made as every namespace is by default,
        sharing the host's TCP hash table, and one with a table of its own
        (net.ipv4.tcp_child_ehash_entries, Linux >= 6.1). A walk or dump of a namespace reads its
        whole table, passing over the sockets of every namespace that shares it."""
        setting = "/proc/sys/net/ipv4/tcp_child_ehash_entries"
        if not os.path.exists(setting):
            return  # before 6.1 every namespace shares the host's table
        # The setting written below must be the bench namespace's, never the host's.
        if os.stat("/proc/self/ns/net").st_ino != os.stat(f"/run/netns/{self.ns.name}").st_ino:
            raise RuntimeError("measure_neighbours runs outside the benchmark's namespace")
        with open("/proc/sys/net/ipv4/tcp_ehash_entries") as f:
            population = int(f.read())
        res = {"beside_sockets": self.count_sockets(), "population_tcp_ehash_entries": population}
        with open(setting) as f:
            before = f.read().strip()
        try:
            for kind, entries in (("shared", "0"), ("own", "1024")):
                # `ip netns add` runs in the bench's namespace, whose setting a new one follows
                # (net/ipv4/tcp_ipv4.c, tcp_set_hashinfo()).
                with open(setting, "w") as f:
                    f.write(entries)
                res[kind] = self.measure_neighbour(f"{self.ns.name}-{kind}")
        finally:
            with open(setting, "w") as f:
                f.write(before)
        self.res["neighbours"] = res
        log(f"{self.size}: an empty namespace beside {res['beside_sockets']} sockets: " +
            "; ".join(describe_neighbour(res[k]) for k in ("shared", "own")))

    def measure_neighbour(self, name):
        r = {}
        try:
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            enter = ["nsenter", f"--net=/run/netns/{name}"]
            entries = subprocess.run(enter + ["cat", "/proc/sys/net/ipv4/tcp_ehash_entries"],
                                     capture_output=True, text=True, check=True)
            r["tcp_ehash_entries"] = int(entries.stdout)
            r["dump_ms"] = run_json(enter + [self.tools["ref_dump"], "--repeat", "5"])["median_ms"]
            if not self.args.no_poll_bench:
                walk = run_json(enter + [self.tools["poll_bench"], "--phase", "walk",
                                         "--polls", "5"])
                r["walk_ms"] = walk["walk_ms"]["median"]
        except (OSError, ValueError, KeyError, RuntimeError,
                subprocess.CalledProcessError) as e:  # this figure only: the size goes on
            r["error"] = str(e)[-300:]
        finally:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        return r

    def partial(self):
        for k, v in self.samples.items():
            self.res[k] = summary(v)
        if self.poll_bench:
            self.res["poll_bench"] = self.poll_bench
        return self.res


# ---------------------------------------------------------------------------------------------


def verdict(ok):
    return "pass" if ok else "FAIL"


# Past this share of a size's rounds missing or not isolated, its figures are too thin to pass.
MAX_UNMEASURED_SHARE = 0.2


def evaluate(results, args):
    """Each target next to its figure, at the size the target names (100k, 1M). A target whose
    size was not run, or whose figure is missing, fails as "not measured": a run cannot pass
    on figures it did not take."""
    # A size that failed part way still counts with what it measured (its error is printed).
    by_size = {r["size"]: r for r in results if r.get("ref_ms")}
    rows = []
    big = by_size.get(1_000_000) or {"size": 1_000_000}
    mid = by_size.get(100_000)
    big_note = "" if 1_000_000 in by_size else " (1M not measured)"

    # Rounds that could not be isolated or were never run count against the size.
    for size in sorted({r["size"] for r in results}):
        r = next(x for x in results if x["size"] == size)
        wanted = args.repeat
        lost = r.get("rounds_missing", 0) + r.get("polls_not_isolated", 0)
        share = lost / wanted if wanted else 0.0
        rows.append({"target": f"rounds measured at {size} (missing or not isolated, share)",
                     "value": round(share, 3), "limit": MAX_UNMEASURED_SHARE,
                     "pass": share <= MAX_UNMEASURED_SHARE})

    def ratio_row(name, r, key, target, cmp):
        s = r.get(key)
        if not s:
            rows.append({"target": name, "value": None, "limit": target, "pass": False})
            return
        ok = s["median"] <= target if cmp == "le" else s["median"] >= target
        rows.append({"target": name, "value": round(s["median"], 3),
                     "spread": [round(s["min"], 3), round(s["max"], 3)], "limit": target,
                     "pass": ok})

    if not args.cli_only:
        for r in (mid or {"size": 100_000}, big):
            ratio_row(f"daemon poll / ref dump at {r['size']}"
                      + (big_note if r is big else ""), r, "poll_ref_ratio",
                      TARGETS["poll_vs_ref"][r["size"]], "le")
            cpu = r.get("poll_ref_cpu_ratio")
            if cpu:
                rows[-1]["cpu_ratio"] = round(cpu["median"], 3)
    ratio_row("ss -tanp / waitwatch --json at 100000" +
              ("" if args.cli_only else " (waitwatchd running: its programs pinned)"),
              mid or {"size": 100_000}, "tanp_json_ratio", TARGETS["tanp_vs_json"], "ge")
    if not args.cli_only:
        ratio_row("ss -tanp / waitwatch --json at 100000, loading its own programs",
                  mid or {"size": 100_000}, "tanp_json_load_ratio", TARGETS["tanp_vs_json"], "ge")
    if not args.cli_only:
        rss = big.get("daemon_rss_kib")
        rows.append({"target": f"daemon RSS after {big.get('daemon_polls_at_rss')} polls (MiB)"
                     + big_note, "value": None if rss is None else round(rss / 1024, 1),
                     "limit": TARGETS["rss_mib"],
                     "pass": rss is not None and rss / 1024 <= TARGETS["rss_mib"]})
        hwm = big.get("daemon_hwm_kib")
        # Not a target of its own, but what a MemoryMax= must allow: the peak of a poll.
        rows.append({"target": "daemon peak RSS during polls, VmHWM (MiB)" + big_note,
                     "value": None if hwm is None else round(hwm / 1024, 1),
                     "limit": TARGETS["rss_mib"],
                     "pass": hwm is not None and hwm / 1024 <= TARGETS["rss_mib"]})
        s = big.get("scrape_ms")
        rows.append({"target": "/metrics scrape (ms)" + big_note,
                     "value": None if not s else round(s["median"], 2),
                     "spread": None if not s else [round(s["min"], 2), round(s["max"], 2)],
                     "limit": TARGETS["scrape_ms"],
                     "pass": bool(s) and s["median"] < TARGETS["scrape_ms"]})
        cpu = by_size.get(args.cpu_size, {}).get("cpu")
        # Judged on the kernel's accounting of the daemon (/proc/<pid>/stat ticks and
        # schedstat run time), both, never on the daemon's own poll-duration metric.
        worst = None
        if cpu and cpu.get("ratio") is not None and cpu.get("ratio_schedstat") is not None:
            worst = max(cpu["ratio"], cpu["ratio_schedstat"])
        rows.append({"target": f"daemon CPU / ref dump CPU, {args.cpu_size} sockets, 5 s interval "
                               "(the larger of /proc stat and schedstat)",
                     "value": None if worst is None else round(worst, 3),
                     "limit": TARGETS["cpu_vs_ref"],
                     "pass": worst is not None and worst <= TARGETS["cpu_vs_ref"]})
        pts = [(r["size"], r["poll_ms"]["median"]) for r in by_size.values() if r.get("poll_ms")]
        refs = [(r["size"], r["ref_ms"]["median"]) for r in by_size.values() if r.get("ref_ms")]
        fit, rfit = linear_fit(pts), linear_fit(refs)
        if fit and len(pts) >= 3:
            # Linear: a straight line explains the poll times, and the per-socket cost at the
            # largest size is within 25% of the fitted slope (no superlinear term).
            per = [t / n * 1000 for n, t in sorted(pts)]
            ok = fit["r2"] >= 0.99 and per[-1] <= fit["us_per_socket"] * 1.25
            rows.append({"target": "daemon poll grows linearly (R^2 >= 0.99, largest size "
                                   "within 1.25x of the slope)",
                         "value": round(fit["r2"], 4),
                         "slope_us_per_socket": round(fit["us_per_socket"], 3),
                         "ref_slope_us_per_socket": round(rfit["us_per_socket"], 3) if rfit
                         else None,
                         "per_socket_us": [round(p, 3) for p in per], "limit": 0.99,
                         "pass": ok})
        else:
            rows.append({"target": "linear growth (needs three sizes)", "value": None,
                         "limit": 0.99, "pass": False})
    return rows


def describe_floors(f):
    if "error" in f:
        return f"not measured ({f['error']})"
    w = f["walk"]
    return (f"dump {f['ref_ms']:.1f} ms; iter/tcp doing nothing {f['nothing_ms']:.1f} ms "
            f"({f['nothing_ratio']:.2f}x); counting in the kernel {f['counted_ms']:.1f} ms "
            f"({f['counted_ratio']:.2f}x: {w['steady_written']} records, "
            f"{w['steady_known_close_wait']} CLOSE_WAIT known, {w['time_wait_pairs']} TIME_WAIT "
            f"destinations); dump of the {f['unfollowed_sockets']} TIME_WAIT and request sockets "
            f"alone {f['unfollowed_ms']:.1f} ms ({f['unfollowed_ratio']:.2f}x); the dump's IPv6 "
            f"pass ({f['ipv6_pass_sockets']} sockets) {f['ipv6_pass_ms']:.1f} ms "
            f"({f['ipv6_pass_ratio']:.2f}x)")


def describe_neighbour(n):
    """One empty neighbour namespace's figures, named by what its table is."""
    if "tcp_ehash_entries" not in n:
        return f"not measured ({n.get('error', 'unknown error')})"
    entries = n["tcp_ehash_entries"]
    what = (f"sharing the host's TCP hash table ({-entries} buckets)" if entries < 0 else
            f"with a table of its own ({entries} buckets)")
    dump = f"{n['dump_ms']:.2f} ms" if "dump_ms" in n else "-"
    walk = f"{n['walk_ms']:.2f} ms" if "walk_ms" in n else "-"
    err = f" ({n['error']})" if "error" in n else ""
    return f"{what}: dump {dump}, walk {walk}{err}"


def print_report(results, rows, machine, out_path, args):
    p = print
    p("")
    p(f"waitwatch benchmark - {machine['cpu_model']}, {machine['nproc']} CPUs, "
      f"{machine['mem_total_mib']} MiB, Linux {machine['kernel']}")
    # Figures belong to one tree: docs/performance.md quotes them with this line.
    dirty = machine.get("git_dirty_files", 0)
    p(f"population: {args.population}")
    p(f"tree: commit {machine.get('git_commit') or 'unknown'}"
      + (f" with {dirty} uncommitted file(s): not a tree anyone else can measure" if dirty
         else ""))
    p("")
    hdr = f"{'sockets':>9} {'ref dump':>26} {'daemon poll':>26} {'poll/ref':>19} " \
          f"{'ss -tan':>26} {'waitwatch --json':>26} {'ss -tanp':>26} {'scrape':>8} {'RSS MiB':>8}"
    p(hdr)
    for r in results:
        if "error" in r:
            p(f"{r['size']:>9} {'not run' if not r.get('ref_ms') else 'incomplete'}: "
              f"{r['error']}")
            if not r.get("ref_ms"):
                continue
        ratio = r.get("poll_ref_ratio")
        ratio_s = f"{ratio['median']:.3f} [{ratio['min']:.2f}-{ratio['max']:.2f}]" if ratio \
            else "-"
        cpu = r.get("poll_ref_cpu_ratio")
        if cpu:
            ratio_s += f" c{cpu['median']:.2f}"
        scrape = r.get("scrape_ms")
        rss = r.get("daemon_rss_kib")
        p(f"{r['size']:>9} {fmt_ms(r.get('ref_ms')):>26} {fmt_ms(r.get('poll_ms')):>26} "
          f"{ratio_s:>19} {fmt_ms(r.get('ss_tan_ms')):>26} {fmt_ms(r.get('json_ms')):>26} "
          f"{fmt_ms(r.get('ss_tanp_ms')):>26} "
          f"{(format(scrape['median'], '.2f') if scrape else '-'):>8} "
          f"{(format(rss / 1024, '.1f') if rss else '-'):>8}")
    for r in results:
        if r.get("json_load_ms"):
            p(f"{r['size']:>9} waitwatch --json loading its own programs (no daemon's pinned): "
              f"{fmt_ms(r['json_load_ms'])}; with the daemon's: {fmt_ms(r.get('json_ms'))}")
    p(f"BPF filesystem at {BPF_FS}: {machine.get('bpffs')}")
    p("")
    p("(median [min-max] over the repeated rounds; every ratio is per round, same population;")
    p(" cN.NN: the same ratio on CPU time, which other load on the machine does not inflate)")
    p("")
    p(f"{'target':<78} {'value':>10} {'limit':>8}  result")
    for row in rows:
        v = row["value"]
        vs = "not measured" if v is None else str(v)
        if row.get("spread"):
            vs += f" [{row['spread'][0]}-{row['spread'][1]}]"
        if row.get("peak") is not None:
            vs += f" (peak {row['peak']})"
        if row.get("cpu_ratio") is not None:
            vs += f" (CPU {row['cpu_ratio']})"
        p(f"{row['target']:<78} {vs:>10} {row['limit']:>8}  {verdict(row['pass'])}")
    for r in results:
        cpu = r.get("cpu")
        if cpu:
            p(f"  CPU at {r['size']}: daemon {cpu['daemon_cpu_ms']:.0f} ms (schedstat "
              f"{cpu['daemon_cpu_ms_schedstat']:.0f} ms, {cpu['daemon_polls']} polls) vs "
              f"{cpu['ref_dumps']} reference dumps {cpu['ref_cpu_ms']:.0f} ms over "
              f"{cpu['seconds']:.0f} s")
    for r in results:
        for pb in r.get("poll_bench", [])[:1]:
            phases = [f"{name} {pb[key]['median']:.1f} ms" for name, key in
                      (("inet_diag dump", "sampler_ms"), ("BPF walk", "walk_ms"),
                       ("collect", "collect_ms"), ("evaluate", "evaluate_ms"))
                      if isinstance(pb.get(key), dict)]
            p(f"  phases at {r['size']} (poll_bench, in process): " + ", ".join(phases))
    for r in results:
        if r.get("floors"):
            p(f"  floors at {r['size']} (what a walk costs before the daemon's work): "
              f"{describe_floors(r['floors'])}")
    for r in results:
        nb = r.get("neighbours")
        if not nb:
            continue
        where = ("" if nb.get("population_tcp_ehash_entries", -1) < 0 else
                 " (the population has a table of its own here: nothing is shared with it)")
        p(f"  an empty namespace beside {nb['beside_sockets']} sockets{where}: " +
          "; ".join(describe_neighbour(nb[k]) for k in ("shared", "own") if k in nb))
    p("")
    p(f"JSON: {out_path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=5, help="rounds per size (default 5)")
    ap.add_argument("--output", help="JSON path (default bench/results/<date>.json)")
    ap.add_argument("--population", choices=sorted(POPULATIONS), default="leaky",
                    help="leaky: 50%% CLOSE_WAIT, 30%% TIME_WAIT, 20%% ESTABLISHED (default); "
                         "realistic: 1%% CLOSE_WAIT, 4%% TIME_WAIT, 95%% ESTABLISHED")
    ap.add_argument("--cpu-size", type=int, default=100000)
    ap.add_argument("--cpu-seconds", type=float, default=60.0)
    ap.add_argument("--no-cpu", action="store_true", help="skip the 60 s CPU test")
    ap.add_argument("--tanp-max", type=int, default=100000,
                    help="largest size ss -tanp runs at (it grows worse than linearly)")
    ap.add_argument("--no-tanp", action="store_true")
    ap.add_argument("--no-poll-bench", action="store_true")
    ap.add_argument("--rss-polls", type=int, default=20)
    ap.add_argument("--max-windows", type=int, default=6)
    ap.add_argument("--nice", type=int, default=-10,
                    help="nice increment for the runner and everything it measures (default -10)")
    ap.add_argument("--cli-only", dest="cli_only", action="store_true",
                    help="the CLI alone: 100000 sockets, ss -tanp vs waitwatch --json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespaces, sysctls, sockets in every state)")
    if args.cli_only:
        if args.sizes == ap.get_default("sizes"):
            args.sizes = "100000"
        args.no_cpu = True
    sizes = [int(s) for s in args.sizes.split(",") if s]
    b = args.build_dir
    tools = {"ref_dump": f"{b}/bench/ref_dump", "poll_bench": f"{b}/bench/poll_bench",
             "sockfarm": f"{b}/tests/integration/sockfarm",
             "waitwatch": f"{b}/daemon/waitwatch/waitwatch",
             "waitwatchd": f"{b}/daemon/waitwatchd/waitwatchd",
             "config": f"{args.repo}/config/waitwatch.json"}
    for k, v in tools.items():
        if not os.path.exists(v):
            sys.exit(f"bench: {k} not found at {v}")
    # Built only with BPF: without it the floors are not measured, the rest is.
    if os.path.exists(f"{b}/bench/walk_floor"):
        tools["walk_floor"] = f"{b}/bench/walk_floor"
    out_path = args.output or os.path.join(
        args.repo, "bench", "results", datetime.datetime.now().strftime("%Y-%m-%dT%H%M%S") + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)

    # Every measured program inherits this: on a shared machine, other work then waits for the
    # benchmark rather than the other way round (all tools alike, so the ratios stay fair).
    if args.nice:
        os.nice(args.nice)
    machine = machine_info(args.repo)
    machine["nice"] = os.nice(0)
    tcpmem = TcpMemGuard()
    bpffs = BpfFsGuard()
    machine["bpffs"] = bpffs.ensure()
    results = []

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    workdir = tempfile.mkdtemp(prefix="wwbench-")
    try:
        for size in sizes:
            run = SizeRun(args, tools, size, tcpmem, workdir)
            try:
                log(f"=== {size} sockets ===")
                results.append(run.run())
            except Skip as e:
                log(f"{size}: cannot run: {e}")
                results.append({"size": size, "error": str(e)})
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
                log(f"{size}: failed: {e}")
                partial = run.partial()
                partial["error"] = f"failed: {e}"
                results.append(partial)
            except KeyboardInterrupt:
                log(f"{size}: interrupted; writing what was measured")
                partial = run.partial()
                partial["error"] = "interrupted"
                results.append(partial)
                break
    finally:
        tcpmem.restore()
        bpffs.restore()
    machine["loadavg_at_end"] = read("/proc/loadavg").split()[:3]
    rows = evaluate(results, args)
    doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine,
           "args": vars(args), "targets": rows, "sizes": results}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    print_report(results, rows, machine, out_path, args)
    return 0 if rows and all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
