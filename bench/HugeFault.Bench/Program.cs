using BenchmarkDotNet.Running;
using HugeFault.Bench;

// `memory` prints the model-memory report; anything else goes to BenchmarkDotNet.
if (args is ["memory"]) { ModelMemory.Print(Console.Out); return; }
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
