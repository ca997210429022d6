using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

/// <summary>What a page fault came to (the vm_fault_t bits the model distinguishes).</summary>
public enum FaultKind
{
    Mapped,
    /// <summary>VM_FAULT_SIGBUS: no page could be had (BUS_ADRERR).</summary>
    Sigbus,
    /// <summary>VM_FAULT_HWPOISON / VM_FAULT_HWPOISON_LARGE: BUS_MCEERR_AR with si_addr_lsb = Shift.</summary>
    Hwpoison,
    /// <summary>No VMA, or a write to a read-only VMA.</summary>
    Segv,
    /// <summary>handle_userfault(): the fault waits for the userfaultfd handler.</summary>
    Userfault,
    Oom,
}

public readonly record struct FaultResult(FaultKind Kind, int Shift = 0)
{
    public static readonly FaultResult Ok = new(FaultKind.Mapped);
}

/// <summary>How far a load/store got.</summary>
public sealed record AccessResult(ulong Done, string Outcome, bool Blocked = false);

// Page faults and user memory accesses (mm/memory.c handle_mm_fault, mm/hugetlb.c hugetlb_fault/hugetlb_no_page/hugetlb_wp, arch/x86/mm/fault.c).
public sealed partial class Kernel
{
    /// <summary>handle_mm_fault() for the page holding va.</summary>
    internal FaultResult HandleMmFault(TaskStruct t, Vma vma, ulong va, bool write, bool fromGup = false)
    {
        if (write && (vma.Flags & VmFlags.VM_WRITE) == 0) return new(FaultKind.Segv);
        if (vma.IsHugetlb) return HugetlbFault(t, vma, va, write);
        return PageFault4K(t, vma, va, write);
    }

    /// <summary>
    /// hugetlb_fault(): a hwpoison entry or poison marker gives VM_FAULT_HWPOISON_LARGE (the policy may narrow
    /// it); an empty entry goes to hugetlb_no_page(); a write to a read-only private entry to hugetlb_wp().
    /// </summary>
    private FaultResult HugetlbFault(TaskStruct t, Vma vma, ulong va, bool write)
    {
        var h = vma.Hstate!;
        var r = Walk(t.Mm, va);
        var e = r.Entry;
        bool leafLevel = r.Shift <= h.Shift;
        if (leafLevel && (e.IsHwpoison || e.IsPoisonMarker))
            return new(FaultKind.Hwpoison, Policy.FaultShift(this, vma, r));
        if (leafLevel && e.Present)
        {
            if (IsUffdWpFault(vma, e, write)) return HandleUserfault(vma, UffdFaultAddress(vma, va)); // hugetlb_fault(): handle_userfault(VM_UFFD_WP)
            if (write && !e.Writable) return HugetlbWp(t, vma, va, r);
            return FaultResult.Ok;
        }
        return HugetlbNoPage(t, vma, va, write, leafLevel ? r : null);
    }

    /// <summary>hugetlb_no_page(): find the folio in the page cache (refusing a PG_hwpoison one) or allocate, zero and map it.</summary>
    private FaultResult HugetlbNoPage(TaskStruct t, Vma vma, ulong va, bool write, PteRef? existing)
    {
        var h = vma.Hstate!;
        var inode = vma.File!;
        ulong foff = vma.FileOffset(va);
        ulong idx = foff >> h.Shift;
        ulong hva = Units.AlignDown(va, h.Size);
        bool privateMap = !vma.IsShared;
        if (foff >= Units.AlignUp(inode.Size, h.Size) && !inode.Internal) return new(FaultKind.Sigbus);

        Folio? folio = null;
        bool anonNew = false;
        // the page cache is looked up for private write faults too: the new private folio is a copy of the file's
        // page (hugetlb_no_page() maps it, then hugetlb_wp() copies), not a zero page
        {
            inode.PageCache.TryGetValue(idx, out folio);
            if (folio is not null && folio.IsHwpoison && !Policy.AllowFaultOnPoisonedFolio(this, vma, folio, va))
                return new(FaultKind.Hwpoison, Policy.NoPageHwpoisonShift(this, vma, folio, va));
            // after the PG_hwpoison check: a page-cache hit in a MINOR-registered VMA is a minor userfault
            if (folio is not null && (vma.Flags & VmFlags.VM_UFFD_MINOR) != 0 && vma.Uffd is not null)
                return HandleUserfault(vma, UffdFaultAddress(vma, va));
            if (privateMap && write && folio is not null && Phys.FirstPoisonedLine(folio.PhysAddr, folio.Size) is not null)
                return new(FaultKind.Hwpoison, h.Shift); // copy_user_large_folio() meets the poison: VM_FAULT_HWPOISON_LARGE
        }
        if (privateMap && inode.Internal && folio is null) anonNew = true; // anonymous private hugetlb: never in a page cache
        if (folio is null || (privateMap && write))
        {
            if ((vma.Flags & VmFlags.VM_UFFD_MISSING) != 0 && vma.Uffd is not null && folio is null)
                return HandleUserfault(vma, UffdFaultAddress(vma, va));
            var src = folio;
            bool resv;
            if (privateMap) resv = vma.PrivateResv?.Remove(idx) ?? false;
            else resv = inode.SharedResv.Remove(idx);
            var nf = AllocHugetlbFolio(h, resv);
            if (nf is null) { if (resv) { if (privateMap) vma.PrivateResv!.Add(idx); else inode.SharedResv.Add(idx); } return new(FaultKind.Sigbus); }
            nf.EnsureContent().Clear(); // folio_zero_user()
            if (src is not null) { CopyFolioContent(src, nf); }
            if (privateMap)
            {
                nf.Flags = nf.Flags.With(PageFlags.PG_anon);
                nf.AnonVma = vma.AnonVma; nf.Index = idx;
                anonNew = true;
                nf.RefCount--; // the mapping's reference replaces the allocation's
            }
            else { HugetlbAddToPageCache(inode, idx, nf); nf.RefCount--; }
            folio = nf;
        }
        if (folio.IsHwpoison && !anonNew)
        {
            bool w0 = vma.IsShared && (vma.Flags & VmFlags.VM_WRITE) != 0;
            if (Policy.MapPoisonedFolio(this, vma, folio, hva, w0)) return FaultResult.Ok;
        }
        if (folio.FakePoisonCount > 0 && existing is null)
        {
            bool w1 = vma.IsShared ? (vma.Flags & VmFlags.VM_WRITE) != 0 : anonNew && (vma.Flags & VmFlags.VM_WRITE) != 0;
            vma.Flags |= VmFlags.VM_HUGETLB_HGM;
            if (MapAroundPages(vma, folio, hva, w1, folio.FakePoison, marker: true)) return FaultResult.Ok;
        }
        var r = existing ?? WalkAlloc(vma.Mm, hva, h.Order == H1G.Order ? PtLevel.Pud : PtLevel.Pmd);
        if (r is null) { return new(FaultKind.Oom); }
        var rr = r.Value;
        ulong pfn = folio.Pfn + ((rr.Va - hva) >> Units.PAGE_SHIFT);
        bool writable = vma.IsShared ? (vma.Flags & VmFlags.VM_WRITE) != 0 : anonNew && (vma.Flags & VmFlags.VM_WRITE) != 0;
        bool dirty = writable && (vma.IsShared || write);
        if (!anonNew && !vma.IsShared) writable = false;
        bool wpMarker = rr.Entry.IsUffdWpMarker;
        InstallLeaf(rr, folio, pfn, writable, dirty);
        // a uffd-wp marker keeps the page write-protected: hugetlb_no_page() maps it read-only with the uffd-wp bit
        if (wpMarker && (vma.Flags & VmFlags.VM_UFFD_WP) != 0) rr.Table.Set(rr.Index, rr.Entry.WithUffdWp(true));
        return FaultResult.Ok;
    }

    /// <summary>hugetlb_wp(): reuse a sole-owner anonymous folio, else copy into a new one (copy_user_large_folio, machine-check safe).</summary>
    private FaultResult HugetlbWp(TaskStruct t, Vma vma, ulong va, PteRef r)
    {
        var e = r.Entry;
        // "Let's take out MAP_SHARED mappings first": a shared entry becomes writable (read-only after uffd-wp)
        if (vma.IsShared)
        {
            r.Table.Set(r.Index, new Pte(e.WithWritable(true).Raw | Pte._PAGE_DIRTY));
            Stats.EntriesWritten++;
            return FaultResult.Ok;
        }
        var old = Phys.FolioOf(e.Pfn)!;
        if (old.IsAnon && old.Mapcount == 1)
        {
            r.Table.Set(r.Index, new Pte(e.WithWritable(true).Raw | Pte._PAGE_DIRTY));
            Stats.EntriesWritten++;
            return FaultResult.Ok;
        }
        var h = vma.Hstate!;
        if (old.IsHwpoison || Phys.FirstPoisonedLine(old.PhysAddr, old.Size) is not null)
            return new(FaultKind.Hwpoison, h.Shift);
        ulong idx = vma.FileOffset(va) >> h.Shift;
        bool resv = vma.PrivateResv?.Remove(idx) ?? false;
        var nf = AllocHugetlbFolio(h, resv);
        if (nf is null) { if (resv) vma.PrivateResv!.Add(idx); return new(FaultKind.Sigbus); } // restore_reserve_on_error()
        CopyFolioContent(old, nf);
        nf.Flags = nf.Flags.With(PageFlags.PG_anon);
        nf.AnonVma = vma.AnonVma; nf.Index = idx;
        nf.RefCount--;
        // break COW: every leaf of this mapping's huge range that maps the old folio moves to the copy at its own offset
        // (one PUD/PMD leaf; or the 4 KiB pieces of a design that maps hugetlb at 4 KiB, e.g. copy-around's
        // fake-poisoned copy: mapping the copy's first page at the faulting piece faulted again per piece), bracketed by
        // mmu_notifier_invalidate_range_start/end over [haddr, haddr + huge_page_size(h)) so KVM drops its EPT mapping
        // of the old folio (hugetlb_wp(): mmu_notifier_range_init(MMU_NOTIFY_CLEAR, ..., haddr, haddr + huge_page_size(h)))
        ulong hva = Units.AlignDown(va, h.Size);
        var leaves = new List<FolioLeaf>();
        CollectFolioLeaves(t.Mm, hva, hva + h.Size, old, leaves);
        MmuNotifierInvalidate(t.Mm, hva, h.Size);
        RemapFolioLeaves(leaves, nf, makeWritable: true);
        return FaultResult.Ok;
    }

    internal void CopyFolioContent(Folio src, Folio dst)
    {
        var dc = dst.EnsureContent();
        dc.Clear();
        if (src.Content is not null) dc.CopyFrom(src.Content, 0, 0, (uint)(src.Size >> Units.CACHELINE_SHIFT));
        Stats.PagesCopied += (long)src.NrPages;
        Stats.BytesCopied += (long)src.Size;
    }

    /// <summary>do_anonymous_page() / shmem_fault() / do_wp_page() for 4 KiB pages.</summary>
    private FaultResult PageFault4K(TaskStruct t, Vma vma, ulong va, bool write)
    {
        ulong pva = Units.AlignDown(va, Units.PAGE_SIZE);
        var r = WalkAlloc(t.Mm, pva, PtLevel.Pte);
        if (r is null) return new(FaultKind.Oom);
        var rr = r.Value;
        var e = rr.Entry;
        if (e.IsHwpoison || e.IsPoisonMarker) return new(FaultKind.Hwpoison, Units.PAGE_SHIFT);
        if (e.Present)
        {
            if (IsUffdWpFault(vma, e, write)) return HandleUserfault(vma, pva);
            if (!write || e.Writable) return FaultResult.Ok;
            var old = Phys.FolioOf(e.Pfn)!;
            if (old.IsAnon && old.Mapcount == 1) { rr.Table.Set(rr.Index, new Pte(e.WithWritable(true).Raw | Pte._PAGE_DIRTY)); return FaultResult.Ok; }
            if (old.IsHwpoison || Phys.FirstPoisonedLine(old.PhysAddr, old.Size) is not null) return new(FaultKind.Hwpoison, Units.PAGE_SHIFT);
            var nf = Phys.AllocFolio(0);
            if (nf is null) return new(FaultKind.Oom);
            CopyFolioContent(old, nf);
            nf.Flags = nf.Flags.With(PageFlags.PG_anon); nf.AnonVma = vma.AnonVma ??= NewAnonVma(vma);
            MmuNotifierInvalidate(t.Mm, pva, Units.PAGE_SIZE); // wp_page_copy(): mmu_notifier_invalidate_range_start() over the page
            ZapEntry(rr);
            InstallLeaf(rr, nf, nf.Pfn, true, true);
            return FaultResult.Ok;
        }
        if (vma.File is { } inode && (vma.IsShared || !write))
        {
            ulong foff = vma.FileOffset(pva);
            ulong idx = foff >> inode.FolioShift;
            if (foff >= Units.AlignUp(inode.Size, Units.PAGE_SIZE) && !inode.Internal) return new(FaultKind.Sigbus);
            if (inode.PageCache.ContainsKey(idx) && (vma.Flags & VmFlags.VM_UFFD_MINOR) != 0 && vma.Uffd is not null) return HandleUserfault(vma, pva);
            if (!inode.PageCache.TryGetValue(idx, out var f))
            {
                if ((vma.Flags & VmFlags.VM_UFFD_MISSING) != 0 && vma.Uffd is not null) return HandleUserfault(vma, pva);
                // a VMA converted away from hugetlb over a hugetlbfs file (vma-convert) refills with an ordinary
                // folio of the file's folio size, so page-cache indices keep their meaning
                f = Phys.AllocFolio(inode.IsHugetlb ? inode.Hstate!.Order : inode.ShmemFolioOrder);
                if (f is null) return new(FaultKind.Oom);
                f.Mapping = inode; f.Index = idx; f.RefCount = 1;
                inode.PageCache[idx] = f;
            }
            ulong spfn = f.Pfn + ((foff & (inode.FolioSize - 1)) >> Units.PAGE_SHIFT);
            if (f.IsHwpoison && (f.RawHwp.Count == 0 || f.RawHwp.Contains(spfn))) return new(FaultKind.Hwpoison, Units.PAGE_SHIFT);
            bool w = vma.IsShared && (vma.Flags & VmFlags.VM_WRITE) != 0;
            InstallLeaf(rr, f, spfn, w, w && write);
            if (w && write) f.Flags = f.Flags.With(PageFlags.PG_dirty);
            return FaultResult.Ok;
        }
        // do_cow_fault(): a private write fault on a file page copies the file's page (beyond EOF: SIGBUS)
        Folio? cowSrc = null;
        if (vma.File is { } cf)
        {
            ulong cidx = vma.FileOffset(pva) >> Units.PAGE_SHIFT;
            if (cidx << Units.PAGE_SHIFT >= Units.AlignUp(cf.Size, Units.PAGE_SIZE) && !cf.Internal) return new(FaultKind.Sigbus);
            if (cf.PageCache.TryGetValue(cidx, out cowSrc) && (cowSrc.IsHwpoison || Phys.FirstPoisonedLine(cowSrc.PhysAddr, cowSrc.Size) is not null))
                return new(FaultKind.Hwpoison, Units.PAGE_SHIFT);
        }
        if ((vma.Flags & VmFlags.VM_UFFD_MISSING) != 0 && vma.Uffd is not null && cowSrc is null) return HandleUserfault(vma, pva);
        var af = Phys.AllocFolio(0);
        if (af is null) return new(FaultKind.Oom);
        if (cowSrc is not null) CopyFolioContent(cowSrc, af);
        af.Flags = af.Flags.With(PageFlags.PG_anon);
        af.AnonVma = vma.AnonVma ??= NewAnonVma(vma);
        bool wr = (vma.Flags & VmFlags.VM_WRITE) != 0;
        InstallLeaf(rr, af, af.Pfn, wr, write);
        return FaultResult.Ok;
    }

    private static AnonVma NewAnonVma(Vma v) { var a = new AnonVma(); a.Vmas.Add(v); return a; }

    /// <summary>
    /// A user load or store of length bytes at va by task t, as the CPU and the fault handler would run it,
    /// page by page: faults are resolved, poisoned cachelines raise a machine check (memory_failure with
    /// MF_ACTION_REQUIRED in t's context), and the access stops at the first signal. Stores write the pattern
    /// (seed, patternOffset at va); loads are compared against <paramref name="check"/> if given.
    /// </summary>
    public AccessResult Access(TaskStruct t, ulong va, ulong length, bool write, ulong seed = 0, long patternOffset = 0, ContentCheck? check = null)
    {
        ulong cur = va, end = va + length;
        int guard = 0;
        while (cur < end)
        {
            if (!t.Alive) return new(cur - va, "task dead");
            if (Panicked) return new(cur - va, "panic");
            var vma = t.Mm.FindVma(cur);
            if (vma is null) { DoSigsegv(t, cur, Sig.SEGV_MAPERR); return new(cur - va, "SIGSEGV"); }
            if (write && (vma.Flags & VmFlags.VM_WRITE) == 0 || !write && (vma.Flags & VmFlags.VM_READ) == 0)
            { DoSigsegv(t, cur, Sig.SEGV_ACCERR); return new(cur - va, "SIGSEGV"); }
            var r = Walk(t.Mm, cur);
            var e = r.Entry;
            bool leaf = e.Present && (r.Level == PtLevel.Pte || e.Huge);
            if (!leaf || (write && !e.Writable))
            {
                if (++guard > 64) throw new InvalidOperationException($"fault loop at {Units.Hex(cur)}");
                var fr = HandleMmFault(t, vma, cur, write);
                switch (fr.Kind)
                {
                    case FaultKind.Mapped: continue;
                    case FaultKind.Userfault: return new(cur - va, "blocked in userfaultfd", Blocked: true);
                    case FaultKind.Segv: DoSigsegv(t, cur, Sig.SEGV_ACCERR); return new(cur - va, "SIGSEGV");
                    case FaultKind.Sigbus:
                        ForceSig(t, Sig.SIGBUS, Sig.BUS_ADRERR, cur, 0, true);
                        return new(cur - va, "SIGBUS BUS_ADRERR");
                    case FaultKind.Hwpoison:
                        // do_sigbus(): VM_FAULT_HWPOISON[_LARGE] -> BUS_MCEERR_AR at the exact address
                        Log($"MCE: Killing {t.Comm}:{t.Pid} due to hardware memory corruption fault at {cur:x}");
                        ReportMceErr(t, Sig.BUS_MCEERR_AR, cur, fr.Shift, forced: true);
                        return new(cur - va, "SIGBUS BUS_MCEERR_AR");
                    default:
                        ForceSig(t, Sig.SIGKILL, 0, 0, 0, true);
                        return new(cur - va, "OOM");
                }
            }
            guard = 0;
            ulong leafEnd = end > r.Va + r.Size ? ContiguousLeavesEnd(t.Mm, vma, r, end, write) : r.Va + r.Size;
            ulong n = Math.Min(end, leafEnd) - cur;
            ulong pa = (e.Pfn << Units.PAGE_SHIFT) + (cur - r.Va);
            var bad = FirstBadByte(pa, n);
            // the bad line may start before pa (an access beginning inside it): nothing before it is then touched
            ulong okLen = bad is { } b ? (b > pa ? b - pa : 0) : n;
            // a store that only partly covers a line reads it first (RFO); a store never repairs poison
            if (okLen > 0) TouchBytes(pa, okLen, write, seed, patternOffset + (long)(cur - va), check, cur - va);
            if (bad is { } badPa)
            {
                cur += okLen;
                // machine check: do_machine_check() -> kill_me_maybe() -> memory_failure(pfn, MF_ACTION_REQUIRED)
                KAct($"machine check: {(write ? "store" : "load")} by {t} consumed poisoned line {Units.Hex(badPa)} at {Sym(t, cur)}");
                int before = t.SignalsReceived;
                int ret = MachineCheck(t, badPa);
                if (Panicked) return new(cur - va, "panic");
                if (t.SignalsReceived != before || !t.Alive) return new(cur - va, "SIGBUS BUS_MCEERR_AR (machine check)");
                if (ret != 0 && ret != -Errno.EHWPOISON)
                {
                    // kill_me_now(): "Memory error not recovered"
                    Log("Memory error not recovered");
                    ForceSig(t, Sig.SIGBUS, Sig.BUS_MCEERR_AR, cur, Units.PAGE_SHIFT, true);
                    return new(cur - va, "SIGBUS (not recovered)");
                }
                if (++guard > 64) throw new InvalidOperationException($"machine-check loop at {Units.Hex(cur)}");
                continue; // the access restarts and now faults on the hwpoison entry
            }
            cur += n;
        }
        return new(length, "ok");
    }

    /// <summary>
    /// Where the run of leaves starting with <paramref name="r"/> ends for an access: the following leaves of the VMA
    /// that the access can use without a fault (present, writable for a store) and that map the next physical pages
    /// of the same folio. The CPU would walk them one TLB entry at a time; to the model they are one stretch of
    /// memory, so a 1 GiB access over a split mapping costs per page-table page, not per 4 KiB.
    /// </summary>
    private ulong ContiguousLeavesEnd(MmStruct mm, Vma vma, PteRef r, ulong end, bool write)
    {
        var e = r.Entry;
        ulong runEnd = r.Va + r.Size, nextPfn = e.Pfn + (r.Size >> Units.PAGE_SHIFT);
        if (Phys.FolioOf(e.Pfn) is not { } f) return runEnd;
        ulong folioEnd = f.Pfn + f.NrPages, limit = Math.Min(end, vma.End);
        var at = r;
        while (runEnd < limit && nextPfn < folioEnd)
        {
            // the rest of a table stored as one run continues the entry just taken (present, same bits, the next pages)
            if (at.Table.LinearRun is (_, ulong step) && step == at.Size && at.Index + 1 < Units.PTRS_PER_TABLE)
            {
                ulong pages = at.Size >> Units.PAGE_SHIFT;
                ulong k = Math.Min((ulong)(Units.PTRS_PER_TABLE - 1 - at.Index), Math.Min((folioEnd - nextPfn) / pages, (limit - runEnd + at.Size - 1) / at.Size));
                if (k > 0)
                {
                    at = new PteRef(at.Table, at.Index + (int)k, at.Va + k * at.Size);
                    runEnd += k * at.Size; nextPfn += k * pages;
                    continue;
                }
            }
            var n = at.Index + 1 < Units.PTRS_PER_TABLE ? new PteRef(at.Table, at.Index + 1, runEnd) : Walk(mm, runEnd);
            var ne = n.Entry;
            if (!ne.Present || n.Level != PtLevel.Pte && !ne.Huge || write && !ne.Writable || ne.Pfn != nextPfn || n.Va != runEnd) break;
            runEnd += n.Size; nextPfn += n.Size >> Units.PAGE_SHIFT;
            at = n;
        }
        return runEnd;
    }

    /// <summary>
    /// The first byte of [pa, pa+n) a CPU access would machine-check on: a hardware-poisoned cacheline, or a raw
    /// page the kernel already recorded as poisoned but left mapped (keep-mapped), which the hardware re-raises.
    /// Shared by user accesses, KVM guest-mode accesses and the KVM GUP path.
    /// </summary>
    internal ulong? FirstBadByte(ulong pa, ulong n)
    {
        var bad = Phys.FirstPoisonedLine(pa, n);
        if (Phys.FolioOf(pa >> Units.PAGE_SHIFT) is { IsHwpoison: true } pf)
            foreach (var raw in pf.RawHwp)
            {
                // a raw page the kernel knows is poisoned machine-checks when touched through a mapping that a policy
                // kept; one poisoned by software only (MADV_HWPOISON, corrupt-pfn) holds good data and reads normally
                // (hugetlb-mfr.c reads every byte back after MADV_HWPOISON under MFD_MF_KEEP_UE_MAPPED)
                if (pf.IsSimulatedHwp(raw)) continue;
                ulong rs = raw << Units.PAGE_SHIFT;
                if (rs + Units.PAGE_SIZE > pa && rs < pa + n && (bad is null || rs < bad.Value)) bad = Math.Max(rs, pa);
            }
        return bad;
    }

    /// <summary>The data side of an access that did not fault: a store writes the pattern, a load is checked.</summary>
    internal void TouchBytes(ulong pa, ulong n, bool write, ulong seed, long patternOffset, ContentCheck? check, ulong bufOff)
    {
        var f = Phys.FolioOf(pa >> Units.PAGE_SHIFT)!;
        ulong fo = pa - f.PhysAddr;
        if (write)
        {
            f.EnsureContent().Write(fo, n, seed, patternOffset);
            if (!f.IsHugetlb || f.Mapping is null) f.Flags = f.Flags.With(PageFlags.PG_dirty);
        }
        else check?.Check(f, fo, n, bufOff);
    }

    internal void DoSigsegv(TaskStruct t, ulong addr, int code) => ForceSig(t, Sig.SIGSEGV, code, addr, 0, true);

    /// <summary>force_sig_mceerr()/send_sig_mceerr() after the policy's report granularity is applied.</summary>
    internal void ReportMceErr(TaskStruct t, int code, ulong addr, int lsb, bool forced)
    {
        var (a, l) = Policy.AdjustReport(this, t, addr, lsb);
        ForceSig(t, Sig.SIGBUS, code, a, l, forced);
    }

    /// <summary>Delivers a signal: recorded in the trace; SIGKILL, or SIGBUS/SIGSEGV with the default disposition, kills the task.</summary>
    internal void ForceSig(TaskStruct t, int signo, int code, ulong addr, int lsb, bool forced)
    {
        if (!t.Alive) return;
        if (RecordTrace) Emit(new SignalEvent(NowNs, t.Comm, signo, code, addr, Sym(t, addr), lsb, forced));
        Stats.Signals++;
        t.SignalsReceived++;
        SignalDelivered?.Invoke(t, signo, code, addr, lsb);
        bool dies = signo == Sig.SIGKILL || (t.Sigbus == SigbusDisposition.Default && (forced || code == Sig.BUS_MCEERR_AO));
        if (!dies) return;
        if (_mfDepth > 0) { _queuedDeaths.Add((t, signo)); return; }
        KillThreadGroup(t, signo);
    }

    /// <summary>memory_failure() calls in progress; signals sent meanwhile kill their task only when it is over.</summary>
    private int _mfDepth;
    private readonly List<(TaskStruct Task, int Signo)> _queuedDeaths = new();

    private void RunQueuedDeaths()
    {
        if (_queuedDeaths.Count == 0) return;
        var q = _queuedDeaths.ToList();
        _queuedDeaths.Clear();
        foreach (var (t, signo) in q) if (t.Alive) KillThreadGroup(t, signo);
    }

    /// <summary>A fatal signal's default action ends the whole thread group (do_group_exit()).</summary>
    private void KillThreadGroup(TaskStruct t, int signo)
    {
        Stats.TasksKilled++;
        foreach (var x in Tasks.Where(x => x.Alive && x.Tgid == t.Tgid).OrderBy(x => x.Pid).ToList()) DoExit(x, $"killed by {Sig.Name(signo)}");
    }
}
