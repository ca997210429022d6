using HugeFault.Fs;
using HugeFault.Mm;

namespace HugeFault.Tests.Properties;

/// <summary>
/// A shadow of what user memory should hold, kept beside the kernel model by the test: one content map per
/// file page (shared: by inode and index) and per private copy (by mm, mapping name and index). Stores are
/// applied to it with the same pattern arithmetic as the CPU (<see cref="ContentMap"/> tags), a private page's
/// copy starts as the file's page (or zeros) at its first write, and fork copies a process's private pages.
/// After each step it compares every page-cache folio and every mapped private folio, and the bytes of a load
/// that completed, with the shadow (sampled cachelines), so a lost write, a zero page where a copy belongs,
/// or a copy that went to the wrong process shows up.
/// Pages leave the shadow when the model drops them (truncate, punch, unmap, exit); that is checked elsewhere. After a
/// step in which the model counts data lost, memory becomes the expectation (<see cref="Adopt"/>).
/// </summary>
public sealed class ContentShadow(Kernel k)
{
    private readonly Dictionary<(Inode Inode, ulong Idx), ContentMap> _shared = new();
    private readonly Dictionary<(MmStruct Mm, string Name, ulong Idx), ContentMap> _own = new();

    /// <summary>
    /// The unit the shadow keys a VMA's pages by: the file's folio size for shared mappings (the page cache's index), the
    /// huge page size for private hugetlb, 4 KiB otherwise (a VMA converted away from hugetlb included).
    /// </summary>
    private static ulong Granule(Vma v) => v.IsShared && v.File is { } f ? f.FolioSize : v.Hstate?.Size ?? Units.PAGE_SIZE;

    private static ContentMap Clone(ContentMap? src, ulong size)
    {
        var c = new ContentMap();
        if (src is not null) c.CopyFrom(src, 0, 0, (uint)(size >> Units.CACHELINE_SHIFT));
        return c;
    }

    /// <summary>The file's page as a private mapping sees it before its own copy exists (null = zeros).</summary>
    private ContentMap? FileView(Inode? f, ulong idx, bool dropped = false) =>
        f is not null && (dropped || f.PageCache.ContainsKey(idx)) ? _shared.GetValueOrDefault((f, idx)) : null;

    /// <summary>The file's bytes [off, off + g) as a private mapping sees them before its own copy exists (null = zeros).</summary>
    private ContentMap? FileView(Inode? f, ulong off, ulong g, bool dropped = false)
    {
        if (f is null) return null;
        ulong fs = f.FolioSize;
        if (g == fs) return FileView(f, off / fs, dropped);
        if (FileView(f, off / fs, dropped) is not { } whole) return null;
        var c = new ContentMap();
        c.CopyFrom(whole, (uint)((off % fs) >> Units.CACHELINE_SHIFT), 0, (uint)(g >> Units.CACHELINE_SHIFT));
        return c;
    }

    /// <summary>
    /// A private VMA converted away from hugetlb (vma-convert): its 4 KiB pages share one large folio that the model
    /// copies only where written, so the shadow leaves its content unchecked (poison and mapping invariants still hold).
    /// </summary>
    private static bool Unshadowed(Vma v) => !v.IsShared && v.Hstate is null && v.File?.Hstate is not null;

    /// <summary>The layout of a VMA before an access (the task may die during it, taking its VMAs).</summary>
    public sealed record VmaInfo(ulong Start, ulong End, bool Shared, Inode? File, string Name, ulong PgOff, ulong Granule, bool Unshadowed)
    {
        public ulong FileOffset(ulong va) => (PgOff << Units.PAGE_SHIFT) + (va - Start);
    }

    public static List<VmaInfo> Layout(MmStruct mm) =>
        mm.Vmas.Select(v => new VmaInfo(v.Start, v.End, v.IsShared, v.File, v.Name, v.PgOff, Granule(v), Unshadowed(v))).ToList();

    /// <summary>The first <paramref name="done"/> bytes of a store at va by t went to memory (VMAs as in <paramref name="layout"/> before the store).</summary>
    public void Store(TaskStruct t, List<VmaInfo> layout, ulong va, ulong done, ulong seed, long po)
    {
        for (ulong cur = va; cur < va + done;)
        {
            var v = layout.First(x => cur >= x.Start && cur < x.End);
            if (v.Unshadowed) { cur = Math.Min(v.End, va + done); continue; }
            ulong g = v.Granule, page = Units.AlignDown(cur, g), n = Math.Min(page + g, va + done) - cur;
            ulong idx = v.FileOffset(page) / g;
            ContentMap cm;
            if (v.Shared)
            {
                if (!_shared.TryGetValue((v.File!, idx), out cm!)) _shared[(v.File!, idx)] = cm = new ContentMap();
            }
            else if (!_own.TryGetValue((t.Mm, v.Name, idx), out cm!))
                _own[(t.Mm, v.Name, idx)] = cm = Clone(FileView(v.File, idx * g, g), g); // the COW copy of the file's page, or zeros
            cm.Write(cur - page, n, seed, po + (long)(cur - va));
            cur += n;
        }
    }

    /// <summary>fork(): the child's private pages start as copies of the parent's.</summary>
    public void Fork(MmStruct parent, MmStruct child)
    {
        foreach (var ((mm, name, idx), cm) in _own.Where(kv => kv.Key.Mm == parent).ToList())
        {
            if (OwnerOf(parent, name, idx) is not { } v) continue; // unmapped since: Sync drops it
            _own[(child, name, idx)] = Clone(cm, Granule(v));
        }
    }

    /// <summary>
    /// The VMA of mm that a private page's key (mapping name, index in granules) belongs to. A split leaves several VMAs
    /// with one name, and after vma-convert they differ in granule (the converted 4 KiB part keeps the name; fork
    /// orders the child's VMAs by address, so "the first VMA with that name" was the 4 KiB one in a child and a 2 MiB
    /// page's copy kept only its first 4 KiB: seed 5DhksjwqqdsI).
    /// </summary>
    private static Vma? OwnerOf(MmStruct mm, string name, ulong idx) => mm.Vmas.FirstOrDefault(x =>
        x.Name == name && !x.IsShared && !Unshadowed(x) && Granule(x) is var g
        && idx * g >= Units.AlignDown(x.FileOffset(x.Start), g) && idx * g < x.FileOffset(x.End));

    /// <summary>What the shadow expects of a VMA's page idx (granule g): the file's page if shared, else mm's own copy or the file's view.</summary>
    private ContentMap? Want(MmStruct mm, bool shared, Inode? file, string name, ulong g, ulong idx) =>
        shared ? _shared.GetValueOrDefault((file!, idx)) : _own.TryGetValue((mm, name, idx), out var own) ? own : FileView(file, idx * g, g);

    /// <summary>Where every live mm's VMAs pointed before a step (see <see cref="FollowRemaps"/>).</summary>
    public List<(MmStruct Mm, List<VmaInfo> Layout)> Snapshot()
    {
        var list = new List<(MmStruct, List<VmaInfo>)>();
        foreach (var t in k.Tasks)
            if (t.Alive && t.Mm.Users > 0 && !list.Exists(x => x.Item1 == t.Mm)) list.Add((t.Mm, Layout(t.Mm)));
        return list;
    }

    /// <summary>
    /// A step moved a range of a live mm to another file (userspace-migrate: the agent pread()s the good 4 KiB pages of the
    /// poisoned hugetlb page into a fresh tmpfs file and mremap()s it over the range): the new file's pages, which no store
    /// wrote, start as what the range held before, with zeros in the 4 KiB pages the agent could not read and marked with
    /// UFFDIO_POISON (pread() fails on a raw poisoned page: adjust_range_hwpoison()). The markers, not the old folio, say
    /// which: the old file may be gone by then (the remap's munmap evicts a file nobody else holds). Without this the
    /// shadow expected zeros in the whole copy (seeds 50M3Vl0bd4zJ and 8MeOas97JnxJ).
    /// </summary>
    public void FollowRemaps(List<(MmStruct Mm, List<VmaInfo> Layout)> before)
    {
        foreach (var (mm, old) in before)
        {
            if (mm.Users == 0) continue;
            foreach (var v in mm.Vmas)
            {
                if (!v.IsShared || v.File is not { } file || Unshadowed(v) || old.Exists(x => x.File == file && x.Start <= v.Start && x.End >= v.End)) continue;
                ulong g = Granule(v);
                for (ulong page = v.Start; page + g <= v.End; page += g)
                {
                    ulong foff = v.FileOffset(page);
                    if (foff % g != 0 || _shared.ContainsKey((file, foff / g)) || !file.PageCache.ContainsKey(foff / g)) continue;
                    var cm = new ContentMap();
                    for (ulong cur = page; cur < page + g;)
                    {
                        if (old.FirstOrDefault(x => cur >= x.Start && cur < x.End) is not { } x) { cur = Units.AlignDown(cur, Units.PAGE_SIZE) + Units.PAGE_SIZE; continue; }
                        ulong xg = x.Granule, xpage = Units.AlignDown(cur, xg), n = Math.Min(Math.Min(xpage + xg, x.End), page + g) - cur;
                        // what the range held before the step, even where the step dropped the old file's page (the remap's
                        // munmap evicts a file nobody else holds: a private view of it is then no longer in a page cache)
                        ulong xidx = x.FileOffset(xpage) / xg;
                        var src = x.Unshadowed ? null : x.Shared ? _shared.GetValueOrDefault((x.File!, xidx))
                            : _own.TryGetValue((mm, x.Name, xidx), out var own) ? own : FileView(x.File, xidx * xg, xg, dropped: true);
                        if (src is not null)
                            cm.CopyFrom(src, (uint)((cur - xpage) >> Units.CACHELINE_SHIFT), (uint)((cur - page) >> Units.CACHELINE_SHIFT), (uint)(n >> Units.CACHELINE_SHIFT));
                        cur += n;
                    }
                    // the pages the agent could not read (and marked): zeros in the copy; a load there gets SIGBUS
                    k.ForEachLeafRun(mm, page, page + g, r =>
                    {
                        for (int i = 0; i < r.Count; i++)
                            if (r.EntryAt(i).IsPoisonMarker)
                            {
                                ulong at = r.Va + (ulong)i * r.Size - page;
                                cm.Zero((uint)(at >> Units.CACHELINE_SHIFT), (uint)((at + r.Size) >> Units.CACHELINE_SHIFT));
                            }
                    });
                    _shared[(file, foff / g)] = cm;
                }
            }
        }
    }


    /// <summary>Follows the model's page drops: file pages that left the page cache, private copies no longer mapped.</summary>
    public void Sync()
    {
        foreach (var key in _shared.Keys.Where(x => !x.Inode.PageCache.ContainsKey(x.Idx)).ToList()) _shared.Remove(key);
        var seen = new HashSet<(MmStruct, string, ulong)>();
        PrivatePages((mm, v, key, e, f, foff) =>
        {
            if (f is { IsAnon: true })
            {
                seen.Add(key);
                // a private page the shadow has not seen written (a read fault on a hole): the file's page or zeros
                if (!_own.ContainsKey(key)) _own[key] = Clone(FileView(v.File, key.Idx * Granule(v), Granule(v)), Granule(v));
            }
            else if (e.IsHwpoison && _own.ContainsKey(key)) seen.Add(key);
        });
        foreach (var key in _own.Keys.Where(x => !seen.Contains(x)).ToList()) _own.Remove(key);
    }

    /// <summary>
    /// Calls visit for each page (VMA granule) of every private VMA of a live mm that a leaf covers: its shadow key,
    /// the leaf entry, the folio a present leaf maps (null otherwise) and the page's byte offset in it. By leaf runs,
    /// so the cost is the runs and the pages, never the 4 KiB entries of a huge page mapped at 4 KiB.
    /// </summary>
    private void PrivatePages(Action<MmStruct, Vma, (MmStruct Mm, string Name, ulong Idx), Pte, Folio?, ulong> visit)
    {
        foreach (var mm in Invariants.Mms(k).Where(m => m.Users > 0))
            foreach (var v in mm.Vmas.Where(v => !v.IsShared && !Unshadowed(v)))
            {
                ulong g = Granule(v);
                k.ForEachLeafRun(mm, v.Start, v.End, r =>
                {
                    ulong s = Math.Max(r.Va, v.Start), end = Math.Min(r.End, v.End);
                    for (ulong page = Units.AlignDown(s, g); page < end; page += g)
                    {
                        ulong at = Math.Max(page, s);
                        var e = r.EntryAt((int)((at - r.Va) / r.Size));
                        var f = e.Present ? k.Phys.FolioOf(e.Pfn) : null;
                        ulong foff = f is null ? 0 : ((e.Pfn - f.Pfn) << Units.PAGE_SHIFT) + (at - Units.AlignDown(at, r.Size)) - (at - page);
                        visit(mm, v, (mm, v.Name, v.FileOffset(page) / g), e, f, foff);
                    }
                });
            }
    }

    /// <summary>
    /// The model counted data as lost (repair zeroed a line, a policy dropped good data): memory as it now is becomes
    /// what the shadow expects, so later steps are checked against it.
    /// </summary>
    public void Adopt()
    {
        foreach (var (inode, idx) in _shared.Keys.ToList())
            _shared[(inode, idx)] = Clone(inode.PageCache[idx].Content, inode.FolioSize);
        PrivatePages((mm, v, key, e, f, foff) =>
        {
            if (f is not { IsAnon: true } || !_own.ContainsKey(key)) return;
            _own[key] = Slice(f, foff, Granule(v));
        });
    }

    /// <summary>What folio f holds at [foff, foff + g), as a shadow page.</summary>
    private static ContentMap Slice(Folio f, ulong foff, ulong g)
    {
        var c = new ContentMap();
        if (f.Content is { } src && foff + g <= f.Size) c.CopyFrom(src, (uint)(foff >> Units.CACHELINE_SHIFT), 0, (uint)(g >> Units.CACHELINE_SHIFT));
        return c;
    }

    /// <summary>Compares every page-cache folio and every mapped private page with the shadow (sampled lines); a line per difference.</summary>
    public void CheckAll(List<string> p)
    {
        foreach (var ((inode, idx), cm) in _shared)
        {
            var f = inode.PageCache[idx];
            Compare(cm, 0, inode.FolioSize, f, 0, $"{inode} page {idx}", p, dense: false);
        }
        PrivatePages((mm, v, key, e, f, foff) =>
        {
            ulong g = Granule(v);
            if (f is not { IsAnon: true } || foff + g > f.Size || !_own.TryGetValue(key, out var cm)) return;
            Compare(cm, 0, g, f, foff, $"mm {mm.Id} private page {v.Name}#{key.Idx}", p, dense: false);
        });
    }

    /// <summary>Compares the bytes of the load that completed in the last step (if any) with the shadow.</summary>
    public void CheckLoad(KernelWorld w, List<string> p)
    {
        if (w.CompletedLoad is var (t, va, len) && t.Alive)
        {
            for (ulong cur = va; cur < va + len;)
            {
                var v = t.Mm.FindVma(cur)!;
                if (Unshadowed(v)) { cur = v.End; continue; }
                ulong g = Granule(v), page = Units.AlignDown(cur, g), n = Math.Min(page + g, va + len) - cur;
                ulong idx = v.FileOffset(page) / g;
                var want = Want(t.Mm, v.IsShared, v.File, v.Name, g, idx);
                var r = k.Walk(t.Mm, cur);
                var f = k.Phys.FolioOf(r.Entry.Pfn)!;
                ulong folioOffOfPage = ((r.Entry.Pfn - f.Pfn) << Units.PAGE_SHIFT) + (cur - r.Va) - (cur - page);
                Compare(want, cur - page, n, f, folioOffOfPage, $"a load by {t} at {Units.Hex(cur)} ({v.Name}#{idx})", p, dense: true);
                cur += n;
            }
        }
    }

    /// <summary>
    /// Compares cachelines of [off, off+len) of a shadow page with folio f at folio offset foff + off: up to ~48
    /// lines (dense, for loads) or 8 (first, last and spread, for the every-step sweep of all memory).
    /// </summary>
    private static void Compare(ContentMap? want, ulong off, ulong len, Folio f, ulong foff, string what, List<string> p, bool dense)
    {
        uint first = (uint)(off >> Units.CACHELINE_SHIFT), last = (uint)((off + len - 1) >> Units.CACHELINE_SHIFT);
        uint baseLine = (uint)(foff >> Units.CACHELINE_SHIFT);
        uint per = dense ? 16u : 3u;
        IEnumerable<uint> Lines()
        {
            uint count = last - first + 1;
            if (count <= 3 * per) { for (uint l = first; l <= last; l++) yield return l; yield break; }
            for (uint i = 0; i < per; i++) { yield return first + i; yield return last - i; yield return first + (uint)((ulong)count * (2 * i + 1) / (2 * per)); }
        }
        foreach (var l in Lines())
        {
            ulong expected = want?.Tag(l) ?? ContentTag.Zero, actual = f.Content?.Tag(baseLine + l) ?? ContentTag.Zero;
            if (expected != actual)
            {
                p.Add($"{what}: cacheline {l} holds {actual:x} but {(expected == 0 ? "zeros" : $"{expected:x}")} were written there");
                return;
            }
        }
    }
}
