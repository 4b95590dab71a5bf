// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
// What a walk of the kernel's TCP hash costs before and after the work the daemon needs, for
// bench/walk_floor.cpp; never loaded by waitwatch itself.
//
// walk_nothing: returns at once. The kernel still finds, batches, references and (full sockets)
//   locks every socket of the namespace (net/ipv4/tcp_ipv4.c, bpf_iter_tcp_batch(),
//   bpf_iter_tcp_seq_show()): the floor of any iter/tcp design.
// walk_counted: the most the kernel can keep to itself. It counts sockets per state, counts
//   TIME_WAIT sockets per (local address, remote address, remote port) in a hash map, and writes
//   a record only for a CLOSE_WAIT socket it has not seen before, remembered in socket-local
//   storage (net/core/bpf_sk_storage.c, bpf_sk_storage_get_tracing_proto: allowed for
//   BPF_TRACE_ITER). A CLOSE_WAIT socket already known costs a storage lookup, no record.
//
// The kernel types are common/bpf/tcp_sockets.bpf.c's (tcp_kernel_types.bpf.h).

#include "tcp_kernel_types.bpf.h"

// BTF-defined maps, as libbpf's bpf_helpers.h spells them.
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

// Helper numbers from include/uapi/linux/bpf.h, beside those of tcp_kernel_types.bpf.h.
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;
static void *(*bpf_sk_storage_get)(void *map, void *sk, void *value, __u64 flags) = (void *)107;

// include/uapi/linux/bpf.h, include/net/tcp_states.h.
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_SK_STORAGE 24
#define BPF_F_NO_PREALLOC 1
#define BPF_NOEXIST 1
#define BPF_SK_STORAGE_GET_F_CREATE 1
#define AF_INET 2
#define TCP_CLOSE_WAIT 8
#define TCP_TIME_WAIT 6
#define STATES 16

struct tw_key {
  __u32 local[4];
  __u32 remote[4];
  __u16 remote_port;
  __u16 family;
};

// Past the states: the CLOSE_WAIT sockets already known, those of them with a Recv-Q (the kind
// can change between walks), those written out, and TIME_WAIT sockets the full map could not
// count.
#define KNOWN STATES
#define KNOWN_UNREAD (STATES + 1)
#define WRITTEN (STATES + 2)
#define PAIRS_LOST (STATES + 3)
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, STATES + 4);
  __type(key, __u32);
  __type(value, __u64);
} counts SEC(".maps");

// Not preallocated: a poll finds few destinations, and a full preallocation of this size would
// take ~100 MiB of kernel memory at load.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1 << 16);
  __type(key, struct tw_key);
  __type(value, __u64);
} time_wait_pairs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, __u64);
} known_close_wait SEC(".maps");

// What the daemon needs of a CLOSE_WAIT socket it has not seen: to find its owner and its kind.
struct close_wait_record {
  __u64 cookie;
  __u32 inode;
  __u32 recv_q;
  __u16 local_port;
  __u16 remote_port;
  __u32 reserved;
};

static void count(__u32 slot) {
  __u64 *n = bpf_map_lookup_elem(&counts, &slot);
  if (n) *n += 1;  // one walk at a time: no other writer
}

SEC("iter/tcp")
int walk_nothing(struct bpf_iter__tcp *ctx) {
  (void)ctx;
  return 0;
}

SEC("iter/tcp")
int walk_counted(struct bpf_iter__tcp *ctx) {
  struct sock_common *skc = ctx->sk_common;
  if (!skc) return 0;
  const unsigned char state = skc->skc_state;
  if (state == TCP_TIME_WAIT) {
    const struct inet_timewait_sock *tw = (const void *)skc;
    unsigned char substate = 0;
    bpf_probe_read_kernel(&substate, sizeof(substate), CORE_ADDR(tw->tw_substate));
    count(substate & (STATES - 1));
    if (substate != TCP_TIME_WAIT) return 0;
    struct tw_key key = {};
    key.family = skc->skc_family;
    key.remote_port = skc->skc_dport;
    if (key.family == AF_INET) {
      key.local[0] = skc->skc_rcv_saddr;
      key.remote[0] = skc->skc_daddr;
    } else {
      for (int i = 0; i < 4; i++) {
        key.local[i] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[i];
        key.remote[i] = skc->skc_v6_daddr.in6_u.u6_addr32[i];
      }
    }
    __u64 *n = bpf_map_lookup_elem(&time_wait_pairs, &key);
    if (n) {
      *n += 1;
    } else {
      const __u64 one = 1;
      if (bpf_map_update_elem(&time_wait_pairs, &key, &one, BPF_NOEXIST) != 0) count(PAIRS_LOST);
    }
    return 0;
  }
  if (state != TCP_CLOSE_WAIT) {
    count(state & (STATES - 1));
    return 0;
  }
  struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
  if (!tp) return 0;
  const int unread = (int)(tp->rcv_nxt - tp->copied_seq);
  if (bpf_sk_storage_get(&known_close_wait, tp, 0, 0)) {
    count(TCP_CLOSE_WAIT);
    count(KNOWN);
    if (unread > 0) count(KNOWN_UNREAD);
    return 0;
  }
  struct close_wait_record r = {};
  r.cookie = bpf_get_socket_cookie(skc);
  r.local_port = skc->skc_num;
  r.remote_port = skc->skc_dport;
  r.recv_q = unread > 0 ? (__u32)unread : 0;
  // sock_i_ino(), as common/bpf/tcp_sockets.bpf.c reads it.
  const struct socket *socket = tp->inet_conn.icsk_inet.sk.sk_socket;
  if (socket) {
    const char *alloc = (const char *)socket - CORE_OFFSET(struct socket_alloc, socket);
    unsigned long ino = 0;
    bpf_probe_read_kernel(&ino, sizeof(ino),
                          alloc + CORE_OFFSET(struct socket_alloc, vfs_inode) +
                              CORE_OFFSET(struct inode, i_ino));
    r.inode = (__u32)ino;
  }
  // Counted and remembered only once its record is written: a record that does not fit the
  // seq_file's buffer is dropped and the program runs again for the same socket in the next
  // read(). kernel/bpf/bpf_iter.c, bpf_seq_read(), undoes the overflowing show(); the walk
  // resumes at that socket (net/ipv4/tcp_ipv4.c: bpf_iter_tcp_seq_stop() keeps the cookies of
  // the sockets not yet shown, bpf_iter_tcp_resume_bucket(); older kernels advance st->offset in
  // bpf_iter_tcp_seq_next() only past a socket shown). Remembering it first lost one per buffer.
  if (bpf_seq_write(ctx->meta->seq, &r, sizeof(r)) != 0) return 0;
  count(TCP_CLOSE_WAIT);
  __u64 *seen = bpf_sk_storage_get(&known_close_wait, tp, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (seen) *seen = 1;
  count(WRITTEN);
  return 0;
}

// bpf_seq_write and bpf_sk_storage_get are GPL-only helpers.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
