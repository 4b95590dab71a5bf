// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
// Every active TCP close, as it happens: who closed the connection first, so that its TIME_WAIT
// socket, which no process holds, can be charged to a process.
//
// The side that closes first moves ESTABLISHED -> FIN_WAIT1 (SYN_RECV -> FIN_WAIT1 for a child
// closed before its handshake ended) in tcp_close_state() (net/ipv4/tcp.c), called from
// __tcp_close() and tcp_shutdown(): close() or shutdown() of the last reference, in process
// context, so `current` is the closer (also when the last holder's exit closes it).
// tcp_set_state() traces each change as sock:inet_sock_set_state. That side alone ends in
// TIME_WAIT; the timewait socket that replaces it keeps its cookie
// (net/ipv4/inet_timewait_sock.c, inet_twsk_alloc()), which inet_diag reports, so the daemon
// matches each record to a TIME_WAIT socket of its dump by cookie.
//
// bpf_get_socket_cookie() on a socket pointer is open to tracing programs
// (kernel/trace/bpf_trace.c, tracing_prog_func_proto(): bpf_get_socket_ptr_cookie_proto) and
// generates the cookie if no dump has asked for it yet (sock_gen_cookie()).
//
// Records go to a ring buffer that wakes the reader only when half full: the daemon drains it
// every poll, and a storm between polls wakes its reader thread. When the ring is full a record
// is lost and counted in `lost`.
//
// No vmlinux.h: the kernel types are declared with preserve_access_index (see socket_fds.bpf.c).

typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define CORE __attribute__((preserve_access_index))
#define CORE_ADDR(expr) __builtin_preserve_access_index(&(expr))
#define __uint(name, val) int(*name)[val]

struct sock {
  __u16 sk_protocol;
} CORE;

struct task_struct {
  struct task_struct* group_leader;
  __u64 start_boottime;  // ns since boot, suspend included: /proc/<pid>/stat field 22 in ns
  char comm[16];
} CORE;

struct bpf_pidns_info {
  __u32 pid;
  __u32 tgid;
};

// Helper numbers and map constants from include/uapi/linux/bpf.h.
static __u64 (*bpf_get_current_uid_gid)(void) = (void*)15;
static __u64 (*bpf_get_current_task)(void) = (void*)35;
static __u64 (*bpf_get_socket_cookie)(void* sk) = (void*)46;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void*)80;
static long (*bpf_probe_read_kernel)(void* dst, __u32 size, const void* unsafe_ptr) = (void*)113;
static long (*bpf_get_ns_current_pid_tgid)(__u64 dev, __u64 ino, struct bpf_pidns_info* nsdata,
                                           __u32 size) = (void*)120;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void*)14;
static void* (*bpf_ringbuf_reserve)(void* ringbuf, __u64 size, __u64 flags) = (void*)131;
static void (*bpf_ringbuf_submit)(void* data, __u64 flags) = (void*)132;
static __u64 (*bpf_ringbuf_query)(void* ringbuf, __u64 flags) = (void*)134;
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0

// include/net/tcp_states.h and include/uapi/linux/in.h.
#define TCP_ESTABLISHED 1
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define IPPROTO_TCP 6

// Set by the loader before loading, the only .rodata variable (RawConfig in
// close_recorder.cpp): the reader's pid namespace (st_dev and st_ino of /proc/self/ns/pid, and
// whether it is the initial one), so that pids are numbered as the reader's /proc numbers them,
// and the fill level at which the reader is woken.
const volatile struct {
  __u64 pidns_dev;
  __u64 pidns_ino;
  __u64 wake_at_bytes;
  __u64 reader_in_initial_pidns;
} config = {0, 0, 0, 0};

__u64 lost = 0;  // records the ring had no room for; the only .bss variable

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);  // the loader sizes it
} closes SEC(".maps");

// 48 bytes, no padding; close_recorder.cpp reads the same layout (RawClose).
struct close_record {
  __u64 cookie;
  __u64 start_boottime_ns;  // the thread group leader's: what /proc/<tgid>/stat reports
  __u64 cgroup_id;          // the closer's cgroup v2 id (the directory's inode number)
  __u32 pid;                // thread group id in the reader's pid namespace; 0 outside it
  __u32 uid;
  char comm[16];  // the thread group leader's, as /proc/<tgid>/comm
};

SEC("tp_btf/inet_sock_set_state")
int record_close(__u64* ctx) {
  struct sock* sk = (struct sock*)ctx[0];
  const int oldstate = (int)ctx[1];
  const int newstate = (int)ctx[2];
  if (newstate != TCP_FIN_WAIT1 || (oldstate != TCP_ESTABLISHED && oldstate != TCP_SYN_RECV)) {
    return 0;
  }
  __u16 protocol = 0;
  if (bpf_probe_read_kernel(&protocol, sizeof(protocol), CORE_ADDR(sk->sk_protocol)) ||
      protocol != IPPROTO_TCP) {
    return 0;
  }
  struct close_record* r = bpf_ringbuf_reserve(&closes, sizeof(*r), 0);
  if (!r) {
    __sync_fetch_and_add(&lost, 1);
    return 0;
  }
  r->cookie = bpf_get_socket_cookie(sk);
  r->cgroup_id = bpf_get_current_cgroup_id();
  r->uid = (__u32)bpf_get_current_uid_gid();
  // The initial namespace numbers every task, a container's too: the global tgid. From a child
  // namespace, bpf_get_ns_current_pid_tgid() answers only for tasks of that very namespace
  // (kernel/bpf/helpers.c: it compares the task's active pid namespace), else 0.
  if (config.reader_in_initial_pidns) {
    r->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
  } else {
    struct bpf_pidns_info ns = {0, 0};
    r->pid = bpf_get_ns_current_pid_tgid(config.pidns_dev, config.pidns_ino, &ns, sizeof(ns)) == 0
                 ? ns.tgid
                 : 0;
  }
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct task_struct* leader = 0;
  if (bpf_probe_read_kernel(&leader, sizeof(leader), CORE_ADDR(task->group_leader)) || !leader) {
    leader = task;
  }
  if (bpf_probe_read_kernel(&r->start_boottime_ns, sizeof(r->start_boottime_ns),
                            CORE_ADDR(leader->start_boottime))) {
    r->start_boottime_ns = 0;
  }
  if (bpf_probe_read_kernel(r->comm, sizeof(r->comm), CORE_ADDR(leader->comm))) r->comm[0] = 0;
  const __u64 queued = bpf_ringbuf_query(&closes, BPF_RB_AVAIL_DATA);
  bpf_ringbuf_submit(r, queued >= config.wake_at_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
  return 0;
}

// bpf_probe_read_kernel is a GPL-only helper: "Dual BSD/GPL" is GPL-compatible (see
// socket_fds.bpf.c) and states this file's GPL-2.0-only OR BSD-2-Clause.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
