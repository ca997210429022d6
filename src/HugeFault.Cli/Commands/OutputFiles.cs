using System.Runtime.InteropServices;

namespace HugeFault.Cli.Commands;

/// <summary>
/// Output files: checked before any simulation, written atomically (temp file + rename). The check opens the very
/// temp file the output will be written through (a hidden ".NAME.PID.tmp" next to it) and keeps it open for the
/// command: nothing else is created, the folder is proved writable for that file, and the write later reuses it. A
/// command that ends without writing (an error after the checks) removes it.
/// </summary>
internal static class OutputFiles
{
    /// <summary>Temp files opened by the checks of the running command (its async flow), by the full path they will become.</summary>
    private static readonly AsyncLocal<Dictionary<string, Reserved>?> Held = new();

    /// <summary>Holds the checked outputs of one command until the returned scope ends (<see cref="CliAction"/> opens it).</summary>
    public static IDisposable Scope()
    {
        var before = Held.Value;
        var mine = new Dictionary<string, Reserved>();
        Held.Value = mine;
        return new ScopeEnd(() =>
        {
            Held.Value = before;
            foreach (var r in mine.Values) r.Dispose();
        });
    }

    /// <summary>Fails with a usage error unless a file can be created at <paramref name="path"/>.</summary>
    public static void CheckFile(string flag, string path)
    {
        if (Directory.Exists(path)) throw new UsageException($"{flag} '{path}' is a directory; give a file name");
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir)) throw new UsageException($"{flag} '{path}': folder '{dir}' does not exist; create it first");
        Reserve(flag, path, full);
    }

    /// <summary>Creates the folder if needed; fails with a usage error unless files can be written in it.</summary>
    public static void CheckDir(string flag, string dir)
    {
        if (File.Exists(dir)) throw new UsageException($"{flag} '{dir}' is a file; give a folder");
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException($"{flag} '{dir}': cannot create the folder ({e.Message})"); }
        // the temp file is held for the folder and becomes the first file written into it
        Reserve(flag, dir, FolderKey(Path.GetFullPath(dir)));
    }

    private static string FolderKey(string fullDir) => Path.TrimEndingDirectorySeparator(fullDir) + Path.DirectorySeparatorChar;

    private static void Reserve(string flag, string what, string key)
    {
        var held = Held.Value;
        if (held?.ContainsKey(key) == true) return; // the same output named twice (--out r.html --html r.html)
        Reserved r;
        try { r = new Reserved(key.EndsWith(Path.DirectorySeparatorChar) ? Path.Combine(key, $".hugefault.{Environment.ProcessId}.tmp") : TempOf(key)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{flag} '{what}': cannot write there ({e.GetType().Name}: {e.Message})");
        }
        if (held is null) r.Dispose(); // no command scope (a direct call): checked, nothing kept
        else held[key] = r;
    }

    private static string TempOf(string full) => Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");

    /// <summary>
    /// Writes through a temp file in the same folder (the one its check opened, if any), then renames it over
    /// <paramref name="path"/>. A SIGTERM, SIGINT or SIGHUP while the temp exists (scancel, a Kubernetes pod stop, Ctrl-C;
    /// a streamed Parquet file is open for the whole run) deletes it before the process ends, so no partial file is
    /// left; only SIGKILL leaves the hidden temp.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        var held = Held.Value;
        Reserved? r = null;
        if (held is not null && !held.Remove(full, out r)) held.Remove(FolderKey(Path.GetDirectoryName(full) ?? "."), out r);
        using var tmp = r ?? new Reserved(TempOf(full));
        tmp.WriteAndRename(write, full);
    }

    public static void WriteText(string path, string text) => Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false)); w.Write(text); });

    /// <summary>An open temp file, removed on SIGTERM/SIGINT/SIGHUP and on disposal unless it was renamed.</summary>
    private sealed class Reserved : IDisposable
    {
        private readonly string _tmp;
        private readonly FileStream _stream;
        private readonly PosixSignalRegistration[] _signals;

        public Reserved(string tmp)
        {
            _tmp = tmp;
            void Remove(PosixSignalContext _) { try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
            // the handlers first: a signal at any moment after the file exists removes it
            _signals = [PosixSignalRegistration.Create(PosixSignal.SIGTERM, Remove), PosixSignalRegistration.Create(PosixSignal.SIGINT, Remove),
                        PosixSignalRegistration.Create(PosixSignal.SIGHUP, Remove)];
            try { _stream = File.Create(tmp); }
            catch { foreach (var s in _signals) s.Dispose(); throw; }
        }

        public void WriteAndRename(Action<Stream> write, string full)
        {
            using (_stream) write(_stream);
            File.Move(_tmp, full, overwrite: true);
        }

        public void Dispose()
        {
            _stream.Dispose();
            try { if (File.Exists(_tmp)) File.Delete(_tmp); }
            finally { foreach (var s in _signals) s.Dispose(); }
        }
    }

    private sealed class ScopeEnd(Action end) : IDisposable
    {
        public void Dispose() => end();
    }
}
