using System.Text.Json;
using System.Text.Json.Nodes;

namespace HugeFault.Fleet.Output;

/// <summary>
/// The fleet JSON output with its study stamp: <see cref="FleetReport.ToJson"/> with a <c>"study"</c> object after
/// <c>"format"</c> (id, shard, shard count, shards held, partial, every identity field). Read back by <see cref="Read"/>.
/// </summary>
public static class FleetStudyJson
{
    public static string Write(FleetReport report, StudyStamp stamp)
    {
        var body = JsonNode.Parse((report with { Context = report.Context with { Shard = stamp.Label } }).ToJson())!.AsObject();
        var root = new JsonObject();
        foreach (var (k, v) in body.ToList())
        {
            body.Remove(k);
            root[k] = v;
            if (k == "format") root["study"] = stamp.ToJson();
        }
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The report and stamp of a fleet JSON output; null with the reason otherwise.</summary>
    public static (FleetReport? Report, StudyStamp? Stamp, string? Error) Read(string json)
    {
        var (report, error) = FleetReport.FromJson(json);
        if (report is null) return (null, null, error);
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (!doc.RootElement.TryGetProperty("study", out var study))
                return (null, null, "no study stamp (written by an older 'hugefault fleet'); rerun this shard");
            var (stamp, err) = StudyStamp.FromJson(study);
            return stamp is null ? (null, null, err) : (report, stamp, null);
        }
        catch (JsonException e) { return (null, null, $"malformed fleet JSON: {e.Message}"); }
    }
}
