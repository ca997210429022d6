using System.Globalization;
using System.Reflection;
using HugeFault.Fleet;
using HugeFault.Fleet.Output;
using Parquet;
using Parquet.Schema;

namespace HugeFault.Reports.Output;

/// <summary>
/// The per-server fleet data as tidy Parquet for DuckDB, pandas or Spark: one row per (server with an uncorrectable
/// pattern) × policy, snake_case columns (<c>server</c>, <c>policy</c>, the server's own counts, then the policy's), and
/// key-value metadata that makes rates computable from the file alone: every server of the file not listed is all
/// zero, and <c>servers_in_file</c>, <c>years</c>, <c>vm_years</c> give the denominators; the study stamp (id, shard,
/// every resolved config field under <c>config.</c>) says which study the rows belong to.
/// </summary>
public static class FleetParquet
{
    public const string Format = "hugefault-fleet-servers/1";

    // Server-level columns are the row's long properties, policy-level ones its long[] properties (one value per
    // policy): a count added to FleetServerRow becomes a column without a change here.
    private static readonly PropertyInfo[] ServerColumns = typeof(FleetServerRow).GetProperties().Where(p => p.PropertyType == typeof(long)).ToArray();
    private static readonly PropertyInfo[] PolicyColumns = typeof(FleetServerRow).GetProperties().Where(p => p.PropertyType == typeof(long[])).ToArray();

    /// <summary>The column names, in file order.</summary>
    public static IReadOnlyList<string> Columns { get; } =
        [.. ServerColumns.Take(1).Select(p => StudyIdentity.Snake(p.Name)), "policy", .. ServerColumns.Skip(1).Concat(PolicyColumns).Select(p => StudyIdentity.Snake(p.Name))];

    /// <summary>The footer metadata of a run's file.</summary>
    public static Dictionary<string, string> Metadata(FleetResult r, StudyStamp stamp)
    {
        static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        long servers = r.EndServer - r.FirstServer;
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["rows"] = "one per (server with an uncorrectable pattern) x policy; every other server of [first_server, end_server) is all zero",
            ["seed"] = r.Config.Seed.ToString(CultureInfo.InvariantCulture),
            ["servers_total"] = r.Config.Servers.ToString(CultureInfo.InvariantCulture),
            ["servers_in_file"] = servers.ToString(CultureInfo.InvariantCulture),
            ["first_server"] = r.FirstServer.ToString(CultureInfo.InvariantCulture),
            ["end_server"] = r.EndServer.ToString(CultureInfo.InvariantCulture),
            ["years"] = D(r.Config.Years),
            ["server_years"] = D(servers * r.Config.Years),
            ["mean_concurrent_vms"] = D(r.Model.MeanConcurrentVms),
            ["vm_years"] = D(servers * r.Config.Years * r.Model.MeanConcurrentVms),
            ["policies"] = string.Join(",", r.Config.Policies),
            ["tool_version"] = stamp.Study["tool_version"] ?? StudyIdentity.ToolVersion,
        };
        foreach (var (k, v) in stamp.Metadata()) meta[k] = v;
        return meta;
    }

    public static void Write(FleetResult r, StudyStamp stamp, Stream stream) => WriteAsync(r, stamp, stream).GetAwaiter().GetResult();

    private static async Task WriteAsync(FleetResult r, StudyStamp stamp, Stream stream)
    {
        var rows = r.Rows.OrderBy(x => x.Server).ToList();
        var policies = r.Config.Policies;
        int n = rows.Count * policies.Count;
        var serverField = new DataField<long>(Columns[0]);
        var policyField = new DataField<string>("policy");
        var longFields = Columns.Skip(2).Select(c => new DataField<long>(c)).ToArray();
        var schema = new ParquetSchema([serverField, policyField, .. longFields]);
        await using var writer = await ParquetWriter.CreateAsync(schema, stream);
        writer.CustomMetadata = Metadata(r, stamp);
        using var rg = writer.CreateRowGroup();
        var server = new long[n];
        var policy = new string[n];
        for (int i = 0; i < rows.Count; i++)
            for (int p = 0; p < policies.Count; p++) { server[i * policies.Count + p] = rows[i].Server; policy[i * policies.Count + p] = policies[p]; }
        await rg.WriteAsync<long>(serverField, server.AsMemory());
        await rg.WriteAsync(policyField, policy);
        var values = new long[n];
        int f = 0;
        foreach (var col in ServerColumns.Skip(1))
        {
            for (int i = 0; i < rows.Count; i++)
                for (int p = 0; p < policies.Count; p++) values[i * policies.Count + p] = (long)col.GetValue(rows[i])!;
            await rg.WriteAsync<long>(longFields[f++], values.AsMemory());
        }
        foreach (var col in PolicyColumns)
        {
            for (int i = 0; i < rows.Count; i++)
            {
                var a = (long[])col.GetValue(rows[i])!;
                for (int p = 0; p < policies.Count; p++) values[i * policies.Count + p] = a[p];
            }
            await rg.WriteAsync<long>(longFields[f++], values.AsMemory());
        }
    }

    /// <summary>The study stamp of a Parquet file written by <see cref="Write"/>; null with the reason otherwise.</summary>
    public static (StudyStamp? Stamp, string? Error) ReadStamp(Stream stream)
    {
        try
        {
            return StudyStamp.FromMetadata(ReadMetadata(stream).GetAwaiter().GetResult());
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException)
        {
            return (null, $"not a readable Parquet file ({e.Message})");
        }
    }

    private static async Task<Dictionary<string, string>> ReadMetadata(Stream stream)
    {
        await using var reader = await ParquetReader.CreateAsync(stream);
        return reader.CustomMetadata.ToDictionary();
    }
}
