using System.Globalization;
using System.Text.Json;
using DuckDB.NET.Data;
using HugeFault.Reports.Output;
using HugeFault.Tests.Cli;

namespace HugeFault.Tests.Fleet;

/// <summary>The Parquet output is tidy and self-describing: DuckDB recomputes the CLI's rates from the file alone.</summary>
public class FleetParquetTests
{
    [Fact]
    public void Duckdb_recomputes_the_clis_vm_crash_rate_and_ue_rate_from_the_parquet_file_alone()
    {
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-parquet-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "busy.yaml"), "faults:\n  fit_scale: 8\n");
        string parquet = Path.Combine(dir, "servers.parquet");
        var run = CliProcess.InProcess("fleet", Path.Combine(dir, "busy.yaml"), "--servers", "1500", "--seed", "11", "--policy", "mainline,hgm", "--shard", "1/2", "--json", "--out", parquet);
        Assert.True(run.Exit == 0, run.Err);
        using var json = JsonDocument.Parse(run.Out);
        double cliCrashes = json.RootElement.GetProperty("policies").GetProperty("mainline").GetProperty("vm_crashes").GetProperty("mean").GetDouble();
        double cliUes = json.RootElement.GetProperty("policies").GetProperty("hgm").GetProperty("ue_events").GetProperty("mean").GetDouble();
        Assert.True(cliCrashes > 0);

        using var db = new DuckDBConnection("Data Source=:memory:");
        db.Open();
        string file = parquet.Replace("'", "''");
        object? Scalar(string sql)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = sql;
            return cmd.ExecuteScalar();
        }
        string Meta(string key)
        {
            var v = Scalar($"SELECT decode(value) FROM parquet_kv_metadata('{file}') WHERE decode(key) = '{key}'");
            return v as string ?? throw new Xunit.Sdk.XunitException($"no metadata key {key}");
        }
        // Column names need no quoting: snake_case, no dots.
        var columns = new List<string>();
        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = $"DESCRIBE SELECT * FROM read_parquet('{file}')";
            using var r = cmd.ExecuteReader();
            while (r.Read()) columns.Add(r.GetString(0));
        }
        Assert.Equal(FleetParquet.Columns, columns);
        Assert.All(columns, c => Assert.Matches("^[a-z][a-z0-9_]*$", c));

        double vmYears = double.Parse(Meta("vm_years"), CultureInfo.InvariantCulture);
        long servers = long.Parse(Meta("servers_in_file"), CultureInfo.InvariantCulture);
        Assert.Equal(750, servers);
        Assert.Equal("1/2", Meta("shard"));
        Assert.Equal(json.RootElement.GetProperty("study").GetProperty("id").GetString(), Meta("study_id"));
        Assert.Equal("11", Meta("config.seed"));
        long killed = Convert.ToInt64(Scalar($"SELECT CAST(sum(vms_killed) AS BIGINT) FROM read_parquet('{file}') WHERE policy = 'mainline'"), CultureInfo.InvariantCulture);
        long ues = Convert.ToInt64(Scalar($"SELECT CAST(sum(ue_events) AS BIGINT) FROM read_parquet('{file}') WHERE policy = 'hgm'"), CultureInfo.InvariantCulture);
        Assert.Equal(cliCrashes, killed * 1000.0 / vmYears, 9);
        Assert.Equal(cliUes, (double)ues / servers, 12);
        // Long form: each listed server appears once per policy.
        Assert.Equal(2L, Convert.ToInt64(Scalar($"SELECT max(n) FROM (SELECT count(*) n FROM read_parquet('{file}') GROUP BY server)"), CultureInfo.InvariantCulture));
    }
}
