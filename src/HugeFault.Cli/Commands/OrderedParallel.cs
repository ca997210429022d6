using System.Runtime.ExceptionServices;

namespace HugeFault.Cli.Commands;

/// <summary>
/// Independent jobs on worker threads, their results consumed on the calling thread in job order as soon as each is
/// ready: output streams as it would from a sequential loop and is byte-identical whatever the thread count. A job
/// that throws rethrows its own exception when its turn to be consumed comes (the jobs before it are consumed first,
/// the ones after it are not), exactly where the sequential loop would have stopped.
/// </summary>
internal static class OrderedParallel
{
    public static void Run<T>(int count, int threads, Func<int, T> job, Action<int, T> consume)
    {
        if (threads <= 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) consume(i, job(i));
            return;
        }
        var results = new T[count];
        var errors = new ExceptionDispatchInfo?[count];
        var done = new bool[count];
        var gate = new object();
        int claimed = -1;
        bool stop = false;
        void Work()
        {
            for (int i; !Volatile.Read(ref stop) && (i = Interlocked.Increment(ref claimed)) < count;)
            {
                try { results[i] = job(i); }
                catch (Exception e) { errors[i] = ExceptionDispatchInfo.Capture(e); }
                lock (gate) { done[i] = true; Monitor.PulseAll(gate); }
            }
        }
        var workers = new Thread[Math.Min(threads, count)];
        for (int w = 0; w < workers.Length; w++) (workers[w] = new Thread(Work) { IsBackground = true, Name = $"hugefault-worker-{w}" }).Start();
        try
        {
            for (int i = 0; i < count; i++)
            {
                lock (gate) while (!done[i]) Monitor.Wait(gate);
                errors[i]?.Throw();
                var r = results[i];
                results[i] = default!; // consumed: its memory (a whole kernel model) can go
                consume(i, r);
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            foreach (var t in workers) t.Join();
        }
    }
}
