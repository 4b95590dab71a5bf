// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
// Every TCP socket of one network namespace: a BPF iter/tcp program, the kernel's own walk of
// its socket hash tables, in place of an inet_diag dump. The kernel calls `tcp_sockets` once per
// socket (net/ipv4/tcp_ipv4.c, bpf_iter_tcp_seq_show(): listening sockets first, then the
// established hash with its TIME_WAIT and request sockets) of the namespace the reader was in
// when it created the iterator (net/core/net_namespace.c, bpf_iter_init_seq_net(): current's
// netns). It writes one fixed-size record per socket holding exactly what inet_diag reports for
// it, so that both paths give one snapshot: net/ipv4/inet_diag.c, inet_diag_msg_common_fill(),
// inet_sk_diag_fill(), inet_twsk_diag_fill(), inet_req_diag_fill(), and net/ipv4/tcp_diag.c,
// tcp_diag_get_info().
//
// A record is one 80-byte seq_write instead of a netlink message with its attributes built
// for every socket: the walk costs the kernel's hash walk and one small copy.
//
// No vmlinux.h: the kernel types are declared in tcp_kernel_types.bpf.h (preserve_access_index).
// Needs Linux >= 5.15 with BTF (iter/tcp since 5.9, bpf_get_socket_cookie() for tracing
// programs since 5.12, sock_cgroup_data.cgroup since 5.15: elsewhere the load fails and the
// dump is used), and the kernel's configuration readable by libbpf (/proc/config.gz or
// /boot/config-*) for CONFIG_HZ.
//
// The record layout is shared with common/core/tcp_walk_records.hpp (TcpWalkRecord, which
// decodes it): keep both in step.

#include "tcp_kernel_types.bpf.h"

// Resolved by libbpf from the running kernel's configuration.
extern unsigned int CONFIG_HZ __attribute__((section(".kconfig")));

// include/net/tcp_states.h, include/uapi/linux/socket.h, include/net/inet_connection_sock.h.
#define AF_INET 2
#define TCP_SYN_RECV 3
#define TCP_TIME_WAIT 6
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12
#define ICSK_TIME_RETRANS 1
#define ICSK_TIME_PROBE0 3
#define ICSK_TIME_LOSS_PROBE 5
#define ICSK_TIME_REO_TIMEOUT 6

// Set in tcp_socket_record.family for a full socket (not TIME_WAIT, not a request socket).
#define FULL_SOCKET 0x80

// 80 bytes, no implicit padding. Addresses and ports in network byte order, as inet_diag sends
// them.
struct tcp_socket_record {
  __u32 local[4];   // IPv4 in local[0]
  __u32 remote[4];  // IPv4 in remote[0]
  __u64 cookie;
  __u64 cgroup_id;  // 0 for TIME_WAIT and request sockets, which have no cgroup
  __u32 inode;
  __u32 uid;
  __u32 recv_q;
  __u32 send_q;
  __u32 timer_ms;
  __u16 local_port;
  __u16 remote_port;
  __u8 family;  // AF_INET or AF_INET6, with FULL_SOCKET
  __u8 state;
  __u8 timer;
  __u8 retransmits;
  __u32 reserved;
};

// jiffies_to_msecs() of include/linux/jiffies.h for a delta clamped at 0, as
// jiffies_delta_to_msecs() gives it.
static __u32 remaining_ms(unsigned long expires) {
  const long delta = (long)(expires - bpf_jiffies64());
  if (delta <= 0) return 0;
  const __u64 hz = CONFIG_HZ;
  if (hz == 0) return 0;
  if (1000 % hz == 0) return (__u32)((__u64)delta * (1000 / hz));
  return (__u32)(((__u64)delta * 1000 + hz - 1) / hz);
}

static void fill_common(struct tcp_socket_record *r, const struct sock_common *skc) {
  r->family = (__u8)skc->skc_family;
  r->local_port = (__u16)((skc->skc_num >> 8) | (skc->skc_num << 8));  // htons(sk_num)
  r->remote_port = skc->skc_dport;
  if (skc->skc_family == AF_INET) {
    r->local[0] = skc->skc_rcv_saddr;
    r->remote[0] = skc->skc_daddr;
  } else {
    for (int i = 0; i < 4; i++) {
      r->local[i] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[i];
      r->remote[i] = skc->skc_v6_daddr.in6_u.u6_addr32[i];
    }
  }
}

// sock_i_ino(): the inode of the socket's struct socket, which lives in the same socket_alloc.
static __u32 socket_inode(const struct sock *sk) {
  const struct socket *socket = sk->sk_socket;
  if (!socket) return 0;
  const char *alloc = (const char *)socket - CORE_OFFSET(struct socket_alloc, socket);
  const char *inode = alloc + CORE_OFFSET(struct socket_alloc, vfs_inode);
  unsigned long ino = 0;
  bpf_probe_read_kernel(&ino, sizeof(ino), inode + CORE_OFFSET(struct inode, i_ino));
  return (__u32)ino;
}

static void fill_full(struct tcp_socket_record *r, const struct tcp_sock *tp, __u32 uid) {
  const struct inet_connection_sock *icsk = &tp->inet_conn;
  const struct sock *sk = &icsk->icsk_inet.sk;
  r->state = sk->__sk_common.skc_state;
  r->uid = uid;  // the iterator's sock_i_uid(sk), as inet_diag_msg_attrs_fill() reports it
  r->inode = socket_inode(sk);
  // Full sockets have a cgroup, sent as INET_DIAG_CGROUP_ID (inet_diag_msg_attrs_fill()).
  r->family |= FULL_SOCKET;
  const struct cgroup *cgroup = sk->sk_cgrp_data.cgroup;
  if (cgroup && cgroup->kn) r->cgroup_id = cgroup->kn->id;
  if (r->state == TCP_LISTEN) {
    r->recv_q = sk->sk_ack_backlog;
    r->send_q = sk->sk_max_ack_backlog;
  } else {
    const int unread = (int)(tp->rcv_nxt - tp->copied_seq);
    r->recv_q = unread > 0 ? (__u32)unread : 0;
    r->send_q = tp->write_seq - tp->snd_una;
  }
  const __u8 pending = icsk->icsk_pending;
  if (pending == ICSK_TIME_RETRANS || pending == ICSK_TIME_REO_TIMEOUT ||
      pending == ICSK_TIME_LOSS_PROBE) {
    r->timer = 1;
    r->retransmits = icsk->icsk_retransmits;
    r->timer_ms = remaining_ms(icsk->icsk_retransmit_timer.expires);
  } else if (pending == ICSK_TIME_PROBE0) {
    r->timer = 4;
    r->retransmits = icsk->icsk_probes_out;
    r->timer_ms = remaining_ms(icsk->icsk_retransmit_timer.expires);
  } else if (sk->sk_timer.entry.pprev) {  // timer_pending(&sk->sk_timer): keepalive
    r->timer = 2;
    r->retransmits = icsk->icsk_probes_out;
    r->timer_ms = remaining_ms(sk->sk_timer.expires);
  }
}

SEC("iter/tcp")
int tcp_sockets(struct bpf_iter__tcp *ctx) {
  struct sock_common *skc = ctx->sk_common;
  if (!skc) return 0;  // the call at the end of the walk
  struct tcp_socket_record r = {};
  fill_common(&r, skc);
  r.cookie = bpf_get_socket_cookie(skc);  // sock_gen_cookie(), as sock_diag_save_cookie()

  // Timewait and request sockets are told by their state and read through relocated offsets:
  // bpf_skc_to_tcp_timewait_sock() and bpf_skc_to_tcp_request_sock() (net/core/filter.c) know
  // IPv6 ones only when IPv6 is built in, and would drop them where it is a module.
  const unsigned char state = skc->skc_state;
  if (state == TCP_TIME_WAIT) {
    // FIN_WAIT2 or TIME_WAIT (tw_substate); no owner, no queues.
    const struct inet_timewait_sock *tw = (const void *)skc;
    unsigned char substate = 0;
    unsigned long expires = 0;
    bpf_probe_read_kernel(&substate, sizeof(substate), CORE_ADDR(tw->tw_substate));
    bpf_probe_read_kernel(&expires, sizeof(expires), CORE_ADDR(tw->tw_timer.expires));
    r.state = substate;
    r.timer = 3;
    r.timer_ms = remaining_ms(expires);
  } else if (state == TCP_NEW_SYN_RECV) {
    const struct request_sock *req = (const void *)skc;
    __u8 retransmits = 0;
    unsigned long expires = 0;
    bpf_probe_read_kernel(&retransmits, sizeof(retransmits), CORE_ADDR(req->num_retrans));
    bpf_probe_read_kernel(&expires, sizeof(expires), CORE_ADDR(req->rsk_timer.expires));
    r.state = TCP_SYN_RECV;
    r.timer = 1;
    r.retransmits = retransmits;
    r.timer_ms = remaining_ms(expires);
  } else {
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0;
    fill_full(&r, tp, ctx->uid);
  }
  bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
  return 0;
}

// bpf_seq_write is a GPL-only helper (see socket_fds.bpf.c).
char LICENSE[] SEC("license") = "Dual BSD/GPL";
