using DuckDB.NET.Data;
using HugeFault.Fleet;
using HugeFault.Fleet.Output;
using HugeFault.Reports.Output;

namespace HugeFault.Tests.Fleet;

/// <summary>--out FILE.parquet streams the run's rows into row groups: the file holds the same rows as one written from the collected rows.</summary>
public class FleetParquetStreamTests
{
    [Fact]
    public void Streamed_row_groups_hold_exactly_the_rows_of_the_collected_file()
    {
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-parquet-stream", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var (config, errors) = FleetConfigLoader.Load("faults:\n  fit_scale: 8\nrun:\n  servers: 1500\n  seed: 11\n  policies: [mainline, hgm]\n", "busy.yaml");
        Assert.Empty(errors);
        string streamed = Path.Combine(dir, "streamed.parquet"), collected = Path.Combine(dir, "collected.parquet");
        var stamp = StudyStamp.For(StudyIdentity.Of(config!), FleetShard.Whole);
        FleetResult result;
        using (var f = File.Create(streamed))
        {
            using var w = new FleetParquetWriter(f, config!.Policies, groupServers: 3);
            result = FleetMonteCarlo.Run(config, new FleetRunOptions(2, FleetShard.Whole, CollectRows: true, RowSink: w.Add));
            w.Finish(result, stamp);
            Assert.True(result.Rows.Count > 6, $"only {result.Rows.Count} servers with a UE: raise fit_scale");
            Assert.Equal(result.Rows.Count * 2L, w.Rows);
        }
        using (var f = File.Create(collected)) FleetParquet.Write(result, stamp, f);

        using var db = new DuckDBConnection("Data Source=:memory:");
        db.Open();
        List<string> Rows(string file)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT * FROM read_parquet('{file.Replace("'", "''")}') ORDER BY server, policy";
            using var r = cmd.ExecuteReader();
            var rows = new List<string>();
            while (r.Read()) rows.Add(string.Join(",", Enumerable.Range(0, r.FieldCount).Select(i => r.GetValue(i))));
            return rows;
        }
        long Groups(string file)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT count(DISTINCT row_group_id) FROM parquet_metadata('{file.Replace("'", "''")}')";
            return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.Equal(Rows(collected), Rows(streamed));
        Assert.Equal((result.Rows.Count + 2) / 3, Groups(streamed));
        Assert.Equal(1, Groups(collected));
    }
}

/// <summary>A streamed --out is open for the whole run: a terminated run must still leave nothing behind.</summary>
public class FleetOutKillTests
{
    [Fact]
    public void A_fleet_run_terminated_while_streaming_parquet_leaves_no_file()
    {
        string dir = Path.Combine(Path.GetTempPath(), "hugefault-parquet-kill", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "HugeFault.Cli.dll"), "fleet", "--servers", "100000000", "--policy", "mainline", "--out", Path.Combine(dir, "f.parquet") })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.ErrorDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        // wait for the streamed temp file itself (the output-path check before the run may create and remove a probe file)
        static bool Streaming(string f) => Path.GetFileName(f).StartsWith(".f.parquet.", StringComparison.Ordinal);
        while (!Directory.GetFiles(dir).Any(Streaming) && !p.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(50);
        Assert.False(p.HasExited, "the run ended before it could be terminated");
        Assert.Single(Directory.GetFiles(dir), Streaming);
        using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        Assert.True(p.WaitForExit(30_000), "hugefault did not stop on SIGTERM");
        Assert.Empty(Directory.GetFiles(dir));
    }
}
