namespace HugeFault.Fleet.Output;

/// <summary>One file given to <c>hugefault fleet merge</c>: its name (for messages), report and stamp.</summary>
public sealed record ShardInput(string Name, FleetReport Report, StudyStamp Stamp);

/// <summary>
/// Merging shards so that it cannot come out wrong: one study (same identity: every differing field is named), one
/// split (shard count), each shard exactly once (duplicates and overlaps refused), every shard present unless
/// <c>partial</c> (then labelled partial), each file holding exactly its shards' servers. Sums are exact integers and
/// the inputs are taken in shard order, so the result does not depend on the order of the files.
/// </summary>
public static class ShardMerge
{
    public static (FleetReport? Report, StudyStamp? Stamp, string? Error) Merge(IReadOnlyList<ShardInput> inputs, bool partial)
    {
        if (inputs.Count == 0) return Fail("nothing to merge");
        var sorted = inputs.OrderBy(i => i.Stamp.ShardCount).ThenBy(i => i.Stamp.Shards[0]).ThenBy(i => i.Name, StringComparer.Ordinal).ToList();
        var first = sorted[0];
        foreach (var x in sorted.Skip(1))
        {
            if (x.Stamp.Study.Id == first.Stamp.Study.Id) continue;
            var diff = x.Stamp.Study.Differences(first.Stamp.Study);
            string keys = string.Join(", ", diff.Take(4)) + (diff.Count > 4 ? $" and {diff.Count - 4} more" : "");
            return Fail($"{x.Name}: study {x.Stamp.Study.Id} is not the study of {first.Name} ({first.Stamp.Study.Id}): {keys}");
        }
        var owner = new Dictionary<int, string>();
        foreach (var x in sorted)
        {
            if (x.Stamp.ShardCount != first.Stamp.ShardCount)
                return Fail($"{x.Name}: shard {x.Stamp.Label} of a {x.Stamp.ShardCount}-way split overlaps {first.Name} (shard {first.Stamp.Label} of a {first.Stamp.ShardCount}-way split); merge shards of one split");
            foreach (int k in x.Stamp.Shards)
            {
                if (owner.TryGetValue(k, out var other))
                    return Fail(x.Stamp.Shards.Count == 1 && sorted.First(s => s.Name == other).Stamp.Shards.Count == 1
                        ? $"{x.Name}: shard {k}/{x.Stamp.ShardCount} is given twice (also {other}); give each shard once"
                        : $"{x.Name}: overlaps {other} in shard {k}/{x.Stamp.ShardCount}; give each shard once");
                owner[k] = x.Name;
            }
            long expected = x.Stamp.Shards.Sum(k => Servers(x.Report.Context.ServersTotal, k, x.Stamp.ShardCount));
            if (x.Report.Tally.Servers != expected)
                return Fail($"{x.Name}: holds {x.Report.Tally.Servers:N0} servers but shard(s) {x.Stamp.Label} of {x.Report.Context.ServersTotal:N0} have {expected:N0} (edited or truncated file)");
        }
        var stamp = new StudyStamp(first.Stamp.Study, first.Stamp.ShardCount, owner.Keys.Order().ToList()).Normalised();
        if (stamp.Partial && !partial)
            return Fail($"missing shard(s) {string.Join(", ", stamp.Missing.Select(k => $"{k}/{stamp.ShardCount}"))} of study {stamp.Study.Id}; " +
                        "run them, or pass --partial to merge what is here (labelled partial)");
        var (merged, error) = FleetReport.Merge(sorted.Select(s => s.Report).ToList());
        if (merged is null) return Fail(error!);
        return (merged with { Context = merged.Context with { Shard = stamp.Label } }, stamp, null);
    }

    private static long Servers(long total, int k, int n)
    {
        var (a, b) = new FleetShard(k, n).Range(total);
        return b - a;
    }

    private static (FleetReport?, StudyStamp?, string?) Fail(string e) => (null, null, e);
}
