using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace HugeFault.Mm;

/// <summary>
/// An address_space's i_pages: index → folio, kept as the kernel keeps it (lib/xarray.c): leaves of
/// <see cref="XA_CHUNK_SIZE"/> slots, created when the first index of their range is stored and dropped when the last
/// one goes (xas_store() / xas_delete_node()). A file of a million 4 KiB pages costs eight bytes a page, not a
/// search-tree node each. Enumeration (<see cref="Keys"/>, <c>foreach</c>) is in ascending index order, as
/// xa_for_each() is; changing the array while enumerating it throws, as a SortedDictionary would.
/// </summary>
public sealed class PageCacheXArray : IEnumerable<KeyValuePair<ulong, Folio>>
{
    /// <summary>XA_CHUNK_SIZE: slots per xa_node (1 &lt;&lt; XA_CHUNK_SHIFT, 64 in the kernel).</summary>
    public const int XA_CHUNK_SIZE = 64;
    private const int Shift = 6;

    private sealed class Node
    {
        public readonly Folio?[] Slots = new Folio?[XA_CHUNK_SIZE];
        public int Count;
    }

    private readonly Dictionary<ulong, Node> _nodes = new();
    /// <summary>The node indices in ascending order, rebuilt lazily after nodes come or go (only enumeration needs it).</summary>
    private List<ulong>? _order;
    private int _version;

    /// <summary>Folios stored (xa_empty() when 0).</summary>
    public int Count { get; private set; }

    /// <summary>xa_load(); throws when nothing is stored at the index (a caller that knows it is there).</summary>
    public Folio this[ulong index]
    {
        get => TryGetValue(index, out var f) ? f : throw new KeyNotFoundException($"no folio at page-cache index {index}");
        set => Store(index, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>xa_load().</summary>
    public bool TryGetValue(ulong index, [MaybeNullWhen(false)] out Folio folio)
    {
        folio = _nodes.TryGetValue(index >> Shift, out var n) ? n.Slots[index & (XA_CHUNK_SIZE - 1)] : null;
        return folio is not null;
    }

    public bool ContainsKey(ulong index) => TryGetValue(index, out _);

    /// <summary>xa_store().</summary>
    private void Store(ulong index, Folio f)
    {
        if (!_nodes.TryGetValue(index >> Shift, out var n)) { _nodes[index >> Shift] = n = new Node(); _order = null; }
        ref var slot = ref n.Slots[index & (XA_CHUNK_SIZE - 1)];
        if (slot is null) { n.Count++; Count++; }
        slot = f;
        _version++;
    }

    /// <summary>xa_erase(): false when nothing was stored there.</summary>
    public bool Remove(ulong index)
    {
        if (!_nodes.TryGetValue(index >> Shift, out var n)) return false;
        ref var slot = ref n.Slots[index & (XA_CHUNK_SIZE - 1)];
        if (slot is null) return false;
        slot = null;
        Count--;
        if (--n.Count == 0) { _nodes.Remove(index >> Shift); _order = null; }
        _version++;
        return true;
    }

    /// <summary>Stored indices, ascending.</summary>
    public IEnumerable<ulong> Keys => this.Select(kv => kv.Key);
    /// <summary>Stored folios in index order.</summary>
    public IEnumerable<Folio> Values => this.Select(kv => kv.Value);

    /// <summary>xa_for_each(): (index, folio) in ascending index order.</summary>
    public IEnumerator<KeyValuePair<ulong, Folio>> GetEnumerator()
    {
        int version = _version;
        if (_order is null) { _order = new List<ulong>(_nodes.Keys); _order.Sort(); }
        var order = _order;
        foreach (var ni in order)
        {
            var slots = _nodes[ni].Slots;
            for (uint i = 0; i < XA_CHUNK_SIZE; i++)
            {
                if (slots[i] is not { } f) continue;
                yield return new((ni << Shift) | i, f);
                CheckVersion(version);
            }
        }
        CheckVersion(version);
    }

    private void CheckVersion(int version)
    {
        if (version != _version) throw new InvalidOperationException("the page cache changed while it was enumerated (enumerate a copy: .ToList())");
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Managed bytes this array costs the model (for the model-memory report).</summary>
    public long ApproxBytes => 64 + _nodes.Count * (8L * XA_CHUNK_SIZE + 16 + 24 + 40);
}
