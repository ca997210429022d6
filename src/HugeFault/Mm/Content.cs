using System.Runtime.CompilerServices;

namespace HugeFault.Mm;

/// <summary>
/// Deterministic content tags. The model never stores memory bytes: every 64-byte cacheline has a 64-bit
/// tag that identifies what it holds. Tag 0 is a zero-filled line; a line written by pattern P starting at
/// pattern byte offset o has tag <see cref="PatternLine"/>(P, o); a line partly overwritten gets a mixed tag.
/// Two lines hold the same bytes exactly when their tags are equal (up to 64-bit hash collisions).
/// </summary>
public static class ContentTag
{
    public const ulong Zero = 0;

    /// <summary>Seed of a named data pattern (FNV-1a of the name), never 0.</summary>
    public static ulong PatternSeed(string name)
    {
        ulong h = 14695981039346656037UL;
        foreach (var c in name) { h ^= c; h *= 1099511628211UL; }
        return h == 0 ? 1 : h;
    }

    /// <summary>Tag of the 64 bytes starting at byte offset <paramref name="patternOffset"/> of pattern <paramref name="seed"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PatternLine(ulong seed, long patternOffset)
    {
        ulong x = seed ^ (ulong)patternOffset * 0x9E3779B97F4A7C15UL;
        x ^= x >> 30; x *= 0xBF58476D1CE4E5B9UL; x ^= x >> 27; x *= 0x94D049BB133111EBUL; x ^= x >> 31;
        return x | 1; // never Zero
    }

    /// <summary>A line partly overwritten: bytes [from, from+len) of it now come from pattern offset po.</summary>
    public static ulong Mix(ulong old, ulong seed, long patternOffset, int from, int len)
    {
        ulong x = old * 31 + PatternLine(seed, patternOffset) * 17 + (ulong)(from * 131 + len);
        return PatternLine(x, from) | 1;
    }

    /// <summary>The byte at pattern offset o (what a real-kernel run writes and checks).</summary>
    public static byte PatternByte(ulong seed, long o)
    {
        ulong x = seed + (ulong)o * 0x9E3779B97F4A7C15UL;
        x ^= x >> 33; x *= 0xff51afd7ed558ccdUL; x ^= x >> 33;
        return (byte)x;
    }
}

/// <summary>
/// Sparse per-folio content: sorted, non-overlapping extents of cachelines (folio-relative line indices).
/// Lines outside every extent are zero. A write of a whole 1 GiB folio is one extent; copies move extents.
/// </summary>
public sealed class ContentMap
{
    /// <summary>Lines [Start, End): pattern lines with tag PatternLine(Seed, Base + 64*(line-Start)), or a constant tag when Base == long.MinValue.</summary>
    private readonly record struct Extent(uint Start, uint End, ulong Seed, long Base)
    {
        public bool Constant => Base == long.MinValue;
        public ulong TagAt(uint line) => Constant ? Seed : ContentTag.PatternLine(Seed, Base + 64L * (line - Start));
    }

    /// <summary>The extents, ascending; one extent (a page written by one pattern: the common case) is kept inline.</summary>
    private ExtentList _ext;

    /// <summary>A list of extents whose first element lives in the map itself: a map of one extent is one object.</summary>
    private struct ExtentList
    {
        private Extent _e0;
        /// <summary>Every element once there were two at a time (then _e0 is unused).</summary>
        private Extent[]? _arr;
        private int _n;

        public readonly int Count => _n;
        public readonly int Capacity => _arr?.Length ?? 1;

        public Extent this[int i]
        {
            readonly get => _arr is null ? (i < _n ? _e0 : throw new ArgumentOutOfRangeException(nameof(i))) : i < _n ? _arr[i] : throw new ArgumentOutOfRangeException(nameof(i));
            set { if ((uint)i >= (uint)_n) throw new ArgumentOutOfRangeException(nameof(i)); if (_arr is null) _e0 = value; else _arr[i] = value; }
        }

        public void Insert(int i, Extent e)
        {
            if ((uint)i > (uint)_n) throw new ArgumentOutOfRangeException(nameof(i));
            if (_arr is null && _n == 0) { _e0 = e; _n = 1; return; }
            if (_arr is null) { _arr = new Extent[4]; _arr[0] = _e0; _e0 = default; }
            else if (_n == _arr.Length) Array.Resize(ref _arr, _n * 2);
            Array.Copy(_arr, i, _arr, i + 1, _n - i);
            _arr[i] = e;
            _n++;
        }

        public void RemoveAt(int i)
        {
            if ((uint)i >= (uint)_n) throw new ArgumentOutOfRangeException(nameof(i));
            _n--;
            if (_arr is null) { _e0 = default; return; }
            Array.Copy(_arr, i + 1, _arr, i, _n - i);
            _arr[_n] = default;
        }

        public void Clear() { _e0 = default; _arr = null; _n = 0; }
    }

    public int ExtentCount => _ext.Count;

    public ulong Tag(uint line)
    {
        int i = Find(line);
        return i >= 0 ? _ext[i].TagAt(line) : ContentTag.Zero;
    }

    private int Find(uint line)
    {
        int lo = 0, hi = _ext.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            var e = _ext[mid];
            if (line < e.Start) hi = mid - 1; else if (line >= e.End) lo = mid + 1; else return mid;
        }
        return -1;
    }

    /// <summary>Index of the first extent with End &gt; line.</summary>
    private int Lower(uint line)
    {
        int lo = 0, hi = _ext.Count;
        while (lo < hi) { int mid = (lo + hi) >> 1; if (_ext[mid].End <= line) lo = mid + 1; else hi = mid; }
        return lo;
    }

    /// <summary>Clears lines [start, end) to zero.</summary>
    public void Zero(uint start, uint end) => Cut(start, end);

    public void Clear() => _ext.Clear();

    private void Cut(uint start, uint end)
    {
        if (start >= end) return;
        int i = Lower(start);
        while (i < _ext.Count && _ext[i].Start < end)
        {
            var e = _ext[i];
            _ext.RemoveAt(i);
            if (e.Start < start) { _ext.Insert(i, Slice(e, e.Start, start)); i++; }
            if (e.End > end) { _ext.Insert(i, Slice(e, end, e.End)); i++; }
        }
    }

    private static Extent Slice(in Extent e, uint s, uint t) =>
        e.Constant ? e with { Start = s, End = t } : new Extent(s, t, e.Seed, e.Base + 64L * (s - e.Start));

    private void Insert(Extent n)
    {
        Cut(n.Start, n.End);
        if (!n.Constant && n.Seed == ContentTag.Zero) return;
        int i = Lower(n.Start);
        // merge with the previous extent when it continues the same pattern
        if (i > 0)
        {
            var p = _ext[i - 1];
            if (p.End == n.Start && !p.Constant && !n.Constant && p.Seed == n.Seed && p.Base + 64L * (p.End - p.Start) == n.Base)
            { _ext[i - 1] = p with { End = n.End }; TryMergeNext(i - 1); return; }
        }
        _ext.Insert(i, n);
        TryMergeNext(i);
    }

    private void TryMergeNext(int i)
    {
        if (i + 1 >= _ext.Count) return;
        var a = _ext[i]; var b = _ext[i + 1];
        if (a.End == b.Start && !a.Constant && !b.Constant && a.Seed == b.Seed && a.Base + 64L * (a.End - a.Start) == b.Base)
        { _ext[i] = a with { End = b.End }; _ext.RemoveAt(i + 1); }
    }

    /// <summary>Writes bytes [byteOff, byteOff+len) of the folio with pattern bytes starting at patternOffset.</summary>
    public void Write(ulong byteOff, ulong len, ulong seed, long patternOffset)
    {
        if (len == 0) return;
        ulong end = byteOff + len;
        uint firstFull = (uint)((byteOff + 63) >> 6), lastFull = (uint)(end >> 6); // full lines [firstFull, lastFull)
        // partial head line
        uint headLine = (uint)(byteOff >> 6);
        if ((byteOff & 63) != 0 || end < ((ulong)firstFull << 6))
        {
            int from = (int)(byteOff & 63);
            int n = (int)Math.Min(len, 64UL - (ulong)from);
            ulong tag = ContentTag.Mix(Tag(headLine), seed, patternOffset, from, n);
            Insert(new Extent(headLine, headLine + 1, tag, long.MinValue));
            if (end <= ((ulong)headLine + 1) << 6) return;
        }
        if (lastFull > firstFull)
            Insert(new Extent(firstFull, lastFull, seed, patternOffset + (long)(((ulong)firstFull << 6) - byteOff)));
        if ((end & 63) != 0 && lastFull >= firstFull)
        {
            ulong lineStart = (ulong)lastFull << 6;
            long po = patternOffset + (long)(lineStart - byteOff);
            ulong tag = ContentTag.Mix(Tag(lastFull), seed, po, 0, (int)(end & 63));
            Insert(new Extent(lastFull, lastFull + 1, tag, long.MinValue));
        }
    }

    /// <summary>Copies lines [srcLine, srcLine+n) of <paramref name="src"/> to lines starting at dstLine of this map.</summary>
    public void CopyFrom(ContentMap src, uint srcLine, uint dstLine, uint n)
    {
        Cut(dstLine, dstLine + n);
        uint srcEnd = srcLine + n;
        int i = src.Lower(srcLine);
        var pieces = new List<Extent>();
        for (; i < src._ext.Count && src._ext[i].Start < srcEnd; i++)
        {
            var e = src._ext[i];
            uint s = Math.Max(e.Start, srcLine), t = Math.Min(e.End, srcEnd);
            var sl = Slice(e, s, t);
            pieces.Add(sl with { Start = s - srcLine + dstLine, End = t - srcLine + dstLine });
        }
        foreach (var p in pieces) Insert(p);
    }

    /// <summary>
    /// Compares lines [first, end) with the pattern expSeed whose line `first` starts at pattern offset
    /// expOffset (expSeed 0 = zeros), extent by extent: a pattern extent matches as a whole or not at all.
    /// Returns the number of mismatching lines and the first one (or -1).
    /// </summary>
    public long CountMismatches(uint first, uint end, ulong expSeed, long expOffset, out long firstBad)
    {
        long fb = -1; long bad = 0;
        uint cur = first;
        void Miss(uint s, uint t) { if (t <= s) return; if (fb < 0) fb = s; bad += t - s; }
        for (int i = Lower(first); i < _ext.Count && cur < end; i++)
        {
            var e = _ext[i];
            if (e.Start >= end) break;
            if (e.Start > cur) { if (expSeed != ContentTag.Zero) Miss(cur, e.Start); cur = e.Start; }
            uint s = Math.Max(cur, e.Start), t = Math.Min(end, e.End);
            if (e.Constant)
            {
                for (uint l = s; l < t; l++)
                {
                    ulong want = expSeed == ContentTag.Zero ? ContentTag.Zero : ContentTag.PatternLine(expSeed, expOffset + 64L * (l - first));
                    if (e.Seed != want) Miss(l, l + 1);
                }
            }
            else if (expSeed == ContentTag.Zero || e.Seed != expSeed || e.Base + 64L * (s - e.Start) != expOffset + 64L * (s - first)) Miss(s, t);
            cur = t;
        }
        if (cur < end && expSeed != ContentTag.Zero) Miss(cur, end);
        firstBad = fb;
        return bad;
    }

    /// <summary>Approximate heap bytes held (for the model-memory benchmark).</summary>
    public long ApproxBytes => 56 + (_ext.Capacity > 1 ? _ext.Capacity * 24L + 16 : 0);
}
