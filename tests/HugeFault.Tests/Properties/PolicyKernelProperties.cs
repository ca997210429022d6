using System.Diagnostics;
using HugeFault.Mm;
using HugeFault.Policies;

namespace HugeFault.Tests.Properties;

/// <summary>
/// The kernel properties under every registered recovery policy: random sequences of syscalls, accesses, hardware
/// errors (consumed, scrubbed, latent), MADV_HWPOISON, soft offline, unpoison and pool changes on a small host keep
/// the invariants (<see cref="Invariants"/>: no completed load returns poisoned data, or data other than what was
/// written unless the model counts it lost; rmap and page tables agree; pools and memory add up), and after every
/// task exits no page-table page, reservation or unpoisoned folio is left.
/// The suite runs a few sequences per policy. The long mode (outside CI, tools/pbt/run.sh) is
/// HUGEFAULT_PBT_LONG=N: N more sequences per policy, seeded from HUGEFAULT_PBT_MASTER (printed on a failure, with the
/// failing case's own seed for HUGEFAULT_PBT_SEED), the full invariants every HUGEFAULT_PBT_FULL_EVERY-th step
/// (default 8; the cheap ones every step); HUGEFAULT_PBT_POLICIES=a,b keeps only those rows (the others are skipped),
/// and HUGEFAULT_PBT_SHARD=J/N the rows whose index % N == J, so shards can run side by side; HUGEFAULT_PBT_SECONDS=S ends a row's seeded sequences after S seconds; each row
/// appends its count and time to $HUGEFAULT_PBT_OUT/summary.txt (and its progress, every 1000, to progress-POLICY.txt).
/// </summary>
public class PolicyKernelProperties
{
    private static string Print(Op[] ops) => string.Join(", ", ops.Select(o => o.ToString()));

    [Theory]
    [MemberData(nameof(HugeFault.Tests.Policies.PolicyProperties.Policies), MemberType = typeof(HugeFault.Tests.Policies.PolicyProperties))]
    public void Random_operation_sequences_keep_every_invariant_under_every_policy(string policy)
    {
        long extra = Pbt.Extra("HUGEFAULT_PBT_LONG");
        int row = RecoveryPolicies.Names.ToList().IndexOf(policy);
        if (extra > 0 && Environment.GetEnvironmentVariable("HUGEFAULT_PBT_POLICIES") is { Length: > 0 } only && !only.Split(',').Contains(policy))
            Assert.Skip($"HUGEFAULT_PBT_POLICIES={only} leaves {policy} out");
        if (extra > 0 && Environment.GetEnvironmentVariable("HUGEFAULT_PBT_SHARD") is { Length: > 0 } shard)
        {
            var jn = shard.Split('/');
            if (jn.Length != 2 || !int.TryParse(jn[0], out int j) || !int.TryParse(jn[1], out int n) || n <= 0 || j < 0 || j >= n)
                throw new ArgumentException($"HUGEFAULT_PBT_SHARD={shard}: expected J/N with 0 <= J < N (this process runs the policies whose row % N == J)");
            if (row % n != j) Assert.Skip($"HUGEFAULT_PBT_SHARD={shard} leaves {policy} (row {row}) to shard {row % n}/{n}");
        }
        int fullEvery = extra == 0 ? 1 : (int)Math.Max(1, Pbt.Extra("HUGEFAULT_PBT_FULL_EVERY") is var e && e > 0 ? e : 8);
        uint stream = 40 + (uint)row;
        string? dir = Environment.GetEnvironmentVariable("HUGEFAULT_PBT_OUT");
        var clock = Stopwatch.StartNew();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime; // rows of one process run one after another
        long passed = 0;
        long budget = Pbt.Extra("HUGEFAULT_PBT_SECONDS");
        bool Done(long n)
        {
            passed = n;
            if (dir is not null && n % 1000 == 0)
                File.AppendAllText(Path.Combine(dir, $"progress-{policy}.txt"), $"{policy}: {n} sequences in {clock.Elapsed.TotalSeconds:F0} s\n");
            return budget == 0 || clock.Elapsed.TotalSeconds < budget;
        }
        bool failed = true;
        try
        {
            Pbt.Run(KernelWorld.GenOps, ops => KernelWorld.RunChecked(ops, policy: policy, fullEvery: fullEvery, exitAtEnd: true, recordTrace: extra == 0),
                iter: 30, stream, Print, extra, Done);
            failed = false;
        }
        finally
        {
            if (dir is not null && extra > 0)
            {
                double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
                File.AppendAllText(Path.Combine(dir, "summary.txt"),
                    $"{policy}: {passed} sequences passed in {clock.Elapsed.TotalSeconds:F1} s wall, {cpu:F1} s CPU ({1000 * cpu / Math.Max(1, passed):F3} ms CPU per sequence), full invariants every {fullEvery} steps{(failed ? ", then a FAILURE (see the test log)" : passed < 30 + extra ? $", stopped by HUGEFAULT_PBT_SECONDS={budget}" : "")}\n");
            }
        }
    }

    /// <summary>
    /// Found by the long mode (userspace-migrate, seeds 50M3Vl0bd4zJ and 8MeOas97JnxJ): a store to a shared 2 MiB memfd
    /// page, an error the agent rescues (its good 4 KiB pages pread() into tmpfs, mapped over the range), then a load of
    /// the copy. The model was right; the shadow did not follow the range to the new file and expected zeros there.
    /// Each sequence now passes, and the loads it checks read data, not zeros.
    /// </summary>
    [Theory]
    [InlineData("MemfdCreate(P6,S1,507465,645139,706694), MemfdCreate(P7,S0,1013308,270603,737073), MmapFile(P3,S7,308074,772082,449943), Load(P4,S5,760056,551435,1292), MmapFile(P3,S7,285490,808553,436467), Store(P0,S0,632441,363420,911898), HwErrorLatent(P4,S4,331762,205504,264472), Load(P0,S1,747734,322255,374935)")]
    [InlineData("Exit(P4,S7,738155,3485,692146), Munmap(P0,S1,79953,409076,89100), MadvHwpoison(P4,S3,771502,647499,467235), Load(P7,S3,768730,284681,963493), MmapFile(P6,S7,490736,422275,313992), MadvHwpoison(P1,S6,800211,615594,223733), Load(P1,S2,51676,798745,682747), Fork(P7,S3,712805,178473,203712), Store(P5,S3,531286,296462,341081), Exit(P7,S3,637815,159390,627495), HwErrorScrub(P6,S0,527407,378067,993375), Load(P7,S0,159846,558309,502935)")]
    public void The_shadow_follows_the_userspace_rescue_copy_to_its_tmpfs_file(string sequence)
    {
        var w = KernelWorld.RunChecked(Parse(sequence), policy: "userspace-migrate", recordTrace: true); // every invariant, the last load's bytes included
        Assert.Contains(w.K.Trace, e => e.Describe().Contains("of good data", StringComparison.Ordinal));
        var (t, va, len) = w.CompletedLoad!.Value;
        Assert.Equal(Fs.FsKind.Tmpfs, t.Mm.FindVma(va)!.File!.Kind);
        var r = w.K.Walk(t.Mm, va);
        var f = w.K.Phys.FolioOf(r.Entry.Pfn)!;
        uint line = (uint)((((r.Entry.Pfn - f.Pfn) << Units.PAGE_SHIFT) + (va - r.Va) + len / 2) >> Units.CACHELINE_SHIFT);
        Assert.NotEqual(ContentTag.Zero, f.Content!.Tag(line)); // data where the shadow used to expect zeros
    }

    /// <summary>
    /// Found by the long mode (userspace-migrate, seed b6Sx0YCrZ1DJ): one memfd page mapped MAP_SHARED and MAP_PRIVATE by
    /// A, fd closed, a store through the shared mapping, MADV_HWPOISON through the private one. Both ranges move to the
    /// copy and the file is evicted; the shadow took the private range's view of the file from the page cache, empty by
    /// then, and expected zeros in the copy. It now takes the file's shadow as it was before the step.
    /// </summary>
    [Fact]
    public void The_shadow_follows_a_private_view_of_a_file_the_rescue_evicts()
    {
        var w = KernelWorld.RunChecked(Parse("Load(P2,S7,915903,450605,259960), PunchHole(P1,S5,637627,172443,235710), MmapFile(P1,S6,544636,982681,485562), HwErrorScrub(P7,S4,490818,533433,907097), Load(P3,S7,798944,1017119,869298), Pread(P1,S7,49569,881384,746759), MmapFile(P5,S7,848233,892836,93126), MmapFile(P2,S1,367197,355269,665640), Close(P1,S7,337980,995799,430441), Store(P4,S7,175524,555508,548294), MadvHwpoison(P6,S2,87587,816339,284076)"),
            policy: "userspace-migrate", exitAtEnd: true, recordTrace: true);
        Assert.Contains(w.K.Trace, e => e.Describe().Contains("of good data", StringComparison.Ordinal));
    }

    /// <summary>
    /// Found by the long mode (userspace-migrate, seed dQ7KbnBAuElJ): a shared anonymous 2 MiB page (its hugetlbfs inode
    /// internal), a store, MADV_HWPOISON. The rescue's munmap of the range now evicts that inode, so its poisoned folio
    /// leaves the page cache; the shadow found the unreadable 4 KiB through it and expected the written data there. It
    /// now takes the UFFDIO_POISON markers of the new mapping: zeros in the copy under them.
    /// </summary>
    [Fact]
    public void The_shadow_expects_zeros_in_the_copy_where_the_agent_marked_a_page_poisoned()
    {
        var w = KernelWorld.RunChecked(Parse("MmapAnon(P0,S7,787575,656823,695952), Store(P1,S2,306187,694396,786042), MadvHwpoison(P5,S2,757973,904243,581263)"),
            policy: "userspace-migrate", recordTrace: true);
        var t = w.Tasks[0];
        ulong bad = w.Maps[0].Va + 0x100000;
        Assert.True(w.K.Walk(t.Mm, bad).Entry.IsPoisonMarker);
        Assert.Contains(w.K.Trace, e => e.Describe().Contains("of good data", StringComparison.Ordinal));
        w.ExitAll();
        Assert.Empty(Invariants.CheckAfterExit(w));
    }

    /// <summary>
    /// Found by the long mode (vma-convert, seed 5DhksjwqqdsI): a private 2 MiB-page mapping converted in its first half,
    /// fork, fork again. The grandchild's VMAs come in address order, so the shadow's fork took the converted 4 KiB half
    /// (same name) for the granule of the hugetlb half's page and kept 4 KiB of its 2 MiB. The model was right.
    /// </summary>
    [Fact]
    public void The_shadow_forks_a_private_page_with_the_granule_of_the_VMA_that_holds_it()
    {
        var ops = Parse("Exit(P5,S2,215744,258150,509117), MmapAnon(P4,S4,530898,255169,137957), Store(P0,S1,799857,948004,131143), HwErrorScrub(P0,S1,558784,641804,523707), Fork(P0,S2,57081,334837,927033), Fork(P7,S5,612260,393268,160123)");
        var w = KernelWorld.RunChecked(ops, policy: "vma-convert"); // every private page of every mm checked after each step
        Assert.Equal(1, w.K.Stats.HugePagesConverted);
        var grandchild = w.Tasks[^1].Mm;
        Assert.Equal(grandchild.Vmas.Where(v => v.Name == "m0").OrderBy(v => v.Start).Select(v => v.IsHugetlb), new[] { false, true });
        var half = grandchild.Vmas.Single(v => v.Name == "m0" && v.IsHugetlb);
        var f = w.K.Phys.FolioOf(w.K.Walk(grandchild, half.Start).Entry.Pfn)!;
        Assert.NotEqual(ContentTag.Zero, f.Content!.Tag((uint)(f.Size >> Units.CACHELINE_SHIFT) - 1)); // the line the shadow expected zero
        w.ExitAll();
        Assert.Empty(Invariants.CheckAfterExit(w));
    }

    /// <summary>Ops as <see cref="Op.ToString"/> prints them (a failure's "minimal reproduction" line).</summary>
    private static Op[] Parse(string s) => System.Text.RegularExpressions.Regex.Matches(s, @"(\w+)\(P(\d+),S(\d+),(\d+),(\d+),(\d+)\)")
        .Select(m => new Op(Enum.Parse<OpKind>(m.Groups[1].Value), int.Parse(m.Groups[2].Value), int.Parse(m.Groups[3].Value),
            int.Parse(m.Groups[4].Value), int.Parse(m.Groups[5].Value), int.Parse(m.Groups[6].Value))).ToArray();

    /// <summary>
    /// Found by the long mode (vma-convert, HUGEFAULT_PBT_MASTER=3, seed 4gp2-KVlWOrI): a 2 MiB memfd mapped shared and
    /// MAP_PRIVATE over the same offsets, MADV_HWPOISON through the shared mapping: the private VMA's range is converted
    /// away from hugetlb with its reservation still unconsumed, and a non-hugetlb VMA never returns it, so
    /// resv_huge_pages stayed 1 after every task exited. The conversion now returns it (hugetlb_vm_op_close()'s accounting).
    /// </summary>
    [Fact]
    public void Vma_convert_returns_the_private_reservations_of_the_range_it_converts()
    {
        Op[] ops = [new(OpKind.Pread, 5, 6, 993195, 241485, 1019632), new(OpKind.HwErrorLatent, 7, 0, 669349, 772586, 758305), new(OpKind.Load, 6, 5, 430597, 201867, 840671), new(OpKind.Munmap, 3, 1, 906631, 288857, 187596), new(OpKind.MmapAnon, 1, 5, 958112, 425630, 83255), new(OpKind.MemfdCreate, 3, 5, 1006785, 839567, 743535), new(OpKind.MmapFile, 3, 4, 722713, 953578, 468723), new(OpKind.MmapFile, 4, 4, 146247, 808339, 613504), new(OpKind.MadvHwpoison, 0, 2, 961, 812444, 245106)];
        var w = KernelWorld.RunChecked(ops, policy: "vma-convert", exitAtEnd: true);
        Assert.Equal(1, w.K.Stats.HugePagesConverted);
        Assert.Equal(0, w.K.H2M.resv_huge_pages);
    }

    /// <summary>
    /// Found by the long mode (copy-around, seed 36ed8M65lJRL): a private 2 MiB page, a consumed error (copied around:
    /// the copy is mapped at 4 KiB with the bad page fake-poisoned), fork, then a 1 MiB store. hugetlb_wp() copied the
    /// whole folio but mapped the copy's first page at the faulting 4 KiB piece, and faulted again (a new huge page) for
    /// every piece, until the pool ran out (BUS_ADRERR after 28,125 bytes, the written data on the wrong pages). Now every
    /// piece of the mapping moves to the copy at its own offset: one copy, and the store completes.
    /// </summary>
    [Fact]
    public void A_private_copy_on_write_of_a_folio_mapped_at_4K_moves_every_piece_to_its_own_offset()
    {
        Op[] ops = [new(OpKind.Munmap, 4, 1, 856020, 3802, 950568), new(OpKind.MmapAnon, 4, 0, 310264, 167958, 1015470), new(OpKind.MmapAnon, 2, 6, 818892, 941448, 1025444),
            new(OpKind.HwErrorLatent, 7, 3, 887577, 127354, 406398), new(OpKind.Fork, 2, 2, 765287, 278283, 473914), new(OpKind.Store, 2, 6, 564065, 959476, 532289)];
        var w = KernelWorld.RunChecked(ops, policy: "copy-around", exitAtEnd: true, recordTrace: true);
        Assert.DoesNotContain(w.K.Trace, e => e.Describe().Contains("BUS_ADRERR", StringComparison.Ordinal));
    }

    /// <summary>
    /// Found by the long mode (userspace-migrate and vma-convert, seed byOS87fGEzII): MADV_SOFT_OFFLINE of a 4 KiB page
    /// of a large non-hugetlb folio (the rescue tmpfs file's 2 MiB folio, a converted hugetlb page) migrated the whole
    /// folio into one new 4 KiB page and left the other leaves on free memory. The model has no THP split, so soft
    /// offline fails as soft_offline_in_use_page() does when try_to_split_thp_page() fails: -EBUSY, nothing moved.
    /// </summary>
    [Fact]
    public void Soft_offline_of_a_page_in_a_large_non_hugetlb_folio_moves_nothing()
    {
        Op[] ops = [new(OpKind.MmapAnon, 6, 7, 877368, 57129, 170521), new(OpKind.HwErrorScrub, 6, 6, 293034, 113449, 859120), new(OpKind.MadvSoftOffline, 4, 2, 355121, 443309, 835008)];
        var w = KernelWorld.RunChecked(ops, policy: "userspace-migrate", exitAtEnd: true, recordTrace: true);
        Assert.Contains(w.K.Trace, e => e.Describe().Contains("thp split failed", StringComparison.Ordinal));
    }

    /// <summary>
    /// Found by this property (vma-convert, seed 0000000001tI): a private 2 MiB page faulted in, the pool shrunk to 0 (the
    /// in-use page becomes surplus), then a consumed error converts the folio out of hugetlb: nr_huge_pages dropped but
    /// surplus_huge_pages stayed 1, above nr (__remove_hugetlb_folio() adjusts surplus).
    /// </summary>
    [Fact]
    public void Vma_convert_takes_a_surplus_page_out_of_the_surplus_count_too()
    {
        Op[] ops = [new(OpKind.DontNeed, 5, 3, 863595, 153685, 455528), new(OpKind.NrHugepages, 5, 1, 793988, 333240, 567630), new(OpKind.HwErrorLatent, 2, 0, 695662, 795082, 450079)];
        var w = KernelWorld.RunChecked(ops, policy: "vma-convert", exitAtEnd: true);
        Assert.Equal(1, w.K.Stats.HugePagesConverted);
        Assert.Equal(0, w.K.H2M.surplus_huge_pages);
        Assert.Equal(0, w.K.H2M.nr_huge_pages);
    }

    /// <summary>
    /// Found by the long mode (keep-mapped, HUGEFAULT_PBT_MASTER=1, seed 82WpSZZ-JYaM): a store that begins inside a
    /// poisoned line took the line's start (below the store's address) as the end of the good bytes, so the length
    /// underflowed: the store wrote past the poison and reported done = 2^64 - 14. It must stop at once, done = 0.
    /// </summary>
    [Theory]
    [InlineData("keep-mapped")]
    [InlineData("mainline")]
    public void An_access_that_begins_inside_a_poisoned_line_touches_nothing(string policy)
    {
        Op[] ops = [new(OpKind.PunchHole, 0, 7, 1028306, 23792, 320744), new(OpKind.MmapFile, 2, 3, 910013, 319095, 94950), new(OpKind.HwErrorLatent, 6, 6, 98346, 143309, 203535)];
        var w = KernelWorld.RunChecked(ops, policy: policy);
        var t = w.Tasks[0];
        var m = w.Maps[0];
        ulong line = m.Va + 2 * Units.PAGE_SIZE + Units.CACHELINE; // the latent error's line (va 0x7effffe02040 above)
        Assert.NotNull(w.K.Phys.LinePoison((w.K.Walk(t.Mm, line).Entry.Pfn << Units.PAGE_SHIFT) + Units.CACHELINE));
        foreach (bool write in new[] { true, false })
        {
            var res = w.K.Access(t, line + 14, 7360, write, seed: 3);
            Assert.Equal(0UL, res.Done);
            Assert.StartsWith("SIGBUS", res.Outcome);
        }
    }
}
