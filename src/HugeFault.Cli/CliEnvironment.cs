namespace HugeFault.Cli;

/// <summary>
/// The environment variables the CLI reads (COLUMNS, shard variables, HUGEFAULT_DEBUG). An in-process run
/// (<see cref="Program.Run"/>) may give its own set for its async flow, so concurrent runs in one process (tests)
/// see their own COLUMNS without touching the process environment.
/// </summary>
internal static class CliEnvironment
{
    private static readonly AsyncLocal<IReadOnlyDictionary<string, string>?> Override = new();

    public static string? Get(string name) =>
        Override.Value is { } env ? env.GetValueOrDefault(name) : Environment.GetEnvironmentVariable(name);

    /// <summary>Replaces the environment for the current async flow until the returned scope is disposed.</summary>
    public static IDisposable Use(IReadOnlyDictionary<string, string> env)
    {
        var before = Override.Value;
        Override.Value = env;
        return new Scope(() => Override.Value = before);
    }

    private sealed class Scope(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
