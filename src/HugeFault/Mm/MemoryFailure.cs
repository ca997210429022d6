using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault;

/// <summary>memory_failure() flags (include/linux/mm.h).</summary>
[Flags]
public enum MfFlags
{
    None = 0,
    MF_COUNT_INCREASED = 1 << 0,
    MF_ACTION_REQUIRED = 1 << 1,
    MF_MUST_KILL = 1 << 2,
    MF_SOFT_OFFLINE = 1 << 3,
    MF_UNPOISON = 1 << 4,
    MF_SW_SIMULATED = 1 << 5,
    MF_NO_RETRY = 1 << 6,
}

/// <summary>Outcome of a memory-failure action (enum mf_result).</summary>
public enum MfResult { MF_IGNORED, MF_FAILED, MF_DELAYED, MF_RECOVERED }

/// <summary>A process collected by collect_procs() (struct to_kill).</summary>
public sealed record ToKill(TaskStruct Task, ulong Addr, int SizeShift, Vma Vma);

/// <summary>What a policy is handed when memory_failure() meets an in-use hugetlb folio.</summary>
public sealed record MfContext(Folio Folio, ulong RawPfn, MfFlags Flags, ulong PhysAddr, bool FirstPoison, bool NewRawPage = true)
{
    public bool ActionRequired => (Flags & MfFlags.MF_ACTION_REQUIRED) != 0;
}

// mm/memory-failure.c
public sealed partial class Kernel
{
    private static string ActionName(MfResult r) => r switch
    {
        MfResult.MF_IGNORED => "Ignored", MfResult.MF_FAILED => "Failed", MfResult.MF_DELAYED => "Delayed", _ => "Recovered",
    };

    /// <summary>action_result(): logs "recovery action for TYPE: RESULT" and counts the page unless it was already poisoned.</summary>
    internal int ActionResult(ulong pfn, string type, MfResult result, bool alreadyPoisoned = false)
    {
        if (!alreadyPoisoned && result != MfResult.MF_IGNORED) NumPoisonedPages++;
        Log($"Memory failure: {Units.Hex(pfn)}: recovery action for {type}: {ActionName(result)}");
        return result is MfResult.MF_RECOVERED or MfResult.MF_DELAYED ? 0 : -Errno.EBUSY;
    }

    /// <summary>
    /// memory_failure(pfn, flags): handle a poisoned 4 KiB page. pa is the poisoned physical address when
    /// known (a consumed or scrubbed cacheline), else the page's start.
    /// Returns 0, -EHWPOISON (already poisoned) or -EBUSY, as the kernel does.
    /// </summary>
    public int MemoryFailure(ulong pfn, MfFlags flags, ulong? pa = null)
    {
        // kill_procs() only queues the signals: a task killed by one dies when it next returns to user space, after
        // memory_failure() has finished with the folio (so me_huge_page() still sees the page-cache mapping of an
        // anonymous shared or SysV segment whose only mappers die: the folio stays, held by memory_failure()'s
        // reference; mce-test run-huge-test anonymous fork_shared on 6.1 and 6.12: HugePages_Total unchanged)
        _mfDepth++;
        try { return MemoryFailureNow(pfn, flags, pa); }
        finally { if (--_mfDepth == 0) RunQueuedDeaths(); }
    }

    private int MemoryFailureNow(ulong pfn, MfFlags flags, ulong? pa)
    {
        if (Panicked) return 0;
        if (!Recovery)
        {
            Panic($"Memory failure on page {pfn:x}");
            return 0;
        }
        if ((flags & MfFlags.MF_SW_SIMULATED) == 0) HwMemoryFailure = true;
        if (pfn >= Phys.TotalPages) { Log($"Memory failure: {Units.Hex(pfn)}: memory outside kernel control"); return -Errno.EIO; }
        ulong phys = pa ?? pfn << Units.PAGE_SHIFT;
        var folio = Phys.FolioOf(pfn);
        if (folio is not null && folio.IsHugetlb) return TryMemoryFailureHugetlb(folio, pfn, flags, phys);
        if (folio is null)
        {
            if (Phys.IsRawHwpoison(pfn))
            {
                Log($"Memory failure: {Units.Hex(pfn)}: already hardware poisoned");
                return (flags & MfFlags.MF_ACTION_REQUIRED) != 0 && Current is { } cur ? KillAccessingProcess(cur, pfn, 1, flags) : -Errno.EHWPOISON;
            }
            if (Phys.IsFreePfn(pfn) && Phys.TakePageOffBuddy(pfn))
            {
                Phys.SetRawHwpoison(pfn);
                return ActionResult(pfn, "free buddy page", MfResult.MF_RECOVERED);
            }
            return ActionResult(pfn, "reserved kernel page", MfResult.MF_IGNORED);
        }
        return MemoryFailureSmallFolio(folio, pfn, flags);
    }

    /// <summary>try_memory_failure_hugetlb(): mark (folio_set_hugetlb_hwpoison), then free / in-use / already-poisoned handling.</summary>
    private int TryMemoryFailureHugetlb(Folio folio, ulong pfn, MfFlags flags, ulong pa)
    {
        if (folio.IsHwpoison)
        {
            // get_huge_page_for_hwpoison() -> -EHWPOISON: a new raw page is still recorded and counted
            bool isNew = !folio.RawHwp.Contains(pfn);
            if (isNew)
            {
                folio.RawHwp.Add(pfn);
                NoteSimulated(folio, pfn, flags);
                NumPoisonedPages++;
            }
            var ctx0 = new MfContext(folio, pfn, flags, pa, FirstPoison: false, NewRawPage: isNew);
            return Policy.HandleRepoisonHugetlb(this, ctx0);
        }
        folio.Flags = folio.Flags.With(PageFlags.PG_hwpoison);
        folio.RawHwp.Add(pfn);
        NoteSimulated(folio, pfn, flags);
        if (folio.Flags.Has(PageFlags.HugetlbFreed))
        {
            // free hugetlb folio: __page_handle_poison() = dissolve + take_page_off_buddy()
            if (Policy.HandleFreeHugetlb(this, new MfContext(folio, pfn, flags, pa, FirstPoison: true)) is { } handled)
                return ActionResult(pfn, handled.Type, handled.Result, alreadyPoisoned: !folio.IsHwpoison);
            int r = DissolveFreeHugetlbFolio(folio);
            return ActionResult(pfn, "free huge page", r == 0 && !TakeOffBuddyFailsAfterDissolve(folio) ? MfResult.MF_RECOVERED : MfResult.MF_FAILED);
        }
        // get_huge_page_for_hwpoison() takes a reference (or MF_COUNT_INCREASED brings one) that a file
        // folio never gives back: it stays allocated after truncation (seen on 6.12: case 17)
        folio.RefCount++; folio.MfRefHeld = true;
        var ctx = new MfContext(folio, pfn, flags, pa, FirstPoison: true);
        var (result, type) = Policy.HandleInUseHugetlb(this, ctx);
        return ActionResult(pfn, type, result);
    }

    /// <summary>A raw page poisoned by software (MF_SW_SIMULATED) whose memory holds no real poison: loads of it still return data.</summary>
    private void NoteSimulated(Folio folio, ulong pfn, MfFlags flags)
    {
        if ((flags & MfFlags.MF_SW_SIMULATED) != 0 && Phys.FirstPoisonedLine(pfn << Units.PAGE_SHIFT, Units.PAGE_SIZE) is null) folio.SimulatedHwp.Add(pfn);
        else folio.ForgetSimulatedHwp(pfn);
    }

    /// <summary>memory_failure() for an order-0 folio (anon, tmpfs page cache): unmap with 4 KiB hwpoison entries, kill, quarantine.</summary>
    private int MemoryFailureSmallFolio(Folio folio, ulong pfn, MfFlags flags)
    {
        if (folio.Order > 0) return MemoryFailureLargeFolio(folio, pfn, flags);
        if (folio.IsHwpoison)
        {
            Log($"Memory failure: {Units.Hex(pfn)}: already hardware poisoned");
            if ((flags & MfFlags.MF_ACTION_REQUIRED) != 0 && Current is { } cur) return KillAccessingProcess(cur, pfn, 1, flags);
            return -Errno.EHWPOISON;
        }
        folio.Flags = folio.Flags.With(PageFlags.PG_hwpoison);
        if (folio.Mapped)
        {
            var tokill = CollectProcs(folio, pfn, flags);
            UnmapPoisonedFolioWhole(folio);
            bool forcekill = folio.Flags.Has(PageFlags.PG_dirty) || (flags & MfFlags.MF_MUST_KILL) != 0 || folio.Mapped;
            KillProcs(tokill, forcekill, folio.Mapped, pfn, flags);
        }
        string type;
        if (folio.Mapping is { } m)
        {
            // shmem_error_remove_folio(): the page stays in the page cache, poisoned
            type = folio.Flags.Has(PageFlags.PG_dirty) ? "dirty LRU page" : "clean LRU page";
            return ActionResult(pfn, type, MfResult.MF_RECOVERED);
        }
        type = folio.Flags.Has(PageFlags.PG_dirty) ? "dirty LRU page" : "clean LRU page";
        if (folio.RefCount <= 0 && !Phys.Folios.ContainsKey(folio.Pfn)) { /* freed during unmap: quarantined */ }
        return ActionResult(pfn, type, MfResult.MF_RECOVERED);
    }

    /// <summary>
    /// A large non-hugetlb folio (a converted hugetlb page, a THP): poison is handled per raw page, as
    /// memory_failure() does after split_huge_page(): only the bad 4 KiB is unmapped in every mapper.
    /// </summary>
    private int MemoryFailureLargeFolio(Folio folio, ulong pfn, MfFlags flags)
    {
        bool first = !folio.IsHwpoison;
        if (folio.RawHwp.Contains(pfn))
        {
            Log($"Memory failure: {Units.Hex(pfn)}: already hardware poisoned");
            if ((flags & MfFlags.MF_ACTION_REQUIRED) != 0 && Current is { } cur) return KillAccessingProcess(cur, pfn, 1, flags);
            return -Errno.EHWPOISON;
        }
        folio.Flags = folio.Flags.With(PageFlags.PG_hwpoison);
        folio.RawHwp.Add(pfn);
        var tokill = CollectProcs(folio, pfn, flags);
        foreach (var (vma, hva) in FolioMappings(folio, onlyMapped: true))
            PoisonSubpageMapping(vma.Mm, hva + ((pfn - folio.Pfn) << Units.PAGE_SHIFT), pfn);
        bool forcekill = folio.Flags.Has(PageFlags.PG_dirty) || (flags & MfFlags.MF_MUST_KILL) != 0 || folio.Mapping is not null;
        KillProcs(tokill, forcekill, false, pfn, flags);
        if (!first) NumPoisonedPages++;
        return ActionResult(pfn, "dirty LRU page", MfResult.MF_RECOVERED, alreadyPoisoned: !first);
    }

    /// <summary>
    /// collect_procs(): every process mapping the page (file: every VMA of the file covering it, faulted
    /// or not; anon: every VMA that maps it) that should be told now: current when MF_ACTION_REQUIRED
    /// (force_early), others only if early-kill (task_early_kill()).
    /// </summary>
    internal List<ToKill> CollectProcs(Folio folio, ulong rawPfn, MfFlags flags)
    {
        var list = new List<ToKill>();
        bool forceEarly = (flags & MfFlags.MF_ACTION_REQUIRED) != 0;
        // task_early_kill() would pick no one: no forced early kill, no vm.memory_failure_early_kill, no PR_MCE_KILL_EARLY thread
        if (!forceEarly && !EarlyKill && !AnyEarlyKillThread()) return list;
        int shift = folio.IsHugetlb ? folio.Shift : Units.PAGE_SHIFT;
        // since v6.8 the address is that of the raw page; older kernels report the head page's address
        ulong reportPfn = ReportsRawPageAddress ? rawPfn : folio.Pfn;
        // The VMAs that may map the folio, grouped by mm once (the kernel walks the i_mmap interval tree or the
        // anon_vma per task; grouping first makes the walk tasks + mappings instead of tasks × mappings).
        var byMm = new Dictionary<MmStruct, List<Vma>>();
        IEnumerable<Vma> rmap = folio.Mapping is not null && !folio.IsAnon ? folio.Mapping.IMmap : folio.AnonVma?.Vmas ?? (IEnumerable<Vma>)Array.Empty<Vma>();
        foreach (var v in rmap)
        {
            if (!byMm.TryGetValue(v.Mm, out var l)) byMm[v.Mm] = l = new List<Vma>();
            l.Add(v);
        }
        if (byMm.Count == 0) return list;
        var threads = ThreadGroups();
        // for_each_process(): thread-group leaders in pid order
        foreach (var t in threads.Leaders)
        {
            if (!byMm.TryGetValue(t.Mm, out var vmas)) continue;
            var tsk = TaskEarlyKill(t, forceEarly, threads.ByTgid[t.Tgid]);
            if (tsk is null) continue;
            if (folio.Mapping is { } inode && !folio.IsAnon)
            {
                ulong off = folio.Index * inode.FolioSize + ((reportPfn - folio.Pfn) << Units.PAGE_SHIFT);
                // i_mmap order (the interval tree keeps equal ranges in insertion order): with one signal per task, the
                // first mapping of the file is the one reported (07c, 18b on 6.12)
                foreach (var v in vmas)
                {
                    // collect_procs_file(): every VMA of the file covering the offset, shared or private (even one that
                    // holds a COW copy instead of the page-cache folio: 07d on 6.12)
                    if (v.AddressOf(off) is { } addr) list.Add(new ToKill(tsk, addr, shift, v));
                }
            }
            else
            {
                // collect_procs_anon(): the anon_vma's VMAs of this mm that map the folio (page_mapped_in_vma())
                foreach (var v in vmas.OrderBy(v => v.Start))
                {
                    var start = FindMappingAddress(folio, v);
                    if (start is null) continue;
                    list.Add(new ToKill(tsk, start.Value + ((reportPfn - folio.Pfn) << Units.PAGE_SHIFT), shift, v));
                }
            }
        }
        return list;
    }

    private bool AnyEarlyKillThread()
    {
        foreach (var x in Tasks) if (x.Alive && x.MceKill == MceKillPolicy.Early) return true;
        return false;
    }

    /// <summary>Live tasks grouped by thread group once: the leaders (pid == tgid) in pid order, and each group's threads in pid order.</summary>
    private (List<TaskStruct> Leaders, Dictionary<int, List<TaskStruct>> ByTgid) ThreadGroups()
    {
        var leaders = new List<TaskStruct>();
        var byTgid = new Dictionary<int, List<TaskStruct>>();
        foreach (var x in Tasks)
        {
            if (!x.Alive) continue;
            if (x.Pid == x.Tgid) leaders.Add(x);
            if (!byTgid.TryGetValue(x.Tgid, out var g)) byTgid[x.Tgid] = g = new List<TaskStruct>();
            g.Add(x);
        }
        leaders.Sort(static (a, b) => a.Pid.CompareTo(b.Pid));
        foreach (var g in byTgid.Values) if (g.Count > 1) g.Sort(static (a, b) => a.Pid.CompareTo(b.Pid));
        return (leaders, byTgid);
    }

    /// <summary>task_early_kill(): current for a forced early kill, else a thread with PR_MCE_KILL_EARLY, or any if vm.memory_failure_early_kill and no per-thread policy.</summary>
    private TaskStruct? TaskEarlyKill(TaskStruct t, bool forceEarly, List<TaskStruct> group)
    {
        if (forceEarly && Current is { } cur && cur.Mm == t.Mm) return cur;
        // find_early_kill_thread(): the group's threads, lowest pid first
        foreach (var th in group)
        {
            if (th.MceKill == MceKillPolicy.Early) return th;
            if (th.MceKill == MceKillPolicy.Default && EarlyKill) return th;
        }
        return null;
    }

    /// <summary>page_mapped_in_vma(): does vma's mm map any part of folio?</summary>
    internal bool IsMappedIn(Folio folio, Vma v) => FindMappingAddress(folio, v) is not null;

    /// <summary>The VA where vma maps the head of folio, if it maps any of it (walks the range the folio would occupy).</summary>
    internal ulong? FindMappingAddress(Folio folio, Vma v)
    {
        foreach (var (s, e) in CandidateRanges(folio, v))
        {
            ulong? at = null;
            // the first present or hwpoison leaf (in address order) whose pfn lies in the folio; runs of leaves at once
            ForEachLeafRun(v.Mm, s, e, run =>
            {
                if (!(run.First.Present || run.First.IsHwpoison)) return true;
                int k = run.FirstWithPfnIn(folio.Pfn, folio.Pfn + folio.NrPages);
                if (k < 0) return true;
                at = run.Va + (ulong)k * run.Size - ((run.EntryAt(k).Pfn - folio.Pfn) << Units.PAGE_SHIFT);
                return false;
            });
            if (at is not null) return at;
        }
        return null;
    }

    /// <summary>Where in vma the folio can be mapped: one range for a file folio; for anon, the whole VMA (an anon folio has one index).</summary>
    private IEnumerable<(ulong, ulong)> CandidateRanges(Folio folio, Vma v)
    {
        if (folio.IsHugetlb && v.File is { } inode && (folio.Mapping == inode || folio.IsAnon))
        {
            ulong off = folio.Index * folio.Size;
            if (v.AddressOf(off) is { } a) { yield return (a, Math.Min(v.End, a + folio.Size)); yield break; }
            if (!folio.IsAnon) yield break;
        }
        if (folio.Mapping is { } m && !folio.IsAnon)
        {
            ulong off = folio.Index * m.FolioSize;
            if (v.AddressOf(off) is { } a) yield return (a, Math.Min(v.End, a + folio.Size));
            yield break;
        }
        yield return (v.Start, v.End);
    }

    /// <summary>try_to_unmap(TTU_HWPOISON) at folio granularity: every leaf mapping the folio in every mapper becomes a hwpoison entry.</summary>
    internal void UnmapPoisonedFolioWhole(Folio folio)
    {
        foreach (var v in RmapVmas(folio))
        {
            foreach (var (s, e) in CandidateRanges(folio, v))
            {
                // the common case, one leaf of the folio's size mapping the whole range: no walk over the range
                var top = Walk(v.Mm, s);
                if (top.Va == s && top.Size == e - s && top.Size == folio.Size && !top.Table.IsTable(top.Index))
                {
                    UnmapLeafToHwpoison(folio, v, top);
                    continue;
                }
                ForEachLeaf(v.Mm, s, e, r => UnmapLeafToHwpoison(folio, v, r));
            }
        }
    }

    private void UnmapLeafToHwpoison(Folio folio, Vma v, PteRef r)
    {
        var en = r.Entry;
        if (!en.Present || !folio.ContainsPfn(en.Pfn)) return;
        bool dirty = (en.Raw & Pte._PAGE_DIRTY) != 0;
        ZapEntry(r);
        r.Table.Set(r.Index, Pte.Hwpoison(en.Pfn));
        if (dirty) folio.Flags = folio.Flags.With(PageFlags.PG_dirty); // the dirty bit propagates to the folio
        MmuNotifierInvalidate(v.Mm, r.Va, r.Size);
    }

    /// <summary>The VMAs that may map the folio (rmap_walk: i_mmap for file folios, anon_vma for anon ones).</summary>
    internal IEnumerable<Vma> RmapVmas(Folio folio)
    {
        if (folio.IsAnon) return folio.AnonVma?.Vmas.ToList() ?? new List<Vma>();
        if (folio.Mapping is { } m) return m.IMmap.ToList();
        return Array.Empty<Vma>();
    }

    /// <summary>kill_procs(): signal collected tasks if forcekill; SIGKILL them if the unmap failed.</summary>
    internal void KillProcs(List<ToKill> tokill, bool forcekill, bool fail, ulong pfn, MfFlags flags, int? lsbOverride = null)
    {
        if (!forcekill) return;
        var signalled = new HashSet<TaskStruct>();
        foreach (var tk in tokill)
        {
            // a second SIGBUS while the first is pending is not queued (legacy signal): one per task, though
            // kill_proc() still logs every attempt (07c, 18b on 6.12)
            if (!signalled.Add(tk.Task))
            {
                if (!fail) Log($"Memory failure: {Units.Hex(pfn)}: Sending SIGBUS to {tk.Task.Comm}:{tk.Task.Pid} due to hardware memory corruption");
                continue;
            }
            if (fail)
            {
                Log($"Memory failure: {Units.Hex(pfn)}: forcibly killing {tk.Task.Comm}:{tk.Task.Pid} because of failure to unmap corrupted page");
                ForceSig(tk.Task, Sig.SIGKILL, 0, 0, 0, true);
                continue;
            }
            KillProc(tk, pfn, flags, lsbOverride);
        }
    }

    /// <summary>kill_proc(): BUS_MCEERR_AR (forced) to current under MF_ACTION_REQUIRED, else BUS_MCEERR_AO.</summary>
    internal void KillProc(ToKill tk, ulong pfn, MfFlags flags, int? lsbOverride = null)
    {
        var t = tk.Task;
        if (!t.Alive) return;
        Log($"Memory failure: {Units.Hex(pfn)}: Sending SIGBUS to {t.Comm}:{t.Pid} due to hardware memory corruption");
        bool ar = (flags & MfFlags.MF_ACTION_REQUIRED) != 0 && t == Current;
        ReportMceErr(t, ar ? Sig.BUS_MCEERR_AR : Sig.BUS_MCEERR_AO, tk.Addr, lsbOverride ?? tk.SizeShift, forced: ar);
    }

    /// <summary>
    /// kill_accessing_process(): walk current's page tables for an entry (present or hwpoison) whose pfn is
    /// the folio's; send BUS_MCEERR_AR with the start of that mapping and lsb = the mapping's shift.
    /// Returns -EHWPOISON when a signal was sent, else 0.
    /// </summary>
    internal int KillAccessingProcess(TaskStruct t, ulong headPfn, int nrPages, MfFlags flags)
    {
        ulong? addr = null; int shift = Units.PAGE_SHIFT;
        foreach (var v in t.Mm.Vmas.OrderBy(v => v.Start))
        {
            ForEachLeafRun(t.Mm, v.Start, v.End, run =>
            {
                if (!(run.First.Present || run.First.IsHwpoison)) return true;
                int k = run.FirstWithPfnIn(headPfn, headPfn + 1);
                if (k < 0) return true;
                addr = run.Va + (ulong)k * run.Size; shift = run.Shift;
                return false;
            });
            if (addr is not null) break;
        }
        if (addr is null) return 0;
        Log($"Memory failure: {Units.Hex(headPfn)}: Sending SIGBUS to {t.Comm}:{t.Pid} due to hardware memory corruption");
        ReportMceErr(t, Sig.BUS_MCEERR_AR, addr.Value, shift, forced: true);
        return -Errno.EHWPOISON;
    }

    /// <summary>me_huge_page(): file folios stay in the page cache (hugetlbfs_error_remove_folio() is a no-op); anonymous ones are dissolved once free.</summary>
    internal MfResult MeHugePage(Folio folio)
    {
        if (folio.Mapping is not null && !folio.IsAnon) return MfResult.MF_RECOVERED;
        // anonymous: folio_put() of memory-failure's reference frees it; __page_handle_poison() dissolves it
        DropMfRef(folio);
        if (Phys.Folios.ContainsKey(folio.Pfn) && folio.Flags.Has(PageFlags.HugetlbFreed))
            return DissolveFreeHugetlbFolio(folio) == 0 && !TakeOffBuddyFailsAfterDissolve(folio) ? MfResult.MF_RECOVERED : MfResult.MF_FAILED;
        return Phys.Folios.ContainsKey(folio.Pfn) ? MfResult.MF_FAILED : MfResult.MF_RECOVERED;
    }

    /// <summary>Gives back memory_failure()'s reference (a policy that frees the folio on purpose, unpoison).</summary>
    internal void DropMfRef(Folio folio)
    {
        if (!folio.MfRefHeld) return;
        folio.MfRefHeld = false;
        if (Phys.Folios.ContainsKey(folio.Pfn)) FolioPut(folio);
    }

    /// <summary>Hook for KVM's MMU notifier (mmu_notifier_invalidate_range_start): zaps secondary (EPT) mappings of the range.</summary>
    internal void MmuNotifierInvalidate(MmStruct mm, ulong start, ulong size)
    {
        MmuNotifier?.Invoke(mm, start, size);
    }

    /// <summary>Subscribers to host unmaps (KVM's EPT).</summary>
    public Action<MmStruct, ulong, ulong>? MmuNotifier { get; set; }

    /// <summary>
    /// soft_offline_page() for an in-use hugetlb page: migrate to a new huge page (needs a free one), then
    /// dissolve the old folio and quarantine the raw page; no signal. For 4 KiB pages: migrate the page.
    /// </summary>
    public int SoftOfflinePage(ulong pfn)
    {
        if (!EnableSoftOffline)
        {
            // soft_offline_page(): pr_info_once()
            if (!SoftOfflineDisabledLogged) Log("Soft offline: disabled by /proc/sys/vm/enable_soft_offline");
            SoftOfflineDisabledLogged = true;
            return -Errno.EOPNOTSUPP;
        }
        var folio = Phys.FolioOf(pfn);
        if (folio is null) { if (Phys.IsRawHwpoison(pfn)) return 0; if (Phys.TakePageOffBuddy(pfn)) { Phys.SetRawHwpoison(pfn); NumPoisonedPages++; } return 0; }
        if (folio.IsHwpoison) { SoftOfflineAlreadyPoisonedLog(pfn); return 0; }
        if (MigrationCopyHitsPoison(folio))
        {
            if (Panicked) return -Errno.EIO;
            SoftOfflineLog($"{Units.Hex(pfn)}: {(folio.IsHugetlb ? "hugepage" : "page")} migration failed 1, type {folio.Flags}");
            return -Errno.EBUSY;
        }
        if (folio.IsHugetlb)
        {
            var h = HstateOf(folio);
            // alloc_migration_target(): a pool page, else a fresh one from buddy that takes the old one's place in the
            // pool; alloc_migrate_hugetlb_folio() never allocates a gigantic (1 GiB) folio, so without a free 1 GiB pool
            // page migrate_pages() fails with -ENOMEM and the page stays as it was (23e-soft-offline-1g-no-spare)
            var nf = AllocHugetlbFolio(h, false);
            if (nf is null)
            {
                nf = h.Order >= H1G.Order ? null : Phys.AllocFolio(h.Order);
                if (nf is null) { SoftOfflineLog($"{Units.Hex(pfn)}: hugepage migration failed -12, type {folio.Flags}"); return -Errno.ENOMEM; }
                nf.Flags = nf.Flags.With(PageFlags.PG_hugetlb); nf.RefCount = 1;
                h.nr_huge_pages++;
            }
            // page_handle_poison(): the raw page is recorded before the old folio's last reference goes, so a
            // surplus folio dissolved during migration quarantines it instead of returning it to buddy
            folio.Flags = folio.Flags.With(PageFlags.PG_hwpoison);
            folio.RawHwp.Add(pfn);
            MigrateFolio(folio, nf);
            // the old folio is now free: dissolve it
            if (folio.Flags.Has(PageFlags.HugetlbFreed) && DissolveFreeHugetlbFolio(folio) == 0) { }
            NumPoisonedPages++;
            return 0;
        }
        // soft_offline_in_use_page(): a large non-hugetlb folio (a converted hugetlb page, a tmpfs THP) is split first
        // (try_to_split_thp_page()) and only the 4 KiB page migrated. The model has no THP split: it answers as the
        // kernel does when that split fails, and leaves the folio as it was (found by the long property mode: the old
        // code migrated the whole large folio into one 4 KiB page and left the other leaves on free memory)
        if (folio.Order > 0)
        {
            SoftOfflineLog($"{Units.Hex(pfn)}: thp split failed");
            return -Errno.EBUSY;
        }
        var n4 = Phys.AllocFolio(0);
        if (n4 is null) return -Errno.ENOMEM;
        MigrateFolio(folio, n4);
        Phys.TakePageOffBuddy(pfn); // page_handle_poison(): the freed old page must not go back to the allocator
        Phys.SetRawHwpoison(pfn);
        NumPoisonedPages++;
        return 0;
    }

    /// <summary>
    /// migrate_pages()'s copy of <paramref name="src"/> meets a line that is bad in hardware: from v6.11 folio_mc_copy()
    /// stops there, memory_failure_queue() reports the page (moved into copy_mc_highpage() by "mm: move
    /// memory_failure_queue() into copy_mc_[user]_highpage()", v6.11) and the migration fails; before, the kernel-mode
    /// copy_page() panics the host (<see cref="MigrationCopyIsMcSafe"/>). True when the copy did not happen.
    /// </summary>
    internal bool MigrationCopyHitsPoison(Folio src)
    {
        if (Phys.FirstPoisonedLine(src.PhysAddr, src.Size) is not { } bad) return false;
        if (!MigrationCopyIsMcSafe) { KernelMachineCheckPanic(bad, "copy_page() in migrate_pages()"); return true; }
        MemoryFailure(bad >> Units.PAGE_SHIFT, MfFlags.None, bad);
        return true;
    }

    /// <summary>migrate_pages() for one folio: copy content, move page-cache slot or anon identity, remap every mapper.</summary>
    internal void MigrateFolio(Folio old, Folio nf)
    {
        CopyFolioContent(old, nf);
        nf.Flags = nf.Flags.With(old.Flags.Raw & (PageFlags.PG_anon | PageFlags.PG_dirty));
        nf.AnonVma = old.AnonVma; nf.Index = old.Index;
        var remaps = new List<FolioLeaf>();
        foreach (var v in RmapVmas(old).ToList())
            foreach (var (s, e) in CandidateRanges(old, v))
                CollectFolioLeaves(v.Mm, s, e, old, remaps);
        bool pageCacheMoved = false;
        if (old.Mapping is { } inode && !old.IsAnon)
        {
            pageCacheMoved = true;
            inode.PageCache[old.Index] = nf;
            nf.Mapping = inode;
            nf.RefCount++; // page cache reference moves to the new folio
            old.Mapping = null;
        }
        if (nf.IsHugetlb) nf.RefCount--; // allocation reference: mappings and page cache hold their own
        RemapFolioLeaves(remaps, nf, makeWritable: false);
        foreach (var l in remaps) MmuNotifierInvalidate(l.Mm, l.R.Va, l.R.Size); // try_to_migrate_one(): each mapping's range
        // the old folio's page-cache reference went with its slot (an anonymous folio's references were its mappings,
        // dropped by ZapEntry(); memory_failure()'s own reference, if held, stays until DropMfRef())
        if (old.IsHugetlb && pageCacheMoved && Phys.Folios.ContainsKey(old.Pfn) && old.RefCount > 0) FolioPut(old);
        // an order-0 folio (migrate_folio_move() -> folio_put() of the source): the page cache's reference is the one
        // left once the mappings are zapped, put here, which frees it; an anonymous one was freed by its last ZapEntry()
        else if (!old.IsHugetlb && pageCacheMoved) FolioPut(old);
    }

    /// <summary>
    /// unpoison_memory() (debugfs hwpoison/unpoison-pfn): refused after a real memory failure; refused while
    /// the folio is mapped or in a page cache; clears raw records otherwise.
    /// </summary>
    public int UnpoisonMemory(ulong pfn)
    {
        // order of checks as unpoison_memory() in 6.1 and 6.12 (checked on both, scenario 20b); wording: UnpoisonLog()
        if (HwMemoryFailure) { UnpoisonLog(pfn, "disabled after HW memory failure"); return -Errno.EOPNOTSUPP; }
        var folio = Phys.FolioOf(pfn);
        if (folio is null)
        {
            if (!Phys.IsRawHwpoison(pfn)) { UnpoisonLog(pfn, "page was already unpoisoned"); return -Errno.EBUSY; }
            Phys.PutPageBackBuddy(pfn); // unpoison_memory() of a free page: back to buddy, not lost
            NumPoisonedPages--;
            UnpoisonLog(pfn, "software-unpoisoned page");
            return 0;
        }
        // PG_hwpoison of a hugetlb folio lives on the head page only: a raw (tail) pfn reads as not poisoned
        bool pageFlag = folio.IsHwpoison && (!folio.IsHugetlb || pfn == folio.Pfn);
        if (!pageFlag) { UnpoisonLog(pfn, "page was already unpoisoned"); return -Errno.EBUSY; }
        if (folio.RefCount > 1) { UnpoisonLog(pfn, "someone grabs the hwpoison page"); return -Errno.EBUSY; }
        if (folio.Mapped) { UnpoisonLog(pfn, "someone maps the hwpoison page"); return -Errno.EBUSY; }
        if (folio.Mapping is not null) { UnpoisonLog(pfn, "the hwpoison page has non-NULL mapping"); return -Errno.EBUSY; }
        int n = folio.IsHugetlb ? folio.RawHwp.Count : 1;
        folio.RawHwp.Clear();
        folio.Flags = folio.Flags.Without(PageFlags.PG_hwpoison);
        NumPoisonedPages -= n;
        UnpoisonLog(pfn, "software-unpoisoned page");
        DropMfRef(folio);
        return 0;
    }
}
