using System.Runtime.CompilerServices;

namespace HugeFault;

/// <summary>
/// The text of a log line or action for <see cref="Kernel.Log(ref TraceText)"/>, <see cref="Kernel.Act(ref TraceText)"/>
/// and <see cref="Kernel.KAct(ref TraceText)"/>, built only when the kernel records its trace
/// (<see cref="KernelConfig.RecordTrace"/>): otherwise the interpolation holes are not even evaluated, so a kernel
/// path's trace costs nothing when no one reads it. Formats exactly as the same <c>$"..."</c> to a string would.
/// </summary>
[InterpolatedStringHandler]
public ref struct TraceText
{
    private DefaultInterpolatedStringHandler _text;

    public TraceText(int literalLength, int formattedCount, Kernel k, out bool shouldAppend)
    {
        Enabled = shouldAppend = k.RecordTrace;
        _text = shouldAppend ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
    }

    /// <summary>False when the kernel does not record: nothing was formatted.</summary>
    public bool Enabled { get; }

    public void AppendLiteral(string s) => _text.AppendLiteral(s);
    public void AppendFormatted<T>(T value) => _text.AppendFormatted(value);
    public void AppendFormatted<T>(T value, string? format) => _text.AppendFormatted(value, format);
    public void AppendFormatted<T>(T value, int alignment) => _text.AppendFormatted(value, alignment);
    public void AppendFormatted<T>(T value, int alignment, string? format) => _text.AppendFormatted(value, alignment, format);
    public void AppendFormatted(ReadOnlySpan<char> value) => _text.AppendFormatted(value);
    public void AppendFormatted(string? value) => _text.AppendFormatted(value);

    public string ToStringAndClear() => _text.ToStringAndClear();
}
