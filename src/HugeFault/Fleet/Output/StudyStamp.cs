using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace HugeFault.Fleet.Output;

/// <summary>
/// What a fleet output file holds: shards <see cref="Shards"/> of the <see cref="ShardCount"/> shards of study
/// <see cref="Study"/>. A file covering every shard is the whole study and is stamped as one (1 shard of 1), so a
/// complete merge is byte-identical to an unsharded run.
/// </summary>
public sealed record StudyStamp(StudyIdentity Study, int ShardCount, IReadOnlyList<int> Shards)
{
    public static StudyStamp For(StudyIdentity study, FleetShard shard) => new StudyStamp(study, shard.Count, [shard.Index]).Normalised();

    public bool Complete => Shards.Count == ShardCount;

    /// <summary>Not the whole study.</summary>
    public bool Partial => !Complete;

    public StudyStamp Normalised() => Complete ? this with { ShardCount = 1, Shards = [0] } : this with { Shards = Shards.Order().ToList() };

    public IEnumerable<int> Missing => Enumerable.Range(0, ShardCount).Except(Shards);

    /// <summary>"all", "2/4", or "partial: 3 of 4 shards (missing 2/4)".</summary>
    public string Label => Complete ? "all" : Shards.Count == 1 ? $"{Shards[0]}/{ShardCount}"
        : $"partial: {Shards.Count} of {ShardCount} shards (missing {string.Join(", ", Missing.Select(k => $"{k}/{ShardCount}"))})";

    /// <summary>For file names: "all", "2of4", "partial-3of4".</summary>
    public string FileTag => Complete ? "all" : Shards.Count == 1 ? $"{Shards[0]}of{ShardCount}" : $"partial-{Shards.Count}of{ShardCount}";

    /// <summary>Replaces <c>{study}</c> and <c>{shard}</c> in an output path pattern.</summary>
    public string Expand(string pattern) => pattern.Replace("{study}", Study.Id, StringComparison.Ordinal).Replace("{shard}", FileTag, StringComparison.Ordinal);

    /// <summary>Same study and same shards: a rerun of this output.</summary>
    public bool SameAs(StudyStamp other) => Study.Id == other.Study.Id && ShardCount == other.ShardCount && Shards.SequenceEqual(other.Shards);

    /// <summary>Key-value metadata (Parquet footers): the stamp and every identity field under <c>config.</c>.</summary>
    public IEnumerable<KeyValuePair<string, string>> Metadata()
    {
        yield return new("study_id", Study.Id);
        yield return new("shard", Label);
        yield return new("shard_count", ShardCount.ToString(CultureInfo.InvariantCulture));
        yield return new("shards", string.Join(",", Shards));
        yield return new("partial", Partial ? "true" : "false");
        foreach (var (k, v) in Study.Fields) yield return new($"config.{k}", v);
    }

    /// <summary>Reads <see cref="Metadata"/> back; null with the reason when a key is missing or the id does not match the fields.</summary>
    public static (StudyStamp? Stamp, string? Error) FromMetadata(IReadOnlyDictionary<string, string> meta)
    {
        if (!meta.TryGetValue("study_id", out var id)) return (null, "no study_id in its metadata (not written by 'hugefault fleet', or by an older one)");
        if (!meta.TryGetValue("shard_count", out var n) || !int.TryParse(n, CultureInfo.InvariantCulture, out int count) || !meta.TryGetValue("shards", out var list))
            return (null, "study metadata without shard_count/shards");
        var shards = list.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
        var study = StudyIdentity.FromFields(meta.Where(kv => kv.Key.StartsWith("config.", StringComparison.Ordinal)).Select(kv => new KeyValuePair<string, string>(kv.Key["config.".Length..], kv.Value)));
        return Checked(new StudyStamp(study, count, shards), id);
    }

    /// <summary>The "study" object of a fleet JSON output.</summary>
    public JsonObject ToJson()
    {
        var fields = new JsonObject();
        foreach (var (k, v) in Study.Fields) fields[k] = v;
        return new JsonObject
        {
            ["id"] = Study.Id,
            ["shard"] = Label,
            ["shard_count"] = ShardCount,
            ["shards"] = new JsonArray(Shards.Select(k => (JsonNode)k).ToArray()),
            ["partial"] = Partial,
            ["fields"] = fields,
        };
    }

    public static (StudyStamp? Stamp, string? Error) FromJson(JsonElement study)
    {
        try
        {
            string id = study.GetProperty("id").GetString() ?? "";
            int count = study.GetProperty("shard_count").GetInt32();
            var shards = study.GetProperty("shards").EnumerateArray().Select(x => x.GetInt32()).ToList();
            var fields = study.GetProperty("fields").EnumerateObject().Select(p => new KeyValuePair<string, string>(p.Name, p.Value.GetString() ?? "")).ToList();
            return Checked(new StudyStamp(StudyIdentity.FromFields(fields), count, shards), id);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return (null, $"malformed study stamp ({e.Message})");
        }
    }

    private static (StudyStamp?, string?) Checked(StudyStamp s, string id)
    {
        if (s.Study.Id != id) return (null, $"study id {id} does not match its recorded fields (hash {s.Study.Id}): the stamp was edited");
        if (s.ShardCount < 1 || s.Shards.Count == 0 || s.Shards.Any(k => k < 0 || k >= s.ShardCount) || s.Shards.Distinct().Count() != s.Shards.Count)
            return (null, $"study stamp lists shards [{string.Join(",", s.Shards)}] that are not distinct shards of {s.ShardCount}");
        return (s.Normalised(), null);
    }
}
