using System.Buffers;
using System.Text;
using System.Text.Unicode;
using BenchmarkDotNet.Attributes;
using Duplex.Protocol;

namespace Duplex.Benchmarks;

/// <summary>Masking against a plain memory copy of the same bytes (the target: at least 0.8x its speed).</summary>
[MemoryDiagnoser]
public class MaskingBenchmarks
{
    private byte[] _source = [];
    private byte[] _target = [];

    [Params(125, 4096, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _source = new byte[Size];
        new Random(1).NextBytes(_source);
        _target = new byte[Size];
    }

    [Benchmark(Baseline = true, Description = "memcpy (Span.CopyTo)")]
    public void Copy() => _source.AsSpan().CopyTo(_target);

    [Benchmark(Description = "mask in place")]
    public void MaskInPlace() => Masking.Apply(_target, 0x37FA213Du, 1);

    [Benchmark(Description = "mask while copying")]
    public void MaskCopy() => Masking.ApplyCopy(_source, _target, 0x37FA213Du, 1);

    [Benchmark(Description = "mask byte by byte (naive)")]
    public void MaskNaive()
    {
        ReadOnlySpan<byte> key = [0x3D, 0x21, 0xFA, 0x37];
        var data = _target;
        for (int i = 0; i < data.Length; i++)
            data[i] ^= key[(i + 1) & 3];
    }
}

/// <summary>Frame header parse and write.</summary>
[MemoryDiagnoser]
public class FrameHeaderBenchmarks
{
    private readonly byte[] _small = new byte[14], _medium = new byte[14], _large = new byte[14];
    private readonly byte[] _output = new byte[14];

    [GlobalSetup]
    public void Setup()
    {
        FrameHeader.Write(_small, true, 0, Opcode.Text, 32, 0x11223344u);
        FrameHeader.Write(_medium, true, 0, Opcode.Binary, 4096, 0x11223344u);
        FrameHeader.Write(_large, true, 0, Opcode.Binary, 1 << 20, null);
    }

    [Benchmark(Description = "read 7-bit length, masked")]
    public long ReadSmall() => FrameHeader.TryRead(_small, out var h, out _) == OperationStatus.Done ? h.PayloadLength : -1;

    [Benchmark(Description = "read 16-bit length, masked")]
    public long ReadMedium() => FrameHeader.TryRead(_medium, out var h, out _) == OperationStatus.Done ? h.PayloadLength : -1;

    [Benchmark(Description = "read 64-bit length")]
    public long ReadLarge() => FrameHeader.TryRead(_large, out var h, out _) == OperationStatus.Done ? h.PayloadLength : -1;

    [Benchmark(Description = "write 16-bit length, masked")]
    public int Write() => FrameHeader.Write(_output, true, 0, Opcode.Binary, 4096, 0x11223344u);
}

/// <summary>Incremental UTF-8 validation against the BCL's whole-buffer validator.</summary>
[MemoryDiagnoser]
public class Utf8Benchmarks
{
    private byte[] _ascii = [];
    private byte[] _mixed = [];

    [GlobalSetup]
    public void Setup()
    {
        _ascii = Encoding.UTF8.GetBytes(new string('a', 65536));
        var text = new StringBuilder();
        while (text.Length < 30000)
            text.Append("Héllo wörld, Καλημέρα κόσμε, こんにちは 👋 ");
        _mixed = Encoding.UTF8.GetBytes(text.ToString());
    }

    [Benchmark(Baseline = true, Description = "Utf8.IsValid, 64 KiB ASCII")]
    public bool BclAscii() => Utf8.IsValid(_ascii);

    [Benchmark(Description = "Utf8Validator, 64 KiB ASCII, one chunk")]
    public bool DuplexAscii()
    {
        var v = new Utf8Validator();
        return v.Append(_ascii) && v.IsComplete;
    }

    [Benchmark(Description = "Utf8.IsValid, mixed scripts")]
    public bool BclMixed() => Utf8.IsValid(_mixed);

    [Benchmark(Description = "Utf8Validator, mixed scripts, 1 KiB chunks")]
    public bool DuplexMixedChunks()
    {
        var v = new Utf8Validator();
        var data = _mixed.AsSpan();
        for (int i = 0; i < data.Length; i += 1024)
        {
            if (!v.Append(data.Slice(i, Math.Min(1024, data.Length - i))))
                return false;
        }
        return v.IsComplete;
    }
}
