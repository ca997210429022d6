using System.Reflection;
using HugeFault.Fleet;
using HugeFault.Fleet.Output;
using Parquet;
using Parquet.Schema;

namespace HugeFault.Reports.Output;

/// <summary>
/// Streams per-server rows into the tidy Parquet file of <see cref="FleetParquet"/>: rows arrive in server order
/// (<see cref="FleetRunOptions.RowSink"/>) and leave as row groups of <see cref="GroupServers"/> servers, so memory is one
/// group however many servers the run has. The footer metadata (study stamp, denominators) is written by
/// <see cref="Finish"/> once the run's totals are known; a writer disposed without it leaves an unusable file, which the
/// caller's temp-file-and-rename never shows under the output's name.
/// </summary>
public sealed class FleetParquetWriter : IDisposable
{
    /// <summary>Servers per row group.</summary>
    public const int GroupServers = 16_384;

    private static PropertyInfo[] ServerColumns => FleetParquet.ServerColumns;
    private static PropertyInfo[] PolicyColumns => FleetParquet.PolicyColumns;

    private readonly IReadOnlyList<string> _policies;
    private readonly DataField<long> _server;
    private readonly DataField<string> _policy;
    private readonly DataField<long>[] _longs;
    private readonly ParquetWriter _writer;
    private readonly List<FleetServerRow> _buffer;
    private readonly int _groupServers;
    private long _last = long.MinValue;
    private bool _finished;

    public FleetParquetWriter(Stream stream, IReadOnlyList<string> policies, int groupServers = GroupServers)
    {
        _policies = policies;
        _groupServers = groupServers;
        _buffer = new List<FleetServerRow>(groupServers);
        _server = new DataField<long>(FleetParquet.Columns[0]);
        _policy = new DataField<string>("policy");
        _longs = FleetParquet.Columns.Skip(2).Select(c => new DataField<long>(c)).ToArray();
        _writer = ParquetWriter.CreateAsync(new ParquetSchema([_server, _policy, .. _longs]), stream).GetAwaiter().GetResult();
    }

    /// <summary>Rows written so far (server × policy).</summary>
    public long Rows { get; private set; }

    /// <summary>Adds the next server's row (servers strictly increasing).</summary>
    public void Add(FleetServerRow row)
    {
        if (row.Server <= _last) throw new InvalidOperationException($"server {row.Server} after {_last}: rows must come in server order");
        _last = row.Server;
        _buffer.Add(row);
        if (_buffer.Count == _groupServers) Flush();
    }

    /// <summary>Writes the last group and the footer with <paramref name="r"/>'s metadata.</summary>
    public void Finish(FleetResult r, StudyStamp stamp)
    {
        Flush();
        _writer.CustomMetadata = FleetParquet.Metadata(r, stamp);
        _finished = true;
        _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        if (!_finished) _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    private void Flush()
    {
        if (_buffer.Count == 0 && Rows > 0) return;
        FlushAsync().GetAwaiter().GetResult();
        Rows += (long)_buffer.Count * _policies.Count;
        _buffer.Clear();
    }

    private async Task FlushAsync()
    {
        var rows = _buffer;
        int np = _policies.Count, n = rows.Count * np;
        using var rg = _writer.CreateRowGroup();
        var server = new long[n];
        var policy = new string[n];
        for (int i = 0; i < rows.Count; i++)
            for (int p = 0; p < np; p++) { server[i * np + p] = rows[i].Server; policy[i * np + p] = _policies[p]; }
        await rg.WriteAsync<long>(_server, server.AsMemory());
        await rg.WriteAsync(_policy, policy);
        var values = new long[n];
        int f = 0;
        foreach (var col in ServerColumns.Skip(1))
        {
            for (int i = 0; i < rows.Count; i++)
                for (int p = 0; p < np; p++) values[i * np + p] = (long)col.GetValue(rows[i])!;
            await rg.WriteAsync<long>(_longs[f++], values.AsMemory());
        }
        foreach (var col in PolicyColumns)
        {
            for (int i = 0; i < rows.Count; i++)
            {
                var a = (long[])col.GetValue(rows[i])!;
                for (int p = 0; p < np; p++) values[i * np + p] = a[p];
            }
            await rg.WriteAsync<long>(_longs[f++], values.AsMemory());
        }
    }
}
