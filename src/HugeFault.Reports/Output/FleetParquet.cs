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
    internal static readonly PropertyInfo[] ServerColumns = typeof(FleetServerRow).GetProperties().Where(p => p.PropertyType == typeof(long)).ToArray();
    internal static readonly PropertyInfo[] PolicyColumns = typeof(FleetServerRow).GetProperties().Where(p => p.PropertyType == typeof(long[])).ToArray();

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

    /// <summary>Writes a finished run's rows (<see cref="FleetRunOptions.CollectRows"/>) in one go.</summary>
    public static void Write(FleetResult r, StudyStamp stamp, Stream stream)
    {
        using var w = new FleetParquetWriter(stream, r.Config.Policies);
        foreach (var row in r.Rows.OrderBy(x => x.Server)) w.Add(row);
        w.Finish(r, stamp);
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
