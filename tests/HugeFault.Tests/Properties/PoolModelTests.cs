using CsCheck;
using HugeFault.Mm;

namespace HugeFault.Tests.Properties;

/// <summary>What a pool-model step does; the integers pick files/mappings (modulo what exists) and sizes in huge pages.</summary>
public enum PoolOpKind { CreateFile, MmapShared, MmapPrivate, MmapAnonShared, MmapAnonPrivate, Touch, Munmap, Truncate, PunchHole, Fallocate, Close, SetNr }

public sealed record PoolOp(PoolOpKind Kind, int A, int B, int C, bool Flag)
{
    public override string ToString() => $"{Kind}({A},{B},{C}{(Flag ? ",*" : "")})";
}

/// <summary>
/// A naive reference for the 2 MiB hugetlb pool (Documentation/mm/hugetlbfs_reserv.rst): sets of page-cache
/// indices and reservations per file, reservations and anonymous pages per private mapping, four counters.
/// It follows the kernel's rules, written as plainly as possible, with no page tables, folios or rmap.
/// </summary>
public sealed class PoolReference
{
    public sealed class File { public long Size; public bool Open = true, Internal; public readonly HashSet<long> Cache = new(), Resv = new(); }

    public sealed class Map
    {
        public required File F; public bool Shared; public long First, N;
        public readonly HashSet<long> PrivResv = new();
        /// <summary>Mapped huge-page indices: true = a private anonymous copy, false = the file's page-cache page.</summary>
        public readonly Dictionary<long, bool> Pages = new();
    }

    public long Nr, Free, Resv, Surp;
    public readonly long Overcommit;
    public readonly List<File> Files = new();
    public readonly List<Map> Maps = new();

    public PoolReference(long pool, long overcommit) { Nr = Free = pool; Overcommit = overcommit; }

    private bool AllocSurplus()
    {
        if (Surp >= Overcommit) return false;
        Nr++; Surp++;
        return true;
    }

    /// <summary>alloc_hugetlb_folio(): a reserved page always exists; otherwise an available one, else a surplus one.</summary>
    private bool Alloc(bool reserved)
    {
        if (!reserved && Free - Resv <= 0) return AllocSurplus();
        if (Free > 0) { Free--; if (reserved) Resv--; return true; }
        if (!AllocSurplus()) return false;
        if (reserved) Resv--;
        return true;
    }

    /// <summary>free_huge_folio(): surplus pages go back to buddy, others to the free list.</summary>
    private void FreePage() { if (Surp > 0) { Surp--; Nr--; } else Free++; }

    /// <summary>hugetlb_acct_memory(): false = ENOMEM.</summary>
    private bool Acct(long delta)
    {
        if (delta <= 0) { Resv += delta; return true; }
        long needed = Resv + delta - Free;
        if (needed > 0)
        {
            if (Surp + needed > Overcommit) return false;
            Nr += needed; Surp += needed; Free += needed;
        }
        Resv += delta;
        return true;
    }

    public void CreateFile(long size) => Files.Add(new File { Size = size });

    /// <summary>mmap() of [first, first+n) of f; false = ENOMEM.</summary>
    public bool Mmap(File f, bool shared, long first, long n, bool noreserve)
    {
        var m = new Map { F = f, Shared = shared, First = first, N = n };
        if (!noreserve)
        {
            if (shared)
            {
                var add = Enumerable.Range(0, (int)n).Select(i => first + i).Where(i => !f.Cache.Contains(i) && !f.Resv.Contains(i)).ToList();
                if (!Acct(add.Count)) return false;
                foreach (var i in add) f.Resv.Add(i);
            }
            else
            {
                if (!Acct(n)) return false;
                for (long i = first; i < first + n; i++) m.PrivResv.Add(i);
            }
        }
        Maps.Add(m);
        return true;
    }

    public bool MmapAnon(bool shared, long n, bool noreserve)
    {
        var f = new File { Size = n, Open = false, Internal = true };
        Files.Add(f);
        if (Mmap(f, shared, 0, n, noreserve)) return true;
        Files.Remove(f);
        return false;
    }

    /// <summary>A one-byte access to huge page u of mapping m; false = SIGBUS (BUS_ADRERR).</summary>
    public bool Touch(Map m, long u, bool write)
    {
        long idx = m.First + u;
        var f = m.F;
        if (m.Pages.TryGetValue(idx, out bool anon))
        {
            if (m.Shared || anon || !write) return true;
            return Cow(m, idx);
        }
        if (!f.Internal && idx >= f.Size) return false;
        if (m.Shared)
        {
            if (!f.Cache.Contains(idx))
            {
                bool r = f.Resv.Remove(idx);
                if (!Alloc(r)) { if (r) f.Resv.Add(idx); return false; }
                f.Cache.Add(idx);
            }
            m.Pages[idx] = false;
            return true;
        }
        if (!write && f.Cache.Contains(idx)) { m.Pages[idx] = false; return true; }
        return Cow(m, idx);
    }

    private bool Cow(Map m, long idx)
    {
        bool r = m.PrivResv.Remove(idx);
        if (!Alloc(r)) { if (r) m.PrivResv.Add(idx); return false; }
        m.Pages[idx] = true;
        return true;
    }

    public void Munmap(Map m)
    {
        foreach (var (_, anon) in m.Pages) if (anon) FreePage();
        Acct(-m.PrivResv.Count);
        Maps.Remove(m);
        MaybeEvict(m.F);
    }

    /// <summary>The last reference to an unlinked file (memfd, anonymous hugetlb) went: its pages and reservations go.</summary>
    private void MaybeEvict(File f)
    {
        if (f.Open || Maps.Any(x => x.F == f)) return;
        RemoveRange(f, 0, long.MaxValue);
        Files.Remove(f);
    }

    /// <summary>
    /// hugetlb_vmdelete_list() + remove_inode_hugepages(): every mapping of the file loses [first, last), private
    /// copies included (they are freed), then page-cache pages there are freed and their reservations dropped.
    /// </summary>
    private void RemoveRange(File f, long first, long last)
    {
        foreach (var m in Maps.Where(x => x.F == f))
            foreach (var (i, anon) in m.Pages.Where(kv => kv.Key >= first && kv.Key < last).ToList())
            {
                m.Pages.Remove(i);
                if (anon) FreePage();
            }
        foreach (var i in f.Cache.Where(i => i >= first && i < last).ToList())
        {
            f.Cache.Remove(i);
            FreePage();
        }
        Acct(-f.Resv.RemoveWhere(i => i >= first && i < last));
    }

    public void Truncate(File f, long size)
    {
        if (size < f.Size) RemoveRange(f, size, long.MaxValue);
        f.Size = size;
    }

    public void PunchHole(File f, long first, long n) => RemoveRange(f, first, first + n);

    /// <summary>fallocate(mode 0): false = ENOSPC (pages allocated before the failure stay).</summary>
    public bool Fallocate(File f, long first, long n)
    {
        for (long i = first; i < first + n; i++)
        {
            if (f.Cache.Contains(i)) continue;
            bool r = f.Resv.Remove(i);
            if (!Alloc(r)) { if (r) f.Resv.Add(i); return false; }
            f.Cache.Add(i);
        }
        f.Size = Math.Max(f.Size, first + n);
        return true;
    }

    public void Close(File f) { f.Open = false; MaybeEvict(f); }

    /// <summary>set_max_huge_pages().</summary>
    public void SetNr(long count)
    {
        while (Surp > 0 && count > Nr - Surp) Surp--;
        while (count > Nr - Surp) { Nr++; Free++; }
        long target = Math.Max(count, Resv + Nr - Free);
        while (target < Nr - Surp && Free > 0) { Free--; Nr--; }
        while (count < Nr - Surp) Surp++;
    }
}

/// <summary>
/// Model-based test: the kernel model's 2 MiB pool counters (nr, free, resv, surplus) and the success of every
/// mmap/fault/fallocate equal those of <see cref="PoolReference"/> after every step of a random sequence of
/// memfd_create/mmap/fault/munmap/ftruncate/punch/fallocate/close/nr_hugepages on a fault-free host.
/// </summary>
public class PoolModelTests
{
    private const ulong H = 2 * Units.MiB;

    public static readonly Gen<PoolOp> GenOp =
        from k in Gen.Int[0, 99]
        from a in Gen.Int[0, 15]
        from b in Gen.Int[0, 15]
        from c in Gen.Int[0, 15]
        from f in Gen.Bool
        select new PoolOp(k switch
        {
            < 10 => PoolOpKind.CreateFile, < 22 => PoolOpKind.MmapShared, < 32 => PoolOpKind.MmapPrivate, < 37 => PoolOpKind.MmapAnonShared,
            < 42 => PoolOpKind.MmapAnonPrivate, < 70 => PoolOpKind.Touch, < 78 => PoolOpKind.Munmap, < 84 => PoolOpKind.Truncate,
            < 88 => PoolOpKind.PunchHole, < 91 => PoolOpKind.Fallocate, < 95 => PoolOpKind.Close, _ => PoolOpKind.SetNr,
        }, a, b, c, f);

    /// <summary>The system under test and the reference side by side, with parallel lists of files and mappings.</summary>
    private sealed class Both
    {
        public readonly Kernel K;
        public readonly TaskStruct T;
        public readonly PoolReference R;
        public readonly List<(int Fd, PoolReference.File F)> Files = new();
        public readonly List<(ulong Va, PoolReference.Map M)> Maps = new();

        public Both(long pool, long overcommit)
        {
            K = new Kernel(new KernelConfig { MemoryBytes = 8 * Units.GiB, HugePages2M = pool, Overcommit2M = overcommit });
            T = K.Spawn("A");
            R = new PoolReference(pool, overcommit);
        }

        private string Counters(Hstate h) => $"nr={h.nr_huge_pages} free={h.free_huge_pages} resv={h.resv_huge_pages} surp={h.surplus_huge_pages}";
        public string Actual => Counters(K.H2M);
        public string Expected => $"nr={R.Nr} free={R.Free} resv={R.Resv} surp={R.Surp}";

        /// <summary>Runs op on both; returns (what happened in the model, what the reference predicted).</summary>
        public (string Got, string Want) Apply(PoolOp op)
        {
            var open = Files.Where(f => f.F.Open).ToList();
            switch (op.Kind)
            {
                case PoolOpKind.CreateFile:
                {
                    long size = 1 + op.A % 4;
                    int fd = (int)K.MemfdCreate(T, "f", Memfd.MFD_HUGETLB | Memfd.MFD_HUGE_2MB).Ret;
                    K.Ftruncate(T, fd, (long)(H * (ulong)size));
                    R.CreateFile(size);
                    Files.Add((fd, R.Files[^1]));
                    return ("", "");
                }
                case PoolOpKind.MmapShared:
                case PoolOpKind.MmapPrivate:
                {
                    if (open.Count == 0) return ("", "");
                    var (fd, f) = open[op.A % open.Count];
                    bool shared = op.Kind == PoolOpKind.MmapShared;
                    long first = op.B % 3, n = 1 + op.C % 3;
                    var r = K.Mmap(T, H * (ulong)n, Mman.PROT_READ | Mman.PROT_WRITE, (shared ? Mman.MAP_SHARED : Mman.MAP_PRIVATE) | (op.Flag ? Mman.MAP_NORESERVE : 0), fd, H * (ulong)first, "m");
                    bool ok = R.Mmap(f, shared, first, n, op.Flag);
                    if (!r.Failed) Maps.Add(((ulong)r.Ret, R.Maps[^1]));
                    return (r.Failed ? Errno.Name(r.Errno) : "ok", ok ? "ok" : "ENOMEM");
                }
                case PoolOpKind.MmapAnonShared:
                case PoolOpKind.MmapAnonPrivate:
                {
                    bool shared = op.Kind == PoolOpKind.MmapAnonShared;
                    long n = 1 + op.C % 3;
                    var r = K.Mmap(T, H * (ulong)n, Mman.PROT_READ | Mman.PROT_WRITE,
                        Mman.MAP_ANONYMOUS | Mman.MAP_HUGETLB | Mman.MAP_HUGE_2MB | (shared ? Mman.MAP_SHARED : Mman.MAP_PRIVATE) | (op.Flag ? Mman.MAP_NORESERVE : 0), -1, 0, "anon");
                    bool ok = R.MmapAnon(shared, n, op.Flag);
                    if (!r.Failed) Maps.Add(((ulong)r.Ret, R.Maps[^1]));
                    return (r.Failed ? Errno.Name(r.Errno) : "ok", ok ? "ok" : "ENOMEM");
                }
                case PoolOpKind.Touch:
                {
                    if (Maps.Count == 0) return ("", "");
                    var (va, m) = Maps[op.A % Maps.Count];
                    long u = op.B % m.N;
                    var res = K.Access(T, va + H * (ulong)u + (ulong)op.C * 4096, 1, write: op.Flag);
                    bool ok = R.Touch(m, u, op.Flag);
                    return (res.Outcome, ok ? "ok" : "SIGBUS BUS_ADRERR");
                }
                case PoolOpKind.Munmap:
                {
                    if (Maps.Count == 0) return ("", "");
                    var (va, m) = Maps[op.A % Maps.Count];
                    Maps.RemoveAt(op.A % Maps.Count);
                    var r = K.Munmap(T, va, H * (ulong)m.N);
                    R.Munmap(m);
                    return (r.Failed ? Errno.Name(r.Errno) : "ok", "ok");
                }
                case PoolOpKind.Truncate:
                case PoolOpKind.PunchHole:
                case PoolOpKind.Fallocate:
                case PoolOpKind.Close:
                {
                    if (open.Count == 0) return ("", "");
                    var (fd, f) = open[op.A % open.Count];
                    long x = op.B % 4, y = 1 + op.C % 2;
                    switch (op.Kind)
                    {
                        case PoolOpKind.Truncate: K.Ftruncate(T, fd, (long)(H * (ulong)x)); R.Truncate(f, x); return ("", "");
                        case PoolOpKind.PunchHole:
                            K.Fallocate(T, fd, Memfd.FALLOC_FL_PUNCH_HOLE | Memfd.FALLOC_FL_KEEP_SIZE, H * (ulong)x, H * (ulong)y);
                            R.PunchHole(f, x, y);
                            return ("", "");
                        case PoolOpKind.Fallocate:
                        {
                            var r = K.Fallocate(T, fd, 0, H * (ulong)x, H * (ulong)y);
                            bool ok = R.Fallocate(f, x, y);
                            return (r.Failed ? Errno.Name(r.Errno) : "ok", ok ? "ok" : "ENOSPC");
                        }
                        default: K.Close(T, fd); R.Close(f); return ("", "");
                    }
                }
                case PoolOpKind.SetNr:
                {
                    long v = op.A % 10;
                    K.SetNrHugepages(K.H2M, v);
                    R.SetNr(v);
                    return ("", "");
                }
            }
            throw new InvalidOperationException(op.Kind.ToString());
        }
    }

    private static void Run(PoolOp[] ops, long pool, long overcommit)
    {
        var b = new Both(pool, overcommit);
        var log = new List<string>();
        for (int i = 0; i < ops.Length; i++)
        {
            var (got, want) = b.Apply(ops[i]);
            log.Add($"{i}: {ops[i]} -> model {got} {b.Actual} | reference {want} {b.Expected}");
            if (got != want || b.Actual != b.Expected)
                throw new InvariantViolation($"pool {pool}, overcommit {overcommit}: step {i} {ops[i]}: model says {got} {b.Actual}, reference says {want} {b.Expected}\nhistory:\n  {string.Join("\n  ", log)}");
        }
    }

    private static string Print(PoolOp[] ops) => string.Join(", ", ops.Select(o => o.ToString()));

    [Fact]
    public void The_2M_pool_counters_match_a_naive_reference_without_overcommit()
    {
        Pbt.Run(GenOp.Array[1, 50], ops => Run(ops, pool: 6, overcommit: 0), iter: 1000, stream: 11, Print);
    }

    [Fact]
    public void The_2M_pool_counters_match_a_naive_reference_with_overcommit()
    {
        Pbt.Run(GenOp.Array[1, 50], ops => Run(ops, pool: 3, overcommit: 2), iter: 1000, stream: 12, Print);
    }
}
