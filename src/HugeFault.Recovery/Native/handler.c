/* handler.c: the SIGBUS handler of HugeFault.Recovery and the checked copy it can fix up.
 *
 * Runs on whatever thread the kernel picked, in any state of the .NET runtime (an asynchronous
 * BUS_MCEERR_AO can interrupt managed code anywhere), so it touches nothing but the control block and
 * makes raw syscalls only (futex, getpid, gettid, clock_gettime, rt_sigaction, tgkill).
 *
 * A memory error in a protected huge page (si_addr inside a region, the page not yet recovered):
 *   - marks the page ST_POISONED (first reporter records si_addr/si_code/si_addr_lsb) and wakes the agent;
 *   - BUS_MCEERR_AO (early kill, arch/x86 kill_proc() -> send_sig_mceerr): returns at once;
 *   - BUS_MCEERR_AR (the thread touched the page, or injected the error: kill_proc()/do_sigbus() use
 *     force_sig_mceerr): futex-waits on the page's state word until the agent publishes
 *     ST_RECOVERED, then returns, so the faulting instruction re-executes against the replacement.
 * Anything else (a lost 4 KiB page after recovery: AR with si_addr_lsb 12 from the UFFDIO_POISON marker;
 * a failed recovery; memory that is not ours; a fork child, whose copy of the block names another pid):
 *   - a fault inside hf_copy_mc: RIP := hf_copy_fix, which returns the bytes not copied (like the
 *     kernel's copy_mc_to_user() extable fixup);
 *   - otherwise the previous handler is called, or SIGBUS is reset to SIG_DFL and re-raised, so the
 *     thread dies exactly as it would without the agent.
 */
#include "hf.h"

/* The blob's only global, set by NativeBlob.cs before the handler is installed. Kept in .data (not .bss)
 * so that it is part of the flat image. */
__attribute__((section(".data"), used)) struct hf_ctl *g_ctl = 0;

/* glibc/kernel x86-64: siginfo si_code +8, si_addr +16, si_addr_lsb +24 (short);
 * ucontext uc_mcontext.gregs[REG_RIP] +168. */
#define SI_CODE(si) (*(s32 *)((u8 *)(si) + 8))
#define SI_ADDR(si) (*(u64 *)((u8 *)(si) + 16))
#define SI_LSB(si) ((s32) * (u16 *)((u8 *)(si) + 24))
#define UC_RIP(uc) ((u64 *)((u8 *)(uc) + 168))

/* hf_copy_mc(dst, src, n) -> bytes NOT copied. rep movsb leaves the remaining count in rcx when it
 * faults; the handler moves RIP from hf_copy_insn to hf_copy_fix. */
__asm__(".text\n"
        ".globl hf_copy_mc, hf_copy_insn, hf_copy_fix\n"
        ".hidden hf_copy_mc, hf_copy_insn, hf_copy_fix\n"
        "hf_copy_mc:\n"
        "  mov %rdx, %rcx\n"
        "hf_copy_insn:\n"
        "  rep movsb\n"
        "  mov %rcx, %rax\n"
        "  ret\n"
        "hf_copy_fix:\n"
        "  mov %rcx, %rax\n"
        "  ret\n");
extern char hf_copy_insn[] __attribute__((visibility("hidden"))), hf_copy_fix[] __attribute__((visibility("hidden")));

/* The production kernel interface: one raw syscall, -errno on failure. */
__attribute__((used)) s64 hf_syscall(s64 nr, s64 a1, s64 a2, s64 a3, s64 a4, s64 a5, s64 a6)
{
  return hf_raw6(nr, a1, a2, a3, a4, a5, a6);
}

static struct hf_sigrec *record(struct hf_ctl *c, s32 sig, s32 code, u64 addr, s32 lsb, u64 rip)
{
  u64 n = __atomic_fetch_add(&c->nrec, 1, __ATOMIC_RELAXED);
  if (n >= HF_MAX_RECORDS) return 0;
  struct hf_sigrec *r = &c->recs[n];
  r->signo = sig; r->code = code; r->addr = addr; r->lsb = lsb; r->rip = rip;
  r->tid = (s32)hf_raw6(__NR_gettid, 0, 0, 0, 0, 0, 0);
  r->t_fault = hf_now();
  return r;
}

static void set_action(struct hf_sigrec *r, s32 a)
{
  if (r) __atomic_store_n(&r->action, a, __ATOMIC_RELEASE);
}

static struct hf_region *find_region(struct hf_ctl *c, u64 addr)
{
  u32 n = __atomic_load_n(&c->nregions, __ATOMIC_ACQUIRE);
  for (u32 i = 0; i < n; i++)
    if (addr >= c->regions[i].start && addr < c->regions[i].end) return &c->regions[i];
  return 0;
}

/* The page was reported: mark it, wake the agent; AR waits for the outcome. Returns the final state,
 * or ST_POISONED for an AO (nothing to wait for). */
static u32 report(struct hf_ctl *c, struct hf_region *r, u64 addr, s32 code, s32 lsb)
{
  u64 i = (addr - r->start) >> r->shift;
  u32 *st = &r->states[i];
  u32 expect = ST_NORMAL;
  if (__atomic_compare_exchange_n(st, &expect, ST_POISONED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    struct hf_page *pg = &r->pages[i];
    pg->first_addr = addr; pg->first_code = code; pg->first_lsb = lsb;
    pg->t_event = hf_now();
  }
  __atomic_fetch_add(&c->events, 1, __ATOMIC_RELEASE);
  hf_futex_wake(&c->events, 1);
  if (code == BUS_MCEERR_AO) return ST_POISONED;
  for (;;) {
    u32 s = __atomic_load_n(st, __ATOMIC_ACQUIRE);
    if (s == ST_RECOVERED || s == ST_FAILED) return s;
    hf_futex_wait(st, s);
  }
}

static void chain(struct hf_ctl *c, s32 sig, void *si, void *uc)
{
  u64 prev = c->prev_handler;
  if (prev > 1) {
    if (c->prev_flags & SA_SIGINFO) ((void (*)(int, void *, void *))prev)(sig, si, uc);
    else ((void (*)(int))prev)(sig);
    return;
  }
  /* SIG_DFL (or SIG_IGN, which the kernel overrides for a forced SIGBUS anyway): die of SIGBUS now, as the
   * thread would have without the agent. The re-raised signal is pending until this handler returns. */
  u64 act[4] = {0, 0, 0, 0};
  hf_raw6(__NR_rt_sigaction, SIGBUS, (s64)act, 0, 8, 0, 0);
  hf_raw6(__NR_tgkill, hf_raw6(__NR_getpid, 0, 0, 0, 0, 0, 0), hf_raw6(__NR_gettid, 0, 0, 0, 0, 0, 0), SIGBUS, 0, 0, 0);
}

__attribute__((used)) void hf_handler(int sig, void *si, void *uc)
{
  struct hf_ctl *c = g_ctl;
  s32 code = SI_CODE(si);
  u64 addr = SI_ADDR(si);
  s32 lsb = SI_LSB(si);
  u64 *rip = UC_RIP(uc);
  struct hf_sigrec *rec = record(c, sig, code, addr, lsb, *rip);
  int mce = code == BUS_MCEERR_AR || code == BUS_MCEERR_AO;
  if (mce && (s32)hf_raw6(__NR_getpid, 0, 0, 0, 0, 0, 0) == c->pid) {
    struct hf_region *r = find_region(c, addr);
    if (r) {
      u32 s = __atomic_load_n(&r->states[(addr - r->start) >> r->shift], __ATOMIC_ACQUIRE);
      if (s == ST_NORMAL || s == ST_POISONED) {
        s = report(c, r, addr, code, lsb);
        if (rec) rec->t_resume = hf_now();
        if (s == ST_POISONED) { set_action(rec, ACT_AO_NOTED); return; }
        if (s == ST_RECOVERED) { set_action(rec, ACT_RETRIED); return; }
      }
    }
  }
  if (code == BUS_MCEERR_AO) { set_action(rec, ACT_AO_IGNORED); return; }
  if (*rip == (u64)hf_copy_insn) {
    *rip = (u64)hf_copy_fix;
    set_action(rec, ACT_FIXUP);
    return;
  }
  set_action(rec, ACT_CHAINED);
  chain(c, sig, si, uc);
}
