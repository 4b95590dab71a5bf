// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
// The socket fds of every process in one kernel pass: a BPF task_file iterator. The kernel
// calls `socket_fds` once per open file of every process (threads that share their process's
// file table are visited once); it writes one fixed-size record per socket and skips every
// other file, so user space reads only what it needs and makes no syscall per fd.
//
// Built with `clang -O2 -g -target bpf` (common/bpf/CMakeLists.txt) and embedded in the
// library. No vmlinux.h: the few kernel types below are declared here with
// preserve_access_index, so libbpf relocates every field offset (CO-RE) against the running
// kernel's BTF (/sys/kernel/btf/vmlinux) at load time. Needs Linux >= 5.8 (task_file iterators
// and bpf_seq_write) and a kernel built with CONFIG_DEBUG_INFO_BTF.
//
// The record layout is shared with socket_fds.cpp (RawRecord there): keep both in step.

typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define CORE __attribute__((preserve_access_index))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

struct seq_file;

// session_id: one per iterator fd, from a global counter (kernel/bpf/bpf_iter.c,
// prepare_seq_file()).
struct bpf_iter_meta {
  struct seq_file *seq;
  __u64 session_id;
} CORE;

struct upid {
  int nr;
  void *ns;
} CORE;

struct pid {
  unsigned int level;
  struct upid numbers[1];
} CORE;

struct task_struct {
  int tgid;
  struct pid *thread_pid;
  struct task_struct *group_leader;
  __u64 start_boottime;  // ns since boot, suspend included: /proc/<pid>/stat field 22 in ns
} CORE;

struct inode {
  __u16 i_mode;
  unsigned long i_ino;
} CORE;

struct file {
  struct inode *f_inode;
} CORE;

struct bpf_iter__task_file {
  union {
    struct bpf_iter_meta *meta;
  };
  union {
    struct task_struct *task;
  };
  __u32 fd;
  union {
    struct file *file;
  };
} CORE;

// bpf_seq_write: helper 127 (include/uapi/linux/bpf.h), declared as libbpf's
// bpf_helper_defs.h does, without pulling in kernel headers.
static long (*bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)127;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)113;
static __u64 (*bpf_get_current_task)(void) = (void *)35;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;

// __builtin_preserve_access_index / type_info as libbpf's bpf_core_read.h uses them: the
// offsets and the size are relocated at load time.
#define CORE_ADDR(expr) __builtin_preserve_access_index(&(expr))
#define CORE_SIZE(type) __builtin_preserve_type_info(*(type *)0, 1 /* BPF_TYPE_SIZE */)

// What one scan remembers between records, kept per iterator session: a daemon pins this
// program and every waitwatch run that reuses it scans at the same time as others, each maybe
// in a pid namespace of its own. One session is one reader whose read()s the kernel serializes
// (bpf_seq_read() holds the seq_file's lock, kernel/bpf/bpf_iter.c), so nothing else writes
// its entry. Removed by the end-of-iteration call; a scan abandoned midway (a reader killed)
// leaves its entry, and with the map full scans go on without the cache. Entries are allocated
// as used, not 1024 up front.
struct scan_cache {
  __u32 reader_level_plus_one;  // 0: not known yet
  __u32 last_pid;               // the number, in the reader's namespace, of the process...
  __u64 last_start;             // ...of the previous record, identified with its start time...
  int last_tgid;                // ...and tgid (tgids are reused)
  __u32 unused;
};

#define BPF_MAP_TYPE_HASH 1
#define BPF_NOEXIST 1
#define BPF_F_NO_PREALLOC 1

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct scan_cache);
} scans SEC(".maps");

// The thread group id of `leader` as the reading process's pid namespace numbers it: what
// /proc shows the reader. task->tgid is the initial namespace's number, which differs when
// waitwatch runs in a container with its own pid namespace. The reader is `current`: the
// iterator runs inside its read(). The iterator only visits tasks visible in that namespace,
// so the leader's pid has a number at the reader's level. 0 when a read fails.
static __u32 reader_pid(struct task_struct *leader, struct scan_cache *c) {
  if (c->reader_level_plus_one == 0) {
    struct task_struct *reader = (struct task_struct *)bpf_get_current_task();
    struct pid *reader_pid = 0;
    unsigned int level = 0;
    if (bpf_probe_read_kernel(&reader_pid, sizeof(reader_pid), CORE_ADDR(reader->thread_pid)) ||
        !reader_pid ||
        bpf_probe_read_kernel(&level, sizeof(level), CORE_ADDR(reader_pid->level))) {
      return 0;
    }
    c->reader_level_plus_one = (level & 63) + 1;
  }
  // Most records come in runs from one process: look its number up once per run.
  const int tgid = leader->tgid;
  const __u64 start = leader->start_boottime;
  if (c->last_pid != 0 && tgid == c->last_tgid && start == c->last_start) return c->last_pid;
  struct pid *pid = 0;
  if (bpf_probe_read_kernel(&pid, sizeof(pid), CORE_ADDR(leader->thread_pid)) || !pid) return 0;
  const char *numbers = (const char *)CORE_ADDR(pid->numbers[0]);
  int nr = 0;
  if (bpf_probe_read_kernel(&nr, sizeof(nr),
                            numbers + (__u64)(c->reader_level_plus_one - 1) *
                                          CORE_SIZE(struct upid))) {
    return 0;
  }
  c->last_tgid = tgid;
  c->last_start = start;
  c->last_pid = (__u32)nr;
  return (__u32)nr;
}

// 24 bytes, no padding.
struct socket_fd_record {
  __u32 pid;  // the thread group id in the reader's pid namespace
  __u32 fd;
  __u64 inode;
  __u64 start_boottime_ns;  // the thread group leader's: what /proc/<tgid>/stat reports
};

#define S_IFMT 0170000
#define S_IFSOCK 0140000

SEC("iter/task_file")
int socket_fds(struct bpf_iter__task_file *ctx) {
  struct task_struct *task = ctx->task;
  struct file *file = ctx->file;
  const __u64 session = ctx->meta->session_id;
  if (!task) {
    // The end-of-iteration call (task_file_seq_stop() in kernel/bpf/task_iter.c).
    bpf_map_delete_elem(&scans, &session);
    return 0;
  }
  if (!file) return 0;
  struct inode *inode = file->f_inode;
  if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK) return 0;
  struct task_struct *leader = task->group_leader;
  if (!leader) leader = task;
  struct scan_cache *c = bpf_map_lookup_elem(&scans, &session);
  if (!c) {
    struct scan_cache fresh = {};
    bpf_map_update_elem(&scans, &session, &fresh, BPF_NOEXIST);
    c = bpf_map_lookup_elem(&scans, &session);
  }
  struct scan_cache uncached = {};  // the map is full: this record alone
  struct socket_fd_record r = {
      .pid = reader_pid(leader, c ? c : &uncached),
      .fd = ctx->fd,
      .inode = inode->i_ino,
      .start_boottime_ns = leader->start_boottime,
  };
  if (r.pid == 0) return 0;
  // On overflow the kernel rolls this record back and retries it in the next read().
  bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
  return 0;
}

// bpf_seq_write is a GPL-only helper: the verifier refuses it to a program without a
// GPL-compatible licence. "Dual BSD/GPL" is one (include/linux/license.h,
// license_is_gpl_compatible(), which bpf_prog_load() in kernel/bpf/syscall.c consults), and
// states this file's GPL-2.0-only OR BSD-2-Clause.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
