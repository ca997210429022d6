using CsCheck;

namespace HugeFault.Tests.Properties;

/// <summary>
/// Reproducible property runs on top of CsCheck. CsCheck's <c>Sample(seed:, iter:)</c> uses the seed for its first
/// iteration only and draws every later one from a fresh random seed, so a failure at a later iteration could not be
/// re-run; here iteration i always draws its input from the same PCG (stream, i+1), and every failure prints the seed
/// of its own case. When a case fails, CsCheck's Check.Sample is started from that seed to shrink it, and for arrays a
/// greedy delete-one-step pass then finds a minimal reproduction, which is what the failure message shows.
/// Environment (outside CI; the timed suite sets none of them):
/// HUGEFAULT_PBT_ITER=N adds N iterations per property (per theory row: per policy), their seeds drawn from
/// HUGEFAULT_PBT_MASTER (a number; random when unset, and printed on a failure), failures minimised the same way;
/// HUGEFAULT_PBT_SEED=SEED runs only the case of that printed seed (with a test filter, the failing test's).
/// </summary>
internal static class Pbt
{
    public static void Run<T>(Gen<T> gen, Action<T> assert, int iter, uint stream, Func<T, string>? print = null) =>
        Run(gen, assert, iter, stream, print, Extra("HUGEFAULT_PBT_ITER"), null);

    /// <summary>A positive count from environment variable <paramref name="name"/>, or 0.</summary>
    internal static long Extra(string name) => long.TryParse(Environment.GetEnvironmentVariable(name), out long n) && n > 0 ? n : 0;

    /// <summary>
    /// The same with <paramref name="extra"/> seeded iterations after the <paramref name="iter"/> fixed ones (a long mode
    /// passes its own count); <paramref name="done"/> hears the number of cases that passed, after each one, and may end
    /// the seeded iterations early by returning false (a time budget).
    /// </summary>
    public static void Run<T>(Gen<T> gen, Action<T> assert, int iter, uint stream, Func<T, string>? print, long extra, Func<long, bool>? done)
    {
        print ??= x => x is Array a ? $"[{string.Join(", ", a.Cast<object?>())}]" : x?.ToString() ?? "null";
        if (Environment.GetEnvironmentVariable("HUGEFAULT_PBT_SEED") is { Length: > 0 } only)
        {
            One(gen, assert, "replayed case", PCG.Parse(only), print);
            return;
        }
        for (int i = 0; i < iter; i++) { One(gen, assert, $"iteration {i}", new PCG(stream, (ulong)i + 1), print); done?.Invoke(i + 1); }
        // the long mode: seeds from one master seed, so the whole run is reproducible too
        if (extra > 0)
        {
            ulong master = ulong.TryParse(Environment.GetEnvironmentVariable("HUGEFAULT_PBT_MASTER"), out var m) ? m : (ulong)Random.Shared.NextInt64();
            var seeds = new PCG(stream, master);
            for (long i = 0; i < extra; i++)
            {
                One(gen, assert, $"iteration {iter + i} (HUGEFAULT_PBT_MASTER={master})", new PCG(stream, seeds.Next64()), print);
                if (done is not null && !done(iter + i + 1)) break;
            }
        }
    }

    /// <summary>A property given as a predicate.</summary>
    public static void Run<T>(Gen<T> gen, Func<T, bool> holds, int iter, uint stream, Func<T, string>? print = null) =>
        Run(gen, x => { if (!holds(x)) throw new Xunit.Sdk.XunitException("the property is false"); }, iter, stream, print);

    private static void One<T>(Gen<T> gen, Action<T> assert, string which, PCG pcg, Func<T, string> print)
    {
        string seed = pcg.ToString();
        var input = gen.Generate(pcg, null, out _);
        if (Fails(assert, input) is not { } first) return;
        string cs;
        try { Check.Sample(gen, assert, seed: seed, iter: 300, threads: 1, print: print); cs = "CsCheck did not reproduce it"; }
        catch (Exception e) { cs = e.Message.Split('\n')[0]; }
        var (min, why) = input is Array ? Minimise(assert, input, first) : (input, first);
        throw new PropertyFailedException(
            $"{which} (seed {seed}; re-run it alone with HUGEFAULT_PBT_SEED={seed}) failed. CsCheck: {cs}\nminimal reproduction: {print(min)}\n{why.Message}", why);
    }

    internal static Exception? Fails<T>(Action<T> assert, T input)
    {
        try { assert(input); return null; }
        catch (Exception e) { return e; }
    }

    /// <summary>Greedy delta debugging for arrays: drop chunks, then single elements, while the failure persists.</summary>
    internal static (T, Exception) Minimise<T>(Action<T> assert, T input, Exception why)
    {
        var cur = (Array)(object)input!;
        var type = cur.GetType().GetElementType()!;
        for (int chunk = Math.Max(1, cur.Length / 2); chunk >= 1; chunk /= 2)
        {
            bool progress = true;
            while (progress)
            {
                progress = false;
                for (int at = cur.Length - chunk; at >= 0; at -= chunk)
                {
                    var cand = Array.CreateInstance(type, cur.Length - chunk);
                    Array.Copy(cur, 0, cand, 0, at);
                    Array.Copy(cur, at + chunk, cand, at, cur.Length - at - chunk);
                    if (cand.Length == 0 || Fails(assert, (T)(object)cand) is not { } e) continue;
                    cur = cand; why = e; progress = true;
                    at = Math.Min(at, cur.Length - chunk + chunk);
                }
            }
        }
        return ((T)(object)cur, why);
    }
}

/// <summary>A property failed; the message holds the minimal counterexample.</summary>
public sealed class PropertyFailedException(string message, Exception inner) : Exception(message, inner);
