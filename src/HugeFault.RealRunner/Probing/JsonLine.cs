using System.Globalization;
using System.Text;

namespace HugeFault.RealRunner.Probing;

/// <summary>Builds one JSON object on one line. Field order is the call order.</summary>
internal sealed class JsonLine
{
    private readonly StringBuilder _sb = new(256);
    private bool _first = true;

    public JsonLine() => _sb.Append('{');

    private JsonLine Key(string k)
    {
        if (!_first) _sb.Append(',');
        _first = false;
        AppendString(_sb, k);
        _sb.Append(':');
        return this;
    }

    public JsonLine Str(string k, string? v)
    {
        Key(k);
        if (v is null) _sb.Append("null"); else AppendString(_sb, v);
        return this;
    }

    public JsonLine Num(string k, long v) { Key(k); _sb.Append(v.ToString(CultureInfo.InvariantCulture)); return this; }

    public JsonLine Num(string k, double v) { Key(k); _sb.Append(v.ToString("0.###", CultureInfo.InvariantCulture)); return this; }

    public JsonLine Bool(string k, bool v) { Key(k); _sb.Append(v ? "true" : "false"); return this; }

    /// <summary>A number written as a "0x..." string (addresses, offsets, flags).</summary>
    public JsonLine Hex(string k, ulong v) => Str(k, "0x" + v.ToString("x", CultureInfo.InvariantCulture));

    /// <summary>Inserts already-serialised JSON (an object or array).</summary>
    public JsonLine Raw(string k, string json) { Key(k); _sb.Append(json); return this; }

    public override string ToString() => _sb.ToString() + "}";

    public static void AppendString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
