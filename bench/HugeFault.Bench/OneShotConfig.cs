using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace HugeFault.Bench;

/// <summary>
/// The job for one-shot kernel-model operations (a memory_failure() consumes its kernel): every iteration builds
/// <see cref="Batch"/> fresh kernels in [IterationSetup] and one invocation runs the operation on each, so time and
/// allocation are per operation. Tiered compilation is off (DOTNET_TieredCompilation=0) so every measured call runs
/// fully optimised code, however few calls an iteration makes: with tiering on, a call that runs a few times per
/// iteration is measured at tier 0 (unoptimised), which is what the old `--job short` PolicyBench numbers showed
/// below 64 mappers. Do not add `--job short` on the command line: it adds a second, tiered job.
/// </summary>
public sealed class OneShotConfig : ManualConfig
{
    /// <summary>Kernels consumed per iteration (OperationsPerInvoke).</summary>
    public const int Batch = 8;

    public OneShotConfig()
    {
        AddJob(Job.Default
            .WithWarmupCount(2)
            .WithIterationCount(10)
            .WithInvocationCount(1)
            .WithUnrollFactor(1)
            .WithEnvironmentVariables(new EnvironmentVariable("DOTNET_TieredCompilation", "0"))
            .WithId("optimised-one-shot"));
        AddDiagnoser(MemoryDiagnoser.Default);
    }
}
