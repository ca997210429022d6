using System.Globalization;
using System.Text;
using System.Text.Json;
using HugeFault.RealRunner.Native;
using HugeFault.RealRunner.Probing;
using static HugeFault.RealRunner.Native.Kernel;

namespace HugeFault.RealRunner.Scenarios;

// Processes that die, scenario threads, and what the controller reads after a step (deaths, kpageflags).
internal sealed unsafe partial class ScenarioExec
{
    /// <summary>Scenario threads of this process: thread name → its process's name (a fork child starts with none).</summary>
    private readonly Dictionary<string, string> _threadOf = new();
    /// <summary>gettid() → scenario thread name, for attributing signal records (the main thread is not listed: it is _me).</summary>
    private readonly Dictionary<long, string> _tidNames = new();
    /// <summary>Controller: pfn variables from every process's pfn_of results (a served process's own _vars stay in that process).</summary>
    private readonly Dictionary<string, ulong> _knownVars = new();
    /// <summary>Controller: how processes that are gone ended, once reaped.</summary>
    private readonly Dictionary<string, string> _ended = new();

    /// <summary>The process a scenario name belongs to (a thread's process, or the name itself).</summary>
    private string ProcessOf(string who) => _threadOf.TryGetValue(who, out var p) ? p : who;

    /// <summary>
    /// Per-process set-up in a new process: a process the scenario declares <c>sigbus: default</c> gets SIG_DFL for
    /// SIGBUS instead of the exception table's handler, so the kernel kills it as it would kill a program without a
    /// handler (the controller then sees it die and reports how).
    /// </summary>
    private void StartProcess()
    {
        if (!SigbusDefault(_me)) return;
        byte* act = stackalloc byte[152];
        new Span<byte>(act, 152).Clear(); // SIG_DFL
        Libc.sigaction(SIGBUS, act, null);
    }

    /// <summary>Whether the scenario declares process <paramref name="name"/> <c>sigbus: default</c>.</summary>
    private bool SigbusDefault(string name) =>
        _plan.TryGetProperty("sigbus_default", out var d) && d.EnumerateArray().Any(x => x.GetString() == name);

    /// <summary>Controller bookkeeping after a step: new processes and threads, pfn variables.</summary>
    private void AfterStep(string op, string who, JsonElement step, string result)
    {
        var res = JsonDocument.Parse(result).RootElement;
        long ret = res.TryGetProperty("ret", out var rv) && rv.ValueKind == JsonValueKind.Number ? rv.GetInt64() : -1;
        var args = step.GetProperty("args");
        if (op == "fork" && ret > 0) _pids[args.GetProperty("child").GetString()!] = (int)ret;
        if (op == "thread" && ret > 0) _threadOf[args.GetProperty("name").GetString()!] = ProcessOf(who);
        if (op == "pfn_of" && ret > 0) _knownVars[args.GetProperty("save").GetString()!] = (ulong)ret;
    }

    /// <summary>Processes (not the controller) that died since the last step, as {"B":"SIGBUS"}; they are marked dead.</summary>
    private string Deaths()
    {
        var l = new JsonLine();
        bool any = false;
        foreach (var n in _order)
        {
            if (n == _me || _threadOf.ContainsKey(n) || _dead.Contains(n) || !_pids.ContainsKey(n)) continue;
            if (DeathOf(n) is not { } how) continue;
            _dead.Add(n);
            l.Str(n, how);
            any = true;
        }
        return any ? l.ToString() : "{}";
    }

    /// <summary>
    /// How process <paramref name="who"/> ended, or null while it runs: wait4(WNOHANG) for the controller's own
    /// children, else the zombie's state and exit_code in /proc/PID/stat (a served process never reaps its children).
    /// </summary>
    private string? DeathOf(string who)
    {
        if (_ended.TryGetValue(who, out var known)) return known;
        if (!_pids.TryGetValue(who, out int pid)) return null;
        int status = 0;
        long r = ExceptionTable.Syscall(__NR_wait4, pid, (long)&status, 1 /*WNOHANG*/, 0);
        if (r == pid) return _ended[who] = StatusName(status);
        if (r == 0) return null;
        string? stat = ReadText($"/proc/{pid}/stat");
        if (stat is null) return _ended[who] = "exit";
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        if (f[0] is not ("Z" or "X")) return null;
        // exit_code is field 52 of /proc/PID/stat (proc(5)); f[0] is field 3
        return f.Length > 49 && int.TryParse(f[49], NumberStyles.Integer, CultureInfo.InvariantCulture, out int code) ? StatusName(code) : "exit";
    }

    private static string StatusName(int status) => (status & 0x7f) switch
    {
        0 => "exit", 7 => "SIGBUS", 9 => "SIGKILL", 11 => "SIGSEGV", var sig => "SIG" + sig,
    };

    /// <summary>kpageflags of the pfns the step's expectations name, as {"$x+5": flags}, or null.</summary>
    private string? PageFlagsJson(JsonElement step)
    {
        if (!step.TryGetProperty("kpageflags", out var refs) || refs.GetArrayLength() == 0) return null;
        var l = new JsonLine();
        long fd = OpenPath("/proc/kpageflags", O_RDONLY);
        foreach (var r in refs.EnumerateArray())
        {
            string v = r.GetProperty("var").GetString()!;
            if (!_knownVars.TryGetValue(v, out ulong pfn) && !_vars.TryGetValue(v, out pfn)) continue;
            pfn += (ulong)r.GetProperty("add").GetInt64();
            ulong flags = 0;
            if (fd >= 0 && ExceptionTable.Syscall(__NR_pread64, fd, (long)&flags, 8, (long)(pfn * 8)) == 8)
                l.Raw(r.GetProperty("ref").GetString()!, flags.ToString(CultureInfo.InvariantCulture));
        }
        if (fd >= 0) ExceptionTable.Syscall(__NR_close, fd);
        return l.ToString();
    }

    /// <summary>
    /// A scenario thread of this process: a thread that serves its own command pipe, so its steps run in its own
    /// task (per-thread prctl(PR_MCE_KILL), thread-directed signals). Its signals are reported with its process's.
    /// </summary>
    private long StartThread(string name)
    {
        long tid = 0;
        var ready = new ManualResetEventSlim();
        var t = new Thread(() =>
        {
            long me = ExceptionTable.Syscall(186 /*gettid*/);
            SetComm(name); // the thread's own comm, as the kernel log names it ("Sending SIGBUS to T2:pid")
            lock (_tidNames) _tidNames[me] = name;
            tid = me;
            ready.Set();
            ServeThread(name);
        }) { IsBackground = true };
        t.Start();
        ready.Wait();
        _threadOf[name] = _me;
        return tid;
    }

    /// <summary>
    /// Waits (up to 0.5 s) until no task of this process has a SIGBUS pending (SigPnd/ShdPnd in
    /// /proc/self/task/TID/status): a signal sent to a thread that sits in read(2) is handled only when that thread
    /// runs, which under TCG can be after its process was asked for its records (07g on 6.1: T2's AO one step late).
    /// </summary>
    private void AwaitPendingSigbus()
    {
        const ulong bit = 1UL << (SIGBUS - 1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 500)
        {
            bool pending = false;
            foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
            {
                string? st = ReadText(dir + "/status");
                if (st is null) continue;
                foreach (var line in st.Split('\n'))
                    if ((line.StartsWith("SigPnd:", StringComparison.Ordinal) || line.StartsWith("ShdPnd:", StringComparison.Ordinal))
                        && ulong.TryParse(line[7..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong m) && (m & bit) != 0)
                        pending = true;
            }
            if (!pending) return;
            Thread.Sleep(1);
        }
    }

    /// <summary>A thread's serving loop: steps only (signals are answered by its process), until told to stop.</summary>
    private void ServeThread(string name)
    {
        var (cmdR, _, _, resW) = _pipes[name];
        var steps = _plan.GetProperty("steps").EnumerateArray().ToDictionary(s => s.GetProperty("i").GetInt32());
        while (true)
        {
            long cmd = 0;
            if (ReadFull(cmdR, (byte*)&cmd, 8) != 8) return;
            int kind = ((int*)&cmd)[0], step = ((int*)&cmd)[1];
            if (kind == 3) return;
            string ans = kind == 1 ? Exec(steps[step]) : "[]";
            byte[] b = Encoding.UTF8.GetBytes(ans);
            int len = b.Length;
            WriteFull(resW, (byte*)&len, 4);
            fixed (byte* p = b) WriteFull(resW, p, len);
        }
    }
}
