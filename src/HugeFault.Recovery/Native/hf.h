/* hf.h: memory shared between the managed agent (Native/Layout.cs) and the native code of this folder.
 *
 * The native code is freestanding (no libc): tools/realkernel/gen-recovery-native.sh compiles it with clang
 * into one position-independent blob that HugeFault.Recovery copies into an executable mapping
 * (Native/Blob.g.cs). Every offset below is checked with _Static_assert and mirrored with [FieldOffset]
 * in Layout.cs; change both together.
 */
#ifndef HF_H
#define HF_H

typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned short u16;
typedef unsigned char u8;

#define HF_MAGIC 0x4846524543563031UL /* "HFRECV01" */
#define HF_MAX_REGIONS 16
#define HF_MAX_RECORDS 1024
#define HF_SCAN_BUF (64 * 1024)

/* states[] word of one huge page (also the futex the faulting threads wait on) */
#define ST_NORMAL 0    /* hugetlb, no error known */
#define ST_POISONED 1  /* a memory error was reported; the agent is (about to start) recovering */
#define ST_RECOVERED 2 /* the replacement is mapped; lost 4 KiB pages carry poison markers */
#define ST_FAILED 3    /* recovery refused or failed: the page stays as mainline leaves it */

/* hf_ctl.flags */
#define HF_THP 1         /* madvise(MADV_HUGEPAGE) the replacement (shmem THP is enabled) */
#define HF_STRICT_SCAN 2 /* refuse when some process's /proc entries cannot be read */
#define HF_DONTFORK 4    /* madvise(MADV_DONTFORK) the replacement, as Protect did to the range */

/* hf_page.step: where a recovery stopped (0 = it did not) */
#define STEP_NONE 0
#define STEP_SCAN 1        /* reading /proc to find other users of the file */
#define STEP_SHARED 2      /* another process maps or holds the file: refused */
#define STEP_UNINSPECTED 3 /* HF_STRICT_SCAN and a process could not be inspected: refused */
#define STEP_MEMFD 4
#define STEP_FTRUNCATE 5
#define STEP_MMAP 6
#define STEP_READ 7
#define STEP_DONTNEED 8
#define STEP_REGISTER 9
#define STEP_POISON 10
#define STEP_UNREGISTER 11
#define STEP_MREMAP 12
#define STEP_STOPPED 13 /* the agent was stopped (Dispose) before it got to this page */

/* hf_sigrec.action: what the handler did */
#define ACT_RETRIED 1   /* waited until the page was recovered, then retried the access */
#define ACT_FIXUP 2     /* a fault in hf_copy_mc: returned the bytes not copied */
#define ACT_AO_NOTED 3  /* BUS_MCEERR_AO for a protected page: recovery started */
#define ACT_CHAINED 4   /* not ours (or recovery failed): previous handler / default action */
#define ACT_AO_IGNORED 5

struct hf_sigrec {        /* 64 bytes */
  s32 signo, code;        /* 0, 4 */
  u64 addr;               /* 8   si_addr */
  s32 lsb, tid;           /* 16  si_addr_lsb, gettid() */
  u64 rip;                /* 24 */
  s64 t_fault, t_resume;  /* 32, 40 CLOCK_MONOTONIC ns */
  s32 action, pad;        /* 48 */
  u64 pad2;               /* 56 */
};

struct hf_page {          /* 128 bytes, one per huge page of a region */
  u64 first_addr;         /* 0   si_addr of the first report */
  s32 first_code;         /* 8 */
  s32 first_lsb;          /* 12 */
  s64 t_event;            /* 16  handler saw the first report */
  s64 t_start;            /* 24  agent started on it */
  s64 t_filled;           /* 32  replacement filled */
  s64 t_swapped;          /* 40  replacement mapped, threads released */
  u64 copied;             /* 48  bytes read into the replacement */
  u32 lost;               /* 56  raw 4 KiB pages that read EIO */
  u32 runs;               /* 60  UFFDIO_POISON calls */
  s32 mfd;                /* 64  replacement memfd, kept open (-1 = none) */
  s32 err;                /* 68  -errno of the failing step */
  u32 step;               /* 72  STEP_* */
  s32 other_pid;          /* 76  the process that also uses the file (STEP_SHARED) */
  u32 uninspected;        /* 80  processes whose /proc entries could not be read */
  u32 reported;           /* 84  managed reporter's mark */
  s64 t_scanned;          /* 88  /proc checked for other users of the file */
  u64 pad[4];             /* 96 */
};

struct hf_region {        /* 128 bytes */
  u64 start, end;         /* 0, 8   protected VA range, huge-page aligned */
  u64 file_off;           /* 16     file offset of start */
  u32 shift;              /* 24     huge page shift (21 or 30) */
  s32 fd;                 /* 28     the agent's own open file description of the hugetlbfs file */
  u32 *states;            /* 32 */
  struct hf_page *pages;  /* 40 */
  u64 *lost;              /* 48     bitmap: one bit per 4 KiB of the region */
  u64 dev, ino;           /* 56, 64 st_dev/st_ino of the file (for /proc/PID/fd) */
  s32 prot;               /* 72     protection of the range */
  u32 patlen;             /* 76 */
  char pattern[40];       /* 80     " MAJ:MIN INO " as /proc/PID/maps prints it */
  u64 reserve;            /* 120    temporary VA of one huge page (2 MiB aligned), PROT_NONE when idle */
};

typedef s64 (*hf_sys_fn)(s64 nr, s64 a1, s64 a2, s64 a3, s64 a4, s64 a5, s64 a6);

struct hf_ctl {
  u64 magic;              /* 0 */
  s32 pid;                /* 8    owner; a fork child's copy of this block is not its own */
  u32 nregions;           /* 12   published with release order after the region is filled */
  u32 events;             /* 16   futex: bumped by the handler */
  u32 done;               /* 20   futex: bumped by the agent after each page */
  u32 stop;               /* 24 */
  s32 uffd;               /* 28   userfaultfd with UFFD_FEATURE_POISON */
  u32 flags;              /* 32   HF_* */
  u32 started;            /* 36   futex: agent thread running (1), stopped (2) */
  hf_sys_fn sys;          /* 40   the kernel: hf_syscall, or a fake in tests */
  u64 prev_handler;       /* 48   SIGBUS handler before ours */
  u64 prev_flags;         /* 56 */
  u64 pad1[2];            /* 64 */
  u64 nrec;               /* 80   records written (lock xadd), may exceed HF_MAX_RECORDS */
  u64 scan_buf;           /* 88   HF_SCAN_BUF bytes for /proc reads (agent only) */
  s64 prctl_ret;          /* 96   prctl(PR_MCE_KILL) on the agent thread */
  s32 nice;               /* 104  setpriority() of the agent thread (0 = leave it) */
  s32 nice_ret;           /* 108 */
  u64 pad[2];             /* 112 */
  struct hf_region regions[HF_MAX_REGIONS]; /* 128 */
  struct hf_sigrec recs[HF_MAX_RECORDS];    /* 2176 */
};

#define OFFSET_CHECK(t, f, o) _Static_assert(__builtin_offsetof(struct t, f) == (o), #t "." #f)
OFFSET_CHECK(hf_sigrec, t_fault, 32); OFFSET_CHECK(hf_sigrec, action, 48);
_Static_assert(sizeof(struct hf_sigrec) == 64, "hf_sigrec");
OFFSET_CHECK(hf_page, copied, 48); OFFSET_CHECK(hf_page, mfd, 64); OFFSET_CHECK(hf_page, reported, 84); OFFSET_CHECK(hf_page, t_scanned, 88);
_Static_assert(sizeof(struct hf_page) == 128, "hf_page");
OFFSET_CHECK(hf_region, states, 32); OFFSET_CHECK(hf_region, dev, 56); OFFSET_CHECK(hf_region, pattern, 80); OFFSET_CHECK(hf_region, reserve, 120);
_Static_assert(sizeof(struct hf_region) == 128, "hf_region");
OFFSET_CHECK(hf_ctl, sys, 40); OFFSET_CHECK(hf_ctl, prctl_ret, 96); OFFSET_CHECK(hf_ctl, nice, 104); OFFSET_CHECK(hf_ctl, regions, 128);
OFFSET_CHECK(hf_ctl, recs, 128 + 16 * 128);

/* x86-64 syscall numbers and uapi constants, spelled as in the kernel */
#define __NR_read 0
#define __NR_close 3
#define __NR_mmap 9
#define __NR_rt_sigaction 13
#define __NR_ioctl 16
#define __NR_pread64 17
#define __NR_mremap 25
#define __NR_madvise 28
#define __NR_getpid 39
#define __NR_ftruncate 77
#define __NR_setpriority 141
#define __NR_prctl 157
#define __NR_gettid 186
#define __NR_futex 202
#define __NR_getdents64 217
#define __NR_clock_gettime 228
#define __NR_tgkill 234
#define __NR_openat 257
#define __NR_newfstatat 262
#define __NR_memfd_create 319

#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_DIRECTORY 0x10000
#define O_CLOEXEC 0x80000
#define PROT_NONE 0
#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MADV_DONTNEED 4
#define MADV_DONTFORK 10
#define MADV_HUGEPAGE 14
#define MFD_CLOEXEC 1
#define PRIO_PROCESS 0
#define PR_MCE_KILL 33
#define PR_MCE_KILL_SET 1
#define PR_MCE_KILL_EARLY 1
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define CLOCK_MONOTONIC 1
#define SIGBUS 7
#define SA_SIGINFO 4
#define BUS_MCEERR_AR 4
#define BUS_MCEERR_AO 5
#define EINTR 4
#define EIO 5
#define EACCES 13
#define ENOENT 2
#define ESRCH 3
#define EBUSY 16
#define ENODATA 61
#define UFFDIO_REGISTER 0xC020AA00UL
#define UFFDIO_UNREGISTER 0x8010AA01UL
#define UFFDIO_POISON 0xC020AA08UL
#define UFFDIO_REGISTER_MODE_MISSING 1

/* raw syscall (handler.c); the agent reaches the kernel through ctl->sys instead */
static inline s64 hf_raw6(s64 n, s64 a, s64 b, s64 c, s64 d, s64 e, s64 f)
{
  register s64 r10 __asm__("r10") = d;
  register s64 r8 __asm__("r8") = e;
  register s64 r9 __asm__("r9") = f;
  s64 ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

static inline s64 hf_now(void)
{
  s64 ts[2];
  hf_raw6(__NR_clock_gettime, CLOCK_MONOTONIC, (s64)ts, 0, 0, 0, 0);
  return ts[0] * 1000000000L + ts[1];
}

static inline void hf_futex_wake(u32 *w, s32 n) { hf_raw6(__NR_futex, (s64)w, FUTEX_WAKE_PRIVATE, n, 0, 0, 0); }
static inline void hf_futex_wait(u32 *w, u32 v) { hf_raw6(__NR_futex, (s64)w, FUTEX_WAIT_PRIVATE, v, 0, 0, 0); }

/* agent.c */
s64 hf_find_sharer(struct hf_ctl *c, struct hf_region *r, s32 *other, u32 *uninspected);

#endif
