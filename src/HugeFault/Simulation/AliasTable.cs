using System.Runtime.CompilerServices;

namespace HugeFault.Simulation;

/// <summary>
/// Walker/Vose alias table: O(1) sampling of an index from a fixed discrete distribution with one 64-bit draw
/// (high 32 bits pick the column, low 32 bits decide column-or-alias). Built once, read-only afterwards, so one
/// table can be shared by all worker threads.
/// </summary>
public sealed class AliasTable
{
    private readonly uint[] _threshold; // P(keep column) scaled to 2^32
    private readonly int[] _alias;

    /// <summary>Number of outcomes.</summary>
    public int Count => _alias.Length;

    /// <summary>Builds the table from non-negative weights (at least one positive).</summary>
    public AliasTable(ReadOnlySpan<double> weights)
    {
        int n = weights.Length;
        if (n == 0) throw new ArgumentException("need at least one weight", nameof(weights));
        double total = 0;
        foreach (double w in weights)
        {
            if (!(w >= 0) || double.IsInfinity(w)) throw new ArgumentException("weights must be finite and non-negative", nameof(weights));
            total += w;
        }
        if (total <= 0) throw new ArgumentException("at least one weight must be positive", nameof(weights));

        var scaled = new double[n];
        for (int i = 0; i < n; i++) scaled[i] = weights[i] * n / total;
        _threshold = new uint[n];
        _alias = new int[n];
        var small = new Stack<int>();
        var large = new Stack<int>();
        // Iterate downwards so that ties resolve identically on every run (Stack order is deterministic anyway).
        for (int i = n - 1; i >= 0; i--) (scaled[i] < 1.0 ? small : large).Push(i);
        while (small.Count > 0 && large.Count > 0)
        {
            int s = small.Pop();
            int l = large.Pop();
            _threshold[s] = ToThreshold(scaled[s]);
            _alias[s] = l;
            scaled[l] = scaled[l] + scaled[s] - 1.0;
            (scaled[l] < 1.0 ? small : large).Push(l);
        }
        // Leftovers are 1 up to rounding: always keep the column.
        while (large.Count > 0) { int i = large.Pop(); _threshold[i] = uint.MaxValue; _alias[i] = i; }
        while (small.Count > 0) { int i = small.Pop(); _threshold[i] = uint.MaxValue; _alias[i] = i; }
    }

    private static uint ToThreshold(double p) => p >= 1.0 ? uint.MaxValue : (uint)(p * 4294967296.0);

    /// <summary>Draws one index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Sample(ref Xoshiro256StarStar rng)
    {
        ulong r = rng.NextUInt64();
        int column = (int)(((r >> 32) * (ulong)_alias.Length) >> 32);
        uint t = _threshold[column];
        return (uint)r < t || t == uint.MaxValue ? column : _alias[column];
    }
}
