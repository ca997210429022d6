/* agent.c: the recovery agent's thread. Entered once from a managed thread through a function pointer
 * (so the thread is in preemptive mode for the runtime) and never returns to managed code until stopped:
 * while application threads sit blocked in the SIGBUS handler, a garbage collection started by any thread
 * cannot suspend them, and a managed agent would then wait for that GC forever. Here nothing waits for the
 * runtime.
 *
 * Per poisoned huge page (userspace's half of option 3 of the design debate; kernel paths in comments):
 *   1. refuse if another process maps or holds the file (hf_find_sharer): its mapping would keep the
 *      poisoned folio while ours moved on, and its reads would return data we no longer write;
 *   2. memfd_create + ftruncate a tmpfs replacement of the huge page's size, mapped at the region's
 *      reserved temporary address (MADV_HUGEPAGE when shmem THP is on);
 *   3. pread() the huge page from the hugetlbfs file into it. hugetlbfs_read_iter() with
 *      adjust_range_hwpoison() (fs/hugetlbfs/inode.c, v6.6 commit 38c1ddbde6c6) copies up to the first
 *      raw page on the folio's raw_hwp_list and returns short; a read that starts on such a page returns
 *      -EIO: that 4 KiB is lost, the next read starts after it;
 *   4. MADV_DONTNEED the temporary mapping (the tmpfs pages stay in the page cache), register it with
 *      userfaultfd (MISSING) and UFFDIO_POISON each run of lost pages (mfill_atomic_pte_poison() installs
 *      a PTE_MARKER_POISONED; a touch then faults VM_FAULT_HWPOISON: SIGBUS BUS_MCEERR_AR, si_addr_lsb 12,
 *      as the kernel's own 4 KiB poison would), unregister (markers stay);
 *   5. mremap(MREMAP_FIXED) the temporary mapping over the poisoned huge page: one atomic step under
 *      mmap_lock that unmaps the hugetlb range and moves the page tables, markers included (move_ptes()).
 *      A mmap(MAP_FIXED) of the memfd followed by UFFDIO_POISON would leave a window in which a thread
 *      reads the lost page as zeros;
 *   6. publish ST_RECOVERED on the page's futex word: the blocked threads return from the handler and
 *      their accesses retry against the replacement.
 * The hugetlbfs file is left alone: punching the poisoned folio out would neither return it to the pool
 * (memory_failure() keeps its reference on 6.12) nor keep other users' data.
 */
#include "hf.h"

#define SYS(c, nr, a, b, cc, d, e, f) ((c)->sys((nr), (s64)(a), (s64)(b), (s64)(cc), (s64)(d), (s64)(e), (s64)(f)))

struct uffdio_range { u64 start, len; };
struct uffdio_register { struct uffdio_range range; u64 mode, ioctls; };
struct uffdio_poison { struct uffdio_range range; u64 mode; s64 updated; };

static void publish(struct hf_ctl *c, struct hf_region *r, u64 i, u32 state)
{
  __atomic_store_n(&r->states[i], state, __ATOMIC_RELEASE);
  hf_futex_wake(&r->states[i], 0x7fffffff);
  __atomic_fetch_add(&c->done, 1, __ATOMIC_RELEASE);
  hf_futex_wake(&c->done, 0x7fffffff);
}

static void refuse(struct hf_ctl *c, struct hf_region *r, u64 i, u32 step, s64 err)
{
  r->pages[i].step = step;
  r->pages[i].err = (s32)err;
  publish(c, r, i, ST_FAILED);
}

/* Poison markers over each run of lost pages of huge page i (bits in the region's bitmap). */
static s64 poison_runs(struct hf_ctl *c, struct hf_region *r, u64 i, u64 t, u64 size)
{
  u64 first = (i << r->shift) >> 12, n = size >> 12;
  struct hf_page *pg = &r->pages[i];
  for (u64 k = 0; k < n;) {
    u64 b = first + k;
    if (!(r->lost[b / 64] & (1UL << (b % 64)))) { k++; continue; }
    u64 e = k;
    while (e < n && (r->lost[(first + e) / 64] & (1UL << ((first + e) % 64)))) e++;
    struct uffdio_poison p = {{t + (k << 12), (e - k) << 12}, 0, 0};
    s64 ret = SYS(c, __NR_ioctl, c->uffd, UFFDIO_POISON, &p, 0, 0, 0);
    pg->runs++;
    if (ret < 0) return ret;
    if (p.updated != (s64)((e - k) << 12)) return p.updated < 0 ? p.updated : -EIO;
    k = e;
  }
  return 0;
}

/* Fills the replacement mapped at t from the file; returns 0 or -errno. */
static s64 fill(struct hf_ctl *c, struct hf_region *r, u64 i, u64 t, u64 size)
{
  struct hf_page *pg = &r->pages[i];
  u64 foff = r->file_off + (i << r->shift), first = (i << r->shift) >> 12;
  u64 off = 0;
  while (off < size) {
    s64 n = SYS(c, __NR_pread64, r->fd, t + off, size - off, foff + off, 0, 0);
    if (n > 0) { off += (u64)n; pg->copied += (u64)n; continue; }
    if (n == -EINTR) continue;
    if (n == -EIO && !(off & 4095)) {
      u64 b = first + (off >> 12);
      r->lost[b / 64] |= 1UL << (b % 64);
      pg->lost++;
      off += 4096;
      continue;
    }
    return n == 0 ? -ENODATA : n;
  }
  return 0;
}

static void recover(struct hf_ctl *c, struct hf_region *r, u64 i)
{
  struct hf_page *pg = &r->pages[i];
  u64 size = 1UL << r->shift, va = r->start + (i << r->shift), t = r->reserve;
  pg->t_start = hf_now();
  pg->mfd = -1;

  s32 other = 0;
  u32 unins = 0;
  s64 e = hf_find_sharer(c, r, &other, &unins);
  pg->uninspected = unins;
  pg->t_scanned = hf_now();
  if (e < 0) return refuse(c, r, i, STEP_SCAN, e);
  if (other) { pg->other_pid = other; return refuse(c, r, i, STEP_SHARED, -EBUSY); }
  if (unins && (c->flags & HF_STRICT_SCAN)) return refuse(c, r, i, STEP_UNINSPECTED, -EACCES);

  s64 mfd = SYS(c, __NR_memfd_create, "hugefault-recovery", MFD_CLOEXEC, 0, 0, 0, 0);
  if (mfd < 0) return refuse(c, r, i, STEP_MEMFD, mfd);
  u32 step = STEP_FTRUNCATE;
  e = SYS(c, __NR_ftruncate, mfd, size, 0, 0, 0, 0);
  if (e < 0) goto close_fd;
  step = STEP_MMAP;
  e = SYS(c, __NR_mmap, t, size, r->prot, MAP_SHARED | MAP_FIXED, mfd, 0);
  if (e != (s64)t) { if (e >= 0) e = -EIO; goto close_fd; }
  if (c->flags & HF_THP) SYS(c, __NR_madvise, t, size, MADV_HUGEPAGE, 0, 0, 0);
  step = STEP_READ;
  if ((e = fill(c, r, i, t, size)) < 0) goto unmap;
  pg->t_filled = hf_now();
  step = STEP_DONTNEED;
  if ((e = SYS(c, __NR_madvise, t, size, MADV_DONTNEED, 0, 0, 0)) < 0) goto unmap;
  if (c->flags & HF_DONTFORK) SYS(c, __NR_madvise, t, size, MADV_DONTFORK, 0, 0, 0);
  if (pg->lost) {
    struct uffdio_register reg = {{t, size}, UFFDIO_REGISTER_MODE_MISSING, 0};
    step = STEP_REGISTER;
    if ((e = SYS(c, __NR_ioctl, c->uffd, UFFDIO_REGISTER, &reg, 0, 0, 0)) < 0) goto unmap;
    step = STEP_POISON;
    s64 pe = poison_runs(c, r, i, t, size);
    struct uffdio_range ur = {t, size};
    e = SYS(c, __NR_ioctl, c->uffd, UFFDIO_UNREGISTER, &ur, 0, 0, 0);
    if (pe < 0) { e = pe; goto unmap; }
    step = STEP_UNREGISTER;
    if (e < 0) goto unmap;
  }
  step = STEP_MREMAP;
  e = SYS(c, __NR_mremap, t, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, va, 0);
  if (e != (s64)va) {
    if (e >= 0) e = -EIO;
    /* mremap_to() unmaps the destination before moving: put the hugetlb mapping back (mainline state). */
    SYS(c, __NR_mmap, va, size, r->prot, MAP_SHARED | MAP_FIXED, r->fd, r->file_off + (i << r->shift));
    goto unmap;
  }
  SYS(c, __NR_mmap, t, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  pg->mfd = (s32)mfd;
  pg->t_swapped = hf_now();
  publish(c, r, i, ST_RECOVERED);
  return;
unmap:
  SYS(c, __NR_mmap, t, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
close_fd:
  SYS(c, __NR_close, mfd, 0, 0, 0, 0, 0);
  refuse(c, r, i, step, e);
}

/* The agent thread: early kill for itself, a higher priority than the application's threads (recovery time
 * should not depend on how busy the rest of the process is; who = 0 is the calling thread on Linux), then
 * wait for reports until stopped. */
__attribute__((used)) s64 hf_agent_run(struct hf_ctl *c)
{
  c->prctl_ret = SYS(c, __NR_prctl, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0, 0);
  if (c->nice) c->nice_ret = (s32)SYS(c, __NR_setpriority, PRIO_PROCESS, 0, c->nice, 0, 0, 0);
  __atomic_store_n(&c->started, 1, __ATOMIC_RELEASE);
  hf_futex_wake(&c->started, 0x7fffffff);
  for (;;) {
    u32 ev = __atomic_load_n(&c->events, __ATOMIC_ACQUIRE);
    int stop = __atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) != 0;
    int any = 0;
    u32 n = __atomic_load_n(&c->nregions, __ATOMIC_ACQUIRE);
    for (u32 ri = 0; ri < n; ri++) {
      struct hf_region *r = &c->regions[ri];
      u64 np = (r->end - r->start) >> r->shift;
      for (u64 i = 0; i < np; i++) {
        if (__atomic_load_n(&r->states[i], __ATOMIC_ACQUIRE) != ST_POISONED) continue;
        if (stop) refuse(c, r, i, STEP_STOPPED, 0);
        else recover(c, r, i);
        any = 1;
      }
    }
    if (stop) break;
    if (!any) hf_futex_wait(&c->events, ev);
  }
  __atomic_store_n(&c->started, 2, __ATOMIC_RELEASE);
  hf_futex_wake(&c->started, 0x7fffffff);
  return 0;
}
