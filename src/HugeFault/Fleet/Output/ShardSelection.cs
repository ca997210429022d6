using System.Globalization;

namespace HugeFault.Fleet.Output;

/// <summary>The shard a run simulates and where that choice came from (printed, so a job log shows it).</summary>
public sealed record ShardChoice(FleetShard Shard, string Source);

/// <summary>
/// Which shard to run: the whole study unless asked. <c>--shard K/N</c> is explicit; <c>--shard auto</c> (and only it)
/// reads a scheduler's environment: a Kubernetes Indexed Job's <c>JOB_COMPLETION_INDEX</c> with <c>HUGEFAULT_SHARDS</c>
/// (the Job's completions), or a Slurm array's <c>SLURM_ARRAY_TASK_ID</c> with <c>HUGEFAULT_SHARDS</c> or the array's own
/// size when it is the full array 0…N−1. K is the task id itself, so rerunning task 2 alone (<c>sbatch --array=2</c>)
/// runs exactly shard 2; a partial array without <c>HUGEFAULT_SHARDS</c> is refused rather than guessed.
/// </summary>
public static class ShardSelection
{
    public const string CountVariable = "HUGEFAULT_SHARDS";

    public static (ShardChoice? Choice, string? Error) Resolve(string? flag, Func<string, string?> env)
    {
        if (flag is null) return (new ShardChoice(FleetShard.Whole, "the whole study (no --shard)"), null);
        if (flag != "auto")
            return Parse(flag) is { } s ? (new ShardChoice(s, $"--shard {flag}"), null) : (null, $"--shard must be K/N with 0 ≤ K < N, or auto (got '{flag}')");
        string? declared = env(CountVariable);
        int? count = null;
        if (declared is not null)
        {
            if (!int.TryParse(declared, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1)
                return (null, $"--shard auto: {CountVariable} must be a positive whole number (got '{declared}')");
            count = n;
        }
        if (env("JOB_COMPLETION_INDEX") is { } index)
        {
            if (count is null)
                return (null, $"--shard auto: JOB_COMPLETION_INDEX={index} is set but {CountVariable} is not; set it to the Job's .spec.completions (docs/k8s-indexed-job.yaml)");
            return Pick("JOB_COMPLETION_INDEX", index, count.Value, $"{CountVariable}={count}");
        }
        if (env("SLURM_ARRAY_TASK_ID") is { } task)
        {
            int? arrayCount = FullArray(env);
            if (count is { } c && arrayCount is { } a && a != c)
                return (null, $"--shard auto: {CountVariable}={c} but this Slurm array is 0-{a - 1} ({a} tasks); make them agree (docs/slurm-array.sh)");
            if ((count ?? arrayCount) is not { } n)
                return (null, $"--shard auto: this Slurm array (tasks {env("SLURM_ARRAY_TASK_MIN")}-{env("SLURM_ARRAY_TASK_MAX")}) is not the full 0…N-1 array, " +
                              $"so it does not say how many shards the study has (a rerun of some tasks?); set {CountVariable}=N or pass --shard K/N");
            return Pick("SLURM_ARRAY_TASK_ID", task, n, count is not null ? $"{CountVariable}={n}" : $"the array's {n} tasks");
        }
        return (null, "--shard auto: neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm array) is set; pass --shard K/N");
    }

    /// <summary>"K/N" with 0 ≤ K &lt; N, else null.</summary>
    public static FleetShard? Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k) &&
            int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 && k < n)
            return new FleetShard(k, n);
        return null;
    }

    private static (ShardChoice?, string?) Pick(string variable, string index, int count, string countSource)
    {
        if (!int.TryParse(index, NumberStyles.None, CultureInfo.InvariantCulture, out int k))
            return (null, $"--shard auto: {variable} must be a whole number (got '{index}')");
        if (k >= count)
            return (null, $"--shard auto: {variable}={k} is not below the shard count {count} ({countSource}); make the count match the job's size");
        return (new ShardChoice(new FleetShard(k, count), $"--shard auto: {variable}={k} of {countSource}"), null);
    }

    // The array's size when it is exactly 0…MAX with step 1 (COUNT = MAX + 1, MIN = 0); null otherwise.
    private static int? FullArray(Func<string, string?> env)
    {
        static int? Int(string? s) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : null;
        int? min = Int(env("SLURM_ARRAY_TASK_MIN")), max = Int(env("SLURM_ARRAY_TASK_MAX")), count = Int(env("SLURM_ARRAY_TASK_COUNT"));
        return min == 0 && max is { } m && count == m + 1 ? count : null;
    }
}
