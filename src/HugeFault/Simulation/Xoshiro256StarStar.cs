using System.Runtime.CompilerServices;

namespace HugeFault.Simulation;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter passed through a strong mixer. Used only to
/// expand a user seed into xoshiro state, because xoshiro must never start from a low-entropy (e.g. all-zero) state.
/// </summary>
public struct SplitMix64
{
    internal const ulong GoldenGamma = 0x9E3779B97F4A7C15UL;
    private ulong _state;

    /// <summary>Starts the sequence at <paramref name="seed"/>.</summary>
    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>Returns the next 64-bit output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Next()
    {
        _state += GoldenGamma;
        return Mix(_state);
    }

    /// <summary>The SplitMix64 finaliser (a bijection on ulong with full avalanche).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>
/// xoshiro256** (Blackman and Vigna 2018): 256-bit state, period 2^256 − 1, about 1 ns per draw.
/// A mutable struct on purpose: samplers take it <c>by ref</c> and never own it, so a Monte Carlo block keeps its
/// generator in a register-friendly local and never allocates.
/// </summary>
public struct Xoshiro256StarStar
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the four state words from SplitMix64(<paramref name="seed"/>), as the xoshiro authors recommend.</summary>
    public static Xoshiro256StarStar Create(ulong seed)
    {
        var sm = new SplitMix64(seed);
        var rng = new Xoshiro256StarStar { _s0 = sm.Next(), _s1 = sm.Next(), _s2 = sm.Next(), _s3 = sm.Next() };
        rng.EnsureNonZero();
        return rng;
    }

    /// <summary>
    /// An independent generator for stream <paramref name="stream"/> of run <paramref name="seed"/> (for example
    /// a Monte Carlo block index). O(1), unlike <see cref="Jump"/> repeated <paramref name="stream"/> times: the
    /// (seed, stream) pair is hashed into the 256-bit state, so streams are distinct starting points on a 2^256 cycle
    /// and two blocks of a few million draws overlap with probability far below 2^-150.
    /// </summary>
    public static Xoshiro256StarStar ForStream(ulong seed, ulong stream)
    {
        ulong key = StreamKey(stream);
        var rng = new Xoshiro256StarStar
        {
            _s0 = StreamWord(seed, key, 1),
            _s1 = StreamWord(seed, key, 2),
            _s2 = StreamWord(seed, key, 3),
            _s3 = StreamWord(seed, key, 4),
        };
        rng.EnsureNonZero();
        return rng;
    }

    /// <summary>
    /// The first <see cref="NextUInt64"/> of <see cref="ForStream"/>(<paramref name="seed"/>, <paramref name="stream"/>)
    /// without building the rest of the state (the first output depends on the second state word only, which
    /// EnsureNonZero never changes): a Monte Carlo that rejects most streams on their first draw needs no more.
    /// </summary>
    public static ulong FirstOfStream(ulong seed, ulong stream) => Output(StreamWord(seed, StreamKey(stream), 2));

    /// <summary>A second mixer keyed by the stream index (<see cref="ForStream"/>).</summary>
    private static ulong StreamKey(ulong stream) => SplitMix64.Mix(stream ^ 0xD1B54A32D192ED03UL);

    /// <summary>
    /// State word <paramref name="i"/> (1…4) of a stream: the i-th SplitMix64 output of the seed XOR the stream's key
    /// mixed with i (adding the word index keeps the four words distinct).
    /// </summary>
    private static ulong StreamWord(ulong seed, ulong key, uint i) =>
        SplitMix64.Mix(unchecked(seed + i * SplitMix64.GoldenGamma)) ^ SplitMix64.Mix(key + i);

    /// <summary>The ** scrambler: a draw from the second state word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Output(ulong s1) => ulong.RotateLeft(s1 * 5, 7) * 9;

    private void EnsureNonZero()
    {
        // The all-zero state is the one fixed point of xoshiro; astronomically unlikely but cheap to rule out.
        if ((_s0 | _s1 | _s2 | _s3) == 0) _s0 = 0x9E3779B97F4A7C15UL;
    }

    /// <summary>Returns 64 uniformly distributed bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        ulong result = Output(_s1);
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform double in (0, 1]: safe to take the logarithm of.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public double NextDoubleNonZero() => ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, <paramref name="bound"/>) by Lemire's multiply-shift (bias below 2^-32 per unit of bound, no division).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint NextBounded(uint bound) => (uint)(((NextUInt64() >> 32) * bound) >> 32);

    /// <summary>Advances the state by 2^128 draws: 2^128 non-overlapping subsequences for parallel use.</summary>
    public void Jump() => ApplyJump(0x180EC6D33CFD0ABAUL, 0xD5A61266F0C9392CUL, 0xA9582618E03FC9AAUL, 0x39ABDC4529B1661CUL);

    /// <summary>Advances the state by 2^192 draws.</summary>
    public void LongJump() => ApplyJump(0x76E15D3EFEFDCBBFUL, 0xC5004E441C522FB3UL, 0x77710069854EE241UL, 0x39109BB02ACBE635UL);

    private void ApplyJump(ulong j0, ulong j1, ulong j2, ulong j3)
    {
        ulong s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        Span<ulong> jump = [j0, j1, j2, j3];
        foreach (ulong word in jump)
        {
            for (int b = 0; b < 64; b++)
            {
                if ((word & (1UL << b)) != 0)
                {
                    s0 ^= _s0; s1 ^= _s1; s2 ^= _s2; s3 ^= _s3;
                }
                NextUInt64();
            }
        }
        _s0 = s0; _s1 = s1; _s2 = s2; _s3 = s3;
    }
}
