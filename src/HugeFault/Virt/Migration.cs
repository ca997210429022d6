using HugeFault.Mm;
using HugeFault.Simulation;

namespace HugeFault.Virt;

public enum MigrationMode { Precopy, Postcopy }

/// <summary>What the destination does about guest pages the source knows are poisoned.</summary>
public enum PoisonHandling
{
    /// <summary>QEMU today: migrate_prepare() refuses while the poisoned-page list is non-empty.</summary>
    Refuse,
    /// <summary>Transmit the poisoned ranges; the destination installs UFFDIO_POISON markers so the guest keeps seeing them as bad.</summary>
    FakePoison,
}

/// <summary>Migration link and workload parameters.</summary>
public sealed record MigrationConfig
{
    public MigrationMode Mode { get; init; } = MigrationMode.Precopy;
    public PoisonHandling OnPoison { get; init; } = PoisonHandling.Refuse;
    public double BandwidthGbps { get; init; } = 10;
    public double RttUs { get; init; } = 100;
    /// <summary>Guest dirtying rate during pre-copy, bytes/s.</summary>
    public double DirtyBytesPerSecond { get; init; } = 200e6;
    /// <summary>Pre-copy stops iterating when the remaining dirty set can be sent within this downtime.</summary>
    public double MaxDowntimeMs { get; init; } = 300;
    /// <summary>Post-copy: how many guest accesses (to random pages, after switch-over) are simulated.</summary>
    public int PostcopyTouches { get; init; } = 2000;
    /// <summary>Post-copy fetch granule; 0 = what the destination allows (4 KiB with HGM's MADV_SPLIT, else the huge page size).</summary>
    public ulong Granule { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>
    /// Post-copy with a preempt channel (QEMU's postcopy-preempt): a page request does not wait behind the
    /// background stream. Without it, a request waits for the data already queued on the stream socket
    /// (uniform in [0, <see cref="StreamQueueBytes"/>]), which is what spreads the stall distribution.
    /// </summary>
    public bool Preempt { get; init; } = true;
    public ulong StreamQueueBytes { get; init; } = 4UL << 20;
}

/// <summary>Outcome of one live migration.</summary>
public sealed record MigrationResult(
    bool Refused, string? Reason, MigrationMode Mode, long BytesMoved, long TotalNs, long DowntimeNs, int Rounds,
    ulong Granule, int Faults, long StallP50Ns, long StallP99Ns, long StallMaxNs,
    ulong SourcePoisonedBytes, ulong FakePoisonedBytes, ulong FakePoisonGranule, string FakePoisonBacking, bool PoisonSetPreserved, string PoisonSetRelation)
{
    public Vm? Destination { get; init; }
}

/// <summary>
/// Live migration of a VM between two modelled hosts over a link: pre-copy (iterative dirty rounds) or
/// post-copy (the destination registers userfaultfd MISSING on guest RAM and vCPU faults fetch pages at the
/// granularity the destination allows: the huge page without HGM, 4 KiB with HGM's MADV_SPLIT).
/// Pages known poisoned on the source are refused (QEMU today) or fake-poisoned on the destination with
/// UFFDIO_POISON at the granularity the source knows them.
/// </summary>
public static class LiveMigration
{
    public static MigrationResult Migrate(Vm src, MigrationConfig cfg)
    {
        var poisoned = SourcePoisonedRanges(src);
        ulong srcBad = (ulong)poisoned.Sum(r => (long)r.Size);
        if (src.HwpoisonList.Count > 0 && cfg.OnPoison == PoisonHandling.Refuse || poisoned.Count > 0 && cfg.OnPoison == PoisonHandling.Refuse)
        {
            const string msg = "Can't migrate this vm with hardware poisoned memory, please reboot the vm and try again";
            src.Host.Log($"qemu {src.Name}: {msg}");
            return new MigrationResult(true, msg, cfg.Mode, 0, 0, 0, 0, 0, 0, 0, 0, 0, srcBad, 0, 0, "-", false, "refused");
        }
        // the destination host: same configuration and policy, a fresh VM waiting for the incoming stream
        var dk = new Kernel(src.Host.Config);
        var dst = new Vm(dk, src.Name, src.RamBytes, src.PageSize, src.Vcpus.Count, src.Guest, src.QemuVersion);
        bool hgm = dk.Policy.Name is "hgm" or "hgm-full-split";
        ulong granule = cfg.Granule != 0 ? cfg.Granule : hgm ? Units.PAGE_SIZE : src.PageSize;
        if (hgm) dk.Madvise(dst.Vmm, dst.RamHva, dst.RamBytes, Mman.MADV_SPLIT);
        int uffd = (int)dk.UserfaultfdCreate(dst.Vmm, Userfaultfd.UFFD_FEATURE_POISON).Ret;
        dk.UffdioRegister(dst.Vmm, uffd, dst.RamHva, dst.RamBytes, Kernel.UFFDIO_REGISTER_MODE_MISSING);
        // fake-poison what the source knows, at the granularity the destination can express
        ulong fakeGranule = 0, fake = 0;
        foreach (var (gpa, size) in poisoned)
        {
            ulong g = hgm ? Units.PAGE_SIZE : src.PageSize;
            ulong s = Units.AlignDown(gpa, g), e = Units.AlignUp(gpa + size, g);
            for (ulong a = s; a < e; a += g)
            {
                var r = dk.UffdioPoison(dst.Vmm, uffd, dst.RamHva + a, g);
                if (!r.Failed) { fake += g; fakeGranule = g; }
            }
        }
        string backing = fake == 0 ? "-" : fakeGranule < src.PageSize
            ? $"the {Units.Size(src.PageSize)} hugetlb page is kept, with {Units.Size(fakeGranule)} poison markers (HGM)"
            : $"whole {Units.Size(src.PageSize)} pages fake-poisoned: no memory behind them, the guest loses them again";
        double bw = cfg.BandwidthGbps * 1e9 / 8; // bytes per second
        long rttNs = (long)(cfg.RttUs * 1000);
        long bytes = 0, total = 0, downtime; int rounds = 0; int faults = 0;
        var stalls = new List<long>();
        ulong good = src.RamBytes - srcBad;
        if (cfg.Mode == MigrationMode.Precopy)
        {
            double remaining = good;
            double maxDown = cfg.MaxDowntimeMs / 1000.0 * bw;
            while (true)
            {
                rounds++;
                double t = remaining / bw;
                bytes += (long)remaining; total += (long)(t * 1e9);
                double dirtied = Math.Min(good, cfg.DirtyBytesPerSecond * t);
                if (dirtied <= maxDown || rounds >= 30) { remaining = dirtied; break; }
                remaining = dirtied;
            }
            downtime = (long)(remaining / bw * 1e9) + rttNs;
            bytes += (long)remaining; total += downtime;
            CopyAll(src, dst, uffd, granule, poisoned);
        }
        else
        {
            // switch over at once; each first touch of a granule stalls the vCPU for a round trip plus the transfer
            downtime = rttNs;
            var rng = Xoshiro256StarStar.ForStream(cfg.Seed, 0x4d49_4752);
            var fetched = new HashSet<ulong>();
            long stallNs = (long)(granule / bw * 1e9) + rttNs;
            long queueNs = (long)(cfg.StreamQueueBytes / bw * 1e9);
            for (int i = 0; i < cfg.PostcopyTouches; i++)
            {
                ulong gpa = Units.AlignDown(rng.NextUInt64() % src.RamBytes, Units.CACHELINE);
                ulong gbase = Units.AlignDown(gpa, granule);
                if (fetched.Contains(gbase)) continue;
                if (poisoned.Any(p => gpa >= p.Gpa && gpa < p.Gpa + p.Size)) continue;
                fetched.Add(gbase);
                faults++;
                long st = stallNs + (cfg.Preempt ? 0 : (long)(rng.NextDouble() * queueNs));
                stalls.Add(st);
                bytes += (long)granule; total += st;
            }
            // the background stream sends the rest
            long rest = (long)good - (long)fetched.Count * (long)granule;
            if (rest > 0) { bytes += rest; total += (long)(rest / bw * 1e9); }
            CopyAll(src, dst, uffd, granule, poisoned);
        }
        stalls.Sort();
        long P(double q) => stalls.Count == 0 ? 0 : stalls[Math.Min(stalls.Count - 1, (int)Math.Floor(q * stalls.Count))];
        // what does the guest see as poisoned now?
        var after = SourcePoisonedRanges(dst);
        bool contains = poisoned.All(p => after.Any(a => a.Gpa <= p.Gpa && a.Gpa + a.Size >= p.Gpa + p.Size));
        bool equal = contains && (ulong)after.Sum(a => (long)a.Size) == srcBad;
        string rel = poisoned.Count == 0 ? "no poison" : equal ? "equal to the source's" : contains ? "a superset of the source's (coarser)" : "MISSING poisoned pages";
        src.Host.Log($"migration of {src.Name}: {cfg.Mode.ToString().ToLowerInvariant()}, {Units.Size((ulong)Math.Max(0, bytes))} moved, downtime {downtime / 1e6:0.###} ms; guest-visible poison on destination {rel}");
        return new MigrationResult(false, null, cfg.Mode, bytes, total, downtime, rounds, granule, faults, P(0.5), P(0.99), stalls.Count == 0 ? 0 : stalls[^1],
            srcBad, fake, fakeGranule, backing, contains, rel) { Destination = dst };
    }

    /// <summary>Copies the source's guest data into the destination (UFFDIO_COPY per granule), skipping fake-poisoned ranges.</summary>
    private static void CopyAll(Vm src, Vm dst, int uffd, ulong granule, List<(ulong Gpa, ulong Size)> poisoned)
    {
        var dk = dst.Host;
        bool Bad(ulong a, ulong len) => poisoned.Any(p => p.Gpa < a + len && p.Gpa + p.Size > a);
        foreach (var (idx, sf) in src.Ram.PageCache)
        {
            ulong fileOff = idx * src.Ram.FolioSize;
            // one UFFDIO_COPY for the whole page, or piece by piece around fake-poisoned ranges (which UFFDIO_COPY
            // would otherwise overwrite: a poison marker counts as empty)
            if (!Bad(fileOff, sf.Size)) dk.UffdioCopy(dst.Vmm, uffd, dst.RamHva + fileOff, sf.Size, 0, 0);
            else if (granule < sf.Size)
                for (ulong off = 0; off < sf.Size; off += Units.PMD_SIZE)
                {
                    if (!Bad(fileOff + off, Units.PMD_SIZE)) { dk.UffdioCopy(dst.Vmm, uffd, dst.RamHva + fileOff + off, Units.PMD_SIZE, 0, 0); continue; }
                    for (ulong o4 = off; o4 < off + Units.PMD_SIZE; o4 += Units.PAGE_SIZE)
                        if (!Bad(fileOff + o4, Units.PAGE_SIZE)) dk.UffdioCopy(dst.Vmm, uffd, dst.RamHva + fileOff + o4, Units.PAGE_SIZE, 0, 0);
                }
            if (dst.Ram.PageCache.TryGetValue(fileOff >> dst.Ram.FolioShift, out var df) && sf.Content is { } sc)
                df.EnsureContent().CopyFrom(sc, 0, 0, (uint)(sf.Size >> Units.CACHELINE_SHIFT));
        }
    }

    /// <summary>Guest-physical ranges the guest cannot use on this host because of poison, at the granularity the host knows them.</summary>
    public static List<(ulong Gpa, ulong Size)> SourcePoisonedRanges(Vm vm)
    {
        var k = vm.Host;
        var list = new List<(ulong, ulong)>();
        var vma = vm.Vmm.Mm.FindVma(vm.RamHva);
        for (ulong g = 0; g < vm.RamBytes; )
        {
            var r = k.Walk(vm.Vmm.Mm, vm.RamHva + g);
            var e = r.Entry;
            ulong step = Math.Max(Units.PAGE_SIZE, r.Size);
            ulong gs = Units.AlignDown(g, step);
            if (e.IsHwpoison || e.IsPoisonMarker) list.Add((gs, step));
            else if (e.IsNone && vm.Ram.PageCache.TryGetValue(g >> vm.Ram.FolioShift, out var f) && f.IsHwpoison && vma is not null)
            {
                if (k.Policy.AllowFaultOnPoisonedFolio(k, vma, f, vm.RamHva + g))
                    foreach (var raw in f.RawHwp) list.Add((f.Index * f.Size + ((raw - f.Pfn) << Units.PAGE_SHIFT), Units.PAGE_SIZE));
                else list.Add((Units.AlignDown(g, f.Size), f.Size));
                step = f.Size; gs = Units.AlignDown(g, f.Size);
            }
            else if (e.Present && k.Phys.FolioOf(e.Pfn) is { IsHwpoison: true } pf)
                foreach (var raw in pf.RawHwp.Where(raw => raw >= e.Pfn && raw < e.Pfn + (step >> Units.PAGE_SHIFT)))
                    list.Add((gs + ((raw - e.Pfn) << Units.PAGE_SHIFT), Units.PAGE_SIZE));
            g = gs + step;
        }
        foreach (var ra in vm.HwpoisonList)
            if (!list.Any(p => ra >= p.Item1 && ra < p.Item1 + p.Item2)) list.Add((ra, Units.PAGE_SIZE));
        return list.Distinct().OrderBy(p => p.Item1).ToList();
    }
}
