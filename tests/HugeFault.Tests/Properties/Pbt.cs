using CsCheck;

namespace HugeFault.Tests.Properties;

/// <summary>
/// Deterministic property runs on top of CsCheck: iteration i always draws its input from the same PCG
/// (stream, i+1), so CI sees the same cases every run. When a case fails, CsCheck's Check.Sample is started
/// from that case's seed to shrink it (its seed reproduces the failure), and for operation sequences a greedy
/// delete-one-step pass then finds a minimal reproduction, which is what the failure message shows.
/// Set HUGEFAULT_PBT_ITER=N to add N iterations from random seeds (exploration; failures are minimised the same way).
/// </summary>
internal static class Pbt
{
    public static void Run<T>(Gen<T> gen, Action<T> assert, int iter, uint stream, Func<T, string> print)
    {
        for (int i = 0; i < iter; i++) One(gen, assert, i, new PCG(stream, (ulong)i + 1), print);
        // exploration: random seeds through the same path, so a failure is minimised too
        if (int.TryParse(Environment.GetEnvironmentVariable("HUGEFAULT_PBT_ITER"), out int extra) && extra > 0)
            for (int i = 0; i < extra; i++) One(gen, assert, iter + i, new PCG(stream, (ulong)Random.Shared.NextInt64()), print);
    }

    private static void One<T>(Gen<T> gen, Action<T> assert, int i, PCG pcg, Func<T, string> print)
    {
        string seed = pcg.ToString();
        var input = gen.Generate(pcg, null, out _);
        if (Fails(assert, input) is not { } first) return;
        string cs;
        try { Check.Sample(gen, assert, seed: seed, iter: 300, threads: 1, print: print); cs = "CsCheck did not reproduce it"; }
        catch (Exception e) { cs = e.Message.Split('\n')[0]; }
        var (min, why) = input is Array ? Minimise(assert, input, first) : (input, first);
        throw new PropertyFailedException(
            $"iteration {i} (seed {seed}) failed. CsCheck: {cs}\nminimal reproduction: {print(min)}\n{why.Message}", why);
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
