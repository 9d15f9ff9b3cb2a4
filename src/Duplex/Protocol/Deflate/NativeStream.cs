using System.Runtime.InteropServices;

namespace Duplex.Protocol.Deflate;

/// <summary>
/// One zlib stream, deflating or inflating, from one of two libraries: the system's zlib
/// (<see cref="ZLib"/>), or the zlib-ng that the .NET runtime ships for System.IO.Compression
/// (<see cref="RuntimeZLib"/>), which is faster but cannot reset a deflate stream. So a deflate
/// stream that must be reset after each message (no context takeover) uses the system's zlib,
/// and every other stream uses zlib-ng when the runtime has it.
/// </summary>
internal abstract unsafe class NativeStream : IDisposable
{
    // The stream's fields as zlib sees them, wherever its library's layout puts them (in native
    // memory that does not move, allocated by the subclass and freed by Free).
    private void* _memory;
    private byte** _nextIn, _nextOut;
    private uint* _availIn, _availOut;

    protected void* Memory => _memory;

    protected void Place(void* memory, byte** nextIn, uint* availIn, byte** nextOut, uint* availOut)
    {
        _memory = memory;
        _nextIn = nextIn;
        _availIn = availIn;
        _nextOut = nextOut;
        _availOut = availOut;
    }

    public byte* NextIn { set => *_nextIn = value; }
    public uint AvailIn { get => *_availIn; set => *_availIn = value; }
    public byte* NextOut { set => *_nextOut = value; }
    public uint AvailOut { get => *_availOut; set => *_availOut = value; }

    /// <summary>Frees the stream's memory (after its library let go of it); null, for a stream that could not start.</summary>
    protected NativeStream? Free()
    {
        NativeMemory.Free(_memory);
        _memory = null;
        return null;
    }

    /// <summary>deflate or inflate with the given flush; zlib's status.</summary>
    public abstract int Run(int flush);

    /// <summary>Back to a fresh stream (no window), keeping the memory.</summary>
    public abstract void Reset();

    public abstract void Dispose();

    /// <summary>A raw deflate stream, or null when zlib refuses the parameters.</summary>
    public static NativeStream? ForDeflate(int level, int windowBits, int memLevel, bool resets) =>
        !resets && RuntimeZLib.IsAvailable
            ? RuntimeStream.Deflating(level, windowBits, memLevel)
            : SystemStream.Deflating(level, windowBits, memLevel);

    /// <summary>A raw inflate stream, or null when zlib refuses the parameters.</summary>
    public static NativeStream? ForInflate(int windowBits) =>
        RuntimeZLib.IsAvailable ? RuntimeStream.Inflating(windowBits) : SystemStream.Inflating(windowBits);

    private sealed class SystemStream : NativeStream
    {
        private readonly bool _deflating;

        private SystemStream(bool deflating)
        {
            _deflating = deflating;
            var stream = (ZLib.ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(ZLib.ZStream));
            Place(stream, &stream->NextIn, &stream->AvailIn, &stream->NextOut, &stream->AvailOut);
        }

        private ZLib.ZStream* Stream => (ZLib.ZStream*)Memory;

        public static NativeStream? Deflating(int level, int windowBits, int memLevel)
        {
            var s = new SystemStream(deflating: true);
            return ZLib.DeflateInit(s.Stream, level, -windowBits, memLevel) == ZLib.Ok ? s : s.Free();
        }

        public static NativeStream? Inflating(int windowBits)
        {
            var s = new SystemStream(deflating: false);
            return ZLib.InflateInit(s.Stream, -windowBits) == ZLib.Ok ? s : s.Free();
        }

        public override int Run(int flush) => _deflating ? ZLib.deflate(Stream, flush) : ZLib.inflate(Stream, flush);

        public override void Reset()
        {
            if (_deflating)
                ZLib.deflateReset(Stream);
            else
                ZLib.inflateReset(Stream);
        }

        public override void Dispose()
        {
            if (Memory is null)
                return;
            if (_deflating)
                ZLib.deflateEnd(Stream);
            else
                ZLib.inflateEnd(Stream);
            Free();
        }
    }

    private sealed class RuntimeStream : NativeStream
    {
        private readonly int _windowBits; // 0 when deflating

        private RuntimeStream(int windowBits)
        {
            _windowBits = windowBits;
            var stream = (RuntimeZLib.Stream*)NativeMemory.AllocZeroed((nuint)sizeof(RuntimeZLib.Stream));
            Place(stream, &stream->NextIn, &stream->AvailIn, &stream->NextOut, &stream->AvailOut);
        }

        private RuntimeZLib.Stream* Stream => (RuntimeZLib.Stream*)Memory;

        public static NativeStream? Deflating(int level, int windowBits, int memLevel)
        {
            var s = new RuntimeStream(0);
            return RuntimeZLib.DeflateInit2(s.Stream, level, ZLib.Deflated, -windowBits, memLevel, ZLib.DefaultStrategy) == ZLib.Ok ? s : s.Free();
        }

        public static NativeStream? Inflating(int windowBits)
        {
            var s = new RuntimeStream(windowBits);
            return RuntimeZLib.InflateInit2(s.Stream, -windowBits) == ZLib.Ok ? s : s.Free();
        }

        public override int Run(int flush) => _windowBits == 0 ? RuntimeZLib.Deflate(Stream, flush) : RuntimeZLib.Inflate(Stream, flush);

        // Only inflate streams reset here (ForDeflate gives resetting deflaters the system's zlib).
        public override void Reset()
        {
            if (_windowBits == 0)
                throw new InvalidOperationException("the runtime's zlib cannot reset a deflate stream");
            RuntimeZLib.InflateReset2(Stream, -_windowBits);
        }

        public override void Dispose()
        {
            if (Memory is null)
                return;
            if (_windowBits == 0)
                RuntimeZLib.DeflateEnd(Stream);
            else
                RuntimeZLib.InflateEnd(Stream);
            Free();
        }
    }
}

/// <summary>
/// The zlib (zlib-ng) inside the .NET runtime's libSystem.IO.Compression.Native, through the
/// entry points System.IO.Compression itself calls, with their own stream layout. Not a public
/// contract of the runtime: probed once, and the system's zlib is used when it does not answer.
/// </summary>
internal static unsafe partial class RuntimeZLib
{
    private const string Library = "libSystem.IO.Compression.Native";

    [StructLayout(LayoutKind.Sequential)]
    public struct Stream
    {
        public byte* NextIn;
        public byte* NextOut;
        public byte* Msg;
        public void* State;
        public uint AvailIn;
        public uint AvailOut;
    }

    [LibraryImport(Library, EntryPoint = "CompressionNative_DeflateInit2_")]
    public static partial int DeflateInit2(Stream* stream, int level, int method, int windowBits, int memLevel, int strategy);

    [LibraryImport(Library, EntryPoint = "CompressionNative_Deflate")]
    public static partial int Deflate(Stream* stream, int flush);

    [LibraryImport(Library, EntryPoint = "CompressionNative_DeflateEnd")]
    public static partial int DeflateEnd(Stream* stream);

    [LibraryImport(Library, EntryPoint = "CompressionNative_InflateInit2_")]
    public static partial int InflateInit2(Stream* stream, int windowBits);

    [LibraryImport(Library, EntryPoint = "CompressionNative_Inflate")]
    public static partial int Inflate(Stream* stream, int flush);

    [LibraryImport(Library, EntryPoint = "CompressionNative_InflateReset2_")]
    public static partial int InflateReset2(Stream* stream, int windowBits);

    [LibraryImport(Library, EntryPoint = "CompressionNative_InflateEnd")]
    public static partial int InflateEnd(Stream* stream);

    /// <summary>
    /// True when the runtime's zlib loads and round-trips a message through raw deflate and inflate
    /// (so a changed stream layout is caught here, not on a connection). DUPLEX_SYSTEM_ZLIB=1 turns it off.
    /// </summary>
    public static bool IsAvailable => Available.Value;

    private static readonly Lazy<bool> Available = new(Probe);

    private static bool Probe()
    {
        if (Environment.GetEnvironmentVariable("DUPLEX_SYSTEM_ZLIB") == "1")
            return false;
        try
        {
            var deflating = (Stream*)NativeMemory.AllocZeroed((nuint)sizeof(Stream));
            var inflating = (Stream*)NativeMemory.AllocZeroed((nuint)sizeof(Stream));
            try
            {
                if (DeflateInit2(deflating, 6, ZLib.Deflated, -15, 8, ZLib.DefaultStrategy) != ZLib.Ok)
                    return false;
                if (InflateInit2(inflating, -15) != ZLib.Ok)
                {
                    DeflateEnd(deflating);
                    return false;
                }
                ReadOnlySpan<byte> message = "permessage-deflate through the runtime's zlib, permessage-deflate"u8;
                Span<byte> compressed = stackalloc byte[256];
                Span<byte> restored = stackalloc byte[256];
                bool same;
                fixed (byte* input = message)
                fixed (byte* packed = compressed)
                fixed (byte* output = restored)
                {
                    deflating->NextIn = input;
                    deflating->AvailIn = (uint)message.Length;
                    deflating->NextOut = packed;
                    deflating->AvailOut = (uint)compressed.Length;
                    int deflated = Deflate(deflating, ZLib.SyncFlush);
                    int packedLength = compressed.Length - (int)deflating->AvailOut;
                    inflating->NextIn = packed;
                    inflating->AvailIn = (uint)packedLength;
                    inflating->NextOut = output;
                    inflating->AvailOut = (uint)restored.Length;
                    int inflated = Inflate(inflating, ZLib.SyncFlush);
                    int restoredLength = restored.Length - (int)inflating->AvailOut;
                    same = deflated == ZLib.Ok && inflated == ZLib.Ok && restored[..restoredLength].SequenceEqual(message)
                        && InflateReset2(inflating, -15) == ZLib.Ok;
                }
                DeflateEnd(deflating);
                InflateEnd(inflating);
                return same;
            }
            finally
            {
                NativeMemory.Free(deflating);
                NativeMemory.Free(inflating);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return false;
        }
    }
}
