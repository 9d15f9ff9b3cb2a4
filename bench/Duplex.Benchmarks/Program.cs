using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Duplex.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
