using CsCheck;
using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Tests.Properties;

/// <summary>What a random step does. The integer fields pick slots (modulo what exists) and sizes, so every sequence is runnable and shrinks well.</summary>
public enum OpKind
{
    Load, Store, MemfdCreate, Ftruncate, MmapFile, MmapAnon, Munmap, Fork, Exit, Close,
    MadvHwpoison, MadvSoftOffline, HwErrorScrub, HwErrorLatent, HwErrorAnyFolio, Pread, Read, PunchHole, Fallocate,
    DontNeed, NrHugepages, PrctlMceKill, SysctlEarlyKill, UnpoisonPfn, UffdioPoison,
}

/// <summary>One random step: a kind and five small integers whose meaning depends on the kind (see <see cref="KernelWorld.Apply"/>).</summary>
public sealed record Op(OpKind Kind, int P, int S, int A, int B, int C)
{
    public override string ToString() => $"{Kind}(P{P},S{S},{A},{B},{C})";
}

/// <summary>
/// A small host (8 GiB, 2 × 1G and 8 × 2M pool pages, some 2M overcommit) with 2-5 processes, driven by
/// random <see cref="Op"/>s. It resolves slot numbers to live tasks, fds and mappings, runs the syscall,
/// and records what it needs to check afterwards (loads that completed, bytes pread returned).
/// </summary>
public sealed class KernelWorld
{
    public const int MaxTasks = 5;

    public sealed record FdSlot(TaskStruct Task, int Fd, ulong Granule);
    public sealed record MapSlot(TaskStruct Task, ulong Va, ulong Len, ulong Granule);

    public Kernel K { get; }
    public List<TaskStruct> Tasks { get; } = new();
    public List<FdSlot> Fds { get; } = new();
    public List<MapSlot> Maps { get; } = new();
    /// <summary>Set by a step that must be checked for consumed poison: (task, va, length) of a load that completed.</summary>
    public (TaskStruct T, ulong Va, ulong Len)? CompletedLoad { get; private set; }
    /// <summary>Physical ranges whose bytes a read()/pread() returned in the last step.</summary>
    public List<(ulong Pa, ulong Len)> ReadRanges { get; } = new();
    public bool Unpoisoned { get; private set; }
    /// <summary>What memory should hold (see <see cref="ContentShadow"/>).</summary>
    public ContentShadow Shadow { get; }
    private int _names;
    private readonly Dictionary<TaskStruct, int> _uffd = new();

    /// <summary>The recovery policy the host runs (mainline by default); <paramref name="recordTrace"/> = false for long runs that check state, not the trace.</summary>
    public KernelWorld(string policy = "mainline", bool recordTrace = true)
    {
        K = new Kernel(new KernelConfig { MemoryBytes = 8 * Units.GiB, HugePages1G = 2, HugePages2M = 8, Overcommit2M = 2, Policy = policy, RecordTrace = recordTrace });
        var a = K.Spawn("A");
        var b = K.Spawn("B");
        b.Sigbus = SigbusDisposition.Default; // B dies of an uncaught SIGBUS: exercises exit from inside memory_failure()
        Tasks.Add(a); Tasks.Add(b);
        Shadow = new ContentShadow(K);
        K.FlushCounters();
    }

    public static readonly Gen<Op> GenOp =
        from k in Gen.Int[0, 99]
        from p in Gen.Int[0, 7]
        from s in Gen.Int[0, 7]
        from a in Gen.Int[0, 1 << 20]
        from b in Gen.Int[0, 1 << 20]
        from c in Gen.Int[0, 1 << 20]
        select new Op(KindOf(k), p, s, a, b, c);

    public static readonly Gen<Op[]> GenOps = GenOp.Array[1, 60];

    /// <summary>Weights: accesses and mappings are common, errors and pool changes rarer.</summary>
    private static OpKind KindOf(int k) => k switch
    {
        < 14 => OpKind.Load,
        < 26 => OpKind.Store,
        < 32 => OpKind.MemfdCreate,
        < 36 => OpKind.Ftruncate,
        < 46 => OpKind.MmapFile,
        < 52 => OpKind.MmapAnon,
        < 56 => OpKind.Munmap,
        < 60 => OpKind.Fork,
        < 62 => OpKind.Exit,
        < 64 => OpKind.Close,
        < 69 => OpKind.MadvHwpoison,
        < 71 => OpKind.MadvSoftOffline,
        < 75 => OpKind.HwErrorScrub,
        < 79 => OpKind.HwErrorLatent,
        < 81 => OpKind.HwErrorAnyFolio,
        < 85 => OpKind.Pread,
        < 87 => OpKind.Read,
        < 90 => OpKind.PunchHole,
        < 92 => OpKind.Fallocate,
        < 94 => OpKind.DontNeed,
        < 95 => OpKind.UffdioPoison,
        < 97 => OpKind.NrHugepages,
        < 98 => OpKind.PrctlMceKill,
        < 99 => OpKind.SysctlEarlyKill,
        _ => OpKind.UnpoisonPfn,
    };

    private TaskStruct? Live(int p)
    {
        var live = Tasks.Where(t => t.Alive).ToList();
        return live.Count == 0 ? null : live[p % live.Count];
    }

    private static bool NeedsMap(OpKind k) => k is OpKind.Load or OpKind.Store or OpKind.Munmap or OpKind.DontNeed or OpKind.UffdioPoison
        or OpKind.MadvHwpoison or OpKind.MadvSoftOffline or OpKind.HwErrorScrub or OpKind.HwErrorLatent;

    private static bool NeedsFd(OpKind k) => k is OpKind.Ftruncate or OpKind.MmapFile or OpKind.Close or OpKind.Pread
        or OpKind.Read or OpKind.PunchHole or OpKind.Fallocate;

    private TaskStruct? LiveWith(int p, Func<TaskStruct, bool> has)
    {
        var live = Tasks.Where(t => t.Alive && has(t)).ToList();
        return live.Count == 0 ? Live(p) : live[p % live.Count];
    }

    private FdSlot? FdOf(TaskStruct t, int s)
    {
        var mine = Fds.Where(f => f.Task == t).ToList();
        return mine.Count == 0 ? null : mine[s % mine.Count];
    }

    private MapSlot? MapOf(TaskStruct t, int s)
    {
        var mine = Maps.Where(m => m.Task == t).ToList();
        return mine.Count == 0 ? null : mine[s % mine.Count];
    }

    /// <summary>Size unit of a file's lengths and offsets: its huge page size, or 64 KiB for tmpfs (16 pages keep the 4 KiB folio count small).</summary>
    private static ulong GranuleOf(Inode i) => i.Hstate?.Size ?? SmallUnit;

    /// <summary>Unit of 4 KiB-page mappings and tmpfs files.</summary>
    public const ulong SmallUnit = 64 * Units.KiB;

    /// <summary>Runs one step; returns a short description of what it did (for failure messages).</summary>
    public string Apply(Op op)
    {
        CompletedLoad = null; ReadRanges.Clear();
        K.Tick();
        // steps that need a mapping or an fd go to a task that has one, so few steps are wasted
        var t = NeedsMap(op.Kind) ? LiveWith(op.P, t => Maps.Any(m => m.Task == t))
            : NeedsFd(op.Kind) ? LiveWith(op.P, t => Fds.Any(f => f.Task == t))
            : Live(op.P);
        if (t is null)
        {
            if (Tasks.Count >= 12) return "no live task";
            var n = K.Spawn("P" + Tasks.Count); Tasks.Add(n);
            return $"spawn {n}";
        }
        var layout = Shadow.Snapshot();
        string r = Do(op, t);
        Shadow.FollowRemaps(layout);
        foreach (var dead in Tasks.Where(x => !x.Alive).ToList()) Forget(dead);
        K.FlushCounters();
        return r;
    }

    private string Do(Op op, TaskStruct t)
    {
        // nothing to act on yet: the step creates it instead (a mapping, or a file to map later)
        if (NeedsMap(op.Kind) && MapOf(t, 0) is null)
            return Do(op with { Kind = op.C % 2 == 0 ? OpKind.MmapAnon : Fds.Any(f => f.Task == t) ? OpKind.MmapFile : OpKind.MemfdCreate }, t);
        if (NeedsFd(op.Kind) && FdOf(t, 0) is null) return Do(op with { Kind = OpKind.MemfdCreate }, t);
        switch (op.Kind)
        {
            case OpKind.MemfdCreate:
            {
                uint flags = (op.A % 3) switch { 0 => Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB, 1 => Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_1GB, _ => 0 };
                var res = K.MemfdCreate(t, "f" + Fds.Count, flags);
                if (res.Failed) return $"memfd_create = {Errno.Name(res.Errno)}";
                int fd = (int)res.Ret;
                var inode = t.Fds[fd].Inode;
                Fds.Add(new FdSlot(t, fd, GranuleOf(inode)));
                var tr = K.Ftruncate(t, fd, (long)(GranuleOf(inode) * (ulong)(1 + op.B % 3)));
                return $"{t}: memfd_create({inode.Kind} {Units.Size(GranuleOf(inode))}) = {fd}, ftruncate = {tr.Ret}";
            }
            case OpKind.Ftruncate:
            {
                if (FdOf(t, op.S) is not { } f) return "no fd";
                ulong len = f.Granule * (ulong)(op.A % 4);
                return $"{t}: ftruncate({f.Fd}, {Units.Size(len)}) = {K.Ftruncate(t, f.Fd, (long)len).Ret}";
            }
            case OpKind.MmapFile:
            {
                if (FdOf(t, op.S) is not { } f) return "no fd";
                bool shared = op.A % 3 != 0;
                int flags = (shared ? Mman.MAP_SHARED : Mman.MAP_PRIVATE) | (op.B % 4 == 0 ? Mman.MAP_NORESERVE : 0);
                ulong len = f.Granule * (ulong)(1 + op.C % 3), off = f.Granule * (ulong)(op.C / 3 % 2);
                var res = K.Mmap(t, len, Mman.PROT_READ | Mman.PROT_WRITE, flags, f.Fd, off, "m" + _names++);
                if (!res.Failed) Maps.Add(new MapSlot(t, (ulong)res.Ret, len, f.Granule));
                return $"{t}: mmap(fd {f.Fd}, {Units.Size(len)} @ {Units.Size(off)}, {(shared ? "shared" : "private")}{((flags & Mman.MAP_NORESERVE) != 0 ? "|noreserve" : "")}) = {(res.Failed ? Errno.Name(res.Errno) : Units.Hex((ulong)res.Ret))}";
            }
            case OpKind.MmapAnon:
            {
                int kind = op.A % 3;
                ulong g = kind switch { 0 => 2 * Units.MiB, 1 => Units.GiB, _ => SmallUnit };
                bool shared = op.B % 3 == 0;
                int flags = Mman.MAP_ANONYMOUS | (shared ? Mman.MAP_SHARED : Mman.MAP_PRIVATE) | (op.B % 4 == 1 ? Mman.MAP_NORESERVE : 0)
                    | kind switch { 0 => Mman.MAP_HUGETLB | Mman.MAP_HUGE_2MB, 1 => Mman.MAP_HUGETLB | Mman.MAP_HUGE_1GB, _ => 0 };
                ulong len = g * (ulong)(1 + op.C % 2);
                var res = K.Mmap(t, len, Mman.PROT_READ | Mman.PROT_WRITE, flags, -1, 0, "m" + _names++);
                if (!res.Failed) Maps.Add(new MapSlot(t, (ulong)res.Ret, len, kind == 2 ? Units.PAGE_SIZE : g));
                return $"{t}: mmap(anon {(kind == 2 ? "4K" : Units.Size(g))} {Units.Size(len)} {(shared ? "shared" : "private")}) = {(res.Failed ? Errno.Name(res.Errno) : Units.Hex((ulong)res.Ret))}";
            }
            case OpKind.Munmap:
            {
                if (MapOf(t, op.S) is not { } m) return "no mapping";
                ulong units = m.Len / m.Granule;
                ulong first = (ulong)op.A % units, n = 1 + (ulong)op.B % (units - first);
                var res = K.Munmap(t, m.Va + first * m.Granule, n * m.Granule);
                return $"{t}: munmap({Units.Hex(m.Va + first * m.Granule)}, {Units.Size(n * m.Granule)}) = {(res.Failed ? Errno.Name(res.Errno) : "0")}";
            }
            case OpKind.DontNeed:
            {
                if (MapOf(t, op.S) is not { } m) return "no mapping";
                ulong units = m.Len / m.Granule;
                ulong first = (ulong)op.A % units, n = 1 + (ulong)op.B % (units - first);
                var res = K.Madvise(t, m.Va + first * m.Granule, n * m.Granule, Mman.MADV_DONTNEED);
                return $"{t}: madvise(DONTNEED) = {(res.Failed ? Errno.Name(res.Errno) : "0")}";
            }
            case OpKind.Fork:
            {
                if (Tasks.Count(x => x.Alive) >= MaxTasks) return "too many tasks";
                var c = K.Fork(t, "C" + Tasks.Count);
                Tasks.Add(c);
                Shadow.Fork(t.Mm, c.Mm);
                foreach (var f in Fds.Where(f => f.Task == t).ToList()) Fds.Add(f with { Task = c });
                foreach (var m in Maps.Where(m => m.Task == t).ToList()) Maps.Add(m with { Task = c });
                return $"{t}: fork = {c}";
            }
            case OpKind.Exit:
                K.DoExit(t, "exit()");
                Forget(t);
                return $"{t}: exit";
            case OpKind.Close:
            {
                if (FdOf(t, op.S) is not { } f) return "no fd";
                Fds.Remove(f);
                return $"{t}: close({f.Fd}) = {K.Close(t, f.Fd).Ret}";
            }
            case OpKind.Store:
            case OpKind.Load:
            {
                if (MapOf(t, op.S) is not { } m) return "no mapping";
                ulong off = (ulong)op.A * 4099 % m.Len;
                ulong len = Math.Min(m.Len - off, op.B % 4 == 0 ? m.Len : 1 + (ulong)op.B % (64 * 1024));
                bool write = op.Kind == OpKind.Store;
                var res = Access(t, m.Va + off, len, write, seed: write ? 1 + (ulong)(op.C % 5) : 0, po: (long)off);
                if (!write && res.Outcome == "ok") CompletedLoad = (t, m.Va + off, len);
                if (!t.Alive) Forget(t);
                return $"{t}: {(write ? "store" : "load")} {Units.Hex(m.Va + off)} len={len}: {res.Outcome} done={res.Done}";
            }
            case OpKind.MadvHwpoison:
            case OpKind.MadvSoftOffline:
            {
                if (MapOf(t, op.S) is not { } m) return "no mapping";
                ulong off = Units.AlignDown((ulong)op.A * 4099 % m.Len, Units.PAGE_SIZE);
                var res = K.Madvise(t, m.Va + off, Units.PAGE_SIZE, op.Kind == OpKind.MadvHwpoison ? Mman.MADV_HWPOISON : Mman.MADV_SOFT_OFFLINE);
                if (!t.Alive) Forget(t);
                return $"{t}: madvise({Units.Hex(m.Va + off)}, {op.Kind}) = {(res.Failed ? Errno.Name(res.Errno) : "0")}";
            }
            case OpKind.HwErrorScrub:
            case OpKind.HwErrorLatent:
            {
                if (MapOf(t, op.S) is not { } m) return "no mapping";
                ulong va = Units.AlignDown(m.Va + (ulong)op.A * 4099 % m.Len, Units.CACHELINE);
                var r = K.Walk(t.Mm, va);
                if (!r.Entry.Present || !(r.Level == PtLevel.Pte || r.Entry.Huge))
                {
                    Access(t, va, 1, write: op.C % 2 == 1, seed: 0, po: 0); // fault it in first: errors hit memory in use
                    r = K.Walk(t.Mm, va);
                }
                if (!t.Alive || !r.Entry.Present || !(r.Level == PtLevel.Pte || r.Entry.Huge)) return "not mapped";
                ulong pa = (r.Entry.Pfn << Units.PAGE_SHIFT) + (va - r.Va);
                string what = PoisonAt(pa, scrub: op.Kind == OpKind.HwErrorScrub, $"{t} va {Units.Hex(va)}");
                if (op.Kind == OpKind.HwErrorLatent && op.B % 2 == 0 && t.Alive)
                {
                    // consumed at once by a load of the line: a machine check in t's context
                    var res = K.Access(t, va, Units.CACHELINE, write: false);
                    if (res.Outcome == "ok") CompletedLoad = (t, va, Units.CACHELINE);
                    what += $", consumed by {t}: {res.Outcome}";
                }
                return what;
            }
            case OpKind.HwErrorAnyFolio:
            {
                // any allocated folio, page tables included: what a patrol scrubber finds anywhere in DRAM
                var folios = K.Phys.Folios.Keys.Order().ToList();
                if (folios.Count == 0) return "no folio";
                var f = K.Phys.Folios[folios[op.S * 7919 % folios.Count]];
                ulong pa = f.PhysAddr + Units.AlignDown((ulong)op.A * 4099 * 64 % f.Size, Units.CACHELINE);
                return PoisonAt(pa, scrub: true, $"folio {f}");
            }
            case OpKind.Pread:
            case OpKind.Read:
            {
                if (FdOf(t, op.S) is not { } f) return "no fd";
                var inode = t.Fds[f.Fd].Inode;
                ulong off = (ulong)op.A * 4099 % (4 * f.Granule), len = 1 + (ulong)op.B % (3 * f.Granule / 2);
                if (op.Kind == OpKind.Read) off = (ulong)t.Fds[f.Fd].Pos;
                // the folios that back [off, off+len) now: a read never moves them
                var before = inode.PageCache.ToDictionary(kv => kv.Key, kv => kv.Value);
                var res = op.Kind == OpKind.Read ? K.Read(t, f.Fd, len) : K.Pread(t, f.Fd, len, off);
                if (!res.Failed && res.Ret > 0)
                {
                    ulong fs = inode.FolioSize;
                    for (ulong p = off; p < off + (ulong)res.Ret;)
                    {
                        ulong idx = p / fs, fo = p % fs, n = Math.Min(fs - fo, off + (ulong)res.Ret - p);
                        if (before.TryGetValue(idx, out var folio)) ReadRanges.Add((folio.PhysAddr + fo, n));
                        p += n;
                    }
                }
                return $"{t}: {(op.Kind == OpKind.Read ? "read" : "pread")}({f.Fd}, {len}, {off}) = {(res.Failed ? Errno.Name(res.Errno) : res.Ret.ToString())}";
            }
            case OpKind.PunchHole:
            case OpKind.Fallocate:
            {
                if (FdOf(t, op.S) is not { } f) return "no fd";
                ulong off = f.Granule * (ulong)(op.A % 3), len = f.Granule * (ulong)(1 + op.B % 2);
                int mode = op.Kind == OpKind.PunchHole ? Memfd.FALLOC_FL_PUNCH_HOLE | Memfd.FALLOC_FL_KEEP_SIZE : 0;
                var res = K.Fallocate(t, f.Fd, mode, off, len);
                return $"{t}: fallocate({f.Fd}, {op.Kind}, {Units.Size(off)}, {Units.Size(len)}) = {(res.Failed ? Errno.Name(res.Errno) : "0")}";
            }
            case OpKind.PrctlMceKill:
            {
                var pol = (MceKillPolicy)(op.A % 3);
                K.PrctlMceKill(t, pol);
                return $"{t}: prctl(PR_MCE_KILL, {pol})";
            }
            case OpKind.SysctlEarlyKill:
                K.EarlyKill = !K.EarlyKill;
                return $"vm.memory_failure_early_kill = {(K.EarlyKill ? 1 : 0)}";
            case OpKind.UffdioPoison:
            {
                // userfaultfd(UFFD_FEATURE_POISON), UFFDIO_REGISTER (WP mode: faults are not held), UFFDIO_POISON of one page
                if (MapOf(t, op.S) is not { } m) return "no mapping";
                if (!_uffd.TryGetValue(t, out int ufd))
                    _uffd[t] = ufd = (int)K.UserfaultfdCreate(t, Userfaultfd.UFFD_FEATURE_POISON).Ret;
                var reg = K.UffdioRegister(t, ufd, m.Va, m.Len, Kernel.UFFDIO_REGISTER_MODE_WP);
                ulong at = m.Va + m.Granule * ((ulong)op.A % (m.Len / m.Granule));
                var res = K.UffdioPoison(t, ufd, at, m.Granule);
                return $"{t}: UFFDIO_REGISTER = {(reg.Failed ? Errno.Name(reg.Errno) : "0")}, UFFDIO_POISON({Units.Hex(at)}, {Units.Size(m.Granule)}) = {(res.Failed ? Errno.Name(res.Errno) : res.Ret.ToString())}";
            }
            case OpKind.UnpoisonPfn:
            {
                // debugfs hwpoison/unpoison-pfn on one of the poisoned raw pages (refused after a real hardware error)
                var raw = K.Phys.RawHwpoisonPages.Concat(K.Phys.Folios.Values.SelectMany(f => f.HasRawHwp ? f.RawHwp : f.IsHwpoison && !f.IsHugetlb ? [f.Pfn] : []))
                    .Distinct().Order().ToList();
                if (raw.Count == 0) return "nothing to unpoison";
                ulong pfn = raw[op.A % raw.Count];
                int r = K.UnpoisonMemory(pfn);
                if (r == 0) Unpoisoned = true;
                return $"unpoison_pfn({Units.Hex(pfn)}) = {r}";
            }
            case OpKind.NrHugepages:
            {
                var h = op.A % 2 == 0 ? K.H2M : K.H1G;
                long v = op.B % (h == K.H2M ? 12 : 4);
                K.SetNrHugepages(h, v);
                return $"nr_hugepages[{h.Name}] = {v} -> {h.nr_huge_pages}";
            }
        }
        throw new InvalidOperationException(op.Kind.ToString());
    }

    /// <summary>A user access, with its stored bytes applied to the shadow.</summary>
    private AccessResult Access(TaskStruct t, ulong va, ulong len, bool write, ulong seed, long po)
    {
        var layout = write ? ContentShadow.Layout(t.Mm) : null;
        var res = K.Access(t, va, len, write, seed, po);
        if (write && res.Done > 0) Shadow.Store(t, layout!, va, res.Done, seed, po);
        return res;
    }

    private string PoisonAt(ulong pa, bool scrub, string where)
    {
        pa = Units.AlignDown(pa, Units.CACHELINE);
        K.Phys.PoisonLine(pa, PoisonKind.Permanent);
        if (scrub) K.MemoryFailure(pa >> Units.PAGE_SHIFT, MfFlags.None, pa);
        foreach (var dead in Tasks.Where(x => !x.Alive).ToList()) Forget(dead);
        return $"hw error at pa {Units.Hex(pa)} ({where}){(scrub ? ", scrubbed" : ", latent")}";
    }

    private void Forget(TaskStruct t)
    {
        if (t.Alive) return;
        Fds.RemoveAll(f => f.Task == t);
        Maps.RemoveAll(m => m.Task == t);
    }

    /// <summary>Every live task exits (exit_group): what a sequence leaves behind is then checked by <see cref="Invariants.CheckAfterExit"/>.</summary>
    public void ExitAll()
    {
        foreach (var t in Tasks.Where(t => t.Alive).ToList()) K.DoExit(t, "exit()");
        foreach (var t in Tasks) Forget(t);
        K.FlushCounters();
    }

    /// <summary>Bytes the model has counted as lost (zeroed by a repair, good data dropped by a policy).</summary>
    public long DataLostBytes => K.Stats.BytesZeroed + K.Stats.GoodDataDroppedBytes;

    /// <summary>
    /// Runs a whole sequence under <paramref name="policy"/>, checking the invariants after every step (all of them every
    /// <paramref name="fullEvery"/>-th step and after the last; the cheap ones every step), then, with
    /// <paramref name="exitAtEnd"/>, lets every task exit and checks that nothing leaked. A step after which the model
    /// counts data lost re-bases the content shadow on memory as it is (a load may then differ from what was written).
    /// Throws with the history on the first violation.
    /// </summary>
    public static KernelWorld RunChecked(Op[] ops, Action<KernelWorld>? check = null, string policy = "mainline", int fullEvery = 1, bool exitAtEnd = false, bool recordTrace = true)
    {
        var w = new KernelWorld(policy, recordTrace);
        var log = new List<string>();
        for (int i = 0; i < ops.Length; i++)
        {
            string what;
            long lost = w.DataLostBytes;
            try { what = w.Apply(ops[i]); }
            catch (Exception e) { throw new InvariantViolation($"{policy}: step {i} {ops[i]} threw {e.GetType().Name}: {e.Message}\nhistory:\n  {string.Join("\n  ", log)}", e); }
            log.Add($"{i}: {ops[i]} -> {what}");
            if (w.DataLostBytes != lost) { w.Shadow.Sync(); w.Shadow.Adopt(); }
            var problems = Invariants.Check(w, full: (i + 1) % fullEvery == 0 || i == ops.Length - 1);
            if (problems.Count > 0)
                throw new InvariantViolation($"{policy}: after step {i} ({what}):\n  - {string.Join("\n  - ", problems)}\nhistory:\n  {string.Join("\n  ", log)}");
            check?.Invoke(w);
        }
        // a host that panicked (a kernel-mode read consumed an unreported line) runs nothing more: no exit, nothing to free
        if (exitAtEnd && !w.K.Panicked)
        {
            try { w.ExitAll(); }
            catch (Exception e) { throw new InvariantViolation($"{policy}: exit of every task threw {e.GetType().Name}: {e.Message}\nhistory:\n  {string.Join("\n  ", log)}", e); }
            var problems = Invariants.CheckAfterExit(w);
            if (problems.Count > 0)
                throw new InvariantViolation($"{policy}: after every task exited:\n  - {string.Join("\n  - ", problems)}\nhistory:\n  {string.Join("\n  ", log)}");
        }
        return w;
    }
}

/// <summary>An invariant of the kernel model does not hold.</summary>
public sealed class InvariantViolation(string message, Exception? inner = null) : Exception(message, inner);
