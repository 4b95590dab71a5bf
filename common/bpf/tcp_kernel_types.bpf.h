// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
// The kernel types and helpers an iter/tcp program reads (tcp_sockets.bpf.c, and
// bench/walk_floor.bpf.c). No vmlinux.h: each type is declared with preserve_access_index and
// only the fields read, so libbpf relocates every field offset (CO-RE) against the running
// kernel's BTF at load time (see socket_fds.bpf.c).
#pragma once

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define CORE __attribute__((preserve_access_index))
#define CORE_OFFSET(type, field) __builtin_preserve_field_info(((type*)0)->field, 0)
#define CORE_ADDR(expr) __builtin_preserve_access_index(&(expr))

struct seq_file;

struct bpf_iter_meta {
  struct seq_file* seq;
} CORE;

struct hlist_node {
  struct hlist_node* next;
  struct hlist_node** pprev;
} CORE;

struct timer_list {
  struct hlist_node entry;
  unsigned long expires;
} CORE;

struct in6_addr {
  union {
    __u32 u6_addr32[4];
  } in6_u;
} CORE;

struct sock_common {
  union {
    struct {
      __u32 skc_daddr;
      __u32 skc_rcv_saddr;
    };
  };
  union {
    struct {
      __u16 skc_dport;
      __u16 skc_num;
    };
  };
  unsigned short skc_family;
  volatile unsigned char skc_state;
  struct in6_addr skc_v6_daddr;
  struct in6_addr skc_v6_rcv_saddr;
} CORE;

struct kernfs_node {
  __u64 id;
} CORE;

struct cgroup {
  struct kernfs_node* kn;
} CORE;

struct sock_cgroup_data {
  struct cgroup* cgroup;
} CORE;

struct socket;
struct sock {
  struct sock_common __sk_common;
  struct socket* sk_socket;
  struct timer_list sk_timer;
  __u32 sk_ack_backlog;
  __u32 sk_max_ack_backlog;
  struct sock_cgroup_data sk_cgrp_data;
} CORE;

struct inet_sock {
  struct sock sk;
} CORE;

struct inet_connection_sock {
  struct inet_sock icsk_inet;
  struct timer_list icsk_retransmit_timer;
  __u8 icsk_retransmits;
  __u8 icsk_pending;
  __u8 icsk_probes_out;
} CORE;

struct tcp_sock {
  struct inet_connection_sock inet_conn;
  __u32 copied_seq;
  __u32 write_seq;
  __u32 rcv_nxt;
  __u32 snd_una;
} CORE;

struct inet_timewait_sock {
  struct sock_common __tw_common;
  unsigned char tw_substate;
  struct timer_list tw_timer;
} CORE;

struct request_sock {
  struct sock_common __req_common;
  __u8 num_retrans;
  struct timer_list rsk_timer;
} CORE;

struct inode {
  unsigned long i_ino;
} CORE;

struct socket {
} CORE;

struct socket_alloc {
  struct socket socket;
  struct inode vfs_inode;
} CORE;

struct bpf_iter__tcp {
  union {
    struct bpf_iter_meta* meta;
  };
  union {
    struct sock_common* sk_common;
  };
  __u32 uid;
} CORE;

// Helper numbers from include/uapi/linux/bpf.h, declared as libbpf's bpf_helper_defs.h does.
static __u64 (*bpf_get_socket_cookie)(void* sk) = (void*)46;
static long (*bpf_probe_read_kernel)(void* dst, __u32 size, const void* unsafe_ptr) = (void*)113;
static __u64 (*bpf_jiffies64)(void) = (void*)118;
static long (*bpf_seq_write)(struct seq_file* m, const void* data, __u32 len) = (void*)127;
static struct tcp_sock* (*bpf_skc_to_tcp_sock)(void* sk) = (void*)137;
